// What the other ranks do when one rank fails, run by CTest under mpirun -np 2:
//   fault hang   rank 1 stops taking part (sleeps); rank 0's all_reduce must throw DistributedError
//                after its timeout (2 s) instead of waiting forever; the error leaves main, so the
//                job ends (mpirun kills rank 1).
//   fault exit   rank 1 calls exit(3) while rank 0 waits in an all_reduce: exit runs the atexit
//                MPI_Finalize, which waits for rank 0, so mpirun does not step in; rank 0's timeout
//                (5 s) ends the job.
//   fault crash  rank 1 is killed (SIGKILL) while rank 0 waits with a 60 s timeout: mpirun must
//                end the job long before that.
//   fault trainer_throw  rank 1's forward throws at the third batch of a Trainer: the exception
//                leaves rank 1's main, and mpirun ends the job (rank 0 would time out after 2 s).
//   fault trainer_hang   rank 1's forward hangs at the third batch: rank 0's Trainer stops with
//                DistributedError after its timeout (2 s).
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "autograd/ops.h"
#include "train/distributed/process_group.h"
#include "train/optim/sgd.h"
#include "train/trainer.h"
#include "../../trainer_fixtures.h"

using namespace graft;
namespace dist = graft::train::distributed;

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  dist::ProcessGroupOptions options;
  options.timeout_s = mode == "crash" ? 60 : mode == "exit" ? 5 : 2;
  auto group = dist::ProcessGroup::create(options);
  const int rank = group->rank();
  group->barrier();
  const auto start = std::chrono::steady_clock::now();
  try {
    if (mode == "hang") {
      if (rank == 1) {
        std::this_thread::sleep_for(std::chrono::seconds(30));
      } else {
        Tensor t = ones({4});
        group->all_reduce(t);
      }
    } else if (mode == "exit") {
      if (rank == 1) {
        std::fprintf(stderr, "rank 1: exiting with status 3\n");
        std::exit(3);
      }
      Tensor t = ones({4});
      group->all_reduce(t);
    } else if (mode == "crash") {
      if (rank == 1) {
        std::fprintf(stderr, "rank 1: killing itself\n");
        std::fflush(stderr);
        std::raise(SIGKILL);
      }
      Tensor t = ones({4});
      group->all_reduce(t);
    } else if (mode == "trainer_throw" || mode == "trainer_hang") {
      auto [train_set, val_set] = graft::test::blobs(64, 8, 1);
      manual_seed(0);
      auto model = graft::test::make_mlp(2, 8, 3);
      optim::SGD optimizer(model->parameters(), {.lr = 0.1});
      int calls = 0;
      train::TrainerOptions trainer_options;
      trainer_options.batch_size = 4;
      trainer_options.progress = false;
      trainer_options.process_group = group;
      train::Trainer trainer(*model, optimizer, nullptr, [&](const data::Batch& batch, bool) {
        if (rank == 1 && ++calls == 3) {
          if (mode == "trainer_throw") throw ValueError("rank 1: a failing forward");
          std::this_thread::sleep_for(std::chrono::seconds(30));
        }
        Tensor logits = model->forward(batch.at("features"));
        return train::StepOutput{cross_entropy(logits, batch.at("labels")), logits};
      }, trainer_options);
      trainer.fit(train_set, &val_set);
    } else {
      std::fprintf(stderr, "usage: fault hang|exit|crash|trainer_throw|trainer_hang\n");
      return 2;
    }
    std::printf("rank %d: no error\n", rank);
  } catch (const std::exception& e) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "rank %d caught after %.1f s: %s\n", rank, seconds, e.what());
    std::fflush(stderr);
    throw;  // as a user's program would: the job ends
  }
  dist::ProcessGroup::finalize();
  return 0;
}
