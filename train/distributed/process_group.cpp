// What ProcessGroup has with or without MPI: the environment checks, the device of this process.
#include <cstdlib>
#include <string>

#include "train/distributed/process_group.h"

namespace graft::train::distributed {

namespace {

int64_t env_int(const char* name) {
  const char* value = std::getenv(name);
  if (!value || !*value) return 0;
  try {
    return std::stoll(value);
  } catch (...) {
    return 0;
  }
}

}  // namespace

bool ProcessGroup::launched_with_several_processes() {
  // OpenMPI's mpirun, MPICH/Hydra and Slurm's PMI, PMIx, an srun job step (not SLURM_NTASKS, which
  // a batch script's single process sees too).
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS"}) {
    if (env_int(name) > 1) return true;
  }
  return false;
}

int ProcessGroup::environment_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"}) {
    const char* value = std::getenv(name);
    if (value && *value) return static_cast<int>(env_int(name));
  }
  return -1;
}

Device ProcessGroup::device() const {
  const int gpus = cuda_device_count();
  if (gpus <= 0) return Device::cpu();
  return Device::cuda(local_rank() % gpus);
}

void ProcessGroup::init_nccl() {
  throw NotImplementedError("distributed: init_nccl: this process group has no NCCL backend");
}

double default_timeout_s() {
  const char* value = std::getenv("GRAFT_DIST_TIMEOUT_S");
  if (!value || !*value) return 300.0;
  double seconds = 0;
  try {
    seconds = std::stod(value);
  } catch (...) {
    seconds = 0;
  }
  if (!(seconds > 0)) {
    throw ValueError(std::string("GRAFT_DIST_TIMEOUT_S must be a number of seconds > 0, got '") + value + "'");
  }
  return seconds;
}

}  // namespace graft::train::distributed
