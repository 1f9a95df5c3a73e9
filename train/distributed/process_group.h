// ProcessGroup: the processes of one data-parallel run, from the MPI environment that mpirun or
// srun sets up (rank, world size, and the local rank on this machine, which picks a device).
// Collectives work on tensors in place and on plain vectors (metrics, bytes): CPU tensors (f32/f64)
// go through MPI; CUDA tensors (f32/f64/bf16/f16) go through NCCL, bootstrapped over MPI, in
// builds that have it (nccl_available()).
//
// Every MPI collective is nonblocking underneath (MPI_Iallreduce, MPI_Ibcast, ...) and polled with
// a deadline: a peer that died or hangs makes the others throw DistributedError naming the
// operation, the rank and the timeout, instead of waiting forever. The timeout is
// ProcessGroupOptions::timeout_s, else the environment's GRAFT_DIST_TIMEOUT_S, else 300 s. (With
// OpenMPI a rank that exits without MPI_Finalize usually makes mpirun kill the whole job first.)
//
// GPUs: one process per GPU. device() is the GPU of this process (local_rank() modulo the GPUs
// visible), where its model belongs. The NCCL communicator is created at the group's first CUDA
// collective (or by init_nccl()), on device(): rank 0 calls ncclGetUniqueId, MPI broadcasts it,
// every rank calls ncclCommInitRank. CUDA collectives are enqueued on the calling thread's
// cudaStreamPerThread, the stream of every graft CUDA op, so they follow the kernels that produced
// their tensors; their completion is polled (a CUDA event, and ncclCommGetAsyncError) with the same
// deadline, and a timeout or an asynchronous NCCL error aborts the communicator (ncclCommAbort):
// later CUDA collectives of the group then throw, so the run must end. Not bounded by the deadline:
// ncclCommInitRank, and the connection set-up inside a group's first NCCL collectives, which wait
// for every peer (a rank that dies there usually makes mpirun end the job).
//
// Built without MPI (GRAFT_MPI off) the API is still there: ProcessGroup::create throws
// NotImplementedError naming the missing MPI, and available() is false. Built without NCCL, a CUDA
// tensor given to a collective is a NotImplementedError ("this build has no NCCL").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tensor/error.h"
#include "tensor/tensor.h"

namespace graft::train::distributed {

// A collective failed or timed out; the message names the MPI call (or operation), the rank and,
// for timeouts, the limit.
class DistributedError : public Error { using Error::Error; };

enum class ReduceOp { sum, avg };

struct ProcessGroupOptions {
  double timeout_s = 0;  // <= 0: GRAFT_DIST_TIMEOUT_S from the environment, else 300
};

// A collective in flight (all_reduce_async). wait() throws DistributedError on failure or timeout.
class Work {
 public:
  virtual ~Work() = default;
  virtual bool test() = 0;  // true once complete (also drives MPI's progress)
  virtual void wait() = 0;
};

class ProcessGroup {
 public:
  // The world of this job (MPI_COMM_WORLD, duplicated): initialises MPI (thread level FUNNELED)
  // when nobody has; MPI is finalised at exit when graft initialised it.
  static std::shared_ptr<ProcessGroup> create(ProcessGroupOptions options = {});
  static bool available();  // built with MPI
  // Built with NCCL (MPI, the CUDA backend and NCCL found at configure time): CUDA tensors can
  // take part in collectives and in DataParallel.
  static bool nccl_available();
  // The environment of an MPI launcher with more than one process (OMPI_COMM_WORLD_SIZE,
  // PMI_SIZE, PMIX_SIZE or SLURM_STEP_NUM_TASKS > 1): what `graft finetune` checks before creating
  // a group.
  static bool launched_with_several_processes();
  // This process's rank as the launcher's environment says (OMPI_COMM_WORLD_RANK, PMI_RANK,
  // PMIX_RANK, SLURM_PROCID), before any group exists; -1 when there is none.
  static int environment_rank();
  // Finalises MPI now, when graft initialised it (idempotent; also runs at exit).
  static void finalize();

  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual int local_rank() const = 0;  // rank among the processes on this machine
  virtual int local_size() const = 0;
  virtual double timeout_s() const = 0;
  virtual void set_timeout_s(double seconds) = 0;

  // The device this process computes on: cuda:(local_rank() % cuda_device_count()) when a GPU is
  // visible, else the CPU. `graft finetune` under mpirun puts its model there; the NCCL
  // communicator lives there, and CUDA tensors given to collectives must be on it.
  Device device() const;
  // Creates the NCCL communicator now instead of at the first CUDA collective: a collective (every
  // rank calls it). No-op when it exists. NotImplementedError in a build without NCCL;
  // DistributedError on every rank when a machine runs more processes than it has GPUs.
  virtual void init_nccl();

  // In place, on every rank. A contiguous f32/f64 CPU tensor (MPI), or a contiguous
  // f32/f64/bf16/f16 CUDA tensor on device() (NCCL; ReduceOp::avg is ncclAvg). For a CUDA tensor
  // it returns once the GPU has finished the reduction.
  virtual void all_reduce(Tensor& tensor, ReduceOp op = ReduceOp::sum) = 0;
  // Starts a sum all-reduce of a tensor as all_reduce takes; it must stay alive until waited (the
  // Work keeps a handle). For a CUDA tensor, test() queries a CUDA event recorded after the
  // reduction, and kernels the thread enqueues later are ordered after it without waiting.
  // Ranks must start their async collectives in the same order.
  virtual std::shared_ptr<Work> all_reduce_async(const Tensor& tensor) = 0;
  // Rank root's contents to every rank: a contiguous CPU tensor (MPI) or CUDA tensor on device()
  // (NCCL) of any dtype (bytes).
  virtual void broadcast(Tensor& tensor, int root = 0) = 0;
  virtual void all_reduce(std::vector<double>& values, ReduceOp op = ReduceOp::sum) = 0;
  // Every rank's vector (lengths may differ), in rank order.
  virtual std::vector<std::vector<double>> all_gather(const std::vector<double>& values) = 0;
  virtual std::vector<std::string> all_gather_bytes(const std::string& bytes) = 0;
  virtual std::string broadcast_bytes(const std::string& bytes, int root = 0) = 0;
  virtual void barrier() = 0;
  // A new group over the same processes with a communicator of its own (MPI_Comm_dup; and a NCCL
  // communicator of its own, created at its first CUDA collective).
  virtual std::shared_ptr<ProcessGroup> duplicate() const = 0;

  bool is_main() const { return rank() == 0; }
};

// The timeout a group takes when its options give none: GRAFT_DIST_TIMEOUT_S, else 300 s.
double default_timeout_s();

}  // namespace graft::train::distributed
