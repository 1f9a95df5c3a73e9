// Flash-style attention on the CPU, f32, AVX2/FMA (plain reference loops where the build lacks
// them). Shape letters as in attention.h; below, a "tile" is kBlockK keys x kBlockQ queries.
//
// Tiles are kept transposed, S^T [keys x queries], so that everything per query (running max,
// sum, log-sum-exp, D_i) is a vertical vector op over a tile row, and every GEMM takes its
// contiguous operand straight from q, k, v, dout or from one packed transpose (q^T, dout^T):
//   forward, per (head, query block):  S^T = K Q^T;  online softmax down the columns;
//                                      O = diag(alpha) O + P V
//   backward, per (head, key block), over query blocks:
//     S^T = K Q^T, P^T = 2^(S^T - lse2);  dV += Pd^T dO;  dP^T = V dO^T;
//     dS^T = scale (Pd^T o dP^T - P^T o D);  dK += dS^T Q;  dQ += dS K
// (Pd = P with dropout applied; D_i = rowsum(dO o O) = rowsum(P o dP through dropout).)
// Scores are kept in log2 units (q is pre-scaled by scale * log2(e)) so the exponential is 2^x.
// Threads: forward over (head, query block). Backward over heads, each owning its dQ, dK, dV; with
// fewer heads than 4 per thread, over (head, key chunk): a chunk owns its keys' dK, dV rows and adds
// into its own dQ partial, summed afterwards in chunk order. Results never depend on scheduling
// (the chunking, and so the last bits of dQ, on the thread count).
// Tile sizes: tuned on Zen 3 (32 KiB L1d, 512 KiB L2) at head dims 32 and 64.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <omp.h>

#include "kernels/attention/attention.h"
#include "kernels/random/philox_x8.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "kernels/common/avx2.h"

namespace graft::kernels {

namespace {

constexpr int64_t kBlockQ = 144;  // queries per tile: a multiple of 16 (GEMM strips) and of 6 (GEMM rows)
constexpr int64_t kBlockK = 96;   // keys per tile: a multiple of 6
constexpr int kMR = 6;            // GEMM register tile: kMR rows x 16 columns (12 accumulators)
constexpr float kLog2e = 1.44269504088896341f, kLn2 = 0.693147180559945309f;
constexpr float kInf = std::numeric_limits<float>::infinity();

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

using avx2::exp2_ps, avx2::lane_mask;

// One register tile: C[MR x 16] (= or +=) sum_k A(i, k) B[k, 0:16], with A(i, k) = a[i*a_row + k*a_col]
// (any strides: A is only broadcast) and B rows ldb apart. Full: all 16 columns; else masked by m0/m1.
template <int MR, bool Full>
inline void gemm_tile(int64_t K, const float* a, int64_t a_row, int64_t a_col, const float* b, int64_t ldb, float* c,
                      int64_t ldc, bool accumulate, __m256i m0, __m256i m1) {
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const float* bk = b + k * ldb;
    const __m256 b0 = Full ? _mm256_loadu_ps(bk) : _mm256_maskload_ps(bk, m0);
    const __m256 b1 = Full ? _mm256_loadu_ps(bk + 8) : _mm256_maskload_ps(bk + 8, m1);
    const float* ak = a + k * a_col;
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(ak + i * a_row);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    if (Full) {
      if (accumulate) {
        acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_loadu_ps(ci));
        acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_loadu_ps(ci + 8));
      }
      _mm256_storeu_ps(ci, acc[i][0]);
      _mm256_storeu_ps(ci + 8, acc[i][1]);
    } else {
      if (accumulate) {
        acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_maskload_ps(ci, m0));
        acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_maskload_ps(ci + 8, m1));
      }
      _mm256_maskstore_ps(ci, m0, acc[i][0]);
      _mm256_maskstore_ps(ci + 8, m1, acc[i][1]);
    }
  }
}

template <bool Full>
inline void gemm_rows(int mr, int64_t K, const float* a, int64_t a_row, int64_t a_col, const float* b, int64_t ldb,
                      float* c, int64_t ldc, bool accumulate, __m256i m0, __m256i m1) {
  switch (mr) {
    case 6: return gemm_tile<6, Full>(K, a, a_row, a_col, b, ldb, c, ldc, accumulate, m0, m1);
    case 5: return gemm_tile<5, Full>(K, a, a_row, a_col, b, ldb, c, ldc, accumulate, m0, m1);
    case 4: return gemm_tile<4, Full>(K, a, a_row, a_col, b, ldb, c, ldc, accumulate, m0, m1);
    case 3: return gemm_tile<3, Full>(K, a, a_row, a_col, b, ldb, c, ldc, accumulate, m0, m1);
    case 2: return gemm_tile<2, Full>(K, a, a_row, a_col, b, ldb, c, ldc, accumulate, m0, m1);
    default: return gemm_tile<1, Full>(K, a, a_row, a_col, b, ldb, c, ldc, accumulate, m0, m1);
  }
}

// C[M x N] (= or +=) A(M x K) B(K x N): A(i, k) = a[i*a_row + k*a_col], B and C row-major (ldb, ldc).
// Column strips of 16 outside, so a strip of B stays in L1 while the rows of A stream past.
void gemm(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_row, int64_t a_col, const float* b, int64_t ldb,
          float* c, int64_t ldc, bool accumulate) {
  for (int64_t n0 = 0; n0 < N; n0 += 16) {
    const int64_t nn = std::min<int64_t>(16, N - n0);
    const __m256i m0 = lane_mask(std::min<int64_t>(nn, 8)), m1 = lane_mask(std::max<int64_t>(nn - 8, 0));
    for (int64_t i0 = 0; i0 < M; i0 += kMR) {
      const int mr = static_cast<int>(std::min<int64_t>(kMR, M - i0));
      const float* ai = a + i0 * a_row;
      float* ci = c + i0 * ldc + n0;
      if (nn == 16)
        gemm_rows<true>(mr, K, ai, a_row, a_col, b + n0, ldb, ci, ldc, accumulate, m0, m1);
      else
        gemm_rows<false>(mr, K, ai, a_row, a_col, b + n0, ldb, ci, ldc, accumulate, m0, m1);
    }
  }
}

// Multiplies x[jj * stride], jj < n, by the dropout factor (0 or 1/(1-p)) of flat elements first + jj.
// Philox blocks eight at a time (philox_x8.h); element e uses word e % 4 of block e / 4, as
// philox_uniform does.
void apply_dropout(float* x, int64_t stride, int64_t n, uint64_t first, const AttentionParams& pr) {
  const uint32_t threshold = philox_keep_threshold(1.0 - pr.dropout_p);
  const float factor = static_cast<float>(1.0 / (1.0 - pr.dropout_p));
  const uint64_t end = first + static_cast<uint64_t>(n);
  uint32_t words[4][8];
  float factors[4][8];
  for (uint64_t block = first / 4; block * 4 < end; block += 8) {
    philox4x32_10_x8(pr.dropout_counter + block, pr.dropout_seed, words);
    dropout_factors_x8(words, threshold, factor, factors);
    const uint64_t lo = std::max(first, block * 4), hi = std::min(end, (block + 8) * 4);
    float* xp = x + static_cast<int64_t>(lo - first) * stride;
    for (uint64_t k = lo - block * 4; k < hi - block * 4; ++k, xp += stride) *xp *= factors[k & 3][k >> 2];
  }
}

// The tile's masked scores set to -inf: padded keys' rows, and under causal the queries before the
// key. s is S^T [nk x cols] with row stride kBlockQ; keys start at j0, queries at i0.
void mask_tile(float* s, int64_t nk, int64_t cols, int64_t j0, int64_t i0, const bool* key_mask, bool causal) {
  for (int64_t jj = 0; jj < nk; ++jj) {
    float* row = s + jj * kBlockQ;
    if (key_mask && key_mask[j0 + jj])
      std::fill(row, row + cols, -kInf);
    else if (causal && j0 + jj > i0)
      std::fill(row, row + std::min(cols, j0 + jj - i0), -kInf);
  }
}

bool all_keys_masked(const bool* key_mask, int64_t j0, int64_t nk) {
  return key_mask && std::all_of(key_mask + j0, key_mask + j0 + nk, [](bool m) { return m; });
}

struct ForwardScratch {
  std::vector<float> qt;  // scaled Q^T [D x kBlockQ], zero past the block's queries
  std::vector<float> s;   // S^T, then P^T [kBlockK x kBlockQ]
  std::vector<float> o;   // unnormalised output [kBlockQ x Dv]
  std::vector<float> m, l, alpha;  // per query: running max (log2 units), running sum, last rescale
};

// Forward of one (head, query block): the queries i0 .. i0 + kBlockQ (or to Sq) of head `head`.
void forward_block(const AttentionShape& sh, const AttentionLayout& ly, const AttentionParams& pr, int64_t head,
                   int64_t i0, const float* q, const float* k, const float* v, float* out, float* lse,
                   ForwardScratch& w) {
  const int64_t Sq = sh.Sq, Sk = sh.Sk, D = sh.D, Dv = sh.Dv;
  const int64_t nq = std::min(kBlockQ, Sq - i0), cols = round_up(nq, 8);
  const bool* key_mask = pr.key_padding_mask ? pr.key_padding_mask + (head / sh.H) * Sk : nullptr;
  const int64_t b = head / sh.H, h = head % sh.H, ldq = ly.q.row, ldk = ly.k.row, ldv = ly.v.row;
  const float* qh = q + b * ly.q.batch + h * ly.q.head + i0 * ldq;
  const float* kh = k + b * ly.k.batch + h * ly.k.head;
  const float* vh = v + b * ly.v.batch + h * ly.v.head;
  const float qscale = static_cast<float>(pr.scale) * kLog2e;
  for (int64_t c = 0; c < D; ++c) {
    float* row = w.qt.data() + c * kBlockQ;
    for (int64_t i = 0; i < nq; ++i) row[i] = qh[i * ldq + c] * qscale;
    std::fill(row + nq, row + kBlockQ, 0.0f);
  }
  std::fill(w.m.begin(), w.m.end(), -kInf);
  std::fill(w.l.begin(), w.l.end(), 0.0f);
  std::fill(w.o.begin(), w.o.end(), 0.0f);
  const int64_t key_end = pr.causal ? std::min(Sk, i0 + nq) : Sk;
  for (int64_t j0 = 0; j0 < key_end; j0 += kBlockK) {
    const int64_t nk = std::min(kBlockK, key_end - j0);
    if (all_keys_masked(key_mask, j0, nk)) continue;
    float* s = w.s.data();
    gemm(nk, cols, D, kh + j0 * ldk, ldk, 1, w.qt.data(), kBlockQ, s, kBlockQ, false);
    mask_tile(s, nk, cols, j0, i0, key_mask, pr.causal);
    // Online softmax down each column (one query per lane): new max, rescale factor, 2^(s - max).
    for (int64_t g = 0; g < cols; g += 8) {
      const __m256 m_old = _mm256_loadu_ps(&w.m[g]);
      __m256 mx = m_old;
      for (int64_t jj = 0; jj < nk; ++jj) mx = _mm256_max_ps(mx, _mm256_loadu_ps(s + jj * kBlockQ + g));
      // A column with no visible key yet keeps max -inf; subtract 0 there so nothing becomes NaN.
      const __m256 m_use =
          _mm256_blendv_ps(mx, _mm256_setzero_ps(), _mm256_cmp_ps(mx, _mm256_set1_ps(-kInf), _CMP_EQ_OQ));
      __m256 sum = _mm256_setzero_ps();
      for (int64_t jj = 0; jj < nk; ++jj) {
        const __m256 p = exp2_ps(_mm256_sub_ps(_mm256_loadu_ps(s + jj * kBlockQ + g), m_use));
        _mm256_storeu_ps(s + jj * kBlockQ + g, p);
        sum = _mm256_add_ps(sum, p);
      }
      const __m256 alpha = exp2_ps(_mm256_sub_ps(m_old, m_use));
      _mm256_storeu_ps(&w.l[g], _mm256_fmadd_ps(_mm256_loadu_ps(&w.l[g]), alpha, sum));
      _mm256_storeu_ps(&w.m[g], mx);
      _mm256_storeu_ps(&w.alpha[g], alpha);
    }
    if (pr.dropout_p > 0)
      for (int64_t i = 0; i < nq; ++i)
        apply_dropout(s + i, kBlockQ, nk, static_cast<uint64_t>((head * Sq + i0 + i) * Sk + j0), pr);
    for (int64_t i = 0; i < nq; ++i) {
      const float a = w.alpha[i];
      if (a != 1.0f)
        for (int64_t c = 0; c < Dv; ++c) w.o[i * Dv + c] *= a;
    }
    // O += P V, with P read transposed out of S^T.
    gemm(nq, Dv, nk, s, 1, kBlockQ, vh + j0 * ldv, ldv, w.o.data(), Dv, true);
  }
  for (int64_t i = 0; i < nq; ++i) {
    const float l = w.l[i], inv = l > 0 ? 1.0f / l : 0.0f;
    float* dst = out + b * ly.out.batch + h * ly.out.head + (i0 + i) * ly.out.row;
    for (int64_t c = 0; c < Dv; ++c) dst[c] = w.o[i * Dv + c] * inv;
    lse[head * Sq + i0 + i] = l > 0 ? (w.m[i] + std::log2(l)) * kLn2 : kInf;
  }
}

// One head's operands of the backward, packed in tiles of one query block each (a tile's rows
// kBlockQ apart: a power-of-two row stride such as Sq would map a GEMM strip's rows onto one L1
// set): scaled Q^T [D x kBlockQ] and dO^T [Dv x kBlockQ] per block, zero past Sq; lse in log2
// units and D_i = rowsum(dO o O), +inf and 0 past Sq.
struct PackedHead {
  float *qt, *dot, *lse2, *d;
};

int64_t query_blocks(const AttentionShape& sh) { return (sh.Sq + kBlockQ - 1) / kBlockQ; }
int64_t packed_head_floats(const AttentionShape& sh) { return query_blocks(sh) * kBlockQ * (sh.D + sh.Dv + 2); }

PackedHead packed_head_at(const AttentionShape& sh, float* base) {
  const int64_t padded = query_blocks(sh) * kBlockQ;
  float* dot = base + padded * sh.D;
  float* lse2 = dot + padded * sh.Dv;
  return {base, dot, lse2, lse2 + padded};
}

PackedHead pack_head(const AttentionShape& sh, const AttentionParams& pr, int64_t head, const float* q,
                     const float* out, const float* lse, const float* dout, float* base) {
  const int64_t Sq = sh.Sq, D = sh.D, Dv = sh.Dv, padded = query_blocks(sh) * kBlockQ;
  const PackedHead pk = packed_head_at(sh, base);
  const float qscale = static_cast<float>(pr.scale) * kLog2e;
  const float *qh = q + head * Sq * D, *oh = out + head * Sq * Dv, *doh = dout + head * Sq * Dv;
  for (int64_t i0 = 0; i0 < Sq; i0 += kBlockQ) {
    float *qt = pk.qt + i0 * D, *dot = pk.dot + i0 * Dv;
    const int64_t nq = std::min(kBlockQ, Sq - i0);
    for (int64_t c = 0; c < D; ++c) {
      for (int64_t i = 0; i < nq; ++i) qt[c * kBlockQ + i] = qh[(i0 + i) * D + c] * qscale;
      std::fill(qt + c * kBlockQ + nq, qt + (c + 1) * kBlockQ, 0.0f);
    }
    for (int64_t c = 0; c < Dv; ++c) {
      for (int64_t i = 0; i < nq; ++i) dot[c * kBlockQ + i] = doh[(i0 + i) * Dv + c];
      std::fill(dot + c * kBlockQ + nq, dot + (c + 1) * kBlockQ, 0.0f);
    }
  }
  for (int64_t i = 0; i < padded; ++i) {
    pk.lse2[i] = i < Sq ? lse[head * Sq + i] * kLog2e : kInf;
    float acc = 0;
    for (int64_t c = 0; i < Sq && c < Dv; ++c) acc += doh[i * Dv + c] * oh[i * Dv + c];
    pk.d[i] = acc;
  }
  return pk;
}

struct BackwardScratch {
  std::vector<float> p, pd;   // P^T and, with dropout, Pd^T [kBlockK x kBlockQ]
  std::vector<float> s;       // S^T, then dP^T, then scale * dS^T [kBlockK x kBlockQ]
  std::vector<float> dk, dv;  // the key block's dK [kBlockK x D] and dV [kBlockK x Dv]
  explicit BackwardScratch(const AttentionShape& sh, const AttentionParams& pr)
      : p(kBlockK * kBlockQ), pd(pr.dropout_p > 0 ? kBlockK * kBlockQ : 0), s(kBlockK * kBlockQ),
        dk(kBlockK * sh.D), dv(kBlockK * sh.Dv) {}
};

// Backward of key blocks [kb_begin, kb_end) of one head: writes their dK, dV rows and adds dS K
// into dq_acc [Sq x D]. The scale of the scores is folded into dS.
void backward_keys(const AttentionShape& sh, const AttentionParams& pr, int64_t head, int64_t kb_begin, int64_t kb_end,
                   const float* q, const float* k, const float* v, const float* dout, const PackedHead& pk,
                   float* dq_acc, float* dk, float* dv, BackwardScratch& w) {
  const int64_t Sq = sh.Sq, Sk = sh.Sk, D = sh.D, Dv = sh.Dv;
  const bool* key_mask = pr.key_padding_mask ? pr.key_padding_mask + (head / sh.H) * Sk : nullptr;
  const float *qh = q + head * Sq * D, *kh = k + head * Sk * D, *vh = v + head * Sk * Dv, *doh = dout + head * Sq * Dv;
  const bool dropout = pr.dropout_p > 0;
  const __m256 scale = _mm256_set1_ps(static_cast<float>(pr.scale));
  for (int64_t kb = kb_begin; kb < kb_end; ++kb) {
    const int64_t j0 = kb * kBlockK, nk = std::min(kBlockK, Sk - j0);
    std::fill(w.dk.begin(), w.dk.end(), 0.0f);
    std::fill(w.dv.begin(), w.dv.end(), 0.0f);
    const bool skip = all_keys_masked(key_mask, j0, nk);
    // Under causal, queries before j0 see none of these keys.
    for (int64_t i0 = pr.causal ? j0 / kBlockQ * kBlockQ : 0; i0 < Sq && !skip; i0 += kBlockQ) {
      const int64_t nq = std::min(kBlockQ, Sq - i0), cols = round_up(nq, 8);
      const float *qt = pk.qt + i0 * D, *dot = pk.dot + i0 * Dv, *lse2 = pk.lse2 + i0, *dd = pk.d + i0;
      float *s = w.s.data(), *p = w.p.data(), *pd = dropout ? w.pd.data() : p;
      gemm(nk, cols, D, kh + j0 * D, D, 1, qt, kBlockQ, s, kBlockQ, false);  // S^T = K Q^T
      mask_tile(s, nk, cols, j0, i0, key_mask, pr.causal);
      for (int64_t jj = 0; jj < nk; ++jj)
        for (int64_t g = 0; g < cols; g += 8) {
          const int64_t e = jj * kBlockQ + g;
          _mm256_storeu_ps(p + e, exp2_ps(_mm256_sub_ps(_mm256_loadu_ps(s + e), _mm256_loadu_ps(lse2 + g))));
        }
      if (dropout) {
        std::copy(p, p + nk * kBlockQ, pd);
        for (int64_t i = 0; i < nq; ++i)
          apply_dropout(pd + i, kBlockQ, nk, static_cast<uint64_t>((head * Sq + i0 + i) * Sk + j0), pr);
      }
      gemm(nk, Dv, nq, pd, kBlockQ, 1, doh + i0 * Dv, Dv, w.dv.data(), Dv, true);  // dV += Pd^T dO
      gemm(nk, cols, Dv, vh + j0 * Dv, Dv, 1, dot, kBlockQ, s, kBlockQ, false);    // dP^T = V dO^T
      for (int64_t jj = 0; jj < nk; ++jj)                                          // dS^T, scaled
        for (int64_t g = 0; g < cols; g += 8) {
          const int64_t e = jj * kBlockQ + g;
          const __m256 pdp = _mm256_mul_ps(_mm256_loadu_ps(pd + e), _mm256_loadu_ps(s + e));
          const __m256 ds = _mm256_fnmadd_ps(_mm256_loadu_ps(p + e), _mm256_loadu_ps(dd + g), pdp);
          _mm256_storeu_ps(s + e, _mm256_mul_ps(ds, scale));
        }
      gemm(nk, D, nq, s, kBlockQ, 1, qh + i0 * D, D, w.dk.data(), D, true);      // dK += dS^T Q
      gemm(nq, D, nk, s, 1, kBlockQ, kh + j0 * D, D, dq_acc + i0 * D, D, true);  // dQ += dS K
    }
    std::copy(w.dk.begin(), w.dk.begin() + nk * D, dk + (head * Sk + j0) * D);
    std::copy(w.dv.begin(), w.dv.begin() + nk * Dv, dv + (head * Sk + j0) * Dv);
  }
}

}  // namespace

void attention_cpu_forward(const AttentionShape& sh, const AttentionParams& pr, const float* q, const float* k,
                           const float* v, float* out, float* lse) {
  attention_cpu_forward(sh, attention_contiguous_layout(sh), pr, q, k, v, out, lse);
}

void attention_cpu_forward(const AttentionShape& sh, const AttentionLayout& ly, const AttentionParams& pr,
                           const float* q, const float* k, const float* v, float* out, float* lse) {
  const int64_t heads = sh.B * sh.H, blocks = query_blocks(sh);
#pragma omp parallel
  {
    ForwardScratch w;
    w.qt.resize(sh.D * kBlockQ);
    w.s.resize(kBlockK * kBlockQ);
    w.o.resize(kBlockQ * sh.Dv);
    w.m.resize(kBlockQ);
    w.l.resize(kBlockQ);
    w.alpha.resize(kBlockQ);
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < heads * blocks; ++t)
      forward_block(sh, ly, pr, t / blocks, t % blocks * kBlockQ, q, k, v, out, lse, w);
  }
}

void attention_cpu_backward(const AttentionShape& sh, const AttentionParams& pr, const float* q, const float* k,
                            const float* v, const float* out, const float* lse, const float* dout, float* dq,
                            float* dk, float* dv) {
  const int64_t heads = sh.B * sh.H, Sq = sh.Sq, D = sh.D;
  const int64_t key_blocks = (sh.Sk + kBlockK - 1) / kBlockK, head_floats = packed_head_floats(sh);
  // Enough (head, key chunk) tasks to balance the threads: chunks only when heads are few.
  const int64_t threads = omp_get_max_threads();
  const int64_t chunks =
      heads >= 4 * threads ? 1 : std::max<int64_t>(1, std::min(key_blocks, (4 * threads + heads - 1) / heads));
  if (chunks == 1) {
    // One task per head, packing its own operands: a single parallel loop, no barrier inside (a
    // barrier costs a time slice whenever the machine is shared and a thread is descheduled).
#pragma omp parallel
    {
      std::vector<float> packed(head_floats);
      BackwardScratch w(sh, pr);
#pragma omp for schedule(dynamic)
      for (int64_t head = 0; head < heads; ++head) {
        const PackedHead pk = pack_head(sh, pr, head, q, out, lse, dout, packed.data());
        float* dq_head = dq + head * Sq * D;
        std::fill(dq_head, dq_head + Sq * D, 0.0f);
        backward_keys(sh, pr, head, 0, key_blocks, q, k, v, dout, pk, dq_head, dk, dv, w);
      }
    }
    return;
  }
  // Few heads: each head's key blocks split into chunks, each adding into its own dQ partial;
  // the partials are summed afterwards in chunk order.
  const int64_t blocks_per_chunk = (key_blocks + chunks - 1) / chunks;
  std::vector<float> packed(heads * head_floats), partials(heads * chunks * Sq * D);
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int64_t head = 0; head < heads; ++head) pack_head(sh, pr, head, q, out, lse, dout, &packed[head * head_floats]);
    BackwardScratch w(sh, pr);
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < heads * chunks; ++t) {
      const int64_t head = t / chunks, chunk = t % chunks;
      float* dq_acc = partials.data() + t * Sq * D;
      std::fill(dq_acc, dq_acc + Sq * D, 0.0f);
      backward_keys(sh, pr, head, chunk * blocks_per_chunk, std::min(key_blocks, (chunk + 1) * blocks_per_chunk), q,
                    k, v, dout, packed_head_at(sh, &packed[head * head_floats]), dq_acc, dk, dv, w);
    }
#pragma omp for schedule(static)
    for (int64_t head = 0; head < heads; ++head)
      for (int64_t e = 0; e < Sq * D; ++e) {
        float acc = 0;
        for (int64_t c = 0; c < chunks; ++c) acc += partials[(head * chunks + c) * Sq * D + e];
        dq[head * Sq * D + e] = acc;
      }
  }
}

}  // namespace graft::kernels

#else  // no AVX2/FMA in this build: the reference loops

namespace graft::kernels {

void attention_cpu_forward(const AttentionShape& sh, const AttentionParams& pr, const float* q, const float* k,
                           const float* v, float* out, float* lse) {
  attention_reference_forward<float>(sh, pr, q, k, v, out, lse);
}

void attention_cpu_forward(const AttentionShape& sh, const AttentionLayout& ly, const AttentionParams& pr,
                           const float* q, const float* k, const float* v, float* out, float* lse) {
  // The reference reads contiguous operands: gather them.
  auto gather = [&](const float* x, const AttentionOperandStrides& st, int64_t S, int64_t Dh) {
    std::vector<float> packed(static_cast<size_t>(sh.B * sh.H * S * Dh));
    for (int64_t b = 0; b < sh.B; ++b)
      for (int64_t h = 0; h < sh.H; ++h)
        for (int64_t i = 0; i < S; ++i)
          for (int64_t c = 0; c < Dh; ++c)
            packed[static_cast<size_t>(((b * sh.H + h) * S + i) * Dh + c)] = x[b * st.batch + h * st.head + i * st.row + c];
    return packed;
  };
  const auto qc = gather(q, ly.q, sh.Sq, sh.D), kc = gather(k, ly.k, sh.Sk, sh.D), vc = gather(v, ly.v, sh.Sk, sh.Dv);
  std::vector<float> oc(static_cast<size_t>(sh.B * sh.H * sh.Sq * sh.Dv));
  attention_reference_forward<float>(sh, pr, qc.data(), kc.data(), vc.data(), oc.data(), lse);
  for (int64_t b = 0; b < sh.B; ++b)
    for (int64_t h = 0; h < sh.H; ++h)
      for (int64_t i = 0; i < sh.Sq; ++i)
        for (int64_t c = 0; c < sh.Dv; ++c)
          out[b * ly.out.batch + h * ly.out.head + i * ly.out.row + c] =
              oc[static_cast<size_t>(((b * sh.H + h) * sh.Sq + i) * sh.Dv + c)];
}

void attention_cpu_backward(const AttentionShape& sh, const AttentionParams& pr, const float* q, const float* k,
                            const float* v, const float* out, const float* lse, const float* dout, float* dq,
                            float* dk, float* dv) {
  attention_reference_backward<float>(sh, pr, q, k, v, out, lse, dout, dq, dk, dv);
}

}  // namespace graft::kernels

#endif
