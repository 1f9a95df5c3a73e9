// Module::summary: the table a fine-tuning user reads to see what is frozen.
#include <cstdio>
#include <sstream>

#include "nn/module.h"

namespace graft::nn {

static std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string Module::summary() const {
  // Per module: only its own parameters, so the column sums to the total.
  struct Row { std::string name, type, params, trainable; };
  std::vector<Row> rows{{"name", "type", "params", "trainable"}};
  for (const auto& [name, module] : named_modules()) {
    int64_t own = 0, own_trainable = 0;
    for (const auto& [param_name, tensor] : module->named_parameters(false)) {
      own += tensor.numel();
      if (tensor.requires_grad()) own_trainable += tensor.numel();
    }
    rows.push_back({name.empty() ? "(root)" : name, module->type_name(), with_commas(own), with_commas(own_trainable)});
  }
  size_t width[3] = {0, 0, 0};
  for (const auto& row : rows) {
    width[0] = std::max(width[0], row.name.size());
    width[1] = std::max(width[1], row.type.size());
    width[2] = std::max(width[2], row.params.size());
  }
  std::ostringstream out;
  for (const auto& row : rows) {
    out << row.name << std::string(width[0] - row.name.size() + 2, ' ') << row.type
        << std::string(width[1] - row.type.size() + 2, ' ') << std::string(width[2] - row.params.size(), ' ')
        << row.params << "  " << row.trainable << "\n";
  }
  const int64_t total = num_parameters(), trainable = num_parameters(true);
  char share[32];
  std::snprintf(share, sizeof share, "%.2f%%", total ? 100.0 * static_cast<double>(trainable) / total : 0.0);
  out << "total parameters: " << with_commas(total) << ", trainable: " << with_commas(trainable) << " (" << share
      << "), frozen: " << with_commas(total - trainable) << "\n";
  return out.str();
}

}  // namespace graft::nn
