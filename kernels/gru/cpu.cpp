// graft's own CPU GRU layer, f32, AVX2/FMA: the layer contract of gru.h (PyTorch's cell, gates r, z,
// n). Shape letters as in gru.h: T steps, N batch, I input, H hidden, D directions.
//
// Where the time goes, and what this kernel does about it:
// - Work that is not serial in time runs as large GEMMs (gemm_cpu, oneDNN's matmul where graft has
//   it): the input projection of every step and direction at once, Gx = x [W_ih0; W_ih1]^T + bias; in
//   backward the weight gradients over all steps (dW_ih = dGx^T x, dW_hh = dGh^T h_prev) and dx. dx is
//   skipped when the caller does not want it (a first layer whose input needs no gradient): oneDNN's
//   RNN primitive always computes it, a sixth of a one-layer training step's FLOPs.
// - The recurrence is serial: each step is an [N, H] x [H, 3H] product. One parallel region runs every
//   step of a direction; each thread owns a slice of hidden units and keeps W_hh's columns for them
//   packed (read in order, once per step), so a step is one pass over the packed weights plus the gate
//   math on the accumulators while they are still in registers, and one barrier. Backward:
//   thread-owned units compute their gate gradients, a barrier, then each thread owns columns of
//   dh_prev = dGh W_hh (+ dh z + the next step's dy), and a barrier.
//
// Register tiles: 4 batch rows x 24 columns (12 accumulators). Forward, the 24 columns are the r, z
// and n rows of W_hh for 8 hidden units (one ymm per gate), so the gates of those units end in
// registers together; backward they are 24 consecutive columns of dh_prev.
//
// Rows of the step-major buffers (gx, the workspace, dGx, dGh) are packed like PyTorch's
// PackedSequence: time t's running sequences, rows offset[t] .. offset[t] + active[t] (without
// lengths offset[t] = t N, all N running), so that the GEMMs over all steps skip what has ended.
// Workspace (training), per direction d: gates [rows, 4H] (r, z, n, W_hn h + b_hn), then h_prev
// [rows, H] (the state the step started from), sized for T*N rows. Both indexed by time, not by
// step, so that backward's GEMMs pair dGh with h_prev row for row in either direction.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "kernels/gemm/gemm.h"
#include "kernels/gru/gru.h"
#include "tensor/error.h"
#include "tensor/storage.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "kernels/common/avx2.h"
#define GRAFT_GRU_AVX2 1
#endif

namespace graft::kernels {

#if GRAFT_GRU_AVX2

namespace {

constexpr int kMR = 4;  // batch rows per register tile
constexpr int kU = 8;   // forward: hidden units per tile (x 3 gates = 24 columns)
constexpr int kW = 24;  // backward: dh_prev columns per tile

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Uninitialised float scratch, fully written before it is read. It comes from graft's CPU block
// cache (tensor/storage.cpp): a training loop asks for the same sizes every step, and fresh
// multi-megabyte buffers cost a page fault per 4 KiB on first touch (measured: about a tenth of a
// T=50 N=32 H=512 training step).
class Floats {
 public:
  Floats() = default;
  explicit Floats(int64_t n)
      : storage_(Storage::allocate(static_cast<std::size_t>(n) * sizeof(float), Device::cpu())) {}
  float* get() const { return storage_ ? static_cast<float*>(storage_->data()) : nullptr; }

 private:
  std::shared_ptr<Storage> storage_;
};

Floats floats(int64_t n) { return Floats(n); }

using avx2::lane_mask, avx2::load, avx2::sigmoid_ps, avx2::store, avx2::tanh_ps;

// c[i, 0:24] = A[MR rows (row stride lda), K] * panel[K, 24] for MR rows; c rows of 24 floats.
template <int MR>
inline void tile(int64_t K, const float* a, int64_t lda, const float* panel, float* c) {
  // Fully unrolled over rows so that GCC keeps the 12 accumulators in registers.
  __m256 acc[MR][3];
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
    acc[i][0] = acc[i][1] = acc[i][2] = _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < K; ++k) {
    const float* bk = panel + k * kW;
    __m256 b0 = _mm256_loadu_ps(bk), b1 = _mm256_loadu_ps(bk + 8), b2 = _mm256_loadu_ps(bk + 16);
    // Keep B in registers: otherwise GCC folds each load into all four rows' FMAs, and 16 loads per 12
    // FMAs make the loop load-bound (about 60% of peak instead of over 95%).
    __asm__("" : "+x"(b0), "+x"(b1), "+x"(b2));
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i * lda + k);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
      acc[i][2] = _mm256_fmadd_ps(ai, b2, acc[i][2]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
    _mm256_storeu_ps(c + i * kW, acc[i][0]);
    _mm256_storeu_ps(c + i * kW + 8, acc[i][1]);
    _mm256_storeu_ps(c + i * kW + 16, acc[i][2]);
  }
}

// c[m, 0:24] = A[N, K] (row stride lda) * panel[K, 24] for every row m.
void panel_product(int64_t N, int64_t K, const float* a, int64_t lda, const float* panel, float* c) {
  for (int64_t m0 = 0; m0 < N; m0 += kMR) {
    const float* am = a + m0 * lda;
    float* cm = c + m0 * kW;
    switch (std::min<int64_t>(kMR, N - m0)) {
      case 4:
        tile<4>(K, am, lda, panel, cm);
        break;
      case 3:
        tile<3>(K, am, lda, panel, cm);
        break;
      case 2:
        tile<2>(K, am, lda, panel, cm);
        break;
      default:
        tile<1>(K, am, lda, panel, cm);
        break;
    }
  }
}

// Forward panels: block b (units 8b .. 8b+8) is [H][24] with panel[k][g*8 + u] = W_hh[g*H + 8b + u][k]
// (zero for units past H).
Floats pack_forward(const float* w_hh, int64_t H) {
  const int64_t blocks = ceil_div(H, kU);
  auto p = floats(blocks * H * kW);
  for (int64_t b = 0; b < blocks; ++b) {
    float* panel = p.get() + b * H * kW;
    for (int64_t k = 0; k < H; ++k)
      for (int g = 0; g < 3; ++g)
        for (int u = 0; u < kU; ++u) {
          const int64_t j = b * kU + u;
          panel[k * kW + g * kU + u] = j < H ? w_hh[(g * H + j) * H + k] : 0.0f;
        }
  }
  return p;
}

// Backward panels: block c (columns 24c .. 24c+24 of H) is [3H][24] with panel[j][c'] = W_hh[j][24c +
// c'] (zero past H).
Floats pack_backward(const float* w_hh, int64_t H) {
  const int64_t blocks = ceil_div(H, kW);
  auto p = floats(blocks * 3 * H * kW);
  for (int64_t c = 0; c < blocks; ++c) {
    float* panel = p.get() + c * 3 * H * kW;
    for (int64_t j = 0; j < 3 * H; ++j)
      for (int64_t cc = 0; cc < kW; ++cc) {
        const int64_t col = c * kW + cc;
        panel[j * kW + cc] = col < H ? w_hh[j * H + col] : 0.0f;
      }
  }
  return p;
}

// The per-step barrier of a recurrence's parallel region. It spins (then yields, so that more
// threads than cores still progress) instead of taking OpenMP's barrier: under
// OMP_WAIT_POLICY=passive, or once GNU OpenMP's spin count runs out, that one puts the threads to
// sleep at every step, and waking them costs more than a small step (measured: N=1 inference 7x
// slower under passive waiting). Every thread of the region calls join() before the first wait:
// one of them sets the team size (`omp single`, whose implied barrier publishes it).
class StepBarrier {
 public:
  void join() {
#pragma omp single
    threads_ = omp_get_num_threads();
  }
  void wait() {
    const int generation = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads_) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.store(generation + 1, std::memory_order_release);
      return;
    }
    for (int spins = 0; generation_.load(std::memory_order_acquire) == generation; ++spins) {
      if (spins < kSpins)
        _mm_pause();
      else
        std::this_thread::yield();
    }
  }

 private:
  static constexpr int kSpins = 4096;
  int threads_ = 1;
  std::atomic<int> arrived_{0};
  std::atomic<int> generation_{0};
};

// The calling thread's contiguous share [begin, end) of `count` items in its parallel region.
struct Share {
  int64_t begin, end;
};
inline Share my_share(int64_t count) {
  const int64_t threads = omp_get_num_threads(), tid = omp_get_thread_num();
  return {count * tid / threads, count * (tid + 1) / threads};
}

// Per direction: the stacked input weights [D*3H, I] (a view of w_ih[0] when D = 1) and the bias
// folded into the input projection: r and z get b_i + b_h, n gets b_in (b_hn stays inside r * (.)).
struct Stacked {
  Floats w_storage;
  const float* w = nullptr;
  Floats bias;  // [D*3H]
};

Stacked stack_inputs(const GruLayerShape& s, const GruLayerWeights<float>& w) {
  const int64_t H = s.H, I = s.I, G = 3 * H;
  Stacked st;
  if (s.D == 1) {
    st.w = w.w_ih[0];
  } else {
    st.w_storage = floats(s.D * G * I);
    for (int64_t d = 0; d < s.D; ++d) std::memcpy(st.w_storage.get() + d * G * I, w.w_ih[d], sizeof(float) * G * I);
    st.w = st.w_storage.get();
  }
  st.bias = floats(s.D * G);
  for (int64_t d = 0; d < s.D; ++d)
    for (int64_t j = 0; j < G; ++j) {
      const float bi = w.b_ih[d] ? w.b_ih[d][j] : 0.0f, bh = w.b_hh[d] && j < 2 * H ? w.b_hh[d][j] : 0.0f;
      st.bias.get()[d * G + j] = bi + bh;
    }
  return st;
}

float* gates_at(void* ws, const GruLayerShape& s, int64_t d) {
  return static_cast<float*>(ws) + d * s.T * s.N * 5 * s.H;
}
float* hprev_at(void* ws, const GruLayerShape& s, int64_t d) { return gates_at(ws, s, d) + s.T * s.N * 4 * s.H; }

// The packed layout. active[t]: the sequences running at time t, with lengths (sorted longest
// first) the prefix n < active[t] exactly when t < lengths[n], without all N; offset[t]: their
// first row in the packed buffers; rows: all running (sequence, step) pairs.
struct Steps {
  std::vector<int64_t> active, offset;
  int64_t rows = 0;
  Steps(const GruLayerShape& s, const int64_t* lengths)
      : active(static_cast<size_t>(s.T), s.N), offset(static_cast<size_t>(s.T), 0) {
    for (int64_t t = 0; t < s.T; ++t) {
      if (lengths) {
        int64_t n = 0;
        while (n < s.N && lengths[n] > t) ++n;
        active[t] = n;
      }
      offset[t] = rows;
      rows += active[t];
    }
  }
  bool packed(const GruLayerShape& s) const { return rows != s.T * s.N; }
};

// The running rows of a [T, N, C] buffer, packed: time t's first active[t] rows, one after another.
Floats pack_rows(const float* in, int64_t C, const GruLayerShape& s, const Steps& steps) {
  Floats out = floats(steps.rows * C);
  for (int64_t t = 0; t < s.T; ++t)
    std::memcpy(out.get() + steps.offset[t] * C, in + t * s.N * C, sizeof(float) * steps.active[t] * C);
  return out;
}

// One direction's recurrence. gx [rows, D*3H] packed (this direction at column d*3H); with a
// workspace the gates and h_prev are recorded, without one h_prev lives in two ping-pong buffers.
// At time t only the running rows n < active[t] are computed; y is zero for the others. In the
// reverse direction a sequence starts at its last step, from h0.
void forward_direction(const GruLayerShape& s, int64_t d, const float* gx, const float* h0, const float* w_hh,
                       const float* b_hh, const Steps& steps, const int64_t* lengths, float* y, float* h_n,
                       void* workspace) {
  const int64_t T = s.T, N = s.N, H = s.H, D = s.D, G = 3 * H;
  const auto panels = pack_forward(w_hh, H);
  const int64_t blocks = ceil_div(H, kU);
  float* gates = workspace ? gates_at(workspace, s, d) : nullptr;
  float* hprev = workspace ? hprev_at(workspace, s, d) : nullptr;
  Floats pingpong;
  if (!workspace) pingpong = floats(2 * N * H);
  const bool reverse = d == 1;
  const std::vector<int64_t>& active = steps.active;
  // The state the step at position `step` (of this direction's order) reads, and where it writes.
  auto state_in = [&](int64_t step) -> float* {
    if (workspace) return hprev + steps.offset[reverse ? T - 1 - step : step] * H;
    return pingpong.get() + (step & 1) * N * H;
  };
  // Step 0 reads h0 (zeros when null: its GEMM is skipped).
  float* first = state_in(0);
  const int64_t first_rows = active[reverse ? T - 1 : 0];
  if (h0) std::memcpy(first, h0, sizeof(float) * first_rows * H);
  else std::memset(first, 0, sizeof(float) * first_rows * H);
  const __m256i none = _mm256_setzero_si256();
  const __m256 zero = _mm256_setzero_ps();
  StepBarrier barrier;
#pragma omp parallel
  {
    barrier.join();
    const Share units = my_share(blocks);
    std::vector<float> acc(static_cast<size_t>(N * kW));
    for (int64_t step = 0; step < T; ++step) {
      const int64_t t = reverse ? T - 1 - step : step;
      const int64_t rows = active[t];
      // Next step's rows: running on (all of them going forward; the reverse direction adds the
      // sequences that start at the next step, from h0).
      const int64_t next_rows = step + 1 < T ? active[reverse ? t - 1 : t + 1] : 0;
      const float* hp = state_in(step);
      float* hnext = step + 1 < T ? state_in(step + 1) : nullptr;
      const bool zero_state = step == 0 && !h0;
      for (int64_t b = units.begin; b < units.end; ++b) {
        const int64_t u0 = b * kU;
        const bool full = u0 + kU <= H;
        const __m256i mask = full ? none : lane_mask(H - u0);
        const __m256 bhn = b_hh ? load(b_hh + 2 * H + u0, full, mask) : zero;
        if (zero_state)
          std::fill(acc.begin(), acc.end(), 0.0f);
        else
          panel_product(rows, H, hp, H, panels.get() + b * H * kW, acc.data());
        for (int64_t m = 0; m < rows; ++m) {
          const float* am = acc.data() + m * kW;
          const float* g = gx + (steps.offset[t] + m) * D * G + d * G + u0;
          const __m256 r = sigmoid_ps(_mm256_add_ps(_mm256_loadu_ps(am), load(g, full, mask)));
          const __m256 z = sigmoid_ps(_mm256_add_ps(_mm256_loadu_ps(am + 8), load(g + H, full, mask)));
          const __m256 ghn = _mm256_add_ps(_mm256_loadu_ps(am + 16), bhn);
          const __m256 n = tanh_ps(_mm256_fmadd_ps(r, ghn, load(g + 2 * H, full, mask)));
          const __m256 h_old = load(hp + m * H + u0, full, mask);
          const __m256 h = _mm256_fmadd_ps(z, _mm256_sub_ps(h_old, n), n);  // (1 - z) n + z h
          store(y + (t * N + m) * D * H + d * H + u0, h, full, mask);
          if (m < next_rows) store(hnext + m * H + u0, h, full, mask);
          // A sequence's last step: its final state (forward at t = length - 1, reverse at t = 0).
          if (reverse ? t == 0 : t == (lengths ? lengths[m] : T) - 1) store(h_n + m * H + u0, h, full, mask);
          if (gates) {
            float* e = gates + (steps.offset[t] + m) * 4 * H + u0;
            store(e, r, full, mask);
            store(e + H, z, full, mask);
            store(e + 2 * H, n, full, mask);
            store(e + 3 * H, ghn, full, mask);
          }
        }
        for (int64_t m = rows; m < N; ++m) {
          store(y + (t * N + m) * D * H + d * H + u0, zero, full, mask);
          // Reverse only: a sequence that starts at the next step starts from h0.
          if (m < next_rows) store(hnext + m * H + u0, h0 ? load(h0 + m * H + u0, full, mask) : zero, full, mask);
        }
      }
      barrier.wait();
    }
  }
}

// One direction's backward recurrence: fills dgx (this direction's columns of [rows, D*3H]) and
// dgh [rows, 3H] (the gradients of the gate pre-activations, n's hh part multiplied by r), both
// packed, and dh0. A sequence's chain of state gradients starts at its last step with dh_n (plus
// that step's dy) and ends at its first step in dh0.
void backward_direction(const GruLayerShape& s, int64_t d, const float* w_hh, const void* workspace, const float* dy,
                        const float* dh_n, const Steps& steps, float* dgx, float* dgh, float* dh0) {
  const int64_t T = s.T, N = s.N, H = s.H, D = s.D, G = 3 * H;
  const auto panels = pack_backward(w_hh, H);
  const int64_t unit_blocks = ceil_div(H, kU), col_blocks = ceil_div(H, kW);
  const float* gates = gates_at(const_cast<void*>(workspace), s, d);
  const float* hprev = hprev_at(const_cast<void*>(workspace), s, d);
  const bool reverse = d == 1;
  const std::vector<int64_t>& active = steps.active;
  auto dh = floats(N * H), dhz = floats(N * H);
  auto dy_at = [&](int64_t t, int64_t m) { return dy + (t * N + m) * D * H + d * H; };
  // The first backward step (the last forward one): its running rows start with dh_n plus its dy.
  const int64_t t_first = reverse ? 0 : T - 1;
  for (int64_t m = 0; m < active[t_first]; ++m)
    for (int64_t j = 0; j < H; ++j) dh.get()[m * H + j] = dh_n[m * H + j] + dy_at(t_first, m)[j];
  const __m256i none = _mm256_setzero_si256();
  StepBarrier barrier;
#pragma omp parallel
  {
    barrier.join();
    const Share units = my_share(unit_blocks), cols = my_share(col_blocks);
    std::vector<float> acc(static_cast<size_t>(N * kW));
    const __m256 one = _mm256_set1_ps(1.0f);
    for (int64_t step = T - 1; step >= 0; --step) {
      const int64_t t = reverse ? T - 1 - step : step;
      const int64_t rows = active[t];
      // Gate gradients of this thread's units.
      const int64_t row0 = steps.offset[t];
      for (int64_t b = units.begin; b < units.end; ++b) {
        const int64_t u0 = b * kU;
        const bool full = u0 + kU <= H;
        const __m256i mask = full ? none : lane_mask(H - u0);
        for (int64_t m = 0; m < rows; ++m) {
          const float* e = gates + (row0 + m) * 4 * H + u0;
          const __m256 r = load(e, full, mask), z = load(e + H, full, mask), n = load(e + 2 * H, full, mask);
          const __m256 ghn = load(e + 3 * H, full, mask);
          const __m256 g = load(dh.get() + m * H + u0, full, mask);
          const __m256 h_old = load(hprev + (row0 + m) * H + u0, full, mask);
          const __m256 dn = _mm256_mul_ps(g, _mm256_sub_ps(one, z));
          const __m256 dz = _mm256_mul_ps(g, _mm256_sub_ps(h_old, n));
          const __m256 dpn = _mm256_mul_ps(dn, _mm256_fnmadd_ps(n, n, one));  // (1 - n^2)
          const __m256 dpz = _mm256_mul_ps(dz, _mm256_mul_ps(z, _mm256_sub_ps(one, z)));
          const __m256 dpr = _mm256_mul_ps(_mm256_mul_ps(dpn, ghn), _mm256_mul_ps(r, _mm256_sub_ps(one, r)));
          float* ox = dgx + (row0 + m) * D * G + d * G + u0;
          float* oh = dgh + (row0 + m) * G + u0;
          store(ox, dpr, full, mask);
          store(ox + H, dpz, full, mask);
          store(ox + 2 * H, dpn, full, mask);
          store(oh, dpr, full, mask);
          store(oh + H, dpz, full, mask);
          store(oh + 2 * H, _mm256_mul_ps(dpn, r), full, mask);
          store(dhz.get() + m * H + u0, _mm256_mul_ps(g, z), full, mask);
        }
      }
      barrier.wait();
      // State gradients for the next backward step: a row running on gets dGh W_hh + dh z + that
      // step's dy; a row whose first step this was gets dGh W_hh + dh z as its dh0; a row that
      // starts at the next backward step (its last forward step) gets dh_n + that step's dy.
      const bool last = step == 0;
      const int64_t t_next = reverse ? t + 1 : t - 1;
      const int64_t next_rows = last ? 0 : active[t_next];
      const int64_t gemm_rows = dh0 ? rows : std::min(rows, next_rows);
      const float* a = dgh + row0 * G;
      for (int64_t c = cols.begin; c < cols.end; ++c) {
        const int64_t c0 = c * kW;
        __m256i masks[3];
        bool fulls[3];
        for (int v = 0; v < 3; ++v) {
          fulls[v] = c0 + 8 * (v + 1) <= H;
          masks[v] = fulls[v] ? none : lane_mask(H - c0 - 8 * v);
        }
        if (gemm_rows > 0) panel_product(gemm_rows, G, a, G, panels.get() + c * G * kW, acc.data());
        for (int64_t m = 0; m < std::max(gemm_rows, next_rows); ++m)
          for (int v = 0; v < 3; ++v) {
            const int64_t col = c0 + 8 * v;
            if (col >= H) break;
            if (m >= rows) {  // starts at t_next
              const __m256 g = _mm256_add_ps(load(dh_n + m * H + col, fulls[v], masks[v]),
                                             load(dy_at(t_next, m) + col, fulls[v], masks[v]));
              store(dh.get() + m * H + col, g, fulls[v], masks[v]);
              continue;
            }
            __m256 g = _mm256_add_ps(_mm256_loadu_ps(acc.data() + m * kW + 8 * v),
                                     load(dhz.get() + m * H + col, fulls[v], masks[v]));
            if (m < next_rows)
              store(dh.get() + m * H + col, _mm256_add_ps(g, load(dy_at(t_next, m) + col, fulls[v], masks[v])),
                    fulls[v], masks[v]);
            else
              store(dh0 + m * H + col, g, fulls[v], masks[v]);
          }
      }
      barrier.wait();
    }
  }
}

}  // namespace

bool gru_cpu_available() { return true; }

std::size_t gru_cpu_workspace_bytes(const GruLayerShape& s) {
  return static_cast<std::size_t>(s.D * s.T * s.N * 5 * s.H) * sizeof(float);
}

void gru_cpu_forward(const GruLayerShape& s, const float* x, const float* h0, const GruLayerWeights<float>& w, float* y,
                     float* h_n, void* workspace, const int64_t* lengths) {
  const int64_t T = s.T, N = s.N, H = s.H, D = s.D, G = 3 * H;
  if (T == 0 || N == 0) {
    for (int64_t i = 0; i < D * N * H; ++i) h_n[i] = h0 ? h0[i] : 0.0f;
    return;
  }
  const Stacked st = stack_inputs(s, w);
  const Steps steps(s, lengths);
  const Floats packed_x = steps.packed(s) ? pack_rows(x, s.I, s, steps) : Floats();
  auto gx = floats(steps.rows * D * G);
  GemmShape proj;
  proj.M = steps.rows, proj.N = D * G, proj.K = s.I;
  proj.trans_b = true, proj.lda = s.I, proj.ldb = s.I;
  gemm_bias_cpu(proj, steps.packed(s) ? packed_x.get() : x, st.w, st.bias.get(), gx.get());
  for (int64_t d = 0; d < D; ++d)
    forward_direction(s, d, gx.get(), h0 ? h0 + d * N * H : nullptr, w.w_hh[d], w.b_hh[d], steps, lengths, y,
                      h_n + d * N * H, workspace);
}

void gru_cpu_backward(const GruLayerShape& s, const float* x, const float* /*h0*/, const GruLayerWeights<float>& w,
                      const float* /*y*/, const float* /*h_n*/, const void* workspace, const float* dy,
                      const float* dh_n, float* dx, float* dh0, const GruLayerGrads<float>& grads,
                      const int64_t* lengths) {
  if (!workspace) throw ValueError("gru_cpu_backward: no workspace (was the forward run for inference?)");
  const int64_t T = s.T, N = s.N, I = s.I, H = s.H, D = s.D, G = 3 * H;
  if (T * N == 0) {
    if (dh0) std::memcpy(dh0, dh_n, sizeof(float) * D * N * H);
    if (dx) std::memset(dx, 0, sizeof(float) * T * N * I);
    for (int64_t d = 0; d < D; ++d) {
      if (grads.w_ih[d]) std::memset(grads.w_ih[d], 0, sizeof(float) * G * I);
      if (grads.w_hh[d]) std::memset(grads.w_hh[d], 0, sizeof(float) * G * H);
      if (grads.b_ih[d]) std::memset(grads.b_ih[d], 0, sizeof(float) * G);
      if (grads.b_hh[d]) std::memset(grads.b_hh[d], 0, sizeof(float) * G);
    }
    return;
  }
  const Steps steps(s, lengths);
  const int64_t rows = steps.rows;
  auto dgx = floats(rows * D * G), dgh = floats(rows * G);
  for (int64_t d = 0; d < D; ++d) {
    backward_direction(s, d, w.w_hh[d], workspace, dy, dh_n + d * N * H, steps, dgx.get(), dgh.get(),
                       dh0 ? dh0 + d * N * H : nullptr);
    // This direction's weight gradients while its dGh is at hand: sums over all running rows.
    if (grads.w_hh[d]) {
      GemmShape g;
      g.M = G, g.N = H, g.K = rows;
      g.trans_a = true, g.lda = G, g.ldb = H;
      gemm_cpu(g, dgh.get(), hprev_at(const_cast<void*>(workspace), s, d), grads.w_hh[d]);
    }
    if (grads.b_hh[d]) {
      float* db = grads.b_hh[d];
      std::fill(db, db + G, 0.0f);
      for (int64_t r = 0; r < rows; ++r) {
        const float* src = dgh.get() + r * G;
        for (int64_t j = 0; j < G; ++j) db[j] += src[j];
      }
    }
  }
  const Floats packed_x = steps.packed(s) && (grads.w_ih[0] || grads.w_ih[1]) ? pack_rows(x, I, s, steps) : Floats();
  for (int64_t d = 0; d < D; ++d) {
    if (grads.w_ih[d]) {
      GemmShape g;
      g.M = G, g.N = I, g.K = rows;
      g.trans_a = true, g.lda = D * G, g.ldb = I;
      gemm_cpu(g, dgx.get() + d * G, steps.packed(s) ? packed_x.get() : x, grads.w_ih[d]);
    }
    if (grads.b_ih[d]) {
      float* db = grads.b_ih[d];
      std::fill(db, db + G, 0.0f);
      for (int64_t r = 0; r < rows; ++r) {
        const float* src = dgx.get() + r * D * G + d * G;
        for (int64_t j = 0; j < G; ++j) db[j] += src[j];
      }
    }
  }
  if (dx) {
    const Stacked st = stack_inputs(s, w);
    GemmShape g;
    g.M = rows, g.N = I, g.K = D * G;
    g.lda = D * G, g.ldb = I;
    if (!steps.packed(s)) {
      gemm_cpu(g, dgx.get(), st.w, dx);
      return;
    }
    // Packed rows back to [T, N, I], zero past each sequence's end.
    auto packed_dx = floats(rows * I);
    gemm_cpu(g, dgx.get(), st.w, packed_dx.get());
    for (int64_t t = 0; t < T; ++t) {
      const int64_t n = steps.active[t];
      std::memcpy(dx + t * N * I, packed_dx.get() + steps.offset[t] * I, sizeof(float) * n * I);
      std::memset(dx + (t * N + n) * I, 0, sizeof(float) * (N - n) * I);
    }
  }
}

#else  // no AVX2/FMA in this build

bool gru_cpu_available() { return false; }
std::size_t gru_cpu_workspace_bytes(const GruLayerShape&) {
  throw NotImplementedError("gru_cpu_workspace_bytes: graft was built without AVX2/FMA");
}
void gru_cpu_forward(const GruLayerShape&, const float*, const float*, const GruLayerWeights<float>&, float*, float*,
                     void*, const int64_t*) {
  throw NotImplementedError("gru_cpu_forward: graft was built without AVX2/FMA");
}
void gru_cpu_backward(const GruLayerShape&, const float*, const float*, const GruLayerWeights<float>&, const float*,
                      const float*, const void*, const float*, const float*, float*, float*,
                      const GruLayerGrads<float>&, const int64_t*) {
  throw NotImplementedError("gru_cpu_backward: graft was built without AVX2/FMA");
}

#endif

}  // namespace graft::kernels

