#include "nn/weights.h"

#include "nn/safetensors.h"
#include "tensor/factory.h"

namespace graft::nn {

void save_weights(const Module& module, const std::filesystem::path& path,
                  const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, module.state_dict(), metadata);
}

LoadReport load_weights(Module& module, const std::filesystem::path& path, const WeightsOptions& options) {
  SafetensorsFile file = SafetensorsFile::open(path);
  const auto wanted = module.state_dict();
  std::map<std::string, Tensor> state;
  std::vector<std::string> unexpected;
  for (const std::string& stored : file.names()) {
    const bool prefixed = stored.rfind(options.prefix, 0) == 0;
    const std::string name = prefixed ? stored.substr(options.prefix.size()) : stored;
    if (!prefixed || !wanted.count(name)) {
      unexpected.push_back(stored);
      continue;
    }
    const TensorInfo info = file.info(stored);
    if (info.shape != wanted.at(name).shape()) {
      // Let load_state_dict report it with the others; no need to copy the data.
      state[name] = graft::empty(info.shape, DType::f32);
      continue;
    }
    state[name] = file.load(stored);  // stored dtype; load_state_dict converts into the parameter's
  }
  LoadOptions check = options.load;
  check.strict = false;  // unexpected names are judged here, against the un-prefixed file
  if (options.load.strict) {
    std::vector<std::string> missing;
    for (const auto& [name, tensor] : wanted) {
      if (!state.count(name)) missing.push_back(name);
    }
    if (!missing.empty() || !unexpected.empty()) {
      LoadReport report;
      report.missing = missing;
      report.unexpected = unexpected;
      throw ValueError("load_weights from " + path.string() + " into " + module.type_name() +
                       " (strict): nothing loaded; " + report.str());
    }
  }
  LoadReport report = module.load_state_dict(state, check);
  report.unexpected = unexpected;
  return report;
}

}  // namespace graft::nn
