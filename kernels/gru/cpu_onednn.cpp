// One GRU layer (both directions in one primitive, bidirectional_concat when D = 2) on oneDNN 2.x's
// lbr_gru: forward_training with a workspace (or forward_inference), and backward. Primitives are
// cached by shape, since creating one costs far more than a small step.
// Shape letters as in gru.h: T steps, N batch, I input, H hidden, D directions, G gates.
//
// Gate order, PyTorch -> oneDNN (done here, once per call, at the boundary):
//   oneDNN gate 0 "u" (update)    = PyTorch gate 1, z   (rows H..2H   of w_ih / w_hh)
//   oneDNN gate 1 "r" (reset)     = PyTorch gate 0, r   (rows 0..H)
//   oneDNN gate 2 "o" (candidate) = PyTorch gate 2, n   (rows 2H..3H)
// oneDNN's cell is h' = u * h + (1 - u) * o, o = tanh(W_o x + b_o + r * (U_o h + b_u')), the same
// function as PyTorch's. lbr_gru's bias has 4 gates [L=1, D, 4, H] (ldgo):
//   [u] = b_iz + b_hz, [r] = b_ir + b_hr, [o] = b_in, [u'] = b_hn
// and its gradient maps back as db_iz = db_hz = [u], db_ir = db_hr = [r], db_in = [o], db_hn = [u'].
//
// Weights: PyTorch's w_ih [3H, I] is, gate by gate, oneDNN's ldgoi layout ([L, D, G, H out, I in]);
// we copy the gate blocks in oneDNN's order into an ldgoi buffer and let a oneDNN reorder transpose
// it into whatever the primitive chose (ldigo for forward, typically). Gradients come back the
// same way in reverse. oneDNN 2.x's RNN backward accumulates into diff weights and bias, so those
// buffers are zeroed before it runs.
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "kernels/gru/gru.h"
#include "tensor/error.h"

namespace graft::kernels {

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using dims = dnnl::memory::dims;

constexpr int kTorchGate[3] = {1, 0, 2};  // oneDNN gate g takes PyTorch gate kTorchGate[g]

struct Descs {
  dnnl::memory::desc src_layer, src_iter, weights_layer, weights_iter, bias, dst_layer, dst_iter;
};

Descs make_descs(const GruLayerShape& s, bool any_weights) {
  const tag w = any_weights ? tag::any : tag::ldgoi;
  return Descs{
      {{s.T, s.N, s.I}, dt::f32, tag::tnc},
      {{1, s.D, s.N, s.H}, dt::f32, tag::ldnc},
      {{1, s.D, s.I, 3, s.H}, dt::f32, w},
      {{1, s.D, s.H, 3, s.H}, dt::f32, w},
      {{1, s.D, 4, s.H}, dt::f32, tag::ldgo},
      {{s.T, s.N, s.D * s.H}, dt::f32, tag::tnc},
      {{1, s.D, s.N, s.H}, dt::f32, tag::ldnc},
  };
}

dnnl::rnn_direction direction(const GruLayerShape& s) {
  return s.D == 2 ? dnnl::rnn_direction::bidirectional_concat : dnnl::rnn_direction::unidirectional_left2right;
}

struct Primitives {
  dnnl::lbr_gru_forward::primitive_desc fwd_pd;
  dnnl::lbr_gru_forward fwd;
  dnnl::lbr_gru_backward::primitive_desc bwd_pd;  // empty for inference
  dnnl::lbr_gru_backward bwd;
};

using Key = std::tuple<bool, int64_t, int64_t, int64_t, int64_t, int64_t>;

struct Engine {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  std::mutex mutex;
  std::map<Key, Primitives> cache;
};

Engine& engine() {
  static Engine e;
  return e;
}

Primitives primitives(const GruLayerShape& s, bool training) {
  Engine& e = engine();
  const Key key{training, s.T, s.N, s.I, s.H, s.D};
  std::lock_guard<std::mutex> lock(e.mutex);
  auto it = e.cache.find(key);
  if (it != e.cache.end()) return it->second;
  const Descs d = make_descs(s, /*any_weights=*/true);
  Primitives p;
  dnnl::lbr_gru_forward::desc fwd_desc(training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference,
                                       direction(s), d.src_layer, d.src_iter, d.weights_layer, d.weights_iter, d.bias,
                                       d.dst_layer, d.dst_iter);
  p.fwd_pd = dnnl::lbr_gru_forward::primitive_desc(fwd_desc, e.engine);
  p.fwd = dnnl::lbr_gru_forward(p.fwd_pd);
  if (training) {
    dnnl::lbr_gru_backward::desc bwd_desc(dnnl::prop_kind::backward, direction(s), d.src_layer, d.src_iter,
                                          d.weights_layer, d.weights_iter, d.bias, d.dst_layer, d.dst_iter,
                                          d.src_layer, d.src_iter, d.weights_layer, d.weights_iter, d.bias,
                                          d.dst_layer, d.dst_iter);
    p.bwd_pd = dnnl::lbr_gru_backward::primitive_desc(bwd_desc, e.engine, p.fwd_pd);
    p.bwd = dnnl::lbr_gru_backward(p.bwd_pd);
  }
  if (e.cache.size() > 256) e.cache.clear();  // bound memory for shape-varying workloads
  e.cache.emplace(key, p);
  return p;
}

// PyTorch's per-direction [3H, cols] blocks -> one ldgoi buffer [1, D, G, H, cols] in oneDNN's gate order.
std::vector<float> to_ldgoi(const GruLayerShape& s, const float* const w[2], int64_t cols) {
  const int64_t block = s.H * cols;
  std::vector<float> out(s.D * 3 * block);
  for (int64_t d = 0; d < s.D; ++d)
    for (int g = 0; g < 3; ++g)
      std::memcpy(out.data() + (d * 3 + g) * block, w[d] + kTorchGate[g] * block, sizeof(float) * block);
  return out;
}

std::vector<float> to_bias(const GruLayerShape& s, const GruLayerWeights<float>& w) {
  const int64_t H = s.H;
  std::vector<float> b(s.D * 4 * H, 0.f);
  for (int64_t d = 0; d < s.D; ++d) {
    const float *bi = w.b_ih[d], *bh = w.b_hh[d];
    float* o = b.data() + d * 4 * H;
    for (int64_t j = 0; j < H; ++j) {
      const float ir = bi ? bi[j] : 0.f, iz = bi ? bi[H + j] : 0.f, in = bi ? bi[2 * H + j] : 0.f;
      const float hr = bh ? bh[j] : 0.f, hz = bh ? bh[H + j] : 0.f, hn = bh ? bh[2 * H + j] : 0.f;
      o[j] = iz + hz;
      o[H + j] = ir + hr;
      o[2 * H + j] = in;
      o[3 * H + j] = hn;
    }
  }
  return b;
}

// A memory in the primitive's format holding `user` (ldgoi); no copy when the formats agree.
dnnl::memory weights_for(const dnnl::memory::desc& want, const dnnl::memory::desc& user_md, float* user,
                         dnnl::stream& stream) {
  Engine& e = engine();
  dnnl::memory user_mem(user_md, e.engine, user);
  if (want == user_md) return user_mem;
  dnnl::memory mem(want, e.engine);
  dnnl::reorder(user_mem, mem).execute(stream, user_mem, mem);
  return mem;
}

void* mutable_ptr(const void* p) { return const_cast<void*>(p); }

}  // namespace

bool gru_onednn_available() { return true; }

std::size_t gru_onednn_workspace_bytes(const GruLayerShape& s) {
  return primitives(s, /*training=*/true).fwd_pd.workspace_desc().get_size();
}

void gru_onednn_forward(const GruLayerShape& s, const float* x, const float* h0, const GruLayerWeights<float>& w,
                     float* y, float* h_n, void* workspace) {
  const bool training = workspace != nullptr;
  Primitives p = primitives(s, training);
  Engine& e = engine();
  dnnl::stream stream(e.engine);  // a stream per call: safe when several threads run GRUs
  const Descs u = make_descs(s, /*any_weights=*/false);
  std::vector<float> wl = to_ldgoi(s, w.w_ih, s.I), wi = to_ldgoi(s, w.w_hh, s.H), b = to_bias(s, w);
  std::vector<float> zeros;
  if (!h0) zeros.assign(s.D * s.N * s.H, 0.f);
  dnnl::memory wl_mem = weights_for(p.fwd_pd.weights_layer_desc(), u.weights_layer, wl.data(), stream);
  dnnl::memory wi_mem = weights_for(p.fwd_pd.weights_iter_desc(), u.weights_iter, wi.data(), stream);
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC_LAYER, dnnl::memory(u.src_layer, e.engine, mutable_ptr(x))},
      {DNNL_ARG_SRC_ITER, dnnl::memory(u.src_iter, e.engine, h0 ? mutable_ptr(h0) : zeros.data())},
      {DNNL_ARG_WEIGHTS_LAYER, wl_mem},
      {DNNL_ARG_WEIGHTS_ITER, wi_mem},
      {DNNL_ARG_BIAS, dnnl::memory(u.bias, e.engine, b.data())},
      {DNNL_ARG_DST_LAYER, dnnl::memory(u.dst_layer, e.engine, y)},
      {DNNL_ARG_DST_ITER, dnnl::memory(u.dst_iter, e.engine, h_n)},
  };
  if (training) args.emplace(DNNL_ARG_WORKSPACE, dnnl::memory(p.fwd_pd.workspace_desc(), e.engine, workspace));
  p.fwd.execute(stream, args);
  stream.wait();
}

void gru_onednn_backward(const GruLayerShape& s, const float* x, const float* h0, const GruLayerWeights<float>& w,
                      const float* y, const float* h_n, const void* workspace, const float* dy, const float* dh_n,
                      float* dx, float* dh0, const GruLayerGrads<float>& grads) {
  if (!workspace) throw ValueError("gru_onednn_backward: no workspace (was the forward run for inference?)");
  Primitives p = primitives(s, /*training=*/true);
  Engine& e = engine();
  dnnl::stream stream(e.engine);
  const Descs u = make_descs(s, /*any_weights=*/false);
  std::vector<float> wl = to_ldgoi(s, w.w_ih, s.I), wi = to_ldgoi(s, w.w_hh, s.H), b = to_bias(s, w);
  std::vector<float> zeros;
  if (!h0) zeros.assign(s.D * s.N * s.H, 0.f);
  const auto& pd = p.bwd_pd;
  dnnl::memory wl_mem = weights_for(pd.weights_layer_desc(), u.weights_layer, wl.data(), stream);
  dnnl::memory wi_mem = weights_for(pd.weights_iter_desc(), u.weights_iter, wi.data(), stream);
  // Outputs the caller does not want still need somewhere to go.
  std::vector<float> dx_scratch, dh0_scratch, db(s.D * 4 * s.H, 0.f);
  if (!dx) dx_scratch.resize(s.T * s.N * s.I);
  if (!dh0) dh0_scratch.resize(s.D * s.N * s.H);
  dnnl::memory dwl_mem(pd.diff_weights_layer_desc(), e.engine), dwi_mem(pd.diff_weights_iter_desc(), e.engine);
  std::memset(dwl_mem.get_data_handle(), 0, pd.diff_weights_layer_desc().get_size());
  std::memset(dwi_mem.get_data_handle(), 0, pd.diff_weights_iter_desc().get_size());
  p.bwd.execute(stream, {
      {DNNL_ARG_SRC_LAYER, dnnl::memory(u.src_layer, e.engine, mutable_ptr(x))},
      {DNNL_ARG_SRC_ITER, dnnl::memory(u.src_iter, e.engine, h0 ? mutable_ptr(h0) : zeros.data())},
      {DNNL_ARG_WEIGHTS_LAYER, wl_mem},
      {DNNL_ARG_WEIGHTS_ITER, wi_mem},
      {DNNL_ARG_BIAS, dnnl::memory(u.bias, e.engine, b.data())},
      {DNNL_ARG_DST_LAYER, dnnl::memory(u.dst_layer, e.engine, mutable_ptr(y))},
      {DNNL_ARG_DST_ITER, dnnl::memory(u.dst_iter, e.engine, mutable_ptr(h_n))},
      {DNNL_ARG_WORKSPACE, dnnl::memory(pd.workspace_desc(), e.engine, mutable_ptr(workspace))},
      {DNNL_ARG_DIFF_DST_LAYER, dnnl::memory(u.dst_layer, e.engine, mutable_ptr(dy))},
      {DNNL_ARG_DIFF_DST_ITER, dnnl::memory(u.dst_iter, e.engine, mutable_ptr(dh_n))},
      {DNNL_ARG_DIFF_SRC_LAYER, dnnl::memory(u.src_layer, e.engine, dx ? dx : dx_scratch.data())},
      {DNNL_ARG_DIFF_SRC_ITER, dnnl::memory(u.src_iter, e.engine, dh0 ? dh0 : dh0_scratch.data())},
      {DNNL_ARG_DIFF_WEIGHTS_LAYER, dwl_mem},
      {DNNL_ARG_DIFF_WEIGHTS_ITER, dwi_mem},
      {DNNL_ARG_DIFF_BIAS, dnnl::memory(u.bias, e.engine, db.data())},
  });
  // Diff weights back to ldgoi, then gate blocks back to PyTorch's order.
  auto put_weights = [&](dnnl::memory& mem, const dnnl::memory::desc& user_md, float* const out[2], int64_t cols) {
    if (!out[0] && !(s.D == 2 && out[1])) return;
    std::vector<float> buf(s.D * 3 * s.H * cols);
    dnnl::memory user_mem(user_md, e.engine, buf.data());
    if (mem.get_desc() == user_md) std::memcpy(buf.data(), mem.get_data_handle(), sizeof(float) * buf.size());
    else dnnl::reorder(mem, user_mem).execute(stream, mem, user_mem);
    stream.wait();
    const int64_t block = s.H * cols;
    for (int64_t d = 0; d < s.D; ++d)
      if (out[d])
        for (int g = 0; g < 3; ++g)
          std::memcpy(out[d] + kTorchGate[g] * block, buf.data() + (d * 3 + g) * block, sizeof(float) * block);
  };
  stream.wait();
  put_weights(dwl_mem, u.weights_layer, grads.w_ih, s.I);
  put_weights(dwi_mem, u.weights_iter, grads.w_hh, s.H);
  const int64_t H = s.H;
  for (int64_t d = 0; d < s.D; ++d) {
    const float* o = db.data() + d * 4 * H;
    for (int64_t j = 0; j < H; ++j) {
      if (float* bi = grads.b_ih[d]) bi[j] = o[H + j], bi[H + j] = o[j], bi[2 * H + j] = o[2 * H + j];
      if (float* bh = grads.b_hh[d]) bh[j] = o[H + j], bh[H + j] = o[j], bh[2 * H + j] = o[3 * H + j];
    }
  }
}

}  // namespace graft::kernels
