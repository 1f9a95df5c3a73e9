// f32 GEMM on oneDNN's matmul primitive (oneDNN 2.x API). Creating a primitive costs far more
// than a small GEMM, so primitives are cached by everything that defines them.
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include <oneapi/dnnl/dnnl.hpp>

#include "kernels/gemm/gemm.h"

namespace graft::kernels {

namespace {

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, bool, bool, int64_t, int64_t, int64_t, int64_t, bool>;

struct Engine {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::mutex mutex;
  std::map<Key, dnnl::matmul> cache;
};

Engine& engine() {
  static Engine e;
  return e;
}

dnnl::memory::desc operand_desc(int64_t batch, int64_t rows, int64_t cols, bool trans, int64_t ld,
                                int64_t batch_stride) {
  // A batch stride of 0 is oneDNN's broadcast: a batch dim of 1.
  const int64_t b = batch_stride == 0 ? 1 : batch;
  dnnl::memory::dims dims{b, rows, cols};
  dnnl::memory::dims strides = trans ? dnnl::memory::dims{batch_stride, 1, ld} : dnnl::memory::dims{batch_stride, ld, 1};
  if (b == 1) strides[0] = rows * cols;
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, strides);
}

// C = op(A) op(B) (+ bias over the rows when given: oneDNN adds it as C is written).
void run_matmul(const GemmShape& s, const float* a, const float* b, const float* bias, float* c) {
  Engine& e = engine();
  auto a_md = operand_desc(s.batch, s.M, s.K, s.trans_a, s.lda, s.batch_stride_a);
  auto b_md = operand_desc(s.batch, s.K, s.N, s.trans_b, s.ldb, s.batch_stride_b);
  dnnl::memory::desc c_md({s.batch, s.M, s.N}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::abc);
  dnnl::memory::desc bias_md({1, 1, s.N}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::abc);
  const Key key{s.batch, s.M, s.N, s.K, s.trans_a, s.trans_b, s.lda, s.ldb, s.batch_stride_a, s.batch_stride_b,
                bias != nullptr};
  dnnl::matmul prim;
  {
    std::lock_guard<std::mutex> lock(e.mutex);
    auto it = e.cache.find(key);
    if (it == e.cache.end()) {
      dnnl::matmul::desc desc = bias ? dnnl::matmul::desc(a_md, b_md, bias_md, c_md) : dnnl::matmul::desc(a_md, b_md, c_md);
      dnnl::matmul::primitive_desc pd(desc, e.engine);
      if (e.cache.size() > 4096) e.cache.clear();  // bound memory for shape-varying workloads
      it = e.cache.emplace(key, dnnl::matmul(pd)).first;
    }
    prim = it->second;
  }
  dnnl::memory a_mem(a_md, e.engine, const_cast<float*>(a));
  dnnl::memory b_mem(b_md, e.engine, const_cast<float*>(b));
  dnnl::memory c_mem(c_md, e.engine, c);
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}};
  if (bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(bias_md, e.engine, const_cast<float*>(bias)));
  dnnl::stream stream(e.engine);  // a stream per call: safe when several threads run GEMMs
  prim.execute(stream, args);
  stream.wait();
}

}  // namespace

bool gemm_uses_onednn() { return true; }

void gemm_cpu(const GemmShape& s, const float* a, const float* b, float* c) {
  if (s.M == 0 || s.N == 0) return;
  if (s.K == 0) {
    for (int64_t i = 0; i < s.batch * s.M * s.N; ++i) c[i] = 0.f;
    return;
  }
  run_matmul(s, a, b, nullptr, c);
}

void gemm_bias_cpu(const GemmShape& s, const float* a, const float* b, const float* bias, float* c) {
  if (s.M == 0 || s.N == 0) return;
  if (s.K == 0) {
    for (int64_t i = 0; i < s.batch * s.M; ++i)
      for (int64_t j = 0; j < s.N; ++j) c[i * s.N + j] = bias[j];
    return;
  }
  run_matmul(s, a, b, bias, c);
}

}  // namespace graft::kernels
