// A module's weights as a safetensors file, with Hugging Face's names, so that files move both
// ways between graft and the Python ecosystem (torch's save_file(model.state_dict()) layout).
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "nn/module.h"

namespace graft::nn {

struct WeightsOptions {
  LoadOptions load;     // strict / ignore_mismatched_shapes, as load_state_dict
  std::string prefix;   // stripped from the file's names ("bert." for a BertForX checkpoint loaded into
                        // a BertModel); names without it count as unexpected
};

// Parameters and persistent buffers, written atomically; metadata lands in "__metadata__".
void save_weights(const Module& module, const std::filesystem::path& path,
                  const std::map<std::string, std::string>& metadata = {});

// Reads only the tensors the module has (a 90 MB file with an unused head costs no copy of the
// head), converting f16/bf16/f64 to each parameter's dtype. Errors as load_state_dict's, plus
// IOError/FormatError for the file itself; on error the module is unchanged.
LoadReport load_weights(Module& module, const std::filesystem::path& path, const WeightsOptions& options = {});

}  // namespace graft::nn
