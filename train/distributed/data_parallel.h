// DataParallel: torch's DistributedDataParallel for graft modules. Every rank holds a full copy of
// the model and runs forward/backward on its own shard of the batch; gradients are averaged over
// the ranks so that every rank takes the same optimizer step.
//
// - At construction the parameters and buffers of rank 0 are broadcast to all ranks.
// - Parameters that require grad are packed into buckets (bucket_bytes, default 25 MiB; one dtype
//   per bucket) in reverse registration order, the order backward produces their gradients.
//   A hook on every parameter copies its incoming gradient into the bucket's flat buffer; when
//   every parameter of a bucket has one, a nonblocking all-reduce of the bucket starts while
//   backward goes on. Buckets start in bucket order on every rank (MPI needs the same order).
// - finish(), after backward: starts the buckets still waiting (parameters without a gradient in
//   this pass count as zeros), waits for all of them, and sets each .grad to the averaged
//   gradient, a view of its bucket (the bucket takes a new buffer for the next pass). A parameter
//   that got no gradient on any rank keeps no gradient (as in one process). Call it after every
//   backward with sync on, on every rank alike (the Trainer does).
//   A parameter whose gradient arrives in several parts after its bucket started (a weight used
//   twice, e.g. tied embeddings) is handled: the late parts are reduced in finish().
// - Gradient accumulation: set_sync(false) (or a NoSync guard) for the micro-batches before the
//   last; their gradients accumulate locally in .grad, and the backward with sync on reduces the
//   whole accumulated gradient once (torch's no_sync()).
// - Overlap is as good as the MPI's progress: OpenMPI advances a nonblocking collective when the
//   process calls MPI, which the hooks do (they test the buckets in flight) during backward.
// - Devices: a bucket holds one dtype on one device. CPU parameters (f32/f64) reduce over MPI;
//   CUDA parameters (f32/f64/bf16/f16, on the group's device(): one GPU per process) reduce over
//   NCCL, in a flat CUDA buffer that the hooks fill with device copies on the calling thread's
//   stream, so the NCCL all-reduce of a bucket is enqueued behind the backward kernels that made
//   its gradients, with no host wait during backward; finish() waits on the GPU (CUDA events) and
//   averages on the GPU. A model with CPU and CUDA parameters both is supported: each kind has
//   its own buckets, all started in one order on every rank. CUDA parameters in a build without
//   NCCL are a NotImplementedError at construction.
//
// The hooks stay on the parameters after destruction but do nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "nn/module.h"
#include "train/distributed/process_group.h"

namespace graft::train::distributed {

struct DataParallelOptions {
  int64_t bucket_bytes = 25 * 1024 * 1024;
  bool broadcast_at_start = true;  // parameters and buffers from rank 0
};

class DataParallel {
 public:
  DataParallel(nn::Module& module, std::shared_ptr<ProcessGroup> group, DataParallelOptions options = {});
  // Extra parameters (e.g. ones an optimizer holds outside the module) are reduced as well.
  DataParallel(nn::Module& module, std::vector<Tensor> extra_parameters, std::shared_ptr<ProcessGroup> group,
               DataParallelOptions options = {});
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  // Off: backward accumulates gradients locally and reduces nothing (micro-batches before the last).
  void set_sync(bool sync);
  bool sync() const;
  // After each backward with sync on: waits for the reductions and writes the averaged gradients.
  // A no-op when sync is off or when no backward ran since the last finish (then it still reduces,
  // so every rank must call it the same number of times).
  void finish();
  // Parameters and buffers of rank 0 to every rank (also after loading weights on rank 0 only).
  void broadcast_parameters_and_buffers();

  // Whether the parameters reduced are exactly those of `params` that require grad (in any order):
  // after a change of which parameters are trainable (gradual unfreezing) a new DataParallel is due.
  bool covers(const std::vector<Tensor>& params) const;

  int64_t num_buckets() const;
  // Buckets whose all-reduce the last finish() found already started by the hooks, during backward.
  int64_t buckets_started_in_backward() const;
  std::vector<int64_t> bucket_sizes() const;  // parameters per bucket, in launch order
  ProcessGroup& group() { return *group_; }

  struct State;

 private:
  nn::Module& module_;
  std::shared_ptr<ProcessGroup> group_;
  std::shared_ptr<State> state_;
};

// Turns sync off for its scope (torch's `with ddp.no_sync():`).
class NoSync {
 public:
  explicit NoSync(DataParallel& dp) : dp_(dp), previous_(dp.sync()) { dp_.set_sync(false); }
  ~NoSync() { dp_.set_sync(previous_); }
  NoSync(const NoSync&) = delete;
  NoSync& operator=(const NoSync&) = delete;

 private:
  DataParallel& dp_;
  bool previous_;
};

}  // namespace graft::train::distributed
