// The world group the distributed tests share (created once, by main or the first test).
#pragma once

#include <memory>

#include "train/distributed/process_group.h"

namespace graft::test {

inline std::shared_ptr<train::distributed::ProcessGroup>& world() {
  static std::shared_ptr<train::distributed::ProcessGroup> group = [] {
    train::distributed::ProcessGroupOptions options;
    options.timeout_s = 120;  // a test that desynchronises the ranks fails instead of hanging
    return train::distributed::ProcessGroup::create(options);
  }();
  return group;
}

}  // namespace graft::test
