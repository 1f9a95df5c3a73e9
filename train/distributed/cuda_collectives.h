// Internal to train/distributed: the CUDA half of a process group. The MPI group hands its CUDA
// tensors to a CudaCollectives (process_group_nccl.cpp, NCCL bootstrapped over the group's MPI);
// nothing here names NCCL, so the MPI group compiles the same with or without it.
#pragma once

#include <memory>

#include "train/distributed/process_group.h"

namespace graft::train::distributed::detail {

class CudaCollectives {
 public:
  virtual ~CudaCollectives() = default;
  // As ProcessGroup's, for contiguous CUDA tensors on device(). Enqueued on the calling thread's
  // cudaStreamPerThread (after the kernels that produced the tensor); the blocking ones return once
  // the GPU has finished. `timeout_s` bounds the wait.
  virtual void all_reduce(Tensor& tensor, ReduceOp op, double timeout_s) = 0;
  virtual std::shared_ptr<Work> all_reduce_async(const Tensor& tensor, double timeout_s) = 0;
  virtual void broadcast(Tensor& tensor, int root, double timeout_s) = 0;
  virtual Device device() const = 0;
};

#if GRAFT_HAS_NCCL
// Creates the NCCL communicator of `group` on group.device(): a collective over the group (every
// rank calls it at the same point of its sequence of collectives). Rank 0's ncclUniqueId goes to
// the others through group.broadcast_bytes; throws DistributedError on every rank alike when a
// machine has fewer GPUs than processes.
std::unique_ptr<CudaCollectives> make_nccl_collectives(ProcessGroup& group);
#endif

}  // namespace graft::train::distributed::detail
