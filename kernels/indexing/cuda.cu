// Index kernels on CUDA (see indexing.h), on contiguous buffers viewed as [outer, dim, inner].
//
// The adds (index_add, scatter_add) use no atomics: the source positions are sorted by the output
// row or element they add into (cub's radix sort is stable, so equal targets keep position order),
// then one thread per output element sums its sources in position order. Results are therefore
// bit-identical run to run, and for f32 / f64 equal to the CPU's, which adds in the same order.
#include <cub/block/block_reduce.cuh>
#include <cub/device/device_radix_sort.cuh>

#include <climits>

#include "kernels/common/cuda.h"
#include "kernels/indexing/indexing.h"

namespace graft::kernels {

namespace {

using cuda::Scratch;

using cuda::acc_t;
using cuda::blocks_for;
using cuda::device_t;
using cuda::kThreads;
using cuda::load;
using cuda::store;

// Stream-ordered scratch memory from the same pool as tensors, freed at scope exit (also when an
// exception leaves the launcher).

__device__ __forceinline__ int64_t thread_start() { return blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; }
__device__ __forceinline__ int64_t grid_step() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// The copies only move elements, so they are compiled once per element size, not per dtype.
template <int Bytes> struct Bits;
template <> struct Bits<1> { using type = uint8_t; };
template <> struct Bits<2> { using type = uint16_t; };
template <> struct Bits<4> { using type = uint32_t; };
template <> struct Bits<8> { using type = uint64_t; };
template <class T>
using bits_t = typename Bits<sizeof(T)>::type;

// --- index checks ---

struct MinOp {
  __device__ long long operator()(long long a, long long b) const { return a < b ? a : b; }
};
struct MaxOp {
  __device__ long long operator()(long long a, long long b) const { return a > b ? a : b; }
};

__global__ void init_bounds_kernel(long long* bounds) {
  bounds[0] = LLONG_MAX;
  bounds[1] = LLONG_MIN;
}

// Integer min/max are order-independent, so the atomics here cannot change the result.
__global__ void wrap_indices_kernel(int64_t* index, int64_t n, int64_t size, long long* bounds) {
  using Reduce = cub::BlockReduce<long long, kThreads>;
  __shared__ typename Reduce::TempStorage lo_storage, hi_storage;
  long long lo = LLONG_MAX, hi = LLONG_MIN;
  for (int64_t p = thread_start(); p < n; p += grid_step()) {
    const long long v = index[p];
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
    if (v < 0 && v >= -size) index[p] = v + size;
  }
  lo = Reduce(lo_storage).Reduce(lo, MinOp());
  hi = Reduce(hi_storage).Reduce(hi, MaxOp());
  if (threadIdx.x == 0) {
    atomicMin(&bounds[0], lo);
    atomicMax(&bounds[1], hi);
  }
}

// --- copies ---

template <class E>
__global__ void index_select_kernel(const E* in, int64_t dim, int64_t inner, const int64_t* index, int64_t n_index,
                                    E* out, int64_t total) {
  for (int64_t p = thread_start(); p < total; p += grid_step()) {
    const int64_t i = p % inner;
    const int64_t j = (p / inner) % n_index;
    const int64_t o = p / (inner * n_index);
    out[p] = in[(o * dim + index[j]) * inner + i];
  }
}

template <class E>
__global__ void gather_kernel(const E* in, int64_t dim, int64_t inner, const int64_t* index, int64_t n, E* out,
                              int64_t total) {
  for (int64_t p = thread_start(); p < total; p += grid_step()) {
    const int64_t i = p % inner;
    const int64_t o = p / (inner * n);
    out[p] = in[(o * dim + index[p]) * inner + i];
  }
}

// --- sorting sources by target ---

__global__ void iota_kernel(int64_t* values, int64_t n) {
  for (int64_t p = thread_start(); p < n; p += grid_step()) values[p] = p;
}

// key[p] = the flat output element that scatter_add's source p adds into.
__global__ void scatter_keys_kernel(const int64_t* index, int64_t dim, int64_t inner, int64_t n, uint64_t* keys,
                                    int64_t total) {
  for (int64_t p = thread_start(); p < total; p += grid_step()) {
    const int64_t i = p % inner;
    const int64_t o = p / (inner * n);
    keys[p] = static_cast<uint64_t>((o * dim + index[p]) * inner + i);
  }
}

// starts[s] = the first k with sorted_keys[k] >= s, for s in [0, segments]: segment s's sources
// are positions[starts[s] .. starts[s + 1]).
__global__ void segment_starts_kernel(const uint64_t* sorted_keys, int64_t n, int64_t segments, int64_t* starts) {
  for (int64_t s = thread_start(); s <= segments; s += grid_step()) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (sorted_keys[mid] < static_cast<uint64_t>(s)) lo = mid + 1;
      else hi = mid;
    }
    starts[s] = lo;
  }
}

// The source positions grouped by key (keys < segments), each group in position order, and where
// each group starts. Owns its buffers.
class Segments {
 public:
  Segments(const uint64_t* keys, int64_t n, int64_t segments)
      : sorted_keys_(sizeof(uint64_t) * n), positions_(sizeof(int64_t) * n), starts_(sizeof(int64_t) * (segments + 1)) {
    Scratch order(sizeof(int64_t) * n);
    iota_kernel<<<blocks_for(n), kThreads, 0, cuda::stream()>>>(order.as<int64_t>(), n);
    GRAFT_CUDA_CHECK_LAUNCH(iota_kernel);
    int end_bit = 1;  // sort only the bits a key can use: fewer radix passes
    while (end_bit < 64 && (static_cast<uint64_t>(segments - 1) >> end_bit) != 0) ++end_bit;
    size_t temp_bytes = 0;
    GRAFT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys, sorted_keys_.as<uint64_t>(),
                                                     order.as<int64_t>(), positions_.as<int64_t>(), n, 0, end_bit,
                                                     cuda::stream()));
    Scratch temp(temp_bytes);
    GRAFT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.as<void>(), temp_bytes, keys, sorted_keys_.as<uint64_t>(),
                                                     order.as<int64_t>(), positions_.as<int64_t>(), n, 0, end_bit,
                                                     cuda::stream()));
    segment_starts_kernel<<<blocks_for(segments + 1), kThreads, 0, cuda::stream()>>>(sorted_keys_.as<uint64_t>(), n,
                                                                                      segments, starts_.as<int64_t>());
    GRAFT_CUDA_CHECK_LAUNCH(segment_starts_kernel);
  }
  const int64_t* positions() const { return positions_.as<int64_t>(); }
  const int64_t* starts() const { return starts_.as<int64_t>(); }

 private:
  Scratch sorted_keys_, positions_, starts_;
};

// --- sums ---

// out[o, r, i] = sum of src[o, j, i] over the j with index[j] == r, in increasing j.
template <class T>
__global__ void index_add_kernel(T* out, int64_t dim, int64_t inner, int64_t n_index, const int64_t* starts,
                                 const int64_t* positions, const T* src, int64_t total) {
  for (int64_t p = thread_start(); p < total; p += grid_step()) {
    const int64_t i = p % inner;
    const int64_t r = (p / inner) % dim;
    const int64_t o = p / (inner * dim);
    acc_t<T> acc = acc_t<T>(0);
    for (int64_t k = starts[r]; k < starts[r + 1]; ++k) acc += load(&src[(o * n_index + positions[k]) * inner + i]);
    store(&out[p], acc);
  }
}

// out[q] = sum of src[p] over the sources p whose target is q, in increasing p.
template <class T>
__global__ void segment_sum_kernel(T* out, const int64_t* starts, const int64_t* positions, const T* src, int64_t total) {
  for (int64_t q = thread_start(); q < total; q += grid_step()) {
    acc_t<T> acc = acc_t<T>(0);
    for (int64_t k = starts[q]; k < starts[q + 1]; ++k) acc += load(&src[positions[k]]);
    store(&out[q], acc);
  }
}

}  // namespace

void wrap_indices_cuda(int device, int64_t* index, int64_t n, int64_t size, int64_t* min_index, int64_t* max_index) {
  cuda::DeviceGuard guard(device);
  Scratch bounds(2 * sizeof(long long));
  init_bounds_kernel<<<1, 1, 0, cuda::stream()>>>(bounds.as<long long>());
  GRAFT_CUDA_CHECK_LAUNCH(init_bounds_kernel);
  wrap_indices_kernel<<<blocks_for(n), kThreads, 0, cuda::stream()>>>(index, n, size, bounds.as<long long>());
  GRAFT_CUDA_CHECK_LAUNCH(wrap_indices_kernel);
  long long host[2] = {0, 0};
  GRAFT_CUDA_CHECK(cudaMemcpyAsync(host, bounds.as<long long>(), sizeof host, cudaMemcpyDeviceToHost, cuda::stream()));
  cuda::synchronize();
  *min_index = host[0];
  *max_index = host[1];
}

template <class T>
void index_select_cuda(int device, const T* in, int64_t outer, int64_t dim, int64_t inner, const int64_t* index,
                       int64_t n_index, T* out) {
  const int64_t total = outer * n_index * inner;
  if (total == 0) return;
  cuda::DeviceGuard guard(device);
  using E = bits_t<T>;
  index_select_kernel<E><<<blocks_for(total), kThreads, 0, cuda::stream()>>>(
      reinterpret_cast<const E*>(in), dim, inner, index, n_index, reinterpret_cast<E*>(out), total);
  GRAFT_CUDA_CHECK_LAUNCH(index_select_kernel);
}

template <class T>
void gather_cuda(int device, const T* in, int64_t outer, int64_t dim, int64_t inner, const int64_t* index, int64_t n,
                 T* out) {
  const int64_t total = outer * n * inner;
  if (total == 0) return;
  cuda::DeviceGuard guard(device);
  using E = bits_t<T>;
  gather_kernel<E><<<blocks_for(total), kThreads, 0, cuda::stream()>>>(reinterpret_cast<const E*>(in), dim, inner,
                                                                       index, n, reinterpret_cast<E*>(out), total);
  GRAFT_CUDA_CHECK_LAUNCH(gather_kernel);
}

template <class T>
void index_add_cuda(int device, T* out, int64_t outer, int64_t dim, int64_t inner, const int64_t* index,
                    int64_t n_index, const T* src) {
  const int64_t total = outer * dim * inner;
  if (total == 0) return;
  cuda::DeviceGuard guard(device);
  if (n_index == 0) {  // nothing adds: all zeros (zero bits are zero in every dtype)
    GRAFT_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(T) * total, cuda::stream()));
    return;
  }
  // The indices are in [0, dim) (checked by the caller), so they are their own sort keys.
  const Segments rows(reinterpret_cast<const uint64_t*>(index), n_index, dim);
  using D = device_t<T>;
  index_add_kernel<D><<<blocks_for(total), kThreads, 0, cuda::stream()>>>(
      reinterpret_cast<D*>(out), dim, inner, n_index, rows.starts(), rows.positions(), reinterpret_cast<const D*>(src),
      total);
  GRAFT_CUDA_CHECK_LAUNCH(index_add_kernel);
}

template <class T>
void scatter_add_cuda(int device, T* out, int64_t outer, int64_t dim, int64_t inner, const int64_t* index, int64_t n,
                      const T* src) {
  const int64_t total = outer * dim * inner;
  if (total == 0) return;
  cuda::DeviceGuard guard(device);
  const int64_t sources = outer * n * inner;
  if (sources == 0) {
    GRAFT_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(T) * total, cuda::stream()));
    return;
  }
  Scratch keys(sizeof(uint64_t) * sources);
  scatter_keys_kernel<<<blocks_for(sources), kThreads, 0, cuda::stream()>>>(index, dim, inner, n, keys.as<uint64_t>(),
                                                                            sources);
  GRAFT_CUDA_CHECK_LAUNCH(scatter_keys_kernel);
  const Segments targets(keys.as<uint64_t>(), sources, total);
  using D = device_t<T>;
  segment_sum_kernel<D><<<blocks_for(total), kThreads, 0, cuda::stream()>>>(
      reinterpret_cast<D*>(out), targets.starts(), targets.positions(), reinterpret_cast<const D*>(src), total);
  GRAFT_CUDA_CHECK_LAUNCH(segment_sum_kernel);
}

#define GRAFT_INSTANTIATE_COPY(T)                                                                                   \
  template void index_select_cuda<T>(int, const T*, int64_t, int64_t, int64_t, const int64_t*, int64_t, T*);        \
  template void gather_cuda<T>(int, const T*, int64_t, int64_t, int64_t, const int64_t*, int64_t, T*);
#define GRAFT_INSTANTIATE_ADD(T)                                                                                    \
  template void index_add_cuda<T>(int, T*, int64_t, int64_t, int64_t, const int64_t*, int64_t, const T*);          \
  template void scatter_add_cuda<T>(int, T*, int64_t, int64_t, int64_t, const int64_t*, int64_t, const T*);
GRAFT_INSTANTIATE_COPY(float)
GRAFT_INSTANTIATE_COPY(double)
GRAFT_INSTANTIATE_COPY(bf16)
GRAFT_INSTANTIATE_COPY(f16)
GRAFT_INSTANTIATE_COPY(int32_t)
GRAFT_INSTANTIATE_COPY(int64_t)
GRAFT_INSTANTIATE_COPY(bool)
GRAFT_INSTANTIATE_ADD(float)
GRAFT_INSTANTIATE_ADD(double)
GRAFT_INSTANTIATE_ADD(bf16)
GRAFT_INSTANTIATE_ADD(f16)
GRAFT_INSTANTIATE_ADD(int32_t)
GRAFT_INSTANTIATE_ADD(int64_t)

}  // namespace graft::kernels
