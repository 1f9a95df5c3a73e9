// GEMM on CUDA through cuBLASLt (the contract is in kernels/gemm/gemm.h).
//
// Row-major to column-major: a row-major M x N matrix is the column-major N x M matrix with the
// same bytes, so C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T: cuBLAS's "A" is our B and
// its "B" our A, with m = N, n = M, and each operand's transpose flag kept as it is.
//
// Per device: one cuBLASLt handle (created lazily, never destroyed: the process may end after the
// CUDA runtime has unloaded). Per host thread and device: a 32 MiB workspace, because each thread
// queues on its own stream (cudaStreamPerThread) and two streams must never share scratch memory.
// Descriptors, layouts and the heuristic's algorithm are cached per problem (types, shape,
// transposes, lds, batch strides, epilogue, pointer alignments): the heuristic costs more than a
// small GEMM. When cuBLASLt has no algorithm for a fused epilogue, a plain GEMM plus a bias
// kernel does the same; when it has none at all (or K == 0), a plain loop kernel does the GEMM.
//
// Determinism: for a given problem the cached algorithm and workspace size never change, so the
// same inputs give the same bits on the same GPU and toolkit.
#include <cublasLt.h>

#include <array>
#include <climits>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "kernels/common/cuda.h"
#include "kernels/gemm/gemm.h"

namespace graft::kernels {

namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;

const char* type_name(GemmType t) {
  switch (t) {
    case GemmType::f32: return "f32";
    case GemmType::f64: return "f64";
    case GemmType::bf16: return "bf16";
    case GemmType::f16: return "f16";
  }
  return "?";
}

const char* epilogue_name(GemmEpilogue e) {
  switch (e) {
    case GemmEpilogue::none: return "none";
    case GemmEpilogue::bias: return "bias";
    case GemmEpilogue::gelu_bias: return "gelu_bias";
  }
  return "?";
}

size_t type_size(GemmType t) { return t == GemmType::f64 ? 8 : t == GemmType::f32 ? 4 : 2; }

cudaDataType_t cuda_type(GemmType t) {
  switch (t) {
    case GemmType::f32: return CUDA_R_32F;
    case GemmType::f64: return CUDA_R_64F;
    case GemmType::bf16: return CUDA_R_16BF;
    case GemmType::f16: return CUDA_R_16F;
  }
  return CUDA_R_32F;
}

// What every error names: the problem as given.
std::string describe(const CudaGemmArgs& args) {
  const GemmShape& s = args.shape;
  return "gemm_cuda(batch=" + std::to_string(s.batch) + ", M=" + std::to_string(s.M) + ", N=" + std::to_string(s.N) +
         ", K=" + std::to_string(s.K) + ", trans_a=" + std::to_string(s.trans_a) + ", trans_b=" +
         std::to_string(s.trans_b) + ", lda=" + std::to_string(s.lda) + ", ldb=" + std::to_string(s.ldb) +
         ", batch_stride_a=" + std::to_string(s.batch_stride_a) + ", batch_stride_b=" +
         std::to_string(s.batch_stride_b) + ", " + type_name(args.ab_type) + " x " + type_name(args.ab_type) +
         " -> " + type_name(args.c_type) + ", epilogue " + epilogue_name(args.epilogue) +
         (args.allow_tf32 ? ", tf32" : "") + ", cuda:" + std::to_string(args.device) + ")";
}

void check_cublas(cublasStatus_t status, const char* call, const CudaGemmArgs& args) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw DeviceError(std::string(call) + " failed: " + cublasLtGetStatusName(status) + " (" +
                      cublasLtGetStatusString(status) + ") in " + describe(args));
}

void validate(const CudaGemmArgs& args) {
  const GemmShape& s = args.shape;
  const bool types_ok = args.ab_type == args.c_type ||
                        ((args.ab_type == GemmType::bf16 || args.ab_type == GemmType::f16) && args.c_type == GemmType::f32);
  if (!types_ok)
    throw DTypeError(describe(args) + ": unsupported types; A and B of f32, f64, bf16 or f16 give C of the same "
                                      "type, and bf16/f16 may also give f32");
  if (s.batch < 0 || s.M < 0 || s.N < 0 || s.K < 0 || s.batch > INT_MAX)
    throw ValueError(describe(args) + ": sizes must be >= 0 and batch <= INT_MAX");
  if (s.batch == 0 || s.M == 0 || s.N == 0) return;  // nothing is read or written
  if (!args.c) throw ValueError(describe(args) + ": null C pointer");
  if (s.K > 0) {  // with K == 0 A and B are never read (C is zeros, plus the epilogue)
    // The stored (row-major) width of each operand: ld may be larger (a view), never smaller.
    const int64_t a_cols = s.trans_a ? s.M : s.K, b_cols = s.trans_b ? s.K : s.N;
    if (s.lda < a_cols || s.ldb < b_cols || s.batch_stride_a < 0 || s.batch_stride_b < 0)
      throw ValueError(describe(args) + ": lda must be >= " + std::to_string(a_cols) + ", ldb >= " +
                       std::to_string(b_cols) + ", batch strides >= 0");
    if (!args.a || !args.b) throw ValueError(describe(args) + ": null A or B pointer");
  }
  if (args.epilogue != GemmEpilogue::none && !args.bias)
    throw ValueError(describe(args) + ": the epilogue needs a bias pointer");
  if (args.epilogue == GemmEpilogue::gelu_bias && !args.aux)
    throw ValueError(describe(args) + ": gelu_bias needs an aux pointer for the pre-activation");
}

// The largest power of two (<= 256) dividing the address and every byte step from it: what
// cuBLASLt may assume of each batch's and each column's start.
uint32_t alignment_of(const void* p, int64_t ld_bytes, int64_t batch_stride_bytes) {
  const uint64_t bits = reinterpret_cast<uintptr_t>(p) | static_cast<uint64_t>(ld_bytes) |
                        static_cast<uint64_t>(batch_stride_bytes);
  uint32_t a = 1;
  while (a < 256 && (bits & (2 * a - 1)) == 0) a *= 2;
  return a;
}

// --- handles and workspaces ---

cublasLtHandle_t handle_for(const CudaGemmArgs& args) {
  static std::mutex mutex;
  static auto* handles = new std::map<int, cublasLtHandle_t>;  // never destroyed, see the top
  std::lock_guard<std::mutex> lock(mutex);
  auto it = handles->find(args.device);
  if (it != handles->end()) return it->second;
  cublasLtHandle_t h = nullptr;
  check_cublas(cublasLtCreate(&h), "cublasLtCreate", args);
  handles->emplace(args.device, h);
  return h;
}

struct ThreadWorkspaces {
  std::map<int, void*> by_device;
  ~ThreadWorkspaces() {
    for (auto& [device, ptr] : by_device) {
      cudaSetDevice(device);
      cudaFree(ptr);  // at exit the runtime may already be gone; nothing to report then
    }
  }
};

void* workspace_for(int device) {
  thread_local ThreadWorkspaces workspaces;
  auto it = workspaces.by_device.find(device);
  if (it != workspaces.by_device.end()) return it->second;
  void* ptr = nullptr;
  GRAFT_CUDA_CHECK(cudaMalloc(&ptr, kWorkspaceBytes));
  workspaces.by_device.emplace(device, ptr);
  return ptr;
}

// --- cached plans ---

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t layout_a = nullptr, layout_b = nullptr, layout_c = nullptr;  // cuBLAS's A (our B), B (our A), C = D
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
  bool found = false;
  std::mutex mutex;  // the descriptor holds the bias/aux pointers of the call that is using it

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (layout_a) cublasLtMatrixLayoutDestroy(layout_a);
    if (layout_b) cublasLtMatrixLayoutDestroy(layout_b);
    if (layout_c) cublasLtMatrixLayoutDestroy(layout_c);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

struct PreferenceGuard {
  cublasLtMatmulPreference_t pref = nullptr;
  ~PreferenceGuard() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
  }
};

template <class V>
void set_desc(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const V& value, const CudaGemmArgs& args) {
  check_cublas(cublasLtMatmulDescSetAttribute(desc, attr, &value, sizeof(value)), "cublasLtMatmulDescSetAttribute", args);
}

cublasLtMatrixLayout_t make_layout(GemmType type, int64_t rows, int64_t cols, int64_t ld, int64_t batch,
                                   int64_t batch_stride, const CudaGemmArgs& args) {
  cublasLtMatrixLayout_t layout = nullptr;
  check_cublas(cublasLtMatrixLayoutCreate(&layout, cuda_type(type), static_cast<uint64_t>(rows),
                                          static_cast<uint64_t>(cols), ld),
               "cublasLtMatrixLayoutCreate", args);
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    // A stride of 0 repeats the same matrix for every batch (cuBLASLt allows it for A and B).
    const int64_t stride = batch_stride;
    cublasStatus_t st = cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count));
    if (st == CUBLAS_STATUS_SUCCESS)
      st = cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride));
    if (st != CUBLAS_STATUS_SUCCESS) {
      cublasLtMatrixLayoutDestroy(layout);
      check_cublas(st, "cublasLtMatrixLayoutSetAttribute", args);
    }
  }
  return layout;
}

cublasLtEpilogue_t lt_epilogue(GemmEpilogue e) {
  switch (e) {
    case GemmEpilogue::none: return CUBLASLT_EPILOGUE_DEFAULT;
    case GemmEpilogue::bias: return CUBLASLT_EPILOGUE_BIAS;
    case GemmEpilogue::gelu_bias: return CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
  }
  return CUBLASLT_EPILOGUE_DEFAULT;
}

struct Alignments {
  uint32_t a = 0, b = 0, c = 0, bias = 0, aux = 0;
};

// Descriptors for the problem and the heuristic's best algorithm (found = false when it has none).
std::shared_ptr<Plan> make_plan(const CudaGemmArgs& args, GemmEpilogue epilogue, const Alignments& align,
                                cublasLtHandle_t handle) {
  const GemmShape& s = args.shape;
  auto plan = std::make_shared<Plan>();
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  cudaDataType_t scale = CUDA_R_32F;  // alpha/beta: f32 for f32/bf16/f16 inputs
  if (args.ab_type == GemmType::f64) {
    compute = CUBLAS_COMPUTE_64F;
    scale = CUDA_R_64F;
  } else if (args.ab_type == GemmType::f32 && args.allow_tf32) {
    compute = CUBLAS_COMPUTE_32F_FAST_TF32;
  }
  check_cublas(cublasLtMatmulDescCreate(&plan->desc, compute, scale), "cublasLtMatmulDescCreate", args);
  // cuBLAS's A is our B and its B our A (see the top), each with its own transpose flag.
  set_desc(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, static_cast<int32_t>(s.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N), args);
  set_desc(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, static_cast<int32_t>(s.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N), args);
  set_desc(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, lt_epilogue(epilogue), args);
  if (epilogue != GemmEpilogue::none) {
    // The bias runs along D's rows (length N, column-major D is N x M): our bias over j. Its type
    // is left at the default, D's type, which is C's type as the contract says. Bias batch
    // stride 0 (the default) reuses it for every batch. The pointer is set before the heuristic
    // because the heuristic reads its alignment.
    set_desc(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, args.bias, args);
  }
  if (epilogue == GemmEpilogue::gelu_bias) {
    // The pre-activation, laid out as D (type defaults to D's type).
    set_desc(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, args.aux, args);
    set_desc(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, static_cast<int64_t>(s.N), args);
    if (s.batch > 1)
      set_desc(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE, static_cast<int64_t>(s.M * s.N), args);
  }
  // Stored (column-major) shapes: our row-major R x C with ld is column-major C x R with ld.
  plan->layout_a = make_layout(args.ab_type, s.trans_b ? s.K : s.N, s.trans_b ? s.N : s.K, s.ldb, s.batch,
                               s.batch_stride_b, args);
  plan->layout_b = make_layout(args.ab_type, s.trans_a ? s.M : s.K, s.trans_a ? s.K : s.M, s.lda, s.batch,
                               s.batch_stride_a, args);
  plan->layout_c = make_layout(args.c_type, s.N, s.M, s.N, s.batch, s.M * s.N, args);

  PreferenceGuard pref;
  check_cublas(cublasLtMatmulPreferenceCreate(&pref.pref), "cublasLtMatmulPreferenceCreate", args);
  auto set_pref = [&](cublasLtMatmulPreferenceAttributes_t attr, auto value) {
    check_cublas(cublasLtMatmulPreferenceSetAttribute(pref.pref, attr, &value, sizeof(value)),
                 "cublasLtMatmulPreferenceSetAttribute", args);
  };
  set_pref(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, static_cast<uint64_t>(kWorkspaceBytes));
  // The heuristic assumes 256-byte aligned operands unless told otherwise; views are often not.
  set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align.b);
  set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align.a);
  set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align.c);
  set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align.c);

  cublasLtMatmulHeuristicResult_t result{};
  int count = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle, plan->desc, plan->layout_a, plan->layout_b,
                                                           plan->layout_c, plan->layout_c, pref.pref, 1, &result, &count);
  if (st == CUBLAS_STATUS_SUCCESS && count > 0 && result.state == CUBLAS_STATUS_SUCCESS) {
    plan->algo = result.algo;
    plan->workspace = result.workspaceSize;
    plan->found = true;
  } else if (st != CUBLAS_STATUS_SUCCESS && st != CUBLAS_STATUS_NOT_SUPPORTED && epilogue == GemmEpilogue::none) {
    // A fused epilogue cuBLASLt rejects is not an error (the bias kernel does it); a plain GEMM
    // it rejects other than "not supported" is.
    check_cublas(st, "cublasLtMatmulAlgoGetHeuristic", args);
  }
  return plan;
}

std::shared_ptr<Plan> plan_for(const CudaGemmArgs& args, GemmEpilogue epilogue, cublasLtHandle_t handle) {
  const GemmShape& s = args.shape;
  const int64_t ab = static_cast<int64_t>(type_size(args.ab_type)), cs = static_cast<int64_t>(type_size(args.c_type));
  const bool batched = s.batch > 1;
  Alignments align;
  align.a = alignment_of(args.a, s.lda * ab, batched ? s.batch_stride_a * ab : 0);
  align.b = alignment_of(args.b, s.ldb * ab, batched ? s.batch_stride_b * ab : 0);
  align.c = alignment_of(args.c, s.N * cs, batched ? s.M * s.N * cs : 0);
  if (epilogue != GemmEpilogue::none) align.bias = alignment_of(args.bias, 0, 0);
  if (epilogue == GemmEpilogue::gelu_bias) align.aux = alignment_of(args.aux, s.N * cs, batched ? s.M * s.N * cs : 0);

  using Key = std::array<int64_t, 20>;
  const Key key{args.device,
                static_cast<int64_t>(args.ab_type),
                static_cast<int64_t>(args.c_type),
                args.ab_type == GemmType::f32 && args.allow_tf32,
                s.batch,
                s.M,
                s.N,
                s.K,
                s.trans_a,
                s.trans_b,
                s.lda,
                s.ldb,
                batched ? s.batch_stride_a : 0,
                batched ? s.batch_stride_b : 0,
                static_cast<int64_t>(epilogue),
                align.a,
                align.b,
                align.c,
                align.bias,
                align.aux};
  static std::mutex mutex;
  static auto* cache = new std::map<Key, std::shared_ptr<Plan>>;  // never destroyed, as the handles
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache->find(key);
  if (it != cache->end()) return it->second;
  if (cache->size() >= 1024) cache->clear();  // bound memory for shape-varying workloads; users keep theirs alive
  auto plan = make_plan(args, epilogue, align, handle);
  cache->emplace(key, plan);
  return plan;
}

void run_plan(Plan& plan, const CudaGemmArgs& args, GemmEpilogue epilogue, cublasLtHandle_t handle) {
  std::lock_guard<std::mutex> lock(plan.mutex);
  if (epilogue != GemmEpilogue::none) set_desc(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, args.bias, args);
  if (epilogue == GemmEpilogue::gelu_bias) set_desc(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, args.aux, args);
  void* workspace = plan.workspace > 0 ? workspace_for(args.device) : nullptr;
  const float one_f = 1.f, zero_f = 0.f;
  const double one_d = 1.0, zero_d = 0.0;
  const bool f64 = args.ab_type == GemmType::f64;
  const void* alpha = f64 ? static_cast<const void*>(&one_d) : static_cast<const void*>(&one_f);
  const void* beta = f64 ? static_cast<const void*>(&zero_d) : static_cast<const void*>(&zero_f);
  // beta = 0: C is not read, so C and D are the same buffer.
  check_cublas(cublasLtMatmul(handle, plan.desc, alpha, args.b, plan.layout_a, args.a, plan.layout_b, beta, args.c,
                              plan.layout_c, args.c, plan.layout_c, &plan.algo, workspace,
                              workspace ? kWorkspaceBytes : 0, cuda::stream()),
               "cublasLtMatmul", args);
}

// --- the kernels for what cuBLASLt does not do ---

template <class V>
__device__ __forceinline__ V gelu_tanh(V x) {
  const V k = V(0.7978845608028654);  // sqrt(2 / pi)
  return V(0.5) * x * (V(1) + tanh(k * (x + V(0.044715) * x * x * x)));
}

// C = op(A) op(B), one thread per element of C, accumulated in float (double for f64) in k order.
template <class TA, class TC>
__global__ void gemm_loop_kernel(GemmShape s, const TA* a, const TA* b, TC* c) {
  using Acc = cuda::acc_t<TA>;
  const int64_t total = s.batch * s.M * s.N;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total; idx += int64_t(blockDim.x) * gridDim.x) {
    const int64_t j = idx % s.N, i = (idx / s.N) % s.M, batch = idx / (s.M * s.N);
    const TA* ab = a + batch * s.batch_stride_a;
    const TA* bb = b + batch * s.batch_stride_b;
    Acc acc = 0;
    for (int64_t k = 0; k < s.K; ++k) {
      const TA* pa = s.trans_a ? ab + k * s.lda + i : ab + i * s.lda + k;
      const TA* pb = s.trans_b ? bb + j * s.ldb + k : bb + k * s.ldb + j;
      acc += static_cast<Acc>(cuda::load(pa)) * static_cast<Acc>(cuda::load(pb));
    }
    cuda::store(c + idx, acc);
  }
}

// C[., j] += bias[j]; for gelu: aux = C + bias, C = gelu_tanh(aux). C contiguous, rows of N.
template <class TC>
__global__ void bias_epilogue_kernel(TC* c, const TC* bias, TC* aux, int64_t total, int64_t N, bool gelu) {
  using Acc = cuda::acc_t<TC>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x) {
    Acc v = cuda::load(c + i) + cuda::load(bias + i % N);
    if (gelu) {
      cuda::store(aux + i, v);
      v = gelu_tanh(v);
    }
    cuda::store(c + i, v);
  }
}

template <class TA, class TC>
void launch_loop(const CudaGemmArgs& args) {
  const GemmShape& s = args.shape;
  const int64_t total = s.batch * s.M * s.N;
  gemm_loop_kernel<TA, TC><<<cuda::blocks_for(total), cuda::kThreads, 0, cuda::stream()>>>(
      s, static_cast<const TA*>(args.a), static_cast<const TA*>(args.b), static_cast<TC*>(args.c));
  GRAFT_CUDA_CHECK_LAUNCH(gemm_loop_kernel);
}

void gemm_loop(const CudaGemmArgs& args) {
  switch (args.ab_type) {
    case GemmType::f32: return launch_loop<float, float>(args);
    case GemmType::f64: return launch_loop<double, double>(args);
    case GemmType::bf16:
      return args.c_type == GemmType::f32 ? launch_loop<__nv_bfloat16, float>(args)
                                          : launch_loop<__nv_bfloat16, __nv_bfloat16>(args);
    case GemmType::f16:
      return args.c_type == GemmType::f32 ? launch_loop<__half, float>(args) : launch_loop<__half, __half>(args);
  }
}

template <class TC>
void launch_epilogue(const CudaGemmArgs& args) {
  const GemmShape& s = args.shape;
  const int64_t total = s.batch * s.M * s.N;
  bias_epilogue_kernel<TC><<<cuda::blocks_for(total), cuda::kThreads, 0, cuda::stream()>>>(
      static_cast<TC*>(args.c), static_cast<const TC*>(args.bias), static_cast<TC*>(args.aux), total, s.N,
      args.epilogue == GemmEpilogue::gelu_bias);
  GRAFT_CUDA_CHECK_LAUNCH(bias_epilogue_kernel);
}

void apply_epilogue(const CudaGemmArgs& args) {
  switch (args.c_type) {
    case GemmType::f32: return launch_epilogue<float>(args);
    case GemmType::f64: return launch_epilogue<double>(args);
    case GemmType::bf16: return launch_epilogue<__nv_bfloat16>(args);
    case GemmType::f16: return launch_epilogue<__half>(args);
  }
}

}  // namespace

void gemm_cuda(const CudaGemmArgs& args) {
  validate(args);
  const GemmShape& s = args.shape;
  if (s.batch == 0 || s.M == 0 || s.N == 0) return;
  cuda::DeviceGuard guard(args.device);
  if (s.K > 0) {  // cuBLASLt rejects k = 0; the loop kernel writes the zeros
    cublasLtHandle_t handle = handle_for(args);
    // GELU's aux needs ld and batch stride multiples of 8 (cuBLASLt's rule); else the kernel does it.
    const bool fusable = args.epilogue != GemmEpilogue::gelu_bias || (s.N % 8 == 0 && (s.batch == 1 || s.M * s.N % 8 == 0));
    if (fusable) {
      auto plan = plan_for(args, args.epilogue, handle);
      if (plan->found) return run_plan(*plan, args, args.epilogue, handle);
    }
    if (args.epilogue != GemmEpilogue::none) {
      auto plain = plan_for(args, GemmEpilogue::none, handle);
      if (plain->found) {
        run_plan(*plain, args, GemmEpilogue::none, handle);
        return apply_epilogue(args);
      }
    }
  }
  gemm_loop(args);
  if (args.epilogue != GemmEpilogue::none) apply_epilogue(args);
}

}  // namespace graft::kernels
