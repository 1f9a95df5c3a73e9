// Plain-loop attention, forward and backward, f32 and f64: the truth the CPU kernel is tested
// against. One query row at a time (a row of Sk scores, never Sq x Sk), sums in double.
// Backward recomputes the softmax from q and k (it ignores out and lse), so it checks what the fast
// forward saved as well. Shape letters as in attention.h.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/attention/attention.h"
#include "kernels/random/philox.h"

namespace graft::kernels {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The probabilities of query row i of head (b, h): p[j] after softmax (zero where masked), and
// the dropout factor drop[j] (0 or 1/(1-p)). Returns false when every key is masked.
template <class S>
bool row_probabilities(const AttentionShape& sh, const AttentionParams& pr, int64_t b, int64_t h, int64_t i,
                       const S* q, const S* k, std::vector<double>& p, std::vector<double>& drop, double& lse) {
  const int64_t Sq = sh.Sq, Sk = sh.Sk, D = sh.D;
  const S* qi = q + ((b * sh.H + h) * Sq + i) * D;
  const S* kh = k + (b * sh.H + h) * Sk * D;
  double m = -kInf;
  for (int64_t j = 0; j < Sk; ++j) {
    const bool masked = (pr.key_padding_mask && pr.key_padding_mask[b * Sk + j]) || (pr.causal && j > i);
    double s = -kInf;
    if (!masked) {
      s = 0;
      for (int64_t c = 0; c < D; ++c) s += double(qi[c]) * double(kh[j * D + c]);
      s *= pr.scale;
    }
    p[j] = s;
    m = std::fmax(m, s);
  }
  if (m == -kInf) return false;
  double l = 0;
  for (int64_t j = 0; j < Sk; ++j) l += p[j] = std::exp(p[j] - m);
  for (int64_t j = 0; j < Sk; ++j) p[j] /= l;
  lse = m + std::log(l);
  const double keep = 1.0 - pr.dropout_p;
  const int64_t first = ((b * sh.H + h) * Sq + i) * Sk;  // flat index of (b, h, i, 0)
  for (int64_t j = 0; j < Sk; ++j) {
    const bool kept = pr.dropout_p == 0 || philox_uniform(pr.dropout_seed, pr.dropout_counter, first + j) < keep;
    drop[j] = kept ? 1.0 / keep : 0.0;
  }
  return true;
}

}  // namespace

template <class S>
void attention_reference_forward(const AttentionShape& sh, const AttentionParams& pr, const S* q, const S* k,
                                 const S* v, S* out, S* lse) {
  const int64_t Sk = sh.Sk, Dv = sh.Dv;
  std::vector<double> p(Sk), drop(Sk), o(Dv);
  for (int64_t b = 0; b < sh.B; ++b)
    for (int64_t h = 0; h < sh.H; ++h)
      for (int64_t i = 0; i < sh.Sq; ++i) {
        const int64_t row = (b * sh.H + h) * sh.Sq + i;
        double row_lse = kInf;
        std::fill(o.begin(), o.end(), 0.0);
        if (row_probabilities(sh, pr, b, h, i, q, k, p, drop, row_lse)) {
          const S* vh = v + (b * sh.H + h) * Sk * Dv;
          for (int64_t j = 0; j < Sk; ++j)
            for (int64_t c = 0; c < Dv; ++c) o[c] += p[j] * drop[j] * double(vh[j * Dv + c]);
        }
        for (int64_t c = 0; c < Dv; ++c) out[row * Dv + c] = S(o[c]);
        lse[row] = S(row_lse);
      }
}

template <class S>
void attention_reference_backward(const AttentionShape& sh, const AttentionParams& pr, const S* q, const S* k,
                                  const S* v, const S*, const S*, const S* dout, S* dq, S* dk, S* dv) {
  const int64_t Sq = sh.Sq, Sk = sh.Sk, D = sh.D, Dv = sh.Dv;
  std::vector<double> p(Sk), drop(Sk), dp(Sk), dq_row(D), dk_head(Sk * D), dv_head(Sk * Dv);
  for (int64_t b = 0; b < sh.B; ++b)
    for (int64_t h = 0; h < sh.H; ++h) {
      const int64_t head = b * sh.H + h;
      const S *kh = k + head * Sk * D, *vh = v + head * Sk * Dv;
      std::fill(dk_head.begin(), dk_head.end(), 0.0);
      std::fill(dv_head.begin(), dv_head.end(), 0.0);
      for (int64_t i = 0; i < Sq; ++i) {
        const S *qi = q + (head * Sq + i) * D, *doi = dout + (head * Sq + i) * Dv;
        std::fill(dq_row.begin(), dq_row.end(), 0.0);
        double row_lse = 0;
        if (row_probabilities(sh, pr, b, h, i, q, k, p, drop, row_lse)) {
          // dP = dO V^T (through the dropout factor); D_i = sum_j P dP; dS = P (dP - D_i).
          double d_i = 0;
          for (int64_t j = 0; j < Sk; ++j) {
            double s = 0;
            for (int64_t c = 0; c < Dv; ++c) s += double(doi[c]) * double(vh[j * Dv + c]);
            dp[j] = s * drop[j];
            d_i += p[j] * dp[j];
            for (int64_t c = 0; c < Dv; ++c) dv_head[j * Dv + c] += p[j] * drop[j] * double(doi[c]);
          }
          for (int64_t j = 0; j < Sk; ++j) {
            const double ds = p[j] * (dp[j] - d_i) * pr.scale;
            for (int64_t c = 0; c < D; ++c) {
              dq_row[c] += ds * double(kh[j * D + c]);
              dk_head[j * D + c] += ds * double(qi[c]);
            }
          }
        }
        for (int64_t c = 0; c < D; ++c) dq[(head * Sq + i) * D + c] = S(dq_row[c]);
      }
      for (int64_t e = 0; e < Sk * D; ++e) dk[head * Sk * D + e] = S(dk_head[e]);
      for (int64_t e = 0; e < Sk * Dv; ++e) dv[head * Sk * Dv + e] = S(dv_head[e]);
    }
}

template void attention_reference_forward<float>(const AttentionShape&, const AttentionParams&, const float*,
                                                 const float*, const float*, float*, float*);
template void attention_reference_forward<double>(const AttentionShape&, const AttentionParams&, const double*,
                                                  const double*, const double*, double*, double*);
template void attention_reference_backward<float>(const AttentionShape&, const AttentionParams&, const float*,
                                                  const float*, const float*, const float*, const float*,
                                                  const float*, float*, float*, float*);
template void attention_reference_backward<double>(const AttentionShape&, const AttentionParams&, const double*,
                                                   const double*, const double*, const double*, const double*,
                                                   const double*, double*, double*, double*);

AttentionLayout attention_contiguous_layout(const AttentionShape& sh) {
  AttentionLayout ly;
  ly.q = {sh.H * sh.Sq * sh.D, sh.Sq * sh.D, sh.D};
  ly.k = {sh.H * sh.Sk * sh.D, sh.Sk * sh.D, sh.D};
  ly.v = {sh.H * sh.Sk * sh.Dv, sh.Sk * sh.Dv, sh.Dv};
  ly.out = {sh.H * sh.Sq * sh.Dv, sh.Sq * sh.Dv, sh.Dv};
  return ly;
}

}  // namespace graft::kernels
