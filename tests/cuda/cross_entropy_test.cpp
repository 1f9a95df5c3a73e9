// The fused CUDA cross-entropy against the CPU's composed one on the same inputs: loss and input
// gradient (through backward()) with class weights, label smoothing, ignore_index, every
// reduction, [N, C] / [N, C, d...] / [C] inputs and non-contiguous logits.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuda_test_util.h"

using namespace graft;
using namespace graft::testing;

namespace {

const Device kCuda = Device::cuda(0);

struct Result {
  Tensor loss, grad;
};

// Forward and backward on `device` from the same CPU inputs; the logits are a fresh leaf there
// (viewed through .t() when transposed_leaf: the leaf is [C, M]).
Result run(const Tensor& logits, const Tensor& target, CrossEntropyOptions o, const Tensor& grad, Device device,
           bool transposed_leaf = false) {
  Tensor leaf = device.is_cpu() ? logits.clone() : logits.to(device);
  if (transposed_leaf) leaf = (device.is_cpu() ? logits.t().contiguous() : logits.t().contiguous().to(device));
  leaf.requires_grad_(true);
  const Tensor input = transposed_leaf ? leaf.t() : leaf;
  if (o.weight.defined()) o.weight = o.weight.to(device);
  Tensor loss = cross_entropy(input, target.to(device), o);
  if (grad.defined()) loss.backward(grad.to(device));
  else loss.backward();
  Tensor g = leaf.grad();
  if (transposed_leaf) g = g.t();
  return {loss, g.contiguous()};
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to(Device::cpu()).to(DType::f64).to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}

// Class-index targets of `shape` in [0, C), every fifth set to ignore_index when that is outside
// the classes (a class id as ignore_index ignores its own rows).
Tensor make_target(const Shape& shape, int64_t C, int64_t ignore_index, uint64_t salt) {
  Generator gen(test_seed() + 500 + salt);
  std::vector<int64_t> v = randint(0, C, shape, DType::i64, &gen).to_vector<int64_t>();
  if (ignore_index < 0 || ignore_index >= C)
    for (size_t i = 0; i < v.size(); i += 5) v[i] = ignore_index;
  return from_vector<int64_t>(v, shape);
}

Shape target_shape(const Shape& input) {
  if (input.size() == 1) return {};
  Shape s{input[0]};
  s.insert(s.end(), input.begin() + 2, input.end());
  return s;
}

const char* reduction_name(Reduction r) {
  return r == Reduction::none ? "none" : r == Reduction::sum ? "sum" : "mean";
}

// Every combination of smoothing, weights, ignore_index and reduction on one input shape;
// `dtype` runs on CUDA, the CPU reference in f32 (f64 for f64) on the same rounded values.
void compare_all(const Shape& shape, DType dtype, uint64_t& salt) {
  const int64_t C = shape.size() == 1 ? shape[0] : shape[1];
  const DType ref_dtype = dtype == DType::f64 ? DType::f64 : DType::f32;
  const double rtol = dtype == DType::f64 ? 1e-10 : default_rtol(dtype);
  const double atol_scale = dtype == DType::f64 ? 1e-12 : dtype == DType::f32 ? 1e-6 : 1e-3;
  const Tensor logits = (random_cpu(shape, dtype, ++salt).to(DType::f32) * 2.0).to(dtype);
  Generator wgen(test_seed() + ++salt);
  const Tensor weight = (rand({C}, DType::f32, &wgen) + 0.5).to(dtype);
  for (int64_t ignore_index : {int64_t{-100}, int64_t{2}}) {
    const Tensor target = make_target(target_shape(shape), C, ignore_index, ++salt);
    for (double eps : {0.0, 0.1}) {
      for (bool weighted : {false, true}) {
        for (Reduction reduction : {Reduction::none, Reduction::sum, Reduction::mean}) {
          CrossEntropyOptions o;
          o.ignore_index = ignore_index;
          o.label_smoothing = eps;
          o.reduction = reduction;
          if (weighted) o.weight = weight;
          const Tensor grad = reduction == Reduction::none ? random_cpu(target_shape(shape), dtype, ++salt) : Tensor();
          const Result got = run(logits, target, o, grad, kCuda);
          CrossEntropyOptions ref_o = o;
          if (weighted) ref_o.weight = weight.to(ref_dtype);
          const Result want = run(logits.to(ref_dtype), target, ref_o,
                                  grad.defined() ? grad.to(ref_dtype) : Tensor(), Device::cpu());
          const std::string what = std::string(dtype_name(dtype)) + " " + shape_str(shape) + " ignore " +
                                   std::to_string(ignore_index) + " eps " + std::to_string(eps) +
                                   (weighted ? " weighted " : " ") + reduction_name(reduction);
          ASSERT_TRUE(got.loss.grad_fn() && got.loss.grad_fn()->name() == "cross_entropy") << "not fused: " << what;
          EXPECT_TRUE(all_close(got.loss, want.loss, rtol, atol_scale * max_abs(want.loss))) << "loss, " << what;
          EXPECT_TRUE(all_close(got.grad, want.grad, rtol, atol_scale * max_abs(want.grad))) << "grad, " << what;
        }
      }
    }
  }
}

}  // namespace

TEST(CudaCrossEntropy, MatchesCpuOnRows) {
  GRAFT_REQUIRE_CUDA();
  uint64_t salt = 0;
  for (const Shape& shape : std::vector<Shape>{{37, 11}, {1, 3}, {7, 1000}, {1037, 5}}) compare_all(shape, DType::f32, salt);
}

TEST(CudaCrossEntropy, MatchesCpuOnSpatialAndSingleInputs) {
  GRAFT_REQUIRE_CUDA();
  uint64_t salt = 0;
  compare_all({3, 5, 4, 2}, DType::f32, salt);  // [N, C, d1, d2] with [N, d1, d2] targets
  compare_all({2, 7, 33}, DType::f32, salt);
  compare_all({11}, DType::f32, salt);  // [C] with a 0-d target
}

TEST(CudaCrossEntropy, MatchesCpuInOtherDtypes) {
  GRAFT_REQUIRE_CUDA();
  uint64_t salt = 0;
  for (DType dtype : {DType::f64, DType::bf16, DType::f16}) {
    compare_all({37, 11}, dtype, salt);
    compare_all({3, 5, 4}, dtype, salt);
  }
}

TEST(CudaCrossEntropy, NonContiguousLogits) {
  GRAFT_REQUIRE_CUDA();
  const Tensor logits = random_cpu({33, 9});
  const Tensor target = make_target({33}, 9, -100, 0);
  CrossEntropyOptions o;
  o.label_smoothing = 0.1;
  const Result got = run(logits, target, o, Tensor(), kCuda, true);
  const Result want = run(logits, target, o, Tensor(), Device::cpu(), true);
  EXPECT_TRUE(all_close(got.loss, want.loss, 1e-5));
  EXPECT_TRUE(all_close(got.grad, want.grad, 1e-5, 1e-6 * max_abs(want.grad)));
}

TEST(CudaCrossEntropy, BitIdenticalRunToRun) {
  GRAFT_REQUIRE_CUDA();
  const Tensor logits = random_cpu({4096, 37});
  const Tensor target = make_target({4096}, 37, -100, 0);
  CrossEntropyOptions o;
  o.label_smoothing = 0.1;
  const Result a = run(logits, target, o, Tensor(), kCuda);
  const Result b = run(logits, target, o, Tensor(), kCuda);
  EXPECT_TRUE(all_close(a.loss, b.loss, 0.0));
  EXPECT_TRUE(all_close(a.grad, b.grad, 0.0));
}

TEST(CudaCrossEntropy, AllTargetsIgnoredGiveNanMeanAsCpu) {
  GRAFT_REQUIRE_CUDA();
  const Tensor logits = random_cpu({4, 3});
  const Tensor target = from_vector<int64_t>({-100, -100, -100, -100});
  const double got = cross_entropy(logits.to(kCuda), target.to(kCuda)).item();
  const double want = cross_entropy(logits, target).item();
  EXPECT_TRUE(std::isnan(got));
  EXPECT_TRUE(std::isnan(want));
}

TEST(CudaCrossEntropy, ErrorsAreTyped) {
  GRAFT_REQUIRE_CUDA();
  const Tensor x = random_cpu({3, 4}).to(kCuda);
  const auto on_cuda = [](std::vector<int64_t> v) { return from_vector<int64_t>(v).to(kCuda); };
  try {
    cross_entropy(x, on_cuda({0, 4, 1}));
    ADD_FAILURE() << "an out-of-range target did not throw";
  } catch (const IndexError& e) {
    EXPECT_NE(std::string(e.what()).find("target 4 is out of range for 4 classes"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cross_entropy(x, on_cuda({0, -1, 1})), IndexError);
  EXPECT_THROW(cross_entropy(x, from_vector<int64_t>({0, 1, 2})), DeviceError);
  EXPECT_THROW(cross_entropy(x, on_cuda({0, 1})), ShapeError);
  CrossEntropyOptions o;
  o.weight = ones({3}, TensorOptions(DType::f32).with_device(kCuda));
  EXPECT_THROW(cross_entropy(x, on_cuda({0, 1, 2}), o), ShapeError);
  o.weight = ones({4}, TensorOptions(DType::f64).with_device(kCuda));
  EXPECT_THROW(cross_entropy(x, on_cuda({0, 1, 2}), o), DTypeError);
  o.weight = ones({4});
  EXPECT_THROW(cross_entropy(x, on_cuda({0, 1, 2}), o), DeviceError);
}
