// Autocast on the CPU, where it is emulated: under AutocastGuard(bf16 / f16), matmul, linear and
// attention give exactly the manual emulation (operands rounded to the dtype and back, the op in
// f32, the result rounded) and differ from plain f32; outputs and parameter gradients stay f32 and
// match the emulation's gradients; guards nest, disable and restore; f64 and other ops are untouched.
#include <gtest/gtest.h>

#include <optional>
#include <thread>
#include <vector>

#include "autograd/attention.h"
#include "autograd/autocast.h"
#include "autograd/ops.h"
#include "tensor/error.h"
#include "tensor/factory.h"
#include "tensor/random.h"

using namespace graft;

namespace {

// What a bf16/f16 tensor holds, in f32: the emulation's rounding, spelt out by hand.
Tensor round_to(const Tensor& x, DType dtype) { return x.to(dtype).to(DType::f32); }

Tensor random(const Shape& shape, uint64_t seed) {
  Generator generator(seed);
  return randn(shape, DType::f32, &generator);
}

// A fresh leaf holding x's values, so the autocast run and the manual run have separate gradients.
Tensor leaf(const Tensor& x) { return x.detach().clone().requires_grad_(); }

std::vector<float> values(const Tensor& x) { return x.contiguous().to_vector<float>(); }

}  // namespace

TEST(Autocast, GuardNestsDisablesAndRestores) {
  EXPECT_FALSE(autocast_dtype().has_value());
  {
    AutocastGuard bf16(DType::bf16);
    EXPECT_EQ(autocast_dtype(), DType::bf16);
    {
      AutocastGuard f16(DType::f16);
      EXPECT_EQ(autocast_dtype(), DType::f16);
      {
        AutocastGuard off(DType::f32);
        EXPECT_FALSE(autocast_dtype().has_value());
      }
      EXPECT_EQ(autocast_dtype(), DType::f16);
      {
        AutocastGuard disabled(DType::bf16, /*enabled=*/false);
        EXPECT_FALSE(autocast_dtype().has_value());
      }
      EXPECT_EQ(autocast_dtype(), DType::f16);
    }
    EXPECT_EQ(autocast_dtype(), DType::bf16);
    // Thread-local: another thread starts with autocast off.
    std::optional<DType> seen = DType::f64;
    std::thread([&] { seen = autocast_dtype(); }).join();
    EXPECT_FALSE(seen.has_value());
  }
  EXPECT_FALSE(autocast_dtype().has_value());
}

TEST(Autocast, RejectsNonFloatingCastDtypes) {
  EXPECT_THROW({ AutocastGuard guard(DType::i64); }, DTypeError);
  EXPECT_THROW({ AutocastGuard guard(DType::f64); }, DTypeError);
  EXPECT_FALSE(autocast_dtype().has_value());  // a failed guard changes nothing
}

TEST(Autocast, LinearEqualsBf16EmulationAndGradientsMatch) {
  const Tensor x = random({7, 33}, 1), w = random({5, 33}, 2), b = random({5}, 3), dout = random({7, 5}, 4);
  Tensor xa = leaf(x), wa = leaf(w), ba = leaf(b);
  Tensor ya;
  {
    AutocastGuard guard(DType::bf16);
    ya = linear(xa, wa, ba);
  }
  EXPECT_EQ(ya.dtype(), DType::f32);
  sum(ya * dout).backward();

  Tensor xm = leaf(x), wm = leaf(w), bm = leaf(b);
  const Tensor ym =
      round_to(linear(round_to(xm, DType::bf16), round_to(wm, DType::bf16), round_to(bm, DType::bf16)), DType::bf16);
  sum(ym * dout).backward();

  EXPECT_EQ(values(ya), values(ym));
  EXPECT_NE(values(ya), values(linear(x, w, b)));  // bf16 rounding is visible
  for (const auto& [got, want] : {std::pair{xa, xm}, std::pair{wa, wm}, std::pair{ba, bm}}) {
    ASSERT_TRUE(got.grad().defined());
    EXPECT_EQ(got.grad().dtype(), DType::f32);  // master weights keep f32 gradients
    EXPECT_EQ(values(got.grad()), values(want.grad()));
  }
}

TEST(Autocast, LinearOnVectorAndBatchedInputs) {
  const Tensor w = random({6, 9}, 5), b = random({6}, 6);
  for (const Shape& shape : {Shape{9}, Shape{2, 3, 9}}) {
    const Tensor x = random(shape, 7);
    Tensor y;
    {
      AutocastGuard guard(DType::bf16);
      y = linear(x, w, b);
    }
    const Tensor want =
        round_to(linear(round_to(x, DType::bf16), round_to(w, DType::bf16), round_to(b, DType::bf16)), DType::bf16);
    EXPECT_EQ(y.dtype(), DType::f32);
    EXPECT_EQ(y.shape(), want.shape());
    EXPECT_EQ(values(y), values(want)) << shape_str(shape);
  }
}

TEST(Autocast, MatmulEqualsEmulationIncludingViewsAndBroadcast) {
  // Batched with a broadcast right operand, a transposed (non-contiguous) view, and 1-D operands.
  const Tensor a = random({4, 3, 17}, 8), b = random({17, 9}, 9), bt = random({9, 17}, 10);
  const Tensor v = random({17}, 11);
  const std::vector<std::pair<Tensor, Tensor>> cases{{a, b}, {a, transpose(bt, 0, 1)}, {v, b}, {a, v}, {v, v}};
  for (DType dtype : {DType::bf16, DType::f16}) {
    for (const auto& [lhs, rhs] : cases) {
      Tensor la = leaf(lhs), ra = leaf(rhs);
      Tensor got;
      {
        AutocastGuard guard(dtype);
        got = matmul(la, ra);
      }
      sum(got * got).backward();
      Tensor lm = leaf(lhs), rm = leaf(rhs);
      const Tensor want = round_to(matmul(round_to(lm, dtype), round_to(rm, dtype)), dtype);
      sum(want * want).backward();
      EXPECT_EQ(got.dtype(), DType::f32);
      EXPECT_EQ(values(got), values(want)) << dtype_name(dtype) << " " << shape_str(lhs.shape());
      EXPECT_EQ(values(la.grad()), values(lm.grad()));
      EXPECT_EQ(values(ra.grad()), values(rm.grad()));
    }
  }
  Tensor plain = matmul(a, b), cast;
  {
    AutocastGuard guard(DType::bf16);
    cast = matmul(a, b);
  }
  EXPECT_NE(values(plain), values(cast));
}

TEST(Autocast, AttentionEqualsEmulationForBothImplementations) {
  const Tensor q = random({2, 3, 5, 8}, 12), k = random({2, 3, 7, 8}, 13), v = random({2, 3, 7, 4}, 14);
  const Tensor dout = random({2, 3, 5, 4}, 15);
  AttentionOptions options;
  options.key_padding_mask = from_vector<bool>({false, false, true, false, false, false, true,  //
                                                false, false, false, false, false, false, false},
                                               {2, 7});
  for (AttentionImplementation impl : {AttentionImplementation::reference, AttentionImplementation::fused}) {
    Tensor qa = leaf(q), ka = leaf(k), va = leaf(v);
    Tensor got;
    {
      AutocastGuard guard(DType::bf16);
      got = scaled_dot_product_attention(qa, ka, va, options, impl);
    }
    sum(got * dout).backward();
    Tensor qm = leaf(q), km = leaf(k), vm = leaf(v);
    const Tensor want = round_to(scaled_dot_product_attention(round_to(qm, DType::bf16), round_to(km, DType::bf16),
                                                              round_to(vm, DType::bf16), options, impl),
                                 DType::bf16);
    sum(want * dout).backward();
    EXPECT_EQ(got.dtype(), DType::f32);
    EXPECT_EQ(values(got), values(want));
    EXPECT_NE(values(got), values(scaled_dot_product_attention(q, k, v, options, impl)));
    for (const auto& [a, m] : {std::pair{qa, qm}, std::pair{ka, km}, std::pair{va, vm}}) {
      EXPECT_EQ(a.grad().dtype(), DType::f32);
      EXPECT_EQ(values(a.grad()), values(m.grad()));
    }
  }
}

TEST(Autocast, DisabledGuardAndOtherOpsStayF32) {
  const Tensor x = random({6, 10}, 16), w = random({4, 10}, 17);
  AutocastGuard guard(DType::bf16);
  {
    AutocastGuard off(DType::f32);
    Tensor plain;
    {
      AutocastGuard none(DType::bf16, false);
      plain = linear(x, w);
    }
    EXPECT_EQ(values(linear(x, w)), values(plain));
  }
  // Activations, softmax and reductions are not autocast: the same bits as outside the guard.
  const Tensor s = softmax(relu(x), -1), total = sum(x);
  AutocastGuard off(DType::f32);
  EXPECT_EQ(values(s), values(softmax(relu(x), -1)));
  EXPECT_EQ(values(total), values(sum(x)));
}

TEST(Autocast, F64IsNeverCast) {
  Generator generator(18);
  const Tensor x = randn({5, 12}, DType::f64, &generator), w = randn({3, 12}, DType::f64, &generator);
  const Tensor want = linear(x, w), want_mm = matmul(x, transpose(w, 0, 1));
  AutocastGuard guard(DType::bf16);
  const Tensor got = linear(x, w), got_mm = matmul(x, transpose(w, 0, 1));
  EXPECT_EQ(got.dtype(), DType::f64);
  EXPECT_EQ(got.to_vector<double>(), want.to_vector<double>());
  EXPECT_EQ(got_mm.to_vector<double>(), want_mm.to_vector<double>());
}

TEST(Autocast, MismatchedOperandsKeepTheirOwnErrors) {
  // Not all f32: autocast steps aside and the op reports the dtype mismatch as usual.
  Generator generator(19);
  const Tensor a = randn({3, 4}, DType::f32, &generator), b = randn({4, 2}, DType::f64, &generator);
  AutocastGuard guard(DType::bf16);
  EXPECT_THROW(matmul(a, b), DTypeError);
  EXPECT_THROW(matmul(a, random({5, 2}, 20)), ShapeError);
}
