// Flash-style attention on CUDA: a first, plainly correct version (shared memory and FMA, no
// tensor cores; a later issue tunes it for Hopper). Shape letters and the contract as in attention.h.
//
// Every kernel works on tiles of kTile rows (queries or keys) with kLanes threads per row: thread
// (row, lane) handles the row's keys/queries lane, lane + 4, ... in the score loops and its output
// columns lane, lane + 4, ... in the accumulation loops, so each thread keeps at most
// kMaxHeadDim / kLanes accumulators per output in registers. The 4 lanes of a row are adjacent in
// a warp and combine their partial maxima and sums by an xor butterfly, which gives every lane
// bit-identical results (float + and max are commutative).
//
//   forward, one block per (head, query tile), looping over key tiles:
//     S = scale q k^T (log2 units), online softmax (running max m, sum l), O = alpha O + Pd V;
//     out = O / l, lse = (m + log2 l) ln 2 (+inf and out = 0 for a row with every key masked).
//   backward (recompute): delta_i = rowsum(dO o O); then
//     one block per (head, key tile), looping over query tiles: dV += Pd^T dO, dK += dS^T Q;
//     one block per (head, query tile), looping over key tiles:  dQ += dS K;
//   with P = 2^(S - lse), Pd = P with dropout, dS = scale (Pd o dP - P o delta), dP = dO V^T.
// Each output element is summed by one thread in a fixed order: no atomics, bit-identical runs.
// Dropout regenerates the CPU's mask: element (b, h, i, j) is kept when word ((b H + h) Sq + i) Sk + j
// of the Philox stream (philox.h), shifted to its 24 high bits, is below ceil((1 - p) 2^24).
#include <cmath>
#include <limits>
#include <string>

#include "kernels/attention/attention.h"
#include "kernels/common/cuda.h"
#include "kernels/random/philox.h"

namespace graft::kernels {

namespace {

constexpr int kTile = 64;                            // queries or keys per tile
constexpr int kLanes = 4;                            // threads per tile row
constexpr int kBlockThreads = kTile * kLanes;        // 256
constexpr int kPerLane = kTile / kLanes;             // score-loop entries per thread (16)
constexpr int kMaxHeadDim = static_cast<int>(kAttentionCudaMaxHeadDim);
constexpr int kMaxCols = kMaxHeadDim / kLanes;       // accumulator columns per thread (32)
constexpr float kLog2e = 1.44269504088896341f, kLn2 = 0.693147180559945309f;

// What the kernels need of AttentionParams, converted once on the host.
struct DeviceParams {
  float qscale = 0;    // scale * log2(e): scores in log2 units, so the exponential is exp2f
  float scale = 0;
  bool causal = false;
  const bool* key_mask = nullptr;  // [B, Sk] or null
  bool dropout = false;
  uint64_t seed = 0, counter = 0;
  uint32_t keep_threshold = 0;  // kept when (word >> 8) < this (philox_keep_threshold in philox_x8.h)
  float keep_factor = 1;        // 1 / (1 - p)
};

DeviceParams device_params(const AttentionParams& pr) {
  DeviceParams dp;
  dp.qscale = static_cast<float>(pr.scale) * kLog2e;
  dp.scale = static_cast<float>(pr.scale);
  dp.causal = pr.causal;
  dp.key_mask = pr.key_padding_mask;
  dp.dropout = pr.dropout_p > 0;
  dp.seed = pr.dropout_seed;
  dp.counter = pr.dropout_counter;
  // philox_uniform(...) < 1 - p  <=>  (word >> 8) < ceil((1 - p) 2^24): the CPU kernel's test.
  dp.keep_threshold = static_cast<uint32_t>(std::ceil((1.0 - pr.dropout_p) * 16777216.0));
  dp.keep_factor = static_cast<float>(1.0 / (1.0 - pr.dropout_p));
  return dp;
}

// The dropout multiplier (0 or 1/(1-p)) of flat element `flat` of [B, H, Sq, Sk].
__device__ float dropout_factor(const DeviceParams& p, int64_t flat) {
  const Philox4x32 r = philox4x32_10(p.counter + static_cast<uint64_t>(flat / 4), p.seed);
  return (r.v[flat % 4] >> 8) < p.keep_threshold ? p.keep_factor : 0.0f;
}

__device__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Whether key j of batch b is visible to query i.
__device__ bool visible(const DeviceParams& p, int64_t b, int64_t Sk, int64_t i, int64_t j) {
  if (p.key_mask && p.key_mask[b * Sk + j]) return false;
  return !(p.causal && j > i);
}

// Max and sum over the kLanes adjacent lanes of a tile row; every lane gets the same bits.
__device__ float row_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ float row_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// sum_c a[c] b[c] in order c = 0, 1, ... (symmetric in a and b, so both backward kernels get
// the same bits for the same score).
__device__ float dot(const float* a, const float* b, int n) {
  float acc = 0;
  for (int c = 0; c < n; ++c) acc = fmaf(a[c], b[c], acc);
  return acc;
}

// Copies `rows` rows of `dim` elements (row stride src_ld) into a kTile x dim tile of floats with
// row stride dim + 1 (the pad spreads a column's rows over the banks); rows past `rows` are zero.
template <class T>
__device__ void load_tile(float* dst, const T* src, int64_t src_ld, int rows, int dim) {
  const int ld = dim + 1;
  for (int e = threadIdx.x; e < kTile * dim; e += blockDim.x) {
    const int r = e / dim, c = e % dim;
    dst[r * ld + c] = r < rows ? cuda::load(src + r * src_ld + c) : 0.0f;
  }
}

// dS of one visible (query, key) pair from its scaled score s2 (log2 units), the row's lse2
// (log2 units), dp = dO_i . v_j, the row's delta and the flat index; pd_out gets P with dropout.
__device__ float score_grad(const DeviceParams& p, float s2, float lse2, float dp, float delta, int64_t flat,
                            float* pd_out) {
  const float prob = exp2f(s2 - lse2);  // lse2 = +inf (row fully masked) gives 0
  const float pd = p.dropout ? prob * dropout_factor(p, flat) : prob;
  *pd_out = pd;
  return fmaf(-prob, delta, pd * dp) * p.scale;
}

// ---------------------------------------------------------------------------------------------
// Forward: block (head, query tile). Shared: Q tile [kTile x D], K tile [kTile x D], V tile
// [kTile x Dv], Pd tile [kTile queries x kTile keys], rows padded by one float.
template <class T>
__global__ void __launch_bounds__(kBlockThreads)
    attention_forward_kernel(AttentionShape sh, AttentionLayout ly, DeviceParams p, const T* q, const T* k,
                             const T* v, T* out, float* lse) {
  extern __shared__ float smem[];
  const int D = static_cast<int>(sh.D), Dv = static_cast<int>(sh.Dv);
  const int ldq = D + 1, ldv = Dv + 1, ldp = kTile + 1;
  float* qs = smem;
  float* ks = qs + kTile * ldq;
  float* vs = ks + kTile * ldq;
  float* ps = vs + kTile * ldv;

  const int64_t head = blockIdx.x, b = head / sh.H, h = head % sh.H;
  const int64_t i0 = static_cast<int64_t>(blockIdx.y) * kTile;
  const int nq = static_cast<int>(min64(kTile, sh.Sq - i0));
  const int row = threadIdx.x / kLanes, lane = threadIdx.x % kLanes;
  const int64_t i = i0 + row;  // this thread's query; rows past Sq compute on zeros and store nothing
  const T* kh = k + b * ly.k.batch + h * ly.k.head;
  const T* vh = v + b * ly.v.batch + h * ly.v.head;
  load_tile(qs, q + b * ly.q.batch + h * ly.q.head + i0 * ly.q.row, ly.q.row, nq, D);

  float o[kMaxCols];
#pragma unroll
  for (int cc = 0; cc < kMaxCols; ++cc) o[cc] = 0.0f;
  float m = -INFINITY, l = 0.0f;  // running max (log2 units) and sum of 2^(s - m)
  const int64_t key_end = p.causal ? min64(sh.Sk, i0 + nq) : sh.Sk;
  for (int64_t j0 = 0; j0 < key_end; j0 += kTile) {
    const int nk = static_cast<int>(min64(kTile, key_end - j0));
    __syncthreads();  // the previous tile's K, V, Pd are consumed
    load_tile(ks, kh + j0 * ly.k.row, ly.k.row, nk, D);
    load_tile(vs, vh + j0 * ly.v.row, ly.v.row, nk, Dv);
    __syncthreads();

    float s[kPerLane];
    float tile_max = -INFINITY;
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) {
      const int jj = lane + kLanes * t;
      s[t] = -INFINITY;
      if (jj < nk && visible(p, b, sh.Sk, i, j0 + jj)) s[t] = dot(qs + row * ldq, ks + jj * ldq, D) * p.qscale;
      tile_max = fmaxf(tile_max, s[t]);
    }
    const float m_new = fmaxf(m, row_max(tile_max));
    // No visible key yet: subtract 0 instead of -inf so that nothing becomes NaN (all p are 0).
    const float m_use = m_new == -INFINITY ? 0.0f : m_new;
    const float alpha = exp2f(m - m_use);
    float tile_sum = 0.0f;
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) {
      const int jj = lane + kLanes * t;
      float prob = exp2f(s[t] - m_use);
      tile_sum += prob;
      // lse is of the probabilities before dropout: l takes prob, O takes the dropped one.
      if (p.dropout && prob != 0.0f) prob *= dropout_factor(p, (head * sh.Sq + i) * sh.Sk + j0 + jj);
      ps[row * ldp + jj] = prob;
    }
    l = l * alpha + row_sum(tile_sum);
    m = m_new;
    __syncthreads();  // the row's Pd entries, written by its 4 lanes, are visible to all of them

#pragma unroll
    for (int cc = 0; cc < kMaxCols; ++cc) {
      const int c = lane + kLanes * cc;
      if (c < Dv) {
        float acc = 0.0f;
        for (int jj = 0; jj < nk; ++jj) acc = fmaf(ps[row * ldp + jj], vs[jj * ldv + c], acc);
        o[cc] = o[cc] * alpha + acc;
      }
    }
  }

  if (i < sh.Sq) {
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    T* dst = out + b * ly.out.batch + h * ly.out.head + i * ly.out.row;
#pragma unroll
    for (int cc = 0; cc < kMaxCols; ++cc) {
      const int c = lane + kLanes * cc;
      if (c < Dv) cuda::store(dst + c, o[cc] * inv);
    }
    if (lane == 0) lse[head * sh.Sq + i] = l > 0.0f ? (m + log2f(l)) * kLn2 : INFINITY;
  }
}

// ---------------------------------------------------------------------------------------------
// Backward, step 1: delta_i = sum_c dO[i, c] O[i, c] over all B H Sq rows (contiguous, f32).
template <class T>
__global__ void attention_delta_kernel(int64_t rows, int64_t Dv, const T* out, const T* dout, float* delta) {
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < rows;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float acc = 0.0f;
    for (int64_t c = 0; c < Dv; ++c) acc = fmaf(cuda::load(dout + r * Dv + c), cuda::load(out + r * Dv + c), acc);
    delta[r] = acc;
  }
}

// Backward, step 2: block (head, key tile) owns its keys' dK and dV. Shared: K, V tiles of its
// keys, then per query tile Q, dO, lse2, delta and Pd, dS [kTile keys x kTile queries].
template <class T>
__global__ void __launch_bounds__(kBlockThreads)
    attention_dkdv_kernel(AttentionShape sh, DeviceParams p, const T* q, const T* k, const T* v, const float* lse,
                          const float* delta, const T* dout, T* dk, T* dv) {
  extern __shared__ float smem[];
  const int D = static_cast<int>(sh.D), Dv = static_cast<int>(sh.Dv);
  const int ldq = D + 1, ldv = Dv + 1, ldp = kTile + 1;
  float* ks = smem;
  float* vs = ks + kTile * ldq;
  float* qs = vs + kTile * ldv;
  float* dos = qs + kTile * ldq;
  float* pds = dos + kTile * ldv;
  float* dss = pds + kTile * ldp;
  float* lse2s = dss + kTile * ldp;
  float* deltas = lse2s + kTile;

  const int64_t head = blockIdx.x, b = head / sh.H, Sq = sh.Sq, Sk = sh.Sk;
  const int64_t j0 = static_cast<int64_t>(blockIdx.y) * kTile;
  const int nk = static_cast<int>(min64(kTile, Sk - j0));
  const int row = threadIdx.x / kLanes, lane = threadIdx.x % kLanes;
  const int64_t j = j0 + row;  // this thread's key; rows past Sk compute nothing and store nothing
  const bool key_live = j < Sk;
  load_tile(ks, k + (head * Sk + j0) * D, D, nk, D);
  load_tile(vs, v + (head * Sk + j0) * Dv, Dv, nk, Dv);
  const T* qh = q + head * Sq * D;
  const T* doh = dout + head * Sq * Dv;

  float dk_acc[kMaxCols], dv_acc[kMaxCols];
#pragma unroll
  for (int cc = 0; cc < kMaxCols; ++cc) dk_acc[cc] = dv_acc[cc] = 0.0f;
  // Under causal, queries before j0 see none of these keys.
  for (int64_t i0 = p.causal ? j0 / kTile * kTile : 0; i0 < Sq; i0 += kTile) {
    const int nq = static_cast<int>(min64(kTile, Sq - i0));
    __syncthreads();  // the previous query tile is consumed (and K, V are loaded)
    load_tile(qs, qh + i0 * D, D, nq, D);
    load_tile(dos, doh + i0 * Dv, Dv, nq, Dv);
    if (threadIdx.x < kTile) {
      const int r = threadIdx.x;
      lse2s[r] = r < nq ? lse[head * Sq + i0 + r] * kLog2e : INFINITY;
      deltas[r] = r < nq ? delta[head * Sq + i0 + r] : 0.0f;
    }
    __syncthreads();

#pragma unroll 4
    for (int t = 0; t < kPerLane; ++t) {
      const int ii = lane + kLanes * t;
      const int64_t i = i0 + ii;
      float pd = 0.0f, ds = 0.0f;
      if (key_live && ii < nq && visible(p, b, Sk, i, j)) {
        const float s2 = dot(ks + row * ldq, qs + ii * ldq, D) * p.qscale;
        const float dp = dot(vs + row * ldv, dos + ii * ldv, Dv);
        ds = score_grad(p, s2, lse2s[ii], dp, deltas[ii], (head * Sq + i) * Sk + j, &pd);
      }
      pds[row * ldp + ii] = pd;
      dss[row * ldp + ii] = ds;
    }
    __syncthreads();

    for (int ii = 0; ii < nq; ++ii) {
      const float pd = pds[row * ldp + ii], ds = dss[row * ldp + ii];
#pragma unroll
      for (int cc = 0; cc < kMaxCols; ++cc) {
        const int c = lane + kLanes * cc;
        if (c < Dv) dv_acc[cc] = fmaf(pd, dos[ii * ldv + c], dv_acc[cc]);
        if (c < D) dk_acc[cc] = fmaf(ds, qs[ii * ldq + c], dk_acc[cc]);
      }
    }
  }

  if (key_live) {
#pragma unroll
    for (int cc = 0; cc < kMaxCols; ++cc) {
      const int c = lane + kLanes * cc;
      if (c < D) cuda::store(dk + (head * Sk + j) * D + c, dk_acc[cc]);
      if (c < Dv) cuda::store(dv + (head * Sk + j) * Dv + c, dv_acc[cc]);
    }
  }
}

// Backward, step 3: block (head, query tile) owns its queries' dQ. Shared: Q, dO tiles of its
// queries, then per key tile K, V and dS [kTile queries x kTile keys].
template <class T>
__global__ void __launch_bounds__(kBlockThreads)
    attention_dq_kernel(AttentionShape sh, DeviceParams p, const T* q, const T* k, const T* v, const float* lse,
                        const float* delta, const T* dout, T* dq) {
  extern __shared__ float smem[];
  const int D = static_cast<int>(sh.D), Dv = static_cast<int>(sh.Dv);
  const int ldq = D + 1, ldv = Dv + 1, ldp = kTile + 1;
  float* qs = smem;
  float* dos = qs + kTile * ldq;
  float* ks = dos + kTile * ldv;
  float* vs = ks + kTile * ldq;
  float* dss = vs + kTile * ldv;

  const int64_t head = blockIdx.x, b = head / sh.H, Sq = sh.Sq, Sk = sh.Sk;
  const int64_t i0 = static_cast<int64_t>(blockIdx.y) * kTile;
  const int nq = static_cast<int>(min64(kTile, Sq - i0));
  const int row = threadIdx.x / kLanes, lane = threadIdx.x % kLanes;
  const int64_t i = i0 + row;  // this thread's query; rows past Sq compute nothing and store nothing
  const bool query_live = i < Sq;
  load_tile(qs, q + (head * Sq + i0) * D, D, nq, D);
  load_tile(dos, dout + (head * Sq + i0) * Dv, Dv, nq, Dv);
  const float lse2 = query_live ? lse[head * Sq + i] * kLog2e : INFINITY;
  const float row_delta = query_live ? delta[head * Sq + i] : 0.0f;
  const T* kh = k + head * Sk * D;
  const T* vh = v + head * Sk * Dv;

  float dq_acc[kMaxCols];
#pragma unroll
  for (int cc = 0; cc < kMaxCols; ++cc) dq_acc[cc] = 0.0f;
  const int64_t key_end = p.causal ? min64(Sk, i0 + nq) : Sk;
  for (int64_t j0 = 0; j0 < key_end; j0 += kTile) {
    const int nk = static_cast<int>(min64(kTile, key_end - j0));
    __syncthreads();  // the previous key tile is consumed (and Q, dO are loaded)
    load_tile(ks, kh + j0 * D, D, nk, D);
    load_tile(vs, vh + j0 * Dv, Dv, nk, Dv);
    __syncthreads();

#pragma unroll 4
    for (int t = 0; t < kPerLane; ++t) {
      const int jj = lane + kLanes * t;
      const int64_t j = j0 + jj;
      float pd = 0.0f, ds = 0.0f;
      if (query_live && jj < nk && visible(p, b, Sk, i, j)) {
        const float s2 = dot(qs + row * ldq, ks + jj * ldq, D) * p.qscale;
        const float dp = dot(dos + row * ldv, vs + jj * ldv, Dv);
        ds = score_grad(p, s2, lse2, dp, row_delta, (head * Sq + i) * Sk + j, &pd);
      }
      dss[row * ldp + jj] = ds;
    }
    __syncthreads();

    for (int jj = 0; jj < nk; ++jj) {
      const float ds = dss[row * ldp + jj];
#pragma unroll
      for (int cc = 0; cc < kMaxCols; ++cc) {
        const int c = lane + kLanes * cc;
        if (c < D) dq_acc[cc] = fmaf(ds, ks[jj * ldq + c], dq_acc[cc]);
      }
    }
  }

  if (query_live) {
#pragma unroll
    for (int cc = 0; cc < kMaxCols; ++cc) {
      const int c = lane + kLanes * cc;
      if (c < D) cuda::store(dq + (head * Sq + i) * D + c, dq_acc[cc]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Host side.

std::string shape_text(const AttentionShape& sh) {
  return "B " + std::to_string(sh.B) + ", H " + std::to_string(sh.H) + ", Sq " + std::to_string(sh.Sq) + ", Sk " +
         std::to_string(sh.Sk) + ", D " + std::to_string(sh.D) + ", Dv " + std::to_string(sh.Dv);
}

void check_shape(const char* op, const AttentionShape& sh) {
  if (sh.D > kMaxHeadDim || sh.Dv > kMaxHeadDim)
    throw NotImplementedError(std::string(op) + ": the CUDA kernel takes head dims D, Dv up to " +
                              std::to_string(kMaxHeadDim) + ", got " + shape_text(sh) +
                              "; use AttentionImplementation::reference for larger ones");
  const int64_t max_tiles = 65535;  // gridDim.y
  if ((sh.Sq + kTile - 1) / kTile > max_tiles || (sh.Sk + kTile - 1) / kTile > max_tiles)
    throw NotImplementedError(std::string(op) + ": the CUDA kernel takes sequences up to " +
                              std::to_string(max_tiles * kTile) + " long, got " + shape_text(sh));
  if (sh.B * sh.H > 2147483647LL)
    throw NotImplementedError(std::string(op) + ": the CUDA kernel takes at most 2^31 - 1 heads B H, got " +
                              shape_text(sh));
}

// Allows `kernel` its dynamic shared memory (above the default 48 KiB needs an opt-in).
template <class Kernel>
void allow_shared_memory(Kernel kernel, size_t bytes, int device, const char* op, const AttentionShape& sh) {
  int limit = 0;
  GRAFT_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  if (bytes > static_cast<size_t>(limit))
    throw NotImplementedError(std::string(op) + ": the CUDA kernel needs " + std::to_string(bytes) +
                              " bytes of shared memory per block and the device allows " + std::to_string(limit) +
                              " (" + shape_text(sh) + ")");
  GRAFT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

size_t tile_floats(int64_t dim) { return static_cast<size_t>(kTile) * static_cast<size_t>(dim + 1); }

// A stream-ordered f32 scratch buffer (the same pool the tensors use), freed on every exit.

}  // namespace

template <class S>
void attention_cuda_forward(const AttentionShape& sh, const AttentionLayout& ly, const AttentionParams& pr, const S* q,
                            const S* k, const S* v, S* out, float* lse, int device) {
  using T = cuda::device_t<S>;
  check_shape("attention_cuda_forward", sh);
  if (sh.B * sh.H == 0 || sh.Sq == 0) return;
  cuda::DeviceGuard guard(device);
  const size_t bytes = (2 * tile_floats(sh.D) + tile_floats(sh.Dv) + tile_floats(kTile)) * sizeof(float);
  allow_shared_memory(attention_forward_kernel<T>, bytes, device, "attention_cuda_forward", sh);
  const dim3 grid(static_cast<unsigned>(sh.B * sh.H), static_cast<unsigned>((sh.Sq + kTile - 1) / kTile));
  attention_forward_kernel<T><<<grid, kBlockThreads, bytes, cuda::stream()>>>(
      sh, ly, device_params(pr), reinterpret_cast<const T*>(q), reinterpret_cast<const T*>(k),
      reinterpret_cast<const T*>(v), reinterpret_cast<T*>(out), lse);
  GRAFT_CUDA_CHECK_LAUNCH(attention_forward_kernel);
}

template <class S>
void attention_cuda_backward(const AttentionShape& sh, const AttentionParams& pr, const S* q, const S* k, const S* v,
                             const S* out, const float* lse, const S* dout, S* dq, S* dk, S* dv, int device) {
  using T = cuda::device_t<S>;
  check_shape("attention_cuda_backward", sh);
  if (sh.B * sh.H == 0) return;
  cuda::DeviceGuard guard(device);
  const DeviceParams dp = device_params(pr);
  const dim3 q_grid(static_cast<unsigned>(sh.B * sh.H), static_cast<unsigned>((sh.Sq + kTile - 1) / kTile));
  const dim3 k_grid(static_cast<unsigned>(sh.B * sh.H), static_cast<unsigned>((sh.Sk + kTile - 1) / kTile));
  const T *qd = reinterpret_cast<const T*>(q), *kd = reinterpret_cast<const T*>(k), *vd = reinterpret_cast<const T*>(v),
          *od = reinterpret_cast<const T*>(out), *dod = reinterpret_cast<const T*>(dout);

  const int64_t rows = sh.B * sh.H * sh.Sq;
  cuda::Scratch delta(static_cast<size_t>(rows) * sizeof(float));
  if (rows > 0) {
    attention_delta_kernel<T><<<cuda::blocks_for(rows), cuda::kThreads, 0, cuda::stream()>>>(rows, sh.Dv, od, dod,
                                                                                            delta.as<float>());
    GRAFT_CUDA_CHECK_LAUNCH(attention_delta_kernel);
  }

  if (sh.Sk > 0) {  // dK, dV; with no queries they are all zero, which the kernel writes too
    const size_t bytes =
        (2 * tile_floats(sh.D) + 2 * tile_floats(sh.Dv) + 2 * tile_floats(kTile) + 2 * kTile) * sizeof(float);
    allow_shared_memory(attention_dkdv_kernel<T>, bytes, device, "attention_cuda_backward", sh);
    attention_dkdv_kernel<T><<<k_grid, kBlockThreads, bytes, cuda::stream()>>>(
        sh, dp, qd, kd, vd, lse, delta.as<float>(), dod, reinterpret_cast<T*>(dk), reinterpret_cast<T*>(dv));
    GRAFT_CUDA_CHECK_LAUNCH(attention_dkdv_kernel);
  }

  if (sh.Sq > 0) {  // dQ; with no keys it is all zero, which the kernel writes too
    const size_t bytes = (2 * tile_floats(sh.D) + 2 * tile_floats(sh.Dv) + tile_floats(kTile)) * sizeof(float);
    allow_shared_memory(attention_dq_kernel<T>, bytes, device, "attention_cuda_backward", sh);
    attention_dq_kernel<T><<<q_grid, kBlockThreads, bytes, cuda::stream()>>>(sh, dp, qd, kd, vd, lse, delta.as<float>(), dod,
                                                                            reinterpret_cast<T*>(dq));
    GRAFT_CUDA_CHECK_LAUNCH(attention_dq_kernel);
  }
}

#define GRAFT_ATTENTION_CUDA_INSTANTIATE(S)                                                                        \
  template void attention_cuda_forward<S>(const AttentionShape&, const AttentionLayout&, const AttentionParams&,   \
                                          const S*, const S*, const S*, S*, float*, int);                          \
  template void attention_cuda_backward<S>(const AttentionShape&, const AttentionParams&, const S*, const S*,     \
                                           const S*, const S*, const float*, const S*, S*, S*, S*, int);
GRAFT_ATTENTION_CUDA_INSTANTIATE(float)
GRAFT_ATTENTION_CUDA_INSTANTIATE(graft::bf16)
GRAFT_ATTENTION_CUDA_INSTANTIATE(graft::f16)
#undef GRAFT_ATTENTION_CUDA_INSTANTIATE

}  // namespace graft::kernels
