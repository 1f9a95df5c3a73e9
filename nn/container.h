// Containers: Sequential chains single-tensor forwards; ModuleList only holds modules (its owner
// decides how to call them). Children are named "0", "1", ... so state-dict keys match torch's
// ("layers.0.weight").
#pragma once

#include <initializer_list>

#include "nn/module.h"

namespace graft::nn {

class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  void push_back(std::shared_ptr<Module> module);
  Tensor forward(const Tensor& input) override;
  int64_t size() const { return static_cast<int64_t>(modules_.size()); }
  std::shared_ptr<Module> operator[](int64_t index) const;

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

class ModuleList : public Module {
 public:
  ModuleList() : Module("ModuleList") {}
  void push_back(std::shared_ptr<Module> module);
  int64_t size() const { return static_cast<int64_t>(modules_.size()); }
  std::shared_ptr<Module> operator[](int64_t index) const;
  // The element as its concrete type; ValueError when it is another type.
  template <class M>
  std::shared_ptr<M> at(int64_t index) const {
    auto typed = std::dynamic_pointer_cast<M>((*this)[index]);
    if (!typed) throw ValueError("ModuleList: element " + std::to_string(index) + " is a " + (*this)[index]->type_name());
    return typed;
  }
  auto begin() const { return modules_.begin(); }
  auto end() const { return modules_.end(); }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace graft::nn
