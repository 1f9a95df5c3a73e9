// index_select, index_add, gather and scatter_add (and embedding, which runs on them) on CUDA
// against the CPU on the same inputs: odd sizes, repeated and negative indices, dims 0 / middle /
// last, non-contiguous inputs; the adds bit-identical run to run; bad indices are typed errors.
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "tensor/ops.h"

using namespace graft;
using namespace graft::testing;

namespace {

const Device kCuda = Device::cuda(0);

// Indices in [0, n) with plenty of repeats, from a generator seeded by the test.
Tensor random_indices(int64_t n, const Shape& shape, uint64_t salt) {
  Generator gen(test_seed() + 1000 + salt);
  return randint(0, n, shape, DType::i64, &gen);
}

::testing::AssertionResult equal(const Tensor& got, const Tensor& want) { return all_close(got, want, 0.0); }

template <class E, class F>
::testing::AssertionResult throws_with(F&& f, const std::string& needle) {
  try {
    f();
  } catch (const E& e) {
    if (std::string(e.what()).find(needle) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "message \"" << e.what() << "\" lacks \"" << needle << "\"";
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw another error: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

const std::vector<DType> kAllTypes{DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64};
const std::vector<DType> kFloatTypes{DType::f32, DType::f64, DType::bf16, DType::f16};

// The CPU reference of an add: in the dtype itself where the CPU has it, else in f32 on the
// same (rounded) values; the CUDA kernel sums 16-bit values in float too, so only the final
// rounding differs.
DType cpu_add_dtype(DType dtype) { return dtype == DType::bf16 || dtype == DType::f16 ? DType::f32 : dtype; }

}  // namespace

TEST(CudaIndexing, IndexSelectMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  const Shape shape{7, 33, 5};
  uint64_t salt = 0;
  for (DType dtype : kAllTypes) {
    const Tensor x = random_cpu(shape, dtype, ++salt);
    const Tensor xc = x.to(kCuda);
    for (int64_t dim : {0, 1, -1}) {
      const int64_t size = shape[static_cast<size_t>(dim < 0 ? dim + 3 : dim)];
      for (int64_t n : {1, 7, 1037}) {
        const Tensor idx = random_indices(size, {n}, ++salt);
        EXPECT_TRUE(equal(ops::index_select(xc, dim, idx.to(kCuda)), ops::index_select(x, dim, idx)))
            << dtype_name(dtype) << " dim " << dim << " n " << n;
      }
      // negative indices wrap, i32 indices work
      const Tensor neg = from_vector<int32_t>({-1, 0, -static_cast<int32_t>(size), 2 % static_cast<int32_t>(size)});
      EXPECT_TRUE(equal(ops::index_select(xc, dim, neg.to(kCuda)), ops::index_select(x, dim, neg)))
          << dtype_name(dtype) << " dim " << dim;
    }
  }
}

TEST(CudaIndexing, IndexSelectNonContiguousInput) {
  GRAFT_REQUIRE_CUDA();
  const Tensor base = random_cpu({33, 7});
  const Tensor idx = random_indices(7, {40}, 0);
  // a transposed view and a strided slice of CUDA tensors
  EXPECT_TRUE(equal(index_select(base.to(kCuda).t(), 0, idx.to(kCuda)), index_select(base.t(), 0, idx)));
  EXPECT_TRUE(equal(index_select(base.to(kCuda).slice(0, 1, 33, 2), 1, idx.to(kCuda)),
                    index_select(base.slice(0, 1, 33, 2), 1, idx)));
  // a non-contiguous index
  const Tensor idx2 = random_indices(33, {5, 8}, 1);
  EXPECT_TRUE(equal(index_select(base.to(kCuda), 0, idx2.to(kCuda).t().select(0, 3)),
                    index_select(base, 0, idx2.t().select(0, 3))));
}

TEST(CudaIndexing, IndexAddMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  uint64_t salt = 0;
  for (DType dtype : kAllTypes) {
    // (output shape, dim): dim 0 with wide rows, a middle dim, the last dim (inner = 1)
    const std::vector<std::pair<Shape, int64_t>> cases{{{50, 33}, 0}, {{7, 50, 5}, 1}, {{7, 3, 50}, -1}, {{1}, 0}};
    for (const auto& [shape, dim] : cases) {
      const size_t d = static_cast<size_t>(dim < 0 ? dim + static_cast<int64_t>(shape.size()) : dim);
      for (int64_t n : {1, 7, 1037}) {
        Shape src_shape = shape;
        src_shape[d] = n;
        const Tensor src = random_cpu(src_shape, dtype, ++salt);
        const Tensor idx = random_indices(shape[d], {n}, ++salt);
        const Tensor got = ops::index_add(shape, dim, idx.to(kCuda), src.to(kCuda));
        const Tensor want = ops::index_add(shape, dim, idx, src.to(cpu_add_dtype(dtype)));
        EXPECT_TRUE(all_close(got, want, default_rtol(dtype))) << dtype_name(dtype) << " " << shape_str(shape)
                                                                << " dim " << dim << " n " << n;
      }
    }
  }
}

TEST(CudaIndexing, IndexAddIsBitIdenticalRunToRun) {
  GRAFT_REQUIRE_CUDA();
  // 20000 sources into 3 rows: thousands of repeats per row, the embedding-backward worst case
  const Tensor src = random_cpu({20000, 64}).to(kCuda);
  const Tensor idx = random_indices(3, {20000}, 0).to(kCuda);
  const Tensor a = ops::index_add({3, 64}, 0, idx, src);
  const Tensor b = ops::index_add({3, 64}, 0, idx, src);
  EXPECT_TRUE(equal(a, b));
  EXPECT_TRUE(all_close(a, ops::index_add({3, 64}, 0, idx.to(Device::cpu()), src.to(Device::cpu())), 1e-5, 1e-4));
}

TEST(CudaIndexing, EmbeddingForwardAndBackwardMatchCpu) {
  GRAFT_REQUIRE_CUDA();
  const Tensor w = random_cpu({30, 16});
  const Tensor idx = random_indices(30, {9, 37}, 0);  // 333 tokens over 30 rows: repeated ids
  const Tensor g = random_cpu({9, 37, 16}, DType::f32, 1);
  for (int64_t padding_idx : {-1, 4}) {
    Tensor wa = w.clone();
    wa.requires_grad_(true);
    Tensor ya = embedding(wa, idx, padding_idx);
    ya.backward(g);
    Tensor wb = w.to(kCuda);
    wb.requires_grad_(true);
    Tensor yb = embedding(wb, idx.to(kCuda), padding_idx);
    yb.backward(g.to(kCuda));
    EXPECT_TRUE(equal(yb, ya));
    EXPECT_TRUE(all_close(wb.grad(), wa.grad(), default_rtol(DType::f32))) << "padding_idx " << padding_idx;
  }
}

TEST(CudaIndexing, GatherMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  const Shape shape{7, 9, 5};
  uint64_t salt = 0;
  for (DType dtype : kAllTypes) {
    const Tensor x = random_cpu(shape, dtype, ++salt);
    for (int64_t dim : {0, 1, 2}) {
      for (int64_t n : {1, 40}) {
        Shape is = shape;
        is[static_cast<size_t>(dim)] = n;
        const Tensor idx = random_indices(shape[static_cast<size_t>(dim)], is, ++salt);
        EXPECT_TRUE(equal(ops::gather(x.to(kCuda), dim, idx.to(kCuda)), ops::gather(x, dim, idx)))
            << dtype_name(dtype) << " dim " << dim << " n " << n;
      }
    }
  }
  // a non-contiguous input (permuted) and a negative index
  const Tensor base = random_cpu({5, 9, 7});
  const Tensor idx = from_vector<int64_t>({-1, 0, 3, -9, 8, 2, 2}, {1, 1, 7}).expand({5, 1, 7}).contiguous();
  EXPECT_TRUE(equal(gather(base.to(kCuda).permute({2, 1, 0}), 1, idx.permute({2, 1, 0}).contiguous().to(kCuda)),
                    gather(base.permute({2, 1, 0}), 1, idx.permute({2, 1, 0}).contiguous())));
}

TEST(CudaIndexing, ScatterAddMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  const Shape shape{7, 9, 5};
  uint64_t salt = 0;
  for (DType dtype : kAllTypes) {
    for (int64_t dim : {0, 1, 2}) {
      for (int64_t n : {1, 40}) {
        Shape ss = shape;
        ss[static_cast<size_t>(dim)] = n;
        const Tensor src = random_cpu(ss, dtype, ++salt);
        const Tensor idx = random_indices(shape[static_cast<size_t>(dim)], ss, ++salt);
        const Tensor got = ops::scatter_add(shape, dim, idx.to(kCuda), src.to(kCuda));
        const Tensor want = ops::scatter_add(shape, dim, idx, src.to(cpu_add_dtype(dtype)));
        EXPECT_TRUE(all_close(got, want, default_rtol(dtype))) << dtype_name(dtype) << " dim " << dim << " n " << n;
      }
    }
  }
  // gather's backward runs scatter_add: same gradient as the CPU's
  const Tensor x = random_cpu(shape);
  const Tensor idx = random_indices(9, {7, 40, 5}, 99);
  const Tensor g = random_cpu({7, 40, 5}, DType::f32, 98);
  Tensor xa = x.clone();
  xa.requires_grad_(true);
  gather(xa, 1, idx).backward(g);
  Tensor xb = x.to(kCuda);
  xb.requires_grad_(true);
  gather(xb, 1, idx.to(kCuda)).backward(g.to(kCuda));
  EXPECT_TRUE(all_close(xb.grad(), xa.grad(), default_rtol(DType::f32)));
}

TEST(CudaIndexing, ScatterAddIsBitIdenticalRunToRun) {
  GRAFT_REQUIRE_CUDA();
  const Tensor src = random_cpu({3, 5000, 33}).to(kCuda);
  const Tensor idx = random_indices(4, {3, 5000, 33}, 0).to(kCuda);
  const Tensor a = ops::scatter_add({3, 4, 33}, 1, idx, src);
  const Tensor b = ops::scatter_add({3, 4, 33}, 1, idx, src);
  EXPECT_TRUE(equal(a, b));
}

TEST(CudaIndexing, OutOfRangeIndicesAreIndexErrors) {
  GRAFT_REQUIRE_CUDA();
  const Tensor x = random_cpu({33, 4}).to(kCuda);
  const auto on_cuda = [](std::vector<int64_t> v) { return from_vector<int64_t>(v).to(kCuda); };
  EXPECT_TRUE(throws_with<IndexError>([&] { ops::index_select(x, 0, on_cuda({0, 40, 1})); }, "index 40"));
  EXPECT_TRUE(throws_with<IndexError>([&] { ops::index_select(x, 0, on_cuda({-34})); }, "index -34"));
  EXPECT_TRUE(throws_with<IndexError>([&] { ops::index_select(x, 0, on_cuda({33})); }, "size 33"));
  EXPECT_TRUE(throws_with<IndexError>([&] { embedding(x, on_cuda({3, 33})); }, "embedding"));
  EXPECT_TRUE(throws_with<IndexError>([&] { ops::index_add({33, 4}, 0, on_cuda({1, 33}), random_cpu({2, 4}).to(kCuda)); },
                                      "index_add"));
  const Tensor row = random_cpu({1, 4}).to(kCuda);
  EXPECT_TRUE(throws_with<IndexError>([&] { ops::gather(row, 1, from_vector<int64_t>({0, 4}, {1, 2}).to(kCuda)); },
                                      "index 4"));
  EXPECT_TRUE(throws_with<IndexError>(
      [&] { ops::scatter_add({1, 4}, 1, from_vector<int64_t>({0, -5}, {1, 2}).to(kCuda), random_cpu({1, 2}).to(kCuda)); },
      "index -5"));
  // the user's index tensor is left as it was (the wrap works on a copy)
  const Tensor idx = on_cuda({-1, 2});
  ops::index_select(x, 0, idx);
  EXPECT_EQ(idx.to_vector<int64_t>(), (std::vector<int64_t>{-1, 2}));
}

TEST(CudaIndexing, MixedDevicesAreDeviceErrors) {
  GRAFT_REQUIRE_CUDA();
  const Tensor x = random_cpu({5, 4});
  const Tensor idx = from_vector<int64_t>({0, 3});
  EXPECT_THROW(ops::index_select(x.to(kCuda), 0, idx), DeviceError);
  EXPECT_THROW(ops::index_select(x, 0, idx.to(kCuda)), DeviceError);
  EXPECT_THROW(ops::index_add({5, 4}, 0, idx, random_cpu({2, 4}).to(kCuda)), DeviceError);
  EXPECT_THROW(ops::gather(x.to(kCuda), 0, from_vector<int64_t>({0, 1, 2, 3}, {1, 4})), DeviceError);
  EXPECT_THROW(ops::scatter_add({5, 4}, 0, from_vector<int64_t>({0, 1, 2, 3}, {1, 4}), random_cpu({1, 4}).to(kCuda)),
               DeviceError);
  EXPECT_THROW(embedding(x.to(kCuda), idx), DeviceError);
}

TEST(CudaIndexing, AddsRejectBool) {
  GRAFT_REQUIRE_CUDA();
  const Tensor src = from_vector<bool>({true, false}).to(kCuda);
  EXPECT_THROW(ops::index_add({3}, 0, from_vector<int64_t>({0, 2}).to(kCuda), src), DTypeError);
}
