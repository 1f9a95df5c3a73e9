// Hugging Face safetensors files: reading (mmap, validated up front) and writing (atomic).
//
// Layout: 8-byte little-endian u64 N, then N bytes of UTF-8 JSON header
//   {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"<key>": "<value>", ...}}
// then the data buffer; offsets are relative to the buffer's start, data is row-major little-endian.
//
// Files are untrusted: every size, offset and type in the header is checked when the file is
// opened, and any violation throws FormatError naming the file, the tensor and what was expected.
// Dtypes graft lacks (U8, I8, F8_*, ...) are rejected at open with a FormatError that names them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace graft::nn {

struct TensorInfo {
  DType dtype = DType::f32;
  Shape shape;
  uint64_t begin = 0;  // byte range in the data buffer, [begin, end)
  uint64_t end = 0;
};

// The safetensors name of a graft dtype ("F32", "BF16", "BOOL", ...).
const char* safetensors_dtype_name(DType dtype);

class SafetensorsFile {
 public:
  // Maps the file read-only; the mapping lives as long as this object. IOError when the file
  // cannot be opened or mapped, FormatError when its contents are malformed.
  static SafetensorsFile open(const std::filesystem::path& path);
  // Parses bytes held in memory (owned by the object); errors name the file as "<bytes>".
  static SafetensorsFile from_bytes(std::string bytes);

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const;
  TensorInfo info(const std::string& name) const;  // ValueError when absent
  const std::map<std::string, std::string>& metadata() const;
  const std::string& label() const;  // the path, or "<bytes>"

  // Copies the tensor into a new contiguous CPU tensor of its stored dtype, then converts it with
  // ops::cast when `as` names another dtype (e.g. bf16 stored, f32 wanted).
  Tensor load(const std::string& name, std::optional<DType> as = std::nullopt) const;
  std::map<std::string, Tensor> load_all(std::optional<DType> as = std::nullopt) const;

 private:
  struct Impl;
  explicit SafetensorsFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The bytes of a safetensors file holding `tensors` (CUDA tensors are copied to the host,
// non-contiguous ones made contiguous). The layout is Hugging Face's writer's, byte for byte:
// tensors ordered by dtype (I64, F64, F32, I32, BF16, F16, BOOL: element sizes never grow) and
// then by name, packed without gaps yet each aligned to its element size; the JSON header lists
// "__metadata__" first, then the tensors in data order, padded with spaces to a multiple of 8.
// ValueError for an undefined tensor, the reserved name "__metadata__", or non-UTF-8 strings.
std::string serialize_safetensors(const std::map<std::string, Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

// serialize_safetensors written with write_file_atomic (a crash never leaves a torn file).
void save_safetensors(const std::filesystem::path& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// SafetensorsFile::open(path).load_all(as).
std::map<std::string, Tensor> load_safetensors(const std::filesystem::path& path,
                                               std::optional<DType> as = std::nullopt);

}  // namespace graft::nn
