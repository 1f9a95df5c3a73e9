// ProcessGroup: the processes of one data-parallel run, from the MPI environment that mpirun or
// srun sets up (rank, world size, and the local rank on this machine, which picks a device).
// Collectives work on CPU tensors in place (f32/f64) and on plain vectors (metrics, bytes).
//
// Every collective is nonblocking underneath (MPI_Iallreduce, MPI_Ibcast, ...) and polled with a
// deadline: a peer that died or hangs makes the others throw DistributedError naming the
// operation, the rank and the timeout, instead of waiting forever. The timeout is
// ProcessGroupOptions::timeout_s, else the environment's GRAFT_DIST_TIMEOUT_S, else 300 s. (With
// OpenMPI a rank that exits without MPI_Finalize usually makes mpirun kill the whole job first.)
//
// Built without MPI (GRAFT_MPI off) the API is still there: ProcessGroup::create throws
// NotImplementedError naming the missing MPI, and available() is false.
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

  // In place, on every rank. A contiguous f32/f64 CPU tensor (CUDA tensors: NotImplementedError).
  virtual void all_reduce(Tensor& tensor, ReduceOp op = ReduceOp::sum) = 0;
  // Starts a sum all-reduce of a contiguous f32/f64 CPU tensor; it must stay alive until waited.
  // Ranks must start their async collectives in the same order.
  virtual std::shared_ptr<Work> all_reduce_async(const Tensor& tensor) = 0;
  virtual void broadcast(Tensor& tensor, int root = 0) = 0;
  virtual void all_reduce(std::vector<double>& values, ReduceOp op = ReduceOp::sum) = 0;
  // Every rank's vector (lengths may differ), in rank order.
  virtual std::vector<std::vector<double>> all_gather(const std::vector<double>& values) = 0;
  virtual std::vector<std::string> all_gather_bytes(const std::string& bytes) = 0;
  virtual std::string broadcast_bytes(const std::string& bytes, int root = 0) = 0;
  virtual void barrier() = 0;
  // A new group over the same processes with a communicator of its own (MPI_Comm_dup).
  virtual std::shared_ptr<ProcessGroup> duplicate() const = 0;

  bool is_main() const { return rank() == 0; }
};

// The timeout a group takes when its options give none: GRAFT_DIST_TIMEOUT_S, else 300 s.
double default_timeout_s();

}  // namespace graft::train::distributed
