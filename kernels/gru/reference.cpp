// Plain-loop GRU layer, forward and backward, f32 and f64: the truth the oneDNN kernel is tested
// against. Shape letters as in gru.h: T steps, N batch, I input, H hidden, D directions, gates r, z, n.
// Dot products accumulate in double so that the f32 reference is more accurate than the fast path.
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/gru/gru.h"

namespace graft::kernels {

namespace {

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// Step index in time order for direction d at position s of its own sequence.
int64_t step_time(const GruLayerShape& sh, int64_t d, int64_t s) { return d == 0 ? s : sh.T - 1 - s; }

// Workspace entry for (d, s, n): 4H values r, z, n, W_hn h + b_hn, at step s in the direction's order.
template <class S>
S* ws_at(void* ws, const GruLayerShape& sh, int64_t d, int64_t s, int64_t n) {
  return static_cast<S*>(ws) + (((d * sh.T + s) * sh.N + n) * 4 * sh.H);
}

}  // namespace

template <class S>
std::size_t gru_reference_workspace_bytes(const GruLayerShape& sh) {
  return static_cast<std::size_t>(sh.D * sh.T * sh.N * 4 * sh.H) * sizeof(S);
}

template <class S>
void gru_reference_forward(const GruLayerShape& sh, const S* x, const S* h0, const GruLayerWeights<S>& w, S* y,
                           S* h_n, void* workspace) {
  const int64_t T = sh.T, N = sh.N, I = sh.I, H = sh.H, D = sh.D;
  std::vector<S> h(N * H), gx(3 * H), gh(3 * H), scratch;
  if (!workspace) scratch.resize(N * 4 * H);
  for (int64_t d = 0; d < D; ++d) {
    const S *wi = w.w_ih[d], *wh = w.w_hh[d], *bi = w.b_ih[d], *bh = w.b_hh[d];
    for (int64_t i = 0; i < N * H; ++i) h[i] = h0 ? h0[d * N * H + i] : S(0);
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = step_time(sh, d, s);
      for (int64_t n = 0; n < N; ++n) {
        const S* xt = x + (t * N + n) * I;
        const S* hp = h.data() + n * H;
        for (int64_t g = 0; g < 3 * H; ++g) {
          double ax = bi ? bi[g] : 0.0, ah = bh ? bh[g] : 0.0;
          for (int64_t k = 0; k < I; ++k) ax += double(wi[g * I + k]) * double(xt[k]);
          for (int64_t k = 0; k < H; ++k) ah += double(wh[g * H + k]) * double(hp[k]);
          gx[g] = S(ax);
          gh[g] = S(ah);
        }
        S* e = workspace ? ws_at<S>(workspace, sh, d, s, n) : scratch.data() + n * 4 * H;
        for (int64_t j = 0; j < H; ++j) {
          const double r = sigmoid(double(gx[j]) + double(gh[j]));
          const double z = sigmoid(double(gx[H + j]) + double(gh[H + j]));
          const double nn = std::tanh(double(gx[2 * H + j]) + r * double(gh[2 * H + j]));
          e[j] = S(r);
          e[H + j] = S(z);
          e[2 * H + j] = S(nn);
          e[3 * H + j] = gh[2 * H + j];
        }
      }
      // Update h only after every row read the previous state.
      for (int64_t n = 0; n < N; ++n) {
        const S* e = workspace ? ws_at<S>(workspace, sh, d, s, n) : scratch.data() + n * 4 * H;
        for (int64_t j = 0; j < H; ++j) {
          const double z = e[H + j], nn = e[2 * H + j];
          const S hv = S((1.0 - z) * nn + z * double(h[n * H + j]));
          h[n * H + j] = hv;
          y[(t * N + n) * D * H + d * H + j] = hv;
        }
      }
    }
    std::memcpy(h_n + d * N * H, h.data(), sizeof(S) * N * H);
  }
}

template <class S>
void gru_reference_backward(const GruLayerShape& sh, const S* x, const S* h0, const GruLayerWeights<S>& w, const S* y,
                            const S* h_n, const void* workspace, const S* dy, const S* dh_n, S* dx, S* dh0,
                            const GruLayerGrads<S>& grads) {
  const int64_t T = sh.T, N = sh.N, I = sh.I, H = sh.H, D = sh.D;
  void* ws = const_cast<void*>(workspace);
  // Accumulate in double, write S at the end.
  std::vector<double> gdx(dx ? T * N * I : 0, 0.0);
  std::vector<double> dh(N * H), dh_prev(N * H), dgx(N * 3 * H), dgh(N * 3 * H), hprev(N * H);
  for (int64_t d = 0; d < D; ++d) {
    const S *wi = w.w_ih[d], *wh = w.w_hh[d];
    std::vector<double> gwi(3 * H * I, 0.0), gwh(3 * H * H, 0.0), gbi(3 * H, 0.0), gbh(3 * H, 0.0);
    for (int64_t i = 0; i < N * H; ++i) dh[i] = dh_n[d * N * H + i];
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = step_time(sh, d, s);
      // The state this step started from: h0 at s == 0, else the output of the step before.
      for (int64_t n = 0; n < N; ++n)
        for (int64_t j = 0; j < H; ++j) {
          if (s == 0) hprev[n * H + j] = h0 ? double(h0[(d * N + n) * H + j]) : 0.0;
          else hprev[n * H + j] = y[(step_time(sh, d, s - 1) * N + n) * D * H + d * H + j];
        }
      for (int64_t n = 0; n < N; ++n) {
        const S* e = ws_at<S>(ws, sh, d, s, n);
        for (int64_t j = 0; j < H; ++j) {
          const double g = dh[n * H + j] + double(dy[(t * N + n) * D * H + d * H + j]);
          const double r = e[j], z = e[H + j], nn = e[2 * H + j], hn = e[3 * H + j];
          const double dn = g * (1.0 - z) * (1.0 - nn * nn);  // through tanh
          const double dz = g * (hprev[n * H + j] - nn) * z * (1.0 - z);
          const double dr = dn * hn * r * (1.0 - r);
          dh_prev[n * H + j] = g * z;
          double* gxr = dgx.data() + n * 3 * H;
          double* ghr = dgh.data() + n * 3 * H;
          gxr[j] = ghr[j] = dr;
          gxr[H + j] = ghr[H + j] = dz;
          gxr[2 * H + j] = dn;
          ghr[2 * H + j] = dn * r;
        }
      }
      for (int64_t n = 0; n < N; ++n) {
        const double* gxr = dgx.data() + n * 3 * H;
        const double* ghr = dgh.data() + n * 3 * H;
        const S* xt = x + (t * N + n) * I;
        for (int64_t g = 0; g < 3 * H; ++g) {
          gbi[g] += gxr[g];
          gbh[g] += ghr[g];
          for (int64_t k = 0; k < I; ++k) gwi[g * I + k] += gxr[g] * double(xt[k]);
          for (int64_t k = 0; k < H; ++k) gwh[g * H + k] += ghr[g] * hprev[n * H + k];
        }
        if (dx)
          for (int64_t k = 0; k < I; ++k) {
            double acc = 0.0;
            for (int64_t g = 0; g < 3 * H; ++g) acc += gxr[g] * double(wi[g * I + k]);
            gdx[(t * N + n) * I + k] += acc;
          }
        for (int64_t k = 0; k < H; ++k) {
          double acc = 0.0;
          for (int64_t g = 0; g < 3 * H; ++g) acc += ghr[g] * double(wh[g * H + k]);
          dh_prev[n * H + k] += acc;
        }
      }
      dh.swap(dh_prev);
    }
    if (dh0)
      for (int64_t i = 0; i < N * H; ++i) dh0[d * N * H + i] = S(dh[i]);
    auto put = [](S* dst, const std::vector<double>& src) {
      if (dst)
        for (std::size_t i = 0; i < src.size(); ++i) dst[i] = S(src[i]);
    };
    put(grads.w_ih[d], gwi);
    put(grads.w_hh[d], gwh);
    put(grads.b_ih[d], gbi);
    put(grads.b_hh[d], gbh);
  }
  if (dx)
    for (int64_t i = 0; i < T * N * I; ++i) dx[i] = S(gdx[i]);
  (void)h_n;
}

template std::size_t gru_reference_workspace_bytes<float>(const GruLayerShape&);
template std::size_t gru_reference_workspace_bytes<double>(const GruLayerShape&);
template void gru_reference_forward<float>(const GruLayerShape&, const float*, const float*,
                                           const GruLayerWeights<float>&, float*, float*, void*);
template void gru_reference_forward<double>(const GruLayerShape&, const double*, const double*,
                                            const GruLayerWeights<double>&, double*, double*, void*);
template void gru_reference_backward<float>(const GruLayerShape&, const float*, const float*,
                                            const GruLayerWeights<float>&, const float*, const float*, const void*,
                                            const float*, const float*, float*, float*, const GruLayerGrads<float>&);
template void gru_reference_backward<double>(const GruLayerShape&, const double*, const double*,
                                             const GruLayerWeights<double>&, const double*, const double*,
                                             const void*, const double*, const double*, double*, double*,
                                             const GruLayerGrads<double>&);

}  // namespace graft::kernels
