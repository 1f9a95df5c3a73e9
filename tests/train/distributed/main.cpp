// GoogleTest main for the distributed suite, run under `mpirun -np N`: creates the world group
// (which initialises MPI) before the tests and finalises MPI after. Rank 0 prints GoogleTest's
// usual output; the other ranks print only their failures, prefixed with their rank.
#include <gtest/gtest.h>

#include <cstdio>

#include "dist_test_world.h"

namespace {

class RankFailurePrinter : public testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: failure\n%s\n", rank_, result.file_name() ? result.file_name() : "?",
                 result.line_number(), result.message());
  }
  void OnTestEnd(const testing::TestInfo& info) override {
    if (info.result()->Failed()) {
      std::fprintf(stderr, "[rank %d] FAILED %s.%s\n", rank_, info.test_suite_name(), info.name());
    }
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  auto& world = graft::test::world();
  if (world->rank() != 0) {
    auto& listeners = testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(world->rank()));
  }
  const int status = RUN_ALL_TESTS();
  world.reset();
  graft::train::distributed::ProcessGroup::finalize();
  return status;
}
