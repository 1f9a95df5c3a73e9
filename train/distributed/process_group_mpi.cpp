// ProcessGroup over MPI. Collectives are the nonblocking MPI-3 ones, polled with MPI_Test until a
// deadline, on a communicator of graft's own (a duplicate of MPI_COMM_WORLD) whose error handler is
// MPI_ERRORS_RETURN, so that every failure becomes a DistributedError naming the call.
// CUDA tensors go to the group's CudaCollectives (NCCL, process_group_nccl.cpp, in builds with
// GRAFT_HAS_NCCL), created at the first CUDA collective.
#include <mpi.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <thread>

#include "train/distributed/cuda_collectives.h"
#include "train/distributed/process_group.h"

namespace graft::train::distributed {

namespace {

std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, static_cast<size_t>(length));
}

int world_rank_or_minus_one() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return -1;
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  throw DistributedError(std::string("distributed: ") + call + " failed on rank " +
                         std::to_string(world_rank_or_minus_one()) + ": " + mpi_error_string(code));
}

// MPI initialised by graft is finalised at exit (or by ProcessGroup::finalize).
bool g_graft_initialised_mpi = false;
std::once_flag g_init_once;

void finalize_if_ours() {
  if (!g_graft_initialised_mpi) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
  g_graft_initialised_mpi = false;
}

void ensure_initialised() {
  std::call_once(g_init_once, [] {
    int initialized = 0;
    check(MPI_Initialized(&initialized), "MPI_Initialized");
    if (initialized) return;
    // OpenMPI's nonblocking all-reduce (libnbc) picks its algorithm by size, and for gradient
    // buckets of megabytes its choice ran at half the speed of the ring (2 and 3 ranks on one
    // machine, docs/PERFORMANCE.md): the ring by default, unless the user chose (read at init).
    setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", /*overwrite=*/0);
    int provided = 0;
    // FUNNELED: only the thread that called MPI_Init_thread calls MPI (OpenMP workers never do).
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    g_graft_initialised_mpi = true;
    std::atexit(finalize_if_ours);
  });
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) throw DistributedError("distributed: MPI was already finalised in this process");
}

MPI_Datatype mpi_type(const Tensor& t, const char* op) {
  if (t.dtype() == DType::f32) return MPI_FLOAT;
  if (t.dtype() == DType::f64) return MPI_DOUBLE;
  throw DTypeError(std::string("distributed: ") + op + " supports f32 and f64 tensors, got " + dtype_name(t.dtype()));
}

// Whether `t` goes to the CUDA collectives (NCCL) rather than MPI.
bool is_cuda(const Tensor& t, const char* op) {
  if (!t.defined()) throw ValueError(std::string("distributed: ") + op + " of an undefined tensor");
  return t.device().is_cuda();
}

void check_tensor(const Tensor& t, const char* op) {
  if (!t.defined()) throw ValueError(std::string("distributed: ") + op + " of an undefined tensor");
  if (!t.is_contiguous()) throw ValueError(std::string("distributed: ") + op + " needs a contiguous tensor");
}

int checked_count(int64_t n, const char* op) {
  if (n > static_cast<int64_t>(INT32_MAX)) {
    throw ValueError(std::string("distributed: ") + op + " of " + std::to_string(n) +
                     " elements exceeds MPI's int count; split it");
  }
  return static_cast<int>(n);
}

// Polls `request` until done or the deadline; throws DistributedError on either failure.
void wait_with_deadline(MPI_Request& request, const char* op, int rank, double timeout_s) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto deadline = start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(timeout_s));
  int done = 0;
  int64_t polls = 0;
  while (true) {
    check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), op);
    if (done) return;
    // Poll as MPI_Wait does: OpenMPI advances a nonblocking collective (fragment by fragment, for
    // a large buffer) only inside MPI calls, and giving the core away (yield, sleep) makes every
    // fragment wait for the scheduler. The clock is read every 256 tests.
    if (++polls % 256 != 0) continue;
    if (clock::now() > deadline) {
      std::ostringstream seconds;
      seconds << timeout_s;
      throw DistributedError("distributed: " + std::string(op) + " on rank " + std::to_string(rank) +
                             " timed out after " + seconds.str() +
                             " s (a peer died, hangs, or runs a different collective); set GRAFT_DIST_TIMEOUT_S "
                             "to wait longer");
    }
  }
}

class MpiWork : public Work {
 public:
  MpiWork(MPI_Request request, Tensor keep, std::string op, int rank, double timeout_s)
      : request_(request), keep_(std::move(keep)), op_(std::move(op)), rank_(rank), timeout_s_(timeout_s) {}
  ~MpiWork() override {
    // A collective must not be left in flight over a freed buffer: finish it (bounded by the
    // deadline); never throw from a destructor.
    if (!done_) {
      try {
        wait();
      } catch (...) {
      }
    }
  }
  bool test() override {
    if (done_) return true;
    int flag = 0;
    check(MPI_Test(&request_, &flag, MPI_STATUS_IGNORE), op_.c_str());
    done_ = flag != 0;
    return done_;
  }
  void wait() override {
    if (done_) return;
    done_ = true;  // whatever happens, do not wait again
    wait_with_deadline(request_, op_.c_str(), rank_, timeout_s_);
  }

 private:
  MPI_Request request_;
  Tensor keep_;
  std::string op_;
  int rank_;
  double timeout_s_;
  bool done_ = false;
};

class MpiProcessGroup : public ProcessGroup {
 public:
  MpiProcessGroup(MPI_Comm parent, double timeout_s) : timeout_s_(timeout_s) {
    check(MPI_Comm_dup(parent, &comm_), "MPI_Comm_dup");
    check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    MPI_Comm local;
    check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local), "MPI_Comm_split_type");
    MPI_Comm_rank(local, &local_rank_);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
  }
  ~MpiProcessGroup() override {
    cuda_.reset();  // the NCCL communicator first (it was bootstrapped over comm_)
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int world_size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  double timeout_s() const override { return timeout_s_; }
  void set_timeout_s(double seconds) override {
    if (!(seconds > 0)) throw ValueError("ProcessGroup::set_timeout_s: the timeout must be > 0");
    timeout_s_ = seconds;
  }

  void init_nccl() override { cuda("init_nccl", nullptr); }

  void all_reduce(Tensor& tensor, ReduceOp op) override {
    if (is_cuda(tensor, "all_reduce")) return cuda("all_reduce", &tensor).all_reduce(tensor, op, timeout_s_);
    check_tensor(tensor, "all_reduce");
    MPI_Request request;
    check(MPI_Iallreduce(MPI_IN_PLACE, tensor.data_ptr(), checked_count(tensor.numel(), "all_reduce"),
                         mpi_type(tensor, "all_reduce"), MPI_SUM, comm_, &request),
          "MPI_Iallreduce");
    wait_with_deadline(request, "all_reduce (MPI_Iallreduce)", rank_, timeout_s_);
    if (op == ReduceOp::avg) divide(tensor);
  }

  std::shared_ptr<Work> all_reduce_async(const Tensor& tensor) override {
    if (is_cuda(tensor, "all_reduce_async")) {
      return cuda("all_reduce_async", &tensor).all_reduce_async(tensor, timeout_s_);
    }
    check_tensor(tensor, "all_reduce_async");
    MPI_Request request;
    check(MPI_Iallreduce(MPI_IN_PLACE, tensor.data_ptr(), checked_count(tensor.numel(), "all_reduce_async"),
                         mpi_type(tensor, "all_reduce_async"), MPI_SUM, comm_, &request),
          "MPI_Iallreduce");
    return std::make_shared<MpiWork>(request, tensor, "all_reduce_async (MPI_Iallreduce)", rank_, timeout_s_);
  }

  void broadcast(Tensor& tensor, int root) override {
    check_root(root);
    if (is_cuda(tensor, "broadcast")) return cuda("broadcast", &tensor).broadcast(tensor, root, timeout_s_);
    check_tensor(tensor, "broadcast");
    MPI_Request request;
    check(MPI_Ibcast(tensor.data_ptr(), checked_count(tensor.numel() * static_cast<int64_t>(dtype_size(tensor.dtype())),
                                                      "broadcast"),
                     MPI_BYTE, root, comm_, &request),
          "MPI_Ibcast");
    wait_with_deadline(request, "broadcast (MPI_Ibcast)", rank_, timeout_s_);
  }

  void all_reduce(std::vector<double>& values, ReduceOp op) override {
    MPI_Request request;
    check(MPI_Iallreduce(MPI_IN_PLACE, values.data(), checked_count(static_cast<int64_t>(values.size()), "all_reduce"),
                         MPI_DOUBLE, MPI_SUM, comm_, &request),
          "MPI_Iallreduce");
    wait_with_deadline(request, "all_reduce (MPI_Iallreduce)", rank_, timeout_s_);
    if (op == ReduceOp::avg) {
      for (double& v : values) v /= static_cast<double>(size_);
    }
  }

  std::vector<std::vector<double>> all_gather(const std::vector<double>& values) override {
    std::string bytes(values.size() * sizeof(double), '\0');
    if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
    std::vector<std::string> parts = all_gather_bytes(bytes);
    std::vector<std::vector<double>> out(parts.size());
    for (size_t r = 0; r < parts.size(); ++r) {
      out[r].resize(parts[r].size() / sizeof(double));
      if (!out[r].empty()) std::memcpy(out[r].data(), parts[r].data(), out[r].size() * sizeof(double));
    }
    return out;
  }

  std::vector<std::string> all_gather_bytes(const std::string& bytes) override {
    // Lengths first, then the bytes (MPI_Iallgatherv).
    const int mine = checked_count(static_cast<int64_t>(bytes.size()), "all_gather");
    std::vector<int> counts(static_cast<size_t>(size_));
    MPI_Request request;
    check(MPI_Iallgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, comm_, &request), "MPI_Iallgather");
    wait_with_deadline(request, "all_gather (MPI_Iallgather)", rank_, timeout_s_);
    std::vector<int> displs(static_cast<size_t>(size_));
    int64_t total = 0;
    for (int r = 0; r < size_; ++r) {
      displs[static_cast<size_t>(r)] = checked_count(total, "all_gather");
      total += counts[static_cast<size_t>(r)];
    }
    std::string all(static_cast<size_t>(total), '\0');
    check(MPI_Iallgatherv(bytes.data(), mine, MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE, comm_,
                          &request),
          "MPI_Iallgatherv");
    wait_with_deadline(request, "all_gather (MPI_Iallgatherv)", rank_, timeout_s_);
    std::vector<std::string> out(static_cast<size_t>(size_));
    for (int r = 0; r < size_; ++r) {
      out[static_cast<size_t>(r)] = all.substr(static_cast<size_t>(displs[static_cast<size_t>(r)]),
                                               static_cast<size_t>(counts[static_cast<size_t>(r)]));
    }
    return out;
  }

  std::string broadcast_bytes(const std::string& bytes, int root) override {
    check_root(root);
    int64_t length = rank_ == root ? static_cast<int64_t>(bytes.size()) : 0;
    MPI_Request request;
    check(MPI_Ibcast(&length, 1, MPI_INT64_T, root, comm_, &request), "MPI_Ibcast");
    wait_with_deadline(request, "broadcast (MPI_Ibcast)", rank_, timeout_s_);
    std::string out = rank_ == root ? bytes : std::string(static_cast<size_t>(length), '\0');
    if (length > 0) {
      check(MPI_Ibcast(out.data(), checked_count(length, "broadcast"), MPI_BYTE, root, comm_, &request), "MPI_Ibcast");
      wait_with_deadline(request, "broadcast (MPI_Ibcast)", rank_, timeout_s_);
    }
    return out;
  }

  void barrier() override {
    MPI_Request request;
    check(MPI_Ibarrier(comm_, &request), "MPI_Ibarrier");
    wait_with_deadline(request, "barrier (MPI_Ibarrier)", rank_, timeout_s_);
  }

  std::shared_ptr<ProcessGroup> duplicate() const override {
    return std::make_shared<MpiProcessGroup>(comm_, timeout_s_);
  }

 private:
  // The NCCL half, created at the first CUDA collective (a collective itself: every rank reaches
  // it at the same point of its sequence). `tensor` (may be null) names the device in the error of
  // a build without NCCL.
  detail::CudaCollectives& cuda(const char* op, const Tensor* tensor) {
#if GRAFT_HAS_NCCL
    if (!cuda_) cuda_ = detail::make_nccl_collectives(*this);
    return *cuda_;
#else
    throw NotImplementedError(std::string("distributed: ") + op + (tensor ? " of a " + tensor->device().str() + " tensor" : "") +
                              ": CUDA tensors need NCCL, and this build has no NCCL (it needs GRAFT_CUDA and "
                              "GRAFT_MPI on and NCCL found at configure time)");
#endif
  }
  void check_root(int root) const {
    if (root < 0 || root >= size_) {
      throw ValueError("distributed: broadcast root " + std::to_string(root) + " is not a rank of a world of " +
                       std::to_string(size_));
    }
  }
  void divide(Tensor& tensor) const {
    const int64_t n = tensor.numel();
    if (tensor.dtype() == DType::f32) {
      float* p = tensor.data_ptr<float>();
      const auto s = static_cast<float>(size_);
      for (int64_t i = 0; i < n; ++i) p[i] /= s;
    } else {
      double* p = tensor.data_ptr<double>();
      for (int64_t i = 0; i < n; ++i) p[i] /= static_cast<double>(size_);
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  double timeout_s_;
  std::unique_ptr<detail::CudaCollectives> cuda_;
};

}  // namespace

std::shared_ptr<ProcessGroup> ProcessGroup::create(ProcessGroupOptions options) {
  ensure_initialised();
  const double timeout = options.timeout_s > 0 ? options.timeout_s : default_timeout_s();
  return std::make_shared<MpiProcessGroup>(MPI_COMM_WORLD, timeout);
}

bool ProcessGroup::available() { return true; }

bool ProcessGroup::nccl_available() {
#if GRAFT_HAS_NCCL
  return true;
#else
  return false;
#endif
}

void ProcessGroup::finalize() { finalize_if_ours(); }

}  // namespace graft::train::distributed
