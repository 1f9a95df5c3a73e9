// The CUDA half of the MPI process group: NCCL, bootstrapped over the group's MPI. Compiled only
// when MPI, the CUDA backend and NCCL are all there (GRAFT_HAS_NCCL).
//
// - One communicator per group, on group.device() (one process per GPU), created at the group's
//   first CUDA collective: rank 0's ncclUniqueId is broadcast with MPI, then ncclCommInitRank.
//   The communicator is a blocking one (NCCL's default): with config.blocking = 0 NCCL may launch
//   from a thread of its own, where cudaStreamPerThread names another stream.
// - Every collective is enqueued on the calling thread's cudaStreamPerThread, the stream of every
//   graft CUDA op, so it runs after the kernels that produced its tensor and before those the
//   thread enqueues later, without a host wait. A CUDA event recorded after it tells when the GPU
//   is done; waiting polls that event and ncclCommGetAsyncError until the deadline.
// - A timeout or an asynchronous NCCL error aborts the communicator (ncclCommAbort, which also
//   stops its kernels) and throws DistributedError naming the operation, the rank and the cause;
//   the group's later CUDA collectives throw too.
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <sstream>
#include <thread>
#include <vector>

#include "train/distributed/cuda_collectives.h"

#if NCCL_VERSION_CODE < NCCL_VERSION(2, 10, 0)
#error "graft's NCCL backend needs NCCL >= 2.10 (ncclAvg, ncclBfloat16)"
#endif

namespace graft::train::distributed::detail {

namespace {

std::string seconds_str(double seconds) {
  std::ostringstream out;
  out << seconds;
  return out.str();
}

// Makes `device` current for the scope (cudaStreamPerThread, events and NCCL calls resolve against
// the current device) and restores the previous one.
class CurrentDevice {
 public:
  CurrentDevice(int device, int rank) {
    cudaGetDevice(&previous_);
    if (previous_ != device) {
      const cudaError_t status = cudaSetDevice(device);
      if (status != cudaSuccess) {
        cudaGetLastError();
        throw DistributedError("distributed: cudaSetDevice(" + std::to_string(device) + ") failed on rank " +
                               std::to_string(rank) + ": " + cudaGetErrorString(status));
      }
    }
  }
  ~CurrentDevice() { cudaSetDevice(previous_); }
  CurrentDevice(const CurrentDevice&) = delete;
  CurrentDevice& operator=(const CurrentDevice&) = delete;

 private:
  int previous_ = 0;
};

void check_cuda(cudaError_t status, const std::string& call, int rank) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error
  throw DistributedError("distributed: " + call + " failed on rank " + std::to_string(rank) + ": " +
                         cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
}

std::string nccl_error_text(ncclResult_t result, ncclComm_t comm) {
  std::string text = ncclGetErrorString(result);
  const char* last = ncclGetLastError(comm);
  if (last && *last) text += ": " + std::string(last);
  return text;
}

// The communicator, shared by the backend and the collectives in flight (a Work may outlive the
// group). After an abort it is gone, and every later use says why.
struct Comm {
  ncclComm_t comm = nullptr;
  int rank = 0, size = 1, device = 0;
  std::string aborted_because;

  ~Comm() {
    if (!comm) return;
    // Never throws: frees local resources only (no exchange with peers).
    int previous = 0;
    cudaGetDevice(&previous);
    cudaSetDevice(device);
    ncclCommDestroy(comm);
    cudaSetDevice(previous);
  }
  ncclComm_t get(const std::string& op) const {
    if (!comm) {
      throw DistributedError("distributed: " + op + " on rank " + std::to_string(rank) +
                             ": the NCCL communicator was aborted after an earlier failure (" + aborted_because +
                             "); this process group can no longer reduce CUDA tensors");
    }
    return comm;
  }
  void abort(const std::string& why) {
    if (!comm) return;
    ncclCommAbort(comm);
    comm = nullptr;
    aborted_because = why;
  }
  void check(ncclResult_t result, const std::string& call) const {
    if (result == ncclSuccess) return;
    throw DistributedError("distributed: " + call + " failed on rank " + std::to_string(rank) + ": " +
                           nccl_error_text(result, comm));
  }
  // An error NCCL found in the background (a peer or the network failed): aborts and throws.
  void check_async(const std::string& op) {
    ncclResult_t async = ncclSuccess;
    const ncclResult_t result = ncclCommGetAsyncError(get(op), &async);
    if (result != ncclSuccess) async = result;
    if (async == ncclSuccess || async == ncclInProgress) return;
    const std::string message = "distributed: " + op + " on rank " + std::to_string(rank) +
                                " failed: NCCL reported " + nccl_error_text(async, comm) +
                                " (a peer died or the network failed); the NCCL communicator was aborted";
    abort(message);
    throw DistributedError(message);
  }
};

// Polls `event` until the GPU has passed it; an asynchronous NCCL error or the deadline aborts the
// communicator and throws. The caller has made comm.device current.
void wait_for_event(cudaEvent_t event, Comm& comm, const std::string& op, double timeout_s) {
  using clock = std::chrono::steady_clock;
  const auto deadline =
      clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(timeout_s));
  comm.get(op);  // aborted already: say so at once
  for (int64_t polls = 0;; ++polls) {
    const cudaError_t status = cudaEventQuery(event);
    if (status == cudaSuccess) return;
    if (status != cudaErrorNotReady) check_cuda(status, "cudaEventQuery after " + op, comm.rank);
    if (polls % 64 == 63) {
      comm.check_async(op);
      if (clock::now() > deadline) {
        const std::string message =
            "distributed: " + op + " on rank " + std::to_string(comm.rank) + " timed out after " +
            seconds_str(timeout_s) +
            " s (a peer died, hangs, or runs a different collective); the NCCL communicator was aborted; set "
            "GRAFT_DIST_TIMEOUT_S to wait longer";
        comm.abort(message);
        throw DistributedError(message);
      }
    }
    std::this_thread::yield();
  }
}

class NcclWork : public Work {
 public:
  NcclWork(std::shared_ptr<Comm> comm, cudaEvent_t event, Tensor keep, std::string op, double timeout_s)
      : comm_(std::move(comm)), event_(event), keep_(std::move(keep)), op_(std::move(op)), timeout_s_(timeout_s) {}
  ~NcclWork() override {
    // As MpiWork: finish (bounded by the deadline) before the buffer may go; never throw.
    if (!done_) {
      try {
        wait();
      } catch (...) {
      }
    }
    int previous = 0;
    cudaGetDevice(&previous);
    cudaSetDevice(comm_->device);
    cudaEventDestroy(event_);
    cudaSetDevice(previous);
  }
  bool test() override {
    if (done_) return true;
    CurrentDevice current(comm_->device, comm_->rank);
    const cudaError_t status = cudaEventQuery(event_);
    if (status == cudaSuccess) {
      done_ = true;
      return true;
    }
    if (status != cudaErrorNotReady) {
      done_ = true;
      check_cuda(status, "cudaEventQuery after " + op_, comm_->rank);
    }
    try {
      comm_->check_async(op_);
    } catch (...) {
      done_ = true;
      throw;
    }
    return false;
  }
  void wait() override {
    if (done_) return;
    done_ = true;  // whatever happens, do not wait again
    CurrentDevice current(comm_->device, comm_->rank);
    wait_for_event(event_, *comm_, op_, timeout_s_);
  }

 private:
  std::shared_ptr<Comm> comm_;
  cudaEvent_t event_;
  Tensor keep_;
  std::string op_;
  double timeout_s_;
  bool done_ = false;
};

ncclDataType_t nccl_type(const Tensor& t, const char* op) {
  switch (t.dtype()) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::bf16: return ncclBfloat16;
    case DType::f16: return ncclFloat16;
    default:
      throw DTypeError(std::string("distributed: ") + op + " of a CUDA tensor supports f32, f64, bf16 and f16, got " +
                       dtype_name(t.dtype()));
  }
}

class NcclCollectives : public CudaCollectives {
 public:
  explicit NcclCollectives(std::shared_ptr<Comm> comm) : comm_(std::move(comm)) {}

  Device device() const override { return Device::cuda(comm_->device); }

  void all_reduce(Tensor& tensor, ReduceOp op, double timeout_s) override {
    enqueue_all_reduce(tensor, op == ReduceOp::avg ? ncclAvg : ncclSum, "all_reduce (ncclAllReduce)", timeout_s)->wait();
  }

  std::shared_ptr<Work> all_reduce_async(const Tensor& tensor, double timeout_s) override {
    return enqueue_all_reduce(tensor, ncclSum, "all_reduce_async (ncclAllReduce)", timeout_s);
  }

  void broadcast(Tensor& tensor, int root, double timeout_s) override {
    const std::string op = "broadcast (ncclBroadcast)";
    check_tensor(tensor, op);
    CurrentDevice current(comm_->device, comm_->rank);
    // Bytes, as MPI's broadcast: any dtype.
    const size_t bytes = static_cast<size_t>(tensor.numel()) * dtype_size(tensor.dtype());
    if (bytes == 0) return;  // every rank has the same empty tensor: nothing to move
    comm_->check(ncclBroadcast(tensor.data_ptr(), tensor.data_ptr(), bytes, ncclUint8, root, comm_->get(op),
                               cudaStreamPerThread),
                 "ncclBroadcast");
    record(tensor, op, timeout_s)->wait();
  }

 private:
  void check_tensor(const Tensor& t, const std::string& op) const {
    if (t.device() != device()) {
      throw DeviceError("distributed: " + op + " of a " + t.device().str() + " tensor on rank " +
                        std::to_string(comm_->rank) + ": this process's NCCL communicator is on " + device().str() +
                        " (ProcessGroup::device(): one GPU per process)");
    }
    if (!t.is_contiguous()) throw ValueError("distributed: " + op + " needs a contiguous tensor");
  }

  std::shared_ptr<Work> enqueue_all_reduce(const Tensor& tensor, ncclRedOp_t op, const std::string& name,
                                           double timeout_s) {
    check_tensor(tensor, name);
    const ncclDataType_t type = nccl_type(tensor, name.c_str());
    CurrentDevice current(comm_->device, comm_->rank);
    if (tensor.numel() == 0) return record(tensor, name, timeout_s);  // nothing to reduce
    comm_->check(ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), static_cast<size_t>(tensor.numel()), type, op,
                               comm_->get(name), cudaStreamPerThread),
                 "ncclAllReduce");
    return record(tensor, name, timeout_s);
  }

  // An event after the collective just enqueued on this thread's stream. The caller has made the
  // communicator's device current.
  std::shared_ptr<Work> record(const Tensor& tensor, const std::string& op, double timeout_s) {
    cudaEvent_t event = nullptr;
    check_cuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreateWithFlags", comm_->rank);
    const cudaError_t status = cudaEventRecord(event, cudaStreamPerThread);
    if (status != cudaSuccess) {
      cudaEventDestroy(event);
      check_cuda(status, "cudaEventRecord after " + op, comm_->rank);
    }
    return std::make_shared<NcclWork>(comm_, event, tensor, op, timeout_s);
  }

  std::shared_ptr<Comm> comm_;
};

}  // namespace

std::unique_ptr<CudaCollectives> make_nccl_collectives(ProcessGroup& group) {
  const int rank = group.rank();
  // One GPU per process on every machine, decided by all ranks together so that all throw alike.
  const int gpus = cuda_device_count();
  std::vector<double> short_of{gpus < group.local_size() ? 1.0 : 0.0};
  group.all_reduce(short_of, ReduceOp::sum);
  if (short_of[0] > 0) {
    throw DistributedError("distributed: NCCL needs one GPU per process, and " +
                           std::to_string(static_cast<int64_t>(short_of[0])) +
                           " rank(s) run on a machine with fewer GPUs than processes (rank " + std::to_string(rank) +
                           ": " + std::to_string(group.local_size()) + " processes here, " + std::to_string(gpus) +
                           " GPUs visible)");
  }
  const Device device = group.device();

  // Rank 0's unique id to every rank; an empty message tells the others that rank 0 failed.
  ncclUniqueId id;
  std::memset(&id, 0, sizeof id);
  std::string bytes, failure;
  if (rank == 0) {
    const ncclResult_t result = ncclGetUniqueId(&id);
    if (result == ncclSuccess) {
      bytes.assign(reinterpret_cast<const char*>(&id), sizeof id);
    } else {
      failure = nccl_error_text(result, nullptr);
    }
  }
  bytes = group.broadcast_bytes(bytes, 0);
  if (!failure.empty()) throw DistributedError("distributed: ncclGetUniqueId failed on rank 0: " + failure);
  if (bytes.size() != sizeof id) {
    throw DistributedError("distributed: rank " + std::to_string(rank) +
                           " got no NCCL unique id from rank 0 (ncclGetUniqueId failed there)");
  }
  std::memcpy(&id, bytes.data(), sizeof id);

  auto comm = std::make_shared<Comm>();
  comm->rank = rank;
  comm->size = group.world_size();
  comm->device = device.index;
  CurrentDevice current(device.index, rank);
  ncclComm_t handle = nullptr;
  comm->check(ncclCommInitRank(&handle, comm->size, id, rank), "ncclCommInitRank on " + device.str());
  comm->comm = handle;
  return std::make_unique<NcclCollectives>(std::move(comm));
}

}  // namespace graft::train::distributed::detail
