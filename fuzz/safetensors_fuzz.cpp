// libFuzzer target for the safetensors reader: any byte string must either open or throw a
// graft::Error, never crash or read out of bounds (ASan/UBSan watch). Files that open must load
// every tensor (as stored and as f32), and graft's own re-serialisation of them must open again
// with the same tensors. Built and run by scripts/fuzz.sh.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "nn/safetensors.h"

namespace {

// A broken invariant (not a bad input): abort so that libFuzzer records the input.
void require(bool ok) {
  if (!ok) std::abort();
}

void check(const std::string& bytes) {
  using namespace graft;
  const auto file = nn::SafetensorsFile::from_bytes(bytes);
  std::map<std::string, Tensor> loaded;
  for (const auto& name : file.names()) {
    const nn::TensorInfo info = file.info(name);
    try {
      const Tensor t = file.load(name);
      require(t.dtype() == info.dtype && t.shape() == info.shape && t.is_contiguous());
      loaded.emplace(name, t);
    } catch (const FormatError&) {  // e.g. a BOOL byte other than 0/1
      continue;
    }
    const Tensor as_f32 = file.load(name, DType::f32);
    require(as_f32.dtype() == DType::f32 && as_f32.shape() == info.shape);
  }
  if (loaded.size() != file.names().size()) return;
  const auto again = nn::SafetensorsFile::from_bytes(nn::serialize_safetensors(loaded, file.metadata()));
  require(again.names() == file.names() && again.metadata() == file.metadata());
  for (const auto& [name, t] : loaded) {
    const Tensor u = again.load(name);
    const std::size_t nbytes = static_cast<std::size_t>(t.numel()) * t.element_size();
    require(u.shape() == t.shape() && u.dtype() == t.dtype() &&
            (nbytes == 0 || std::memcmp(u.data_ptr(), t.data_ptr(), nbytes) == 0));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    check(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const graft::Error&) {
    // rejected input: the expected outcome for most of them
  }
  return 0;
}
