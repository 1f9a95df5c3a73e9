// graft::scaled_dot_product_attention: f64 gradient checks of the reference composite (and of the
// fused node, whose f64 backward is the reference kernel) with masks, causal and fully masked
// rows; the fused node (f32) against the reference composite (f64) on random inputs up to 1025
// long; dropout determinism; typed errors that name the shapes.
// Shape letters: B batch, h heads, Sq queries, Sk keys, d head dim of q/k, dv head dim of v.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autograd/attention.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/gradcheck_helpers.h"
#include "tensor/error.h"

using namespace graft;
using graft::testing::expect_gradcheck;
using graft::testing::rnd;

namespace {

using Impl = AttentionImplementation;

// A bool [B, Sk] key padding mask from per-batch lists of masked keys.
Tensor padding_mask(int64_t B, int64_t Sk, const std::vector<std::vector<int64_t>>& masked) {
  std::vector<bool> m(B * Sk, false);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j : masked[b]) m[b * Sk + j] = true;
  return from_vector<bool>(m, {B, Sk});
}

void gradcheck_attention(const Shape& q, const Shape& k, const Shape& v, const AttentionOptions& options, Impl impl) {
  expect_gradcheck([options, impl](auto& x) { return scaled_dot_product_attention(x[0], x[1], x[2], options, impl); },
                   {rnd(q), rnd(k), rnd(v)});
}

// max |got - want| over max |want|, magnitudes below 0.1 counted as 0.1 (with one key the softmax
// is constant and dq, dk are exactly zero: f32 rounding there is not a relative error).
double max_rel_error(const Tensor& got, const Tensor& want) {
  const auto a = got.to_vector<double>(), b = want.to_vector<double>();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::fmax(diff, std::isnan(a[i]) ? INFINITY : std::fabs(a[i] - b[i]));
    scale = std::fmax(scale, std::fabs(b[i]));
  }
  return diff / std::fmax(scale, 0.1);
}

struct AttentionRun {
  Tensor out, dq, dk, dv;
};

// out and the gradients of sum(out * dout) on fresh leaves holding q, k, v in `dtype`.
AttentionRun run_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout,
                           const AttentionOptions& options, Impl impl, DType dtype) {
  auto leaf = [dtype](const Tensor& t) { return t.detach().to(dtype).clone().requires_grad_(); };
  Tensor ql = leaf(q), kl = leaf(k), vl = leaf(v);
  Tensor out = scaled_dot_product_attention(ql, kl, vl, options, impl);
  sum(out * dout.to(dtype)).backward();
  return {out.detach(), ql.grad(), kl.grad(), vl.grad()};
}

// The fused node in f32 against the reference composite in f64 on the same (f32) values.
void expect_fused_matches_reference(int64_t B, int64_t h, int64_t Sq, int64_t Sk, int64_t d, int64_t dv,
                                    AttentionOptions options, const std::string& what) {
  const Tensor q = randn({B, h, Sq, d}), k = randn({B, h, Sk, d}), v = randn({B, h, Sk, dv}),
               dout = randn({B, h, Sq, dv});
  const AttentionRun want = run_attention(q, k, v, dout, options, Impl::reference, DType::f64);
  const AttentionRun got = run_attention(q, k, v, dout, options, Impl::fused, DType::f32);
  const std::pair<const char*, double> errors[] = {{"out", max_rel_error(got.out, want.out)},
                                                   {"dq", max_rel_error(got.dq, want.dq)},
                                                   {"dk", max_rel_error(got.dk, want.dk)},
                                                   {"dv", max_rel_error(got.dv, want.dv)}};
  for (const auto& [name, err] : errors) EXPECT_LE(err, 2e-5) << name << " of " << what;
}

template <class E>
void expect_error(const std::function<void()>& f, const std::vector<std::string>& fragments) {
  try {
    f();
    ADD_FAILURE() << "no error thrown; expected one naming " << fragments.front();
  } catch (const E& e) {
    const std::string message = e.what();
    for (const std::string& fragment : fragments)
      EXPECT_NE(message.find(fragment), std::string::npos) << "'" << message << "' lacks '" << fragment << "'";
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong error type: " << e.what();
  }
}

}  // namespace

TEST(Attention, ReferenceGradcheck) {
  manual_seed(50);
  gradcheck_attention({2, 2, 3, 4}, {2, 2, 5, 4}, {2, 2, 5, 3}, {}, Impl::reference);
  AttentionOptions masked;
  masked.key_padding_mask = padding_mask(2, 5, {{1, 4}, {0}});
  gradcheck_attention({2, 2, 3, 4}, {2, 2, 5, 4}, {2, 2, 5, 3}, masked, Impl::reference);
  AttentionOptions causal;
  causal.causal = true;
  causal.scale = 0.8;
  gradcheck_attention({1, 2, 4, 3}, {1, 2, 4, 3}, {1, 2, 4, 2}, causal, Impl::reference);
  gradcheck_attention({1, 1, 6, 3}, {1, 1, 4, 3}, {1, 1, 4, 2}, causal, Impl::reference);  // Sq > Sk
}

TEST(Attention, ReferenceGradcheckWithFullyMaskedRows) {
  manual_seed(51);
  AttentionOptions options;  // batch 1: every key masked; batch 0 under causal: rows 0, 1 see only masked keys
  options.key_padding_mask = padding_mask(2, 4, {{0, 1}, {0, 1, 2, 3}});
  options.causal = true;
  gradcheck_attention({2, 2, 4, 3}, {2, 2, 4, 3}, {2, 2, 4, 3}, options, Impl::reference);
  // The reference gives exact zeros there, for the output and every gradient (no NaN).
  const Shape shape{2, 2, 4, 3};
  const AttentionRun r =
      run_attention(rnd(shape), rnd(shape), rnd(shape), rnd(shape), options, Impl::reference, DType::f64);
  const auto out = r.out.to_vector<double>(), dq = r.dq.to_vector<double>();
  for (int64_t head = 0; head < 4; ++head)
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t c = 0; c < 3; ++c) {
        const int64_t e = (head * 4 + i) * 3 + c;
        ASSERT_FALSE(std::isnan(out[e]) || std::isnan(dq[e]));
        if (head >= 2 || i < 2) {
          EXPECT_EQ(out[e], 0.0) << "head " << head << " row " << i;
          EXPECT_EQ(dq[e], 0.0) << "head " << head << " row " << i;
        }
      }
}

TEST(Attention, FusedGradcheckInF64) {
  manual_seed(52);
  AttentionOptions options;
  options.key_padding_mask = padding_mask(2, 5, {{3}, {0, 1, 2, 3, 4}});
  gradcheck_attention({2, 2, 3, 4}, {2, 2, 5, 4}, {2, 2, 5, 3}, options, Impl::fused);
  options.causal = true;
  gradcheck_attention({2, 1, 6, 3}, {2, 1, 5, 3}, {2, 1, 5, 2}, options, Impl::fused);
}

TEST(Attention, FusedMatchesReferenceAtOddLengths) {
  manual_seed(53);
  for (int64_t S : {1, 7, 97, 257, 1025})
    for (int64_t d : {32, 64})
      expect_fused_matches_reference(1, 2, S, S, d, d, {}, "S=" + std::to_string(S) + " d=" + std::to_string(d));
  expect_fused_matches_reference(2, 2, 97, 97, 128, 128, {}, "d=128");
}

TEST(Attention, FusedMatchesReferenceWithMasksCausalAndScale) {
  manual_seed(54);
  AttentionOptions options;
  options.key_padding_mask = padding_mask(3, 130, {{5, 6, 100}, {}, {0, 1, 2, 3, 129}});
  expect_fused_matches_reference(3, 2, 130, 130, 64, 64, options, "mask");
  options.causal = true;
  expect_fused_matches_reference(3, 2, 130, 130, 64, 64, options, "mask + causal");
  options.key_padding_mask = padding_mask(2, 97, {{}, {}});
  options.scale = 0.3;
  expect_fused_matches_reference(2, 3, 200, 97, 32, 48, options, "causal Sq > Sk, scale 0.3");
  options.causal = false;
  options.key_padding_mask = padding_mask(2, 257, {{0, 256}, {7}});
  expect_fused_matches_reference(2, 3, 40, 257, 16, 8, options, "Sq < Sk");
}

TEST(Attention, FusedMatchesReferenceOnNonContiguousInputs) {
  manual_seed(55);
  // As a transformer makes them: [B, S, h, d] projections viewed as [B, h, S, d].
  const Tensor q = randn({2, 33, 3, 16}).transpose(1, 2), k = randn({2, 33, 3, 16}).transpose(1, 2),
               v = randn({2, 33, 3, 16}).transpose(1, 2), dout = randn({2, 3, 33, 16});
  const AttentionRun want = run_attention(q, k, v, dout, {}, Impl::reference, DType::f64);
  const AttentionRun got = run_attention(q, k, v, dout, {}, Impl::fused, DType::f32);
  EXPECT_LE(max_rel_error(got.out, want.out), 2e-5);
  EXPECT_LE(max_rel_error(got.dq, want.dq), 2e-5);
  EXPECT_LE(max_rel_error(got.dk, want.dk), 2e-5);
  EXPECT_LE(max_rel_error(got.dv, want.dv), 2e-5);
}

TEST(Attention, AutomaticTakesTheFusedNode) {
  const Tensor q = randn({1, 2, 5, 8}).requires_grad_();
  const Tensor out = scaled_dot_product_attention(q, q, q);
  ASSERT_TRUE(out.grad_fn());
  EXPECT_EQ(out.grad_fn()->name(), "scaled_dot_product_attention");
}

TEST(Attention, DropoutIsDeterministicAndMatchesTheReference) {
  manual_seed(56);
  const Tensor q = randn({2, 2, 97, 32}), k = randn({2, 2, 97, 32}), v = randn({2, 2, 97, 32}),
               dout = randn({2, 2, 97, 32});
  AttentionOptions options;
  options.dropout_p = 0.3;
  options.causal = true;
  auto with_seed = [&](uint64_t seed, Impl impl, DType dtype) {
    Generator g(seed);
    AttentionOptions o = options;
    o.generator = &g;
    return run_attention(q, k, v, dout, o, impl, dtype);
  };
  const AttentionRun a = with_seed(11, Impl::fused, DType::f32), b = with_seed(11, Impl::fused, DType::f32);
  EXPECT_EQ(a.out.to_vector<float>(), b.out.to_vector<float>());  // bit for bit
  EXPECT_EQ(a.dq.to_vector<float>(), b.dq.to_vector<float>());
  const AttentionRun other = with_seed(12, Impl::fused, DType::f32);
  EXPECT_GT(max_rel_error(other.out, a.out), 1e-2);  // another seed, another mask
  const AttentionRun want = with_seed(11, Impl::reference, DType::f64);
  EXPECT_LE(max_rel_error(a.out, want.out), 2e-5);
  EXPECT_LE(max_rel_error(a.dq, want.dq), 2e-5);
  EXPECT_LE(max_rel_error(a.dk, want.dk), 2e-5);
  EXPECT_LE(max_rel_error(a.dv, want.dv), 2e-5);
  // Both draw as many numbers, so the generator ends in the same place.
  Generator g1(3), g2(3);
  AttentionOptions o1 = options, o2 = options;
  o1.generator = &g1;
  o2.generator = &g2;
  scaled_dot_product_attention(q, k, v, o1, Impl::fused);
  scaled_dot_product_attention(q, k, v, o2, Impl::reference);
  EXPECT_EQ(g1.offset(), g2.offset());
}

TEST(Attention, ErrorsAreTypedAndNameTheShapes) {
  const Tensor q = randn({2, 3, 5, 4}), k = randn({2, 3, 7, 4}), v = randn({2, 3, 7, 6});
  auto call = [](const Tensor& q, const Tensor& k, const Tensor& v, AttentionOptions o = {}) {
    return [=] { scaled_dot_product_attention(q, k, v, o); };
  };
  expect_error<ShapeError>(call(randn({3, 5, 4}), k, v),
                           {"scaled_dot_product_attention", "q must be 4-D", "[3, 5, 4]"});
  expect_error<ShapeError>(call(q, randn({1, 3, 7, 4}), v), {"k must be", "B = 2", "[1, 3, 7, 4]"});
  expect_error<ShapeError>(call(q, randn({2, 2, 7, 4}), v), {"h = 3", "[2, 2, 7, 4]"});
  expect_error<ShapeError>(call(q, randn({2, 3, 7, 5}), v), {"d = 4", "[2, 3, 7, 5]"});
  expect_error<ShapeError>(call(q, k, randn({2, 3, 6, 6})), {"v must be", "Sk = 7", "[2, 3, 6, 6]"});
  expect_error<DTypeError>(call(q, k.to(DType::f64), v), {"k is f64", "expected q's dtype f32"});
  expect_error<DTypeError>(call(q.to(DType::i64), k, v), {"q must be floating point"});
  AttentionOptions o;
  o.key_padding_mask = zeros({2, 7});
  expect_error<DTypeError>(call(q, k, v, o), {"key_padding_mask must be bool", "f32"});
  o.key_padding_mask = padding_mask(2, 5, {{}, {}});
  expect_error<ShapeError>(call(q, k, v, o), {"key_padding_mask must be [B, Sk] = [2, 7]", "[2, 5]"});
  AttentionOptions p;
  p.dropout_p = 1.0;
  expect_error<ValueError>(call(q, k, v, p), {"dropout_p must be in [0, 1)", "1.0"});
  p.dropout_p = -0.1;
  expect_error<ValueError>(call(q, k, v, p), {"dropout_p"});
  expect_error<NotImplementedError>(
      [&] { scaled_dot_product_attention(q.to(DType::bf16), k.to(DType::bf16), v.to(DType::bf16), {}, Impl::fused); },
      {"fused", "bf16"});
}

TEST(Attention, FusedReadsHeadSplitViewsInPlaceExactly) {
  // Attention layers pass q, k, v as views [B, S, h, d] -> [B, h, S, d]; the f32 forward reads them
  // through their strides. It must give what it gives on contiguous copies, bit for bit, and so
  // must backward (which takes them contiguous).
  manual_seed(57);
  const int64_t B = 2, S = 97, h = 3, d = 32;
  auto view_of = [&](const Tensor& rows) { return rows.view({B, S, h, d}).transpose(1, 2); };
  const Tensor q0 = randn({B, S, h * d}), k0 = randn({B, S, h * d}), v0 = randn({B, S, h * d});
  const Tensor dout = randn({B, h, S, d});
  AttentionOptions options;
  options.key_padding_mask = gt(rand({B, S}), 0.8);
  Tensor q = q0.detach().requires_grad_(true), k = k0.detach().requires_grad_(true),
         v = v0.detach().requires_grad_(true);
  Tensor qc = view_of(q0).contiguous().requires_grad_(true), kc = view_of(k0).contiguous().requires_grad_(true),
         vc = view_of(v0).contiguous().requires_grad_(true);
  ASSERT_FALSE(view_of(q).is_contiguous());
  const Tensor out = scaled_dot_product_attention(view_of(q), view_of(k), view_of(v), options);
  const Tensor out_c = scaled_dot_product_attention(qc, kc, vc, options);
  EXPECT_EQ(out.to_vector<float>(), out_c.to_vector<float>());
  out.backward(dout);
  out_c.backward(dout);
  EXPECT_EQ(view_of(q.grad()).contiguous().to_vector<float>(), qc.grad().to_vector<float>());
  EXPECT_EQ(view_of(k.grad()).contiguous().to_vector<float>(), kc.grad().to_vector<float>());
  EXPECT_EQ(view_of(v.grad()).contiguous().to_vector<float>(), vc.grad().to_vector<float>());
}
