// Reductions, arg-reductions, softmax / log_softmax and sum_to on CUDA against the CPU on the same
// random inputs: every dtype, inner / outer / middle / several / all dims, odd and long rows,
// non-contiguous views, NaN and -inf, errors, and run-to-run bit-identical results.
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "tensor/ops.h"

using namespace graft;
using namespace graft::testing;
using graft::ops::ReduceOp;

namespace {

using View = std::function<Tensor(const Tensor&)>;

Tensor gpu(const Tensor& t) { return t.to(Device::cuda()); }
Tensor same(const Tensor& t) { return t; }

// Sums carry a last-bit difference from the summation order; the absolute part covers results
// that cancel to near zero.
double atol_for(DType dtype) { return default_rtol(dtype) * 1e-2; }

std::string dims_str(const std::vector<int64_t>& dims) {
  std::string s = "{";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "}";
}

std::string what(const char* op, const Tensor& x, const std::string& extra) {
  return std::string(op) + " of " + dtype_name(x.dtype()) + " " + shape_str(x.shape()) + " " + extra;
}

const char* op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return "sum";
    case ReduceOp::mean: return "mean";
    case ReduceOp::max: return "max";
    case ReduceOp::min: return "min";
    case ReduceOp::prod: return "prod";
  }
  return "?";
}

// view(x) reduced on the GPU against view(x) reduced on the CPU.
void expect_reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, double rtol,
                   double atol, const View& view = same) {
  const Tensor want = ops::reduce(op, view(x), dims, keepdim);
  const Tensor got = ops::reduce(op, view(gpu(x)), dims, keepdim);
  const std::string ctx = what(op_name(op), x, "dims " + dims_str(dims) + " keepdim " + std::to_string(keepdim));
  EXPECT_TRUE(got.device().is_cuda()) << ctx;
  EXPECT_EQ(got.dtype(), want.dtype()) << ctx;
  EXPECT_TRUE(all_close(got, want, rtol, atol)) << ctx;
}

// max / min with indices: values and indices exactly equal.
void expect_extreme(ReduceOp op, const Tensor& x, int64_t dim, bool keepdim, const View& view = same) {
  const auto [want_v, want_i] = ops::reduce_with_index(op, view(x), dim, keepdim);
  const auto [got_v, got_i] = ops::reduce_with_index(op, view(gpu(x)), dim, keepdim);
  const std::string ctx = what(op_name(op), x, "dim " + std::to_string(dim) + " keepdim " + std::to_string(keepdim));
  EXPECT_TRUE(all_close(got_v, want_v, 0.0)) << ctx;
  EXPECT_EQ(got_i.dtype(), DType::i64) << ctx;
  EXPECT_EQ(got_i.shape(), want_i.shape()) << ctx;
  EXPECT_EQ(got_i.to_vector<int64_t>(), want_i.to_vector<int64_t>()) << ctx;
}

void expect_arg(bool is_max, const Tensor& x, int64_t dim, bool keepdim, const View& view = same) {
  const Tensor want = ops::arg_reduce(is_max, view(x), dim, keepdim);
  const Tensor got = ops::arg_reduce(is_max, view(gpu(x)), dim, keepdim);
  const std::string ctx = what(is_max ? "argmax" : "argmin", x, "dim " + std::to_string(dim));
  EXPECT_EQ(got.shape(), want.shape()) << ctx;
  EXPECT_EQ(got.to_vector<int64_t>(), want.to_vector<int64_t>()) << ctx;
}

// The CPU softmax is f32 / f64 only: 16-bit inputs are compared with the CPU result on their
// exact f32 values, rounded to the 16-bit type as the GPU rounds its float result.
Tensor cpu_softmax(const Tensor& x, int64_t dim, bool log) {
  if (x.dtype() == DType::f32 || x.dtype() == DType::f64) return ops::softmax(x, dim, log);
  return ops::softmax(x.to(DType::f32), dim, log).to(x.dtype());
}

void expect_softmax(const Tensor& x, int64_t dim, bool log, const View& view = same) {
  const Tensor want = cpu_softmax(view(x), dim, log);
  const Tensor got = ops::softmax(view(gpu(x)), dim, log);
  const std::string ctx = what(log ? "log_softmax" : "softmax", x, "dim " + std::to_string(dim));
  EXPECT_TRUE(got.device().is_cuda()) << ctx;
  EXPECT_EQ(got.dtype(), x.dtype()) << ctx;
  // log_softmax of a dominant entry is near 0: the absolute part covers the lse's last bits.
  EXPECT_TRUE(all_close(got, want, default_rtol(x.dtype()), default_rtol(x.dtype()) * 0.1)) << ctx;
}

// Exact equality of two results of the same computation (NaN equal to NaN).
::testing::AssertionResult bit_identical(const Tensor& a, const Tensor& b) { return all_close(a, b, 0.0, 0.0); }

const std::vector<DType> kFloatTypes = {DType::f32, DType::f64, DType::bf16, DType::f16};

const std::vector<std::vector<int64_t>> kDimSets = {{-1}, {0}, {1}, {0, 2}, {0, 1}, {1, 2}, {}};

}  // namespace

TEST(CudaReduce, SumAndMeanMatchCpuOverAnyDims) {
  GRAFT_REQUIRE_CUDA();
  for (DType dtype : kFloatTypes) {
    const Tensor x = random_cpu({5, 33, 7}, dtype);
    for (const auto& dims : kDimSets)
      for (bool keepdim : {false, true})
        for (ReduceOp op : {ReduceOp::sum, ReduceOp::mean})
          expect_reduce(op, x, dims, keepdim, default_rtol(dtype), atol_for(dtype));
  }
}

TEST(CudaReduce, ProdMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  for (DType dtype : kFloatTypes) {
    // Factors near 1 keep the products finite and away from underflow.
    const Tensor x = (random_cpu({4, 33, 9}) * 0.05 + 1.0).to(dtype);
    for (const auto& dims : kDimSets)
      for (bool keepdim : {false, true}) expect_reduce(ReduceOp::prod, x, dims, keepdim, default_rtol(dtype), 0.0);
  }
}

TEST(CudaReduce, IntegerSumAndProdAreExact) {
  GRAFT_REQUIRE_CUDA();
  Generator gen(test_seed());
  for (DType dtype : {DType::i32, DType::i64}) {
    const Tensor x = randint(-1000, 1000, {6, 1025, 3}, dtype, &gen);
    for (const auto& dims : kDimSets)
      for (bool keepdim : {false, true}) expect_reduce(ReduceOp::sum, x, dims, keepdim, 0.0, 0.0);
    const Tensor small = randint(-2, 3, {4, 13, 5}, dtype, &gen);
    for (const auto& dims : kDimSets) expect_reduce(ReduceOp::prod, small, dims, false, 0.0, 0.0);
  }
  // bool sums count the true entries in i64, as on the CPU.
  const Tensor flags = randint(0, 2, {9, 33}, DType::i64, &gen).to(DType::boolean);
  expect_reduce(ReduceOp::sum, flags, {1}, false, 0.0, 0.0);
  expect_reduce(ReduceOp::sum, flags, {}, false, 0.0, 0.0);
}

TEST(CudaReduce, OddAndLongRowLengths) {
  GRAFT_REQUIRE_CUDA();
  for (int64_t cols : {1, 7, 33, 1025, 100003}) {
    for (DType dtype : {DType::f32, DType::bf16}) {
      const Tensor rows = random_cpu({3, cols}, dtype, static_cast<uint64_t>(cols));
      const double rtol = default_rtol(dtype), atol = atol_for(dtype);
      for (ReduceOp op : {ReduceOp::sum, ReduceOp::mean}) {
        expect_reduce(op, rows, {1}, false, rtol, atol);   // along a row
        expect_reduce(op, rows, {0}, true, rtol, atol);    // down the columns (leading-dims path)
        expect_reduce(op, rows.t().contiguous(), {0}, false, rtol, atol);  // a tall [cols, 3]
      }
      expect_extreme(ReduceOp::max, rows, 1, false);
      expect_extreme(ReduceOp::min, rows, 0, false);
      expect_arg(true, rows, 1, false);
    }
  }
  // One very long row (split into segments and combined) and many short ones.
  const Tensor long_row = random_cpu({1, 2000003});
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::mean}) expect_reduce(op, long_row, {}, false, 1e-5, 1e-6);
  expect_extreme(ReduceOp::max, long_row, 1, false);
  expect_extreme(ReduceOp::min, long_row, 1, true);
  expect_arg(false, long_row, 1, false);
  const Tensor many_rows = random_cpu({40001, 7});
  expect_reduce(ReduceOp::sum, many_rows, {1}, false, 1e-5, 1e-7);
  expect_reduce(ReduceOp::sum, many_rows, {0}, false, 1e-5, 1e-7);
  expect_extreme(ReduceOp::max, many_rows, 1, false);
}

TEST(CudaReduce, MaxMinValuesAndFirstIndicesMatchCpu) {
  GRAFT_REQUIRE_CUDA();
  Generator gen(test_seed());
  std::vector<Tensor> inputs;
  for (DType dtype : kFloatTypes) inputs.push_back(random_cpu({6, 35, 9}, dtype));
  // Few distinct values: many ties, so the first extreme's index is what is checked.
  for (DType dtype : {DType::i32, DType::i64}) inputs.push_back(randint(-3, 4, {6, 35, 9}, dtype, &gen));
  inputs.push_back(randint(-3, 4, {6, 35, 9}, DType::i64, &gen).to(DType::f32));
  for (const Tensor& x : inputs) {
    for (int64_t dim : {0, 1, 2, -1})
      for (bool keepdim : {false, true}) {
        expect_extreme(ReduceOp::max, x, dim, keepdim);
        expect_extreme(ReduceOp::min, x, dim, keepdim);
        expect_arg(true, x, dim, keepdim);
        expect_arg(false, x, dim, keepdim);
      }
    for (const auto& dims : kDimSets) {
      expect_reduce(ReduceOp::max, x, dims, false, 0.0, 0.0);
      expect_reduce(ReduceOp::min, x, dims, true, 0.0, 0.0);
    }
  }
}

TEST(CudaReduce, NanPropagatesThroughMaxMinAndArgReductions) {
  GRAFT_REQUIRE_CUDA();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t cols : {7, 1025, 100003}) {
    Tensor base = random_cpu({5, cols}, DType::f32, static_cast<uint64_t>(cols)).contiguous();
    float* p = base.data_ptr<float>();
    p[0 * cols + cols / 2] = nan;                    // row 0: one NaN in the middle
    p[1 * cols + 0] = nan;                           // row 1: NaN first ...
    p[1 * cols + cols - 1] = nan;                    // ... and last: the first one's index wins
    for (int64_t c = 0; c < cols; ++c) p[2 * cols + c] = nan;  // row 2: all NaN
    p[3 * cols + cols - 1] = nan;                    // row 3: NaN last; row 4: none
    for (DType dtype : kFloatTypes) {
      const Tensor x = base.to(dtype);
      for (ReduceOp op : {ReduceOp::max, ReduceOp::min}) {
        expect_extreme(op, x, 1, false);
        expect_extreme(op, x, 0, false);
        expect_reduce(op, x, {}, false, 0.0, 0.0);
      }
      expect_arg(true, x, 1, false);
      expect_arg(false, x, 1, false);
      const Tensor got = ops::reduce(ReduceOp::max, gpu(x), {1}, false).to(Device::cpu()).to(DType::f64);
      const std::vector<double> v = got.to_vector<double>();
      EXPECT_TRUE(std::isnan(v[0]) && std::isnan(v[1]) && std::isnan(v[2]) && std::isnan(v[3]));
      EXPECT_FALSE(std::isnan(v[4]));
    }
  }
}

TEST(CudaReduce, NonContiguousInputs) {
  GRAFT_REQUIRE_CUDA();
  const View transposed = [](const Tensor& t) { return t.transpose(0, 2); };     // [9, 33, 6]
  const View stepped = [](const Tensor& t) { return t.slice(1, 1, 33, 3); };     // every third of dim 1
  const View broadcast = [](const Tensor& t) { return t.narrow(0, 0, 1).expand({4, 33, 9}); };
  for (DType dtype : {DType::f32, DType::bf16}) {
    const Tensor x = random_cpu({6, 33, 9}, dtype);
    const double rtol = default_rtol(dtype), atol = atol_for(dtype);
    for (const View* view : {&transposed, &stepped, &broadcast}) {
      for (const auto& dims : kDimSets) {
        expect_reduce(ReduceOp::sum, x, dims, false, rtol, atol, *view);
        expect_reduce(ReduceOp::mean, x, dims, true, rtol, atol, *view);
      }
      for (int64_t dim : {0, 1, 2}) {
        expect_extreme(ReduceOp::max, x, dim, false, *view);
        expect_arg(false, x, dim, true, *view);
        expect_softmax(x, dim, false, *view);
        expect_softmax(x, dim, true, *view);
      }
    }
  }
}

TEST(CudaSoftmax, MatchesCpuForEveryDtypeDimAndLength) {
  GRAFT_REQUIRE_CUDA();
  for (DType dtype : kFloatTypes) {
    const Tensor x = random_cpu({4, 33, 7}, dtype);
    for (int64_t dim : {0, 1, 2, -1})
      for (bool log : {false, true}) expect_softmax(x, dim, log);
    for (int64_t cols : {1, 7, 33, 1025, 100003}) {
      const Tensor rows = (random_cpu({3, cols}, DType::f32, static_cast<uint64_t>(cols)) * 4.0).to(dtype);
      for (bool log : {false, true}) expect_softmax(rows, 1, log);
    }
    // A 0-d tensor: softmax 1, log_softmax 0.
    expect_softmax(random_cpu({}, dtype), 0, false);
    expect_softmax(random_cpu({}, dtype), 0, true);
  }
  // Large values: the max is subtracted first.
  expect_softmax(random_cpu({5, 40}) * 1000.0, 1, false);
  expect_softmax(random_cpu({5, 40}) * 1000.0, 1, true);
}

TEST(CudaSoftmax, NegativeInfinityEntriesAndAFullyMaskedRowGiveNan) {
  GRAFT_REQUIRE_CUDA();
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t cols : {9, 2049}) {
    Tensor base = random_cpu({4, cols}, DType::f32, static_cast<uint64_t>(cols)).contiguous();
    float* p = base.data_ptr<float>();
    for (int64_t c = 0; c < cols; c += 2) p[1 * cols + c] = -inf;  // row 1: every other entry masked
    for (int64_t c = 0; c < cols; ++c) p[2 * cols + c] = -inf;     // row 2: fully masked
    p[3 * cols + cols - 1] = -inf;                                  // row 3: last entry masked
    for (DType dtype : kFloatTypes) {
      const Tensor x = base.to(dtype);
      for (bool log : {false, true}) {
        expect_softmax(x, 1, log);
        const std::vector<double> y = ops::softmax(gpu(x), 1, log).to(Device::cpu()).to(DType::f64).to_vector<double>();
        for (int64_t c = 0; c < cols; ++c) EXPECT_TRUE(std::isnan(y[static_cast<size_t>(2 * cols + c)])) << c;
        EXPECT_EQ(y[static_cast<size_t>(1 * cols)], log ? -inf : 0.0);
        EXPECT_FALSE(std::isnan(y[static_cast<size_t>(1 * cols + 1)]));
      }
    }
  }
}

TEST(CudaReduce, SumToReducesABroadcastGradient) {
  GRAFT_REQUIRE_CUDA();
  for (DType dtype : {DType::f32, DType::f64, DType::bf16}) {
    const Tensor grad = random_cpu({4, 7, 33}, dtype);
    for (const Shape& shape : std::vector<Shape>{{7, 1}, {1, 33}, {33}, {4, 1, 1}, {1, 7, 33}, {4, 7, 33}, {}}) {
      const Tensor want = ops::sum_to(grad, shape);
      const Tensor got = ops::sum_to(gpu(grad), shape);
      EXPECT_TRUE(got.device().is_cuda());
      EXPECT_TRUE(all_close(got, want, default_rtol(dtype), atol_for(dtype)))
          << "sum_to " << shape_str(shape) << " " << dtype_name(dtype);
    }
    // A gradient that is itself a broadcast view (an expanded bias gradient).
    const Tensor bias_grad = random_cpu({33}, dtype).expand({4, 7, 33});
    EXPECT_TRUE(all_close(ops::sum_to(gpu(random_cpu({33}, dtype)).expand({4, 7, 33}), {33}),
                          ops::sum_to(bias_grad, {33}), default_rtol(dtype), atol_for(dtype)));
  }
  EXPECT_THROW(ops::sum_to(gpu(random_cpu({3, 4})), {5}), ShapeError);
}

TEST(CudaReduce, ResultsAreBitIdenticalRunToRun) {
  GRAFT_REQUIRE_CUDA();
  const Tensor long_row = gpu(random_cpu({2, 1000003}));
  const Tensor tall = gpu(random_cpu({300007, 5}));
  const Tensor wide = gpu(random_cpu({7, 5000}, DType::bf16));
  const auto run = [&] {
    return std::vector<Tensor>{
        ops::reduce(ReduceOp::sum, long_row, {1}, false),  // segments combined in a second pass
        ops::reduce(ReduceOp::mean, long_row, {}, false),
        ops::reduce(ReduceOp::sum, tall, {0}, false),      // column sums in row segments
        ops::reduce(ReduceOp::sum, tall, {1}, false),
        ops::reduce(ReduceOp::mean, wide, {1}, true),
        ops::reduce(ReduceOp::prod, wide, {0}, false),
        ops::reduce_with_index(ReduceOp::max, long_row, 1, false).second,
        ops::softmax(wide, 1, false),
        ops::softmax(long_row, 1, true),
    };
  };
  const std::vector<Tensor> first = run(), second = run();
  for (size_t i = 0; i < first.size(); ++i) EXPECT_TRUE(bit_identical(first[i], second[i])) << "result " << i;
}

TEST(CudaReduce, EmptyDimsAndErrorsMatchCpu) {
  GRAFT_REQUIRE_CUDA();
  const Tensor empty_cols = gpu(zeros({3, 0}));
  EXPECT_TRUE(all_close(ops::reduce(ReduceOp::sum, empty_cols, {1}, false), zeros({3}), 0.0));
  EXPECT_TRUE(all_close(ops::reduce(ReduceOp::prod, empty_cols, {1}, false), ones({3}), 0.0));
  const std::vector<double> mean = ops::reduce(ReduceOp::mean, empty_cols, {1}, false).to_vector<double>();
  for (double v : mean) EXPECT_TRUE(std::isnan(v));
  EXPECT_EQ(ops::reduce(ReduceOp::sum, gpu(zeros({0, 4})), {1}, false).shape(), Shape({0}));
  EXPECT_THROW(ops::reduce(ReduceOp::max, empty_cols, {1}, false), ShapeError);
  EXPECT_THROW(ops::reduce_with_index(ReduceOp::min, empty_cols, 1, false), ShapeError);
  EXPECT_THROW(ops::arg_reduce(true, empty_cols, 1, false), ShapeError);
  EXPECT_THROW(ops::reduce_with_index(ReduceOp::sum, gpu(zeros({3})), 0, false), ValueError);
  EXPECT_THROW(ops::reduce(ReduceOp::mean, gpu(zeros({3}, DType::i64)), {0}, false), DTypeError);
  EXPECT_THROW(ops::reduce(ReduceOp::max, gpu(zeros({3}, DType::boolean)), {0}, false), DTypeError);
  EXPECT_THROW(ops::softmax(gpu(zeros({3}, DType::i32)), 0, false), DTypeError);
  EXPECT_THROW(ops::reduce(ReduceOp::sum, gpu(zeros({3, 4})), {2}, false), IndexError);
  EXPECT_THROW(ops::softmax(gpu(zeros({3, 4})), -3, true), IndexError);
}
