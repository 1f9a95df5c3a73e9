#include "train/distributed/data_parallel.h"

#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "autograd/grad_mode.h"
#include "tensor/factory.h"
#include "tensor/ops.h"

namespace graft::train::distributed {

namespace {

// dst[i] (+)= src[i] over n elements of T.
template <class T>
void copy_or_add(void* dst, const void* src, int64_t n, bool add) {
  T* d = static_cast<T*>(dst);
  const T* s = static_cast<const T*>(src);
  if (add) {
    for (int64_t i = 0; i < n; ++i) d[i] += s[i];
  } else {
    std::memcpy(d, s, static_cast<size_t>(n) * sizeof(T));
  }
}

void copy_or_add(DType dtype, void* dst, const void* src, int64_t n, bool add) {
  if (dtype == DType::f32) {
    copy_or_add<float>(dst, src, n, add);
  } else {
    copy_or_add<double>(dst, src, n, add);
  }
}

void set_flag_cpu(Tensor& flat, int64_t index, double value) {
  if (flat.dtype() == DType::f32) {
    flat.data_ptr<float>()[index] = static_cast<float>(value);
  } else {
    flat.data_ptr<double>()[index] = value;
  }
}

double get_flag_cpu(const Tensor& flat, int64_t index) {
  return flat.dtype() == DType::f32 ? static_cast<double>(flat.data_ptr<float>()[index]) : flat.data_ptr<double>()[index];
}

// CUDA buckets: device ops on the calling thread's stream (ordered with the backward's kernels
// and the NCCL reductions), never a host loop. dst (a 1-D view of a bucket) = or += src.
void put_cuda(const Tensor& dst, const Tensor& src, bool add) {
  if (src.device() != dst.device()) {
    throw DeviceError("DataParallel: a gradient on " + src.device().str() + " for a parameter on " + dst.device().str());
  }
  Tensor flat = ops::reshape(src, {-1});
  if (!add) {
    ops::copy_into(dst, flat);  // converts the dtype
    return;
  }
  if (flat.dtype() != dst.dtype()) flat = ops::cast(flat, dst.dtype());
  ops::copy_into(dst, ops::binary(ops::BinaryOp::add, dst, flat));
}

}  // namespace

struct DataParallel::State {
  struct Slot {
    Tensor param;
    int64_t bucket = 0;
    int64_t offset = 0;  // in the bucket's flat buffer
    int64_t numel = 0;
    int64_t index_in_bucket = 0;
    bool seen = false;  // a gradient arrived in this pass
  };
  struct Bucket {
    DType dtype = DType::f32;
    Device device = Device::cpu();  // CPU buckets reduce over MPI, CUDA buckets over NCCL
    std::vector<int64_t> slots;
    int64_t numel = 0;  // gradient elements; the flat buffer has one "used" flag per parameter after them
    Tensor flat;
    Tensor late;        // parts of gradients that arrived after the bucket started
    int64_t pending = 0;
    bool launched = false;
    std::shared_ptr<Work> work;
  };

  ProcessGroup* group = nullptr;
  std::vector<Slot> slots;
  std::vector<Bucket> buckets;
  size_t next_launch = 0;
  bool sync = true;
  int64_t started_in_backward = 0;  // of the last finish()

  // The incoming gradient of slot i (before the engine adds it to .grad).
  void on_gradient(int64_t i, const Tensor& incoming) {
    Slot& slot = slots[static_cast<size_t>(i)];
    Bucket& bucket = buckets[static_cast<size_t>(slot.bucket)];
    if (incoming.device() != bucket.device) {
      throw DeviceError("DataParallel: a gradient on " + incoming.device().str() + " for a parameter on " +
                        bucket.device.str());
    }
    if (bucket.launched) {
      if (!bucket.late.defined()) bucket.late = zeros({bucket.numel}, TensorOptions(bucket.dtype).with_device(bucket.device));
      put(bucket, bucket.late.narrow(0, slot.offset, slot.numel), incoming, /*add=*/true);
    } else {
      Tensor dst = bucket.flat.narrow(0, slot.offset, slot.numel);
      if (!slot.seen) {
        slot.seen = true;
        put(bucket, dst, incoming, /*add=*/false);
        // Micro-batches before this one (sync off) left their sum in .grad.
        if (Tensor previous = slot.param.grad(); previous.defined()) put(bucket, dst, previous, /*add=*/true);
        set_flag(bucket, slot.index_in_bucket, 1.0);
        --bucket.pending;
      } else {
        put(bucket, dst, incoming, /*add=*/true);
      }
      launch_ready();
    }
    for (size_t b = 0; b < next_launch; ++b) {  // drive MPI's progress on the buckets in flight
      if (buckets[b].work) buckets[b].work->test();
    }
  }

  // dst (a 1-D view of a bucket's buffer) = or += src (a gradient, any dtype and layout).
  static void put(const Bucket& bucket, const Tensor& dst, const Tensor& src, bool add) {
    if (bucket.device.is_cuda()) return put_cuda(dst, src, add);
    Tensor g = (src.dtype() == bucket.dtype ? src : src.to(bucket.dtype)).contiguous();
    copy_or_add(bucket.dtype, dst.data_ptr(), g.data_ptr(), dst.numel(), add);
  }
  static void set_flag(Bucket& bucket, int64_t index_in_bucket, double value) {
    if (bucket.device.is_cuda()) {
      ops::fill(bucket.flat.narrow(0, bucket.numel + index_in_bucket, 1), value);
    } else {
      set_flag_cpu(bucket.flat, bucket.numel + index_in_bucket, value);
    }
  }
  // The reduced "used" flags, one per parameter of the bucket.
  static std::vector<double> flags(const Bucket& bucket) {
    const auto n = static_cast<int64_t>(bucket.slots.size());
    if (bucket.device.is_cuda()) {
      Tensor host = ops::to_device(bucket.flat.narrow(0, bucket.numel, n), Device::cpu());  // waits for the stream
      return ops::cast(host, DType::f64).to_vector<double>();
    }
    std::vector<double> out(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) out[static_cast<size_t>(k)] = get_flag_cpu(bucket.flat, bucket.numel + k);
    return out;
  }
  static void zero(const Bucket& bucket, const Tensor& dst) {
    if (bucket.device.is_cuda()) {
      ops::fill(dst, 0.0);
    } else {
      std::memset(dst.data_ptr(), 0, static_cast<size_t>(dst.numel()) * dtype_size(bucket.dtype));
    }
  }
  // The bucket's gradients divided by the world size, in place.
  static void divide(const Bucket& bucket, double world) {
    if (bucket.device.is_cuda()) {
      Tensor grads = bucket.flat.narrow(0, 0, bucket.numel);
      ops::copy_into(grads, ops::binary(ops::BinaryOp::div, grads, ops::scalar_like(world, grads)));
    } else if (bucket.dtype == DType::f32) {
      float* data = bucket.flat.data_ptr<float>();
      const auto w = static_cast<float>(world);
      for (int64_t k = 0; k < bucket.numel; ++k) data[k] /= w;
    } else {
      double* data = bucket.flat.data_ptr<double>();
      for (int64_t k = 0; k < bucket.numel; ++k) data[k] /= world;
    }
  }

  // Starts the ready buckets, in bucket order.
  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].pending == 0) launch(buckets[next_launch++]);
  }
  void launch(Bucket& bucket) {
    bucket.launched = true;
    bucket.work = group->all_reduce_async(bucket.flat);
  }

  void finish() {
    started_in_backward = static_cast<int64_t>(next_launch);
    // Buckets still waiting: parameters without a gradient in this pass contribute what .grad
    // holds (earlier micro-batches) or zeros, flagged unused.
    for (size_t b = next_launch; b < buckets.size(); ++b) {
      Bucket& bucket = buckets[b];
      for (int64_t s : bucket.slots) {
        Slot& slot = slots[static_cast<size_t>(s)];
        if (slot.seen) continue;
        Tensor dst = bucket.flat.narrow(0, slot.offset, slot.numel);
        Tensor previous = slot.param.grad();
        if (previous.defined()) {
          put(bucket, dst, previous, /*add=*/false);
          set_flag(bucket, slot.index_in_bucket, 1.0);
        } else {
          zero(bucket, dst);
          set_flag(bucket, slot.index_in_bucket, 0.0);
        }
      }
      launch(bucket);
    }
    next_launch = buckets.size();
    for (auto& bucket : buckets) bucket.work->wait();
    // Late parts: every rank must agree on which buckets reduce them.
    std::vector<double> late(buckets.size(), 0.0);
    for (size_t b = 0; b < buckets.size(); ++b) late[b] = buckets[b].late.defined() ? 1.0 : 0.0;
    group->all_reduce(late);
    for (size_t b = 0; b < buckets.size(); ++b) {
      if (late[b] == 0) continue;
      Bucket& bucket = buckets[b];
      if (!bucket.late.defined()) bucket.late = zeros({bucket.numel}, TensorOptions(bucket.dtype).with_device(bucket.device));
      group->all_reduce(bucket.late);
      put(bucket, bucket.flat.narrow(0, 0, bucket.numel), bucket.late, /*add=*/true);
    }
    // Averaged gradients into .grad: views of the bucket (divided in place), which then gets a
    // new buffer for the next pass, so no copy out and no aliasing across passes.
    const double world = static_cast<double>(group->world_size());
    for (auto& bucket : buckets) {
      divide(bucket, world);
      const std::vector<double> used = flags(bucket);
      for (int64_t s : bucket.slots) {
        Slot& slot = slots[static_cast<size_t>(s)];
        if (used[static_cast<size_t>(slot.index_in_bucket)] == 0) {
          slot.param.set_grad(Tensor());  // no rank had a gradient for it
          continue;
        }
        slot.param.set_grad(bucket.flat.narrow(0, slot.offset, slot.numel).view(slot.param.shape()));
      }
      bucket.flat = empty({bucket.flat.numel()}, TensorOptions(bucket.dtype).with_device(bucket.device));
    }
    reset();
  }

  void reset() {
    for (auto& slot : slots) slot.seen = false;
    for (auto& bucket : buckets) {
      bucket.pending = static_cast<int64_t>(bucket.slots.size());
      bucket.launched = false;
      bucket.work.reset();
      bucket.late = Tensor();
    }
    next_launch = 0;
  }

  // When an exception leaves a pass half done, the collectives in flight are completed (bounded
  // by the timeout) before the buffers may go.
  void abandon() {
    for (auto& bucket : buckets) {
      if (bucket.work) {
        try {
          bucket.work->wait();
        } catch (...) {
        }
      }
    }
    reset();
  }
};

DataParallel::DataParallel(nn::Module& module, std::shared_ptr<ProcessGroup> group, DataParallelOptions options)
    : DataParallel(module, {}, std::move(group), options) {}

DataParallel::DataParallel(nn::Module& module, std::vector<Tensor> extra_parameters,
                           std::shared_ptr<ProcessGroup> group, DataParallelOptions options)
    : module_(module), group_(std::move(group)), state_(std::make_shared<State>()) {
  if (!group_) throw ValueError("DataParallel: the process group is null");
  if (options.bucket_bytes <= 0) throw ValueError("DataParallel: bucket_bytes must be > 0");
  state_->group = group_.get();
  if (options.broadcast_at_start) broadcast_parameters_and_buffers();

  // The parameters to reduce: the module's that require grad, then the extra ones, once each.
  std::vector<Tensor> params;
  std::unordered_set<const TensorImpl*> known;
  auto take = [&](const Tensor& p) {
    if (!p.defined() || !p.requires_grad() || !known.insert(p.impl()).second) return;
    if (p.device().is_cpu()) {
      if (p.dtype() != DType::f32 && p.dtype() != DType::f64) {
        throw DTypeError(std::string("DataParallel: CPU parameters must be f32 or f64, got ") + dtype_name(p.dtype()));
      }
    } else {
      if (!ProcessGroup::nccl_available()) {
        throw NotImplementedError("DataParallel: a parameter on " + p.device().str() +
                                  ": CUDA tensors need NCCL, and this build has no NCCL");
      }
      if (p.dtype() != DType::f32 && p.dtype() != DType::f64 && p.dtype() != DType::bf16 && p.dtype() != DType::f16) {
        throw DTypeError(std::string("DataParallel: CUDA parameters must be f32, f64, bf16 or f16, got ") +
                         dtype_name(p.dtype()));
      }
    }
    params.push_back(p);
  };
  for (const auto& p : module_.parameters()) take(p);
  for (const auto& p : extra_parameters) take(p);

  // Buckets in reverse order (backward reaches the last layers first), one dtype and one device
  // each: CPU buckets reduce over MPI, CUDA ones over NCCL (a model may have both).
  State& s = *state_;
  struct Open {
    DType dtype;
    Device device;
    int64_t bucket;
  };
  std::vector<Open> open;  // the open bucket per (dtype, device)
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    const Tensor& p = *it;
    const int64_t bytes = p.numel() * static_cast<int64_t>(dtype_size(p.dtype()));
    auto o = std::find_if(open.begin(), open.end(),
                          [&](const Open& x) { return x.dtype == p.dtype() && x.device == p.device(); });
    if (o == open.end()) o = open.insert(open.end(), Open{p.dtype(), p.device(), -1});
    if (o->bucket >= 0) {
      const auto& bucket = s.buckets[static_cast<size_t>(o->bucket)];
      if ((bucket.numel * static_cast<int64_t>(dtype_size(p.dtype()))) + bytes > options.bucket_bytes) o->bucket = -1;
    }
    if (o->bucket < 0) {
      o->bucket = static_cast<int64_t>(s.buckets.size());
      s.buckets.emplace_back();
      s.buckets.back().dtype = p.dtype();
      s.buckets.back().device = p.device();
    }
    State::Bucket& bucket = s.buckets[static_cast<size_t>(o->bucket)];
    State::Slot slot;
    slot.param = p;
    slot.bucket = o->bucket;
    slot.offset = bucket.numel;
    slot.numel = p.numel();
    slot.index_in_bucket = static_cast<int64_t>(bucket.slots.size());
    bucket.numel += p.numel();
    bucket.slots.push_back(static_cast<int64_t>(s.slots.size()));
    s.slots.push_back(std::move(slot));
  }
  for (auto& bucket : s.buckets) {
    bucket.flat = zeros({bucket.numel + static_cast<int64_t>(bucket.slots.size())},
                        TensorOptions(bucket.dtype).with_device(bucket.device));
  }
  s.reset();

  // The hooks hold the state weakly: after destruction they find nothing and do nothing.
  std::weak_ptr<State> weak = state_;
  for (size_t i = 0; i < s.slots.size(); ++i) {
    s.slots[i].param.register_hook([weak, i](const Tensor& grad) -> Tensor {
      auto state = weak.lock();
      if (!state || !state->sync) return Tensor();
      state->on_gradient(static_cast<int64_t>(i), grad);
      return Tensor();
    });
  }
}

DataParallel::~DataParallel() {
  if (state_) state_->abandon();
}

void DataParallel::set_sync(bool sync) { state_->sync = sync; }
bool DataParallel::sync() const { return state_->sync; }

void DataParallel::finish() {
  if (!state_->sync) return;
  try {
    state_->finish();
  } catch (...) {
    state_->abandon();
    throw;
  }
}

void DataParallel::broadcast_parameters_and_buffers() {
  NoGradGuard no_grad;
  auto send = [&](const Tensor& t) {
    if (!t.defined()) return;
    if (t.is_contiguous()) {
      Tensor alias = t.detach();
      group_->broadcast(alias, 0);
    } else {
      Tensor copy = t.contiguous();
      group_->broadcast(copy, 0);
      ops::copy_into(t, copy);
    }
  };
  for (const auto& [name, p] : module_.named_parameters()) send(p);
  for (const auto& [name, b] : module_.named_buffers()) send(b);
}

bool DataParallel::covers(const std::vector<Tensor>& params) const {
  std::unordered_set<const TensorImpl*> mine, theirs;
  for (const auto& slot : state_->slots) mine.insert(slot.param.impl());
  for (const auto& p : params)
    if (p.defined() && p.requires_grad()) theirs.insert(p.impl());
  return mine == theirs;
}

int64_t DataParallel::buckets_started_in_backward() const { return state_->started_in_backward; }

int64_t DataParallel::num_buckets() const { return static_cast<int64_t>(state_->buckets.size()); }

std::vector<int64_t> DataParallel::bucket_sizes() const {
  std::vector<int64_t> out;
  for (const auto& bucket : state_->buckets) out.push_back(static_cast<int64_t>(bucket.slots.size()));
  return out;
}

}  // namespace graft::train::distributed
