// ProcessGroup in a build without MPI (GRAFT_MPI off, or no MPI found): the API is there, and
// creating a group says what is missing.
#include "train/distributed/process_group.h"

namespace graft::train::distributed {

std::shared_ptr<ProcessGroup> ProcessGroup::create(ProcessGroupOptions) {
  throw NotImplementedError(
      "distributed: graft was built without MPI; install an MPI (Debian: openmpi-bin libopenmpi-dev, "
      "scripts/setup.sh) and reconfigure with GRAFT_MPI=ON");
}

bool ProcessGroup::available() { return false; }

bool ProcessGroup::nccl_available() { return false; }  // NCCL is bootstrapped over MPI

void ProcessGroup::finalize() {}

}  // namespace graft::train::distributed
