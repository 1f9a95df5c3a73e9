#include "nn/container.h"

namespace graft::nn {

static std::shared_ptr<Module> element(const std::vector<std::shared_ptr<Module>>& modules, int64_t index,
                                       const char* owner) {
  const int64_t n = static_cast<int64_t>(modules.size());
  if (index < -n || index >= n) {
    throw IndexError(std::string(owner) + ": index " + std::to_string(index) + " out of range for " +
                     std::to_string(n) + " modules");
  }
  return modules[static_cast<size_t>(index < 0 ? index + n : index)];
}

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) : Sequential() {
  for (const auto& module : modules) push_back(module);
}

void Sequential::push_back(std::shared_ptr<Module> module) {
  register_child(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
}

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  for (const auto& module : modules_) x = module->forward(x);
  return x;
}

std::shared_ptr<Module> Sequential::operator[](int64_t index) const { return element(modules_, index, "Sequential"); }

void ModuleList::push_back(std::shared_ptr<Module> module) {
  register_child(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
}

std::shared_ptr<Module> ModuleList::operator[](int64_t index) const { return element(modules_, index, "ModuleList"); }

}  // namespace graft::nn
