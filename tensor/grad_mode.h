// The thread-local switch that says whether differentiable ops record the graph. It lives in
// tensor/ because in-place tensor methods consult it; autograd/ wraps it in NoGradGuard.
#pragma once

namespace graft {

struct GradMode {
  static bool is_enabled();
  static void set_enabled(bool enabled);
};

}  // namespace graft
