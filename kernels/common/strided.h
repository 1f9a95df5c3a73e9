// The iteration space shared by the strided CPU kernels: up to kMaxOperands operands walked in
// row-major order over one (broadcast, coalesced) shape. Strides are in elements; a broadcast dim
// has stride 0. Built by the tensor layer, consumed here; kernels never see a Tensor.
#pragma once

#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace graft::kernels {

constexpr int kMaxDims = 16;
constexpr int kMaxOperands = 4;

struct StridedIter {
  int ndim = 0;  // >= 1 after coalescing (a scalar is one dim of size 1)
  int noperands = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[kMaxOperands][kMaxDims] = {};

  int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < ndim; ++d) n *= sizes[d];
    return n;
  }
  int64_t inner_size() const { return sizes[ndim - 1]; }
  int64_t inner_stride(int operand) const { return strides[operand][ndim - 1]; }
};

// Below this many elements an op runs on one thread: thread start-up would cost more.
constexpr int64_t kParallelGrain = 32768;

// Calls row(offsets, count) for runs of the innermost dim; offsets[k] is operand k's element
// offset at the run's start. Work is split by linear index only, so results never depend on the
// thread count.
template <class Row>
void for_each_row(const StridedIter& it, Row&& row) {
  const int64_t total = it.numel();
  if (total == 0) return;
  const int64_t inner = it.inner_size();
  auto run_range = [&](int64_t begin, int64_t end) {
    int64_t index[kMaxDims];
    int64_t offsets[kMaxOperands] = {};
    int64_t rem = begin;
    for (int d = it.ndim - 1; d >= 0; --d) {
      index[d] = rem % it.sizes[d];
      rem /= it.sizes[d];
    }
    for (int k = 0; k < it.noperands; ++k)
      for (int d = 0; d < it.ndim; ++d) offsets[k] += index[d] * it.strides[k][d];
    int64_t pos = begin;
    while (pos < end) {
      int64_t count = std::min(inner - index[it.ndim - 1], end - pos);
      row(static_cast<const int64_t*>(offsets), count);
      pos += count;
      // advance the multi-index by count along the inner dim, carrying outward
      index[it.ndim - 1] += count;
      for (int k = 0; k < it.noperands; ++k) offsets[k] += count * it.strides[k][it.ndim - 1];
      for (int d = it.ndim - 1; d > 0 && index[d] == it.sizes[d]; --d) {
        index[d] = 0;
        ++index[d - 1];
        for (int k = 0; k < it.noperands; ++k)
          offsets[k] += it.strides[k][d - 1] - it.sizes[d] * it.strides[k][d];
      }
    }
  };
#ifdef _OPENMP
  if (total >= 2 * kParallelGrain && omp_get_max_threads() > 1) {
    const int64_t chunks = std::min<int64_t>(total / kParallelGrain, 4096);
    const int64_t chunk = (total + chunks - 1) / chunks;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      int64_t b = c * chunk;
      int64_t e = std::min(total, b + chunk);
      if (b < e) run_range(b, e);
    }
    return;
  }
#endif
  run_range(0, total);
}

}  // namespace graft::kernels
