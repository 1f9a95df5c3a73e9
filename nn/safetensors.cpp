#include "nn/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "nn/atomic_file.h"
#include "tensor/factory.h"
#include "tensor/ops.h"

namespace graft::nn {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian; so is every host graft runs on");

namespace {

using json = nlohmann::json;

// Hugging Face's reader refuses larger headers too; it bounds the memory a hostile file can claim.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";

struct DTypeName {
  const char* name;
  DType dtype;
};
constexpr DTypeName kDTypes[] = {{"F32", DType::f32}, {"F64", DType::f64},   {"F16", DType::f16}, {"BF16", DType::bf16},
                                 {"I32", DType::i32}, {"I64", DType::i64}, {"BOOL", DType::boolean}};
// Valid in safetensors, absent from graft: named in the error so the user knows the file is not corrupt.
constexpr const char* kForeignDTypes[] = {"U8",      "I8",       "U16",      "I16",     "U32", "U64", "F8_E4M3",
                                          "F8_E5M2", "F8_E8M0",  "F4",       "F6_E2M3", "F6_E3M2", "C64"};

// Position in Hugging Face's writer order (its Dtype enum, descending); sizes never increase.
int writer_rank(DType dtype) {
  switch (dtype) {
    case DType::i64: return 0;
    case DType::f64: return 1;
    case DType::f32: return 2;
    case DType::i32: return 3;
    case DType::bf16: return 4;
    case DType::f16: return 5;
    case DType::boolean: return 6;
  }
  return 7;
}

std::string supported_dtype_list() {
  std::string s;
  for (const auto& d : kDTypes) s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

[[noreturn]] void fail(const std::string& label, const std::string& what) {
  throw FormatError("safetensors '" + label + "': " + what);
}
[[noreturn]] void fail_tensor(const std::string& label, const std::string& name, const std::string& what) {
  fail(label, "tensor '" + name + "': " + what);
}

std::string range_str(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

DType parse_dtype(const std::string& label, const std::string& name, const json& value) {
  if (!value.is_string()) fail_tensor(label, name, std::string("\"dtype\" must be a string, got ") + value.type_name());
  const auto& text = value.get_ref<const std::string&>();
  for (const auto& d : kDTypes)
    if (text == d.name) return d.dtype;
  for (const char* foreign : kForeignDTypes)
    if (text == foreign)
      fail_tensor(label, name, "dtype " + text + " is valid safetensors but graft has no such dtype (supported: " +
                                   supported_dtype_list() + ")");
  fail_tensor(label, name, "unknown dtype \"" + text + "\" (supported: " + supported_dtype_list() + ")");
}

Shape parse_shape(const std::string& label, const std::string& name, const json& value) {
  if (!value.is_array()) fail_tensor(label, name, std::string("\"shape\" must be an array, got ") + value.type_name());
  Shape shape;
  shape.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    const json& dim = value[i];
    // nlohmann stores non-negative integers as unsigned; negatives and fractions are other types.
    if (!dim.is_number_unsigned())
      fail_tensor(label, name, "shape[" + std::to_string(i) + "] must be a non-negative integer, got " + dim.dump());
    const auto size = dim.get<uint64_t>();
    if (size > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail_tensor(label, name, "shape[" + std::to_string(i) + "] = " + std::to_string(size) + " overflows int64");
    shape.push_back(static_cast<int64_t>(size));
  }
  return shape;
}

// Byte size of the tensor. Zero dims are counted as 1 in the overflow check because strides are
// still products of the other dims: [0, 2^62, 4] has no elements but would overflow its strides.
uint64_t checked_nbytes(const std::string& label, const std::string& name, const Shape& shape, DType dtype) {
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t product = dtype_size(dtype);
  bool empty = false;
  for (int64_t dim : shape) {
    const auto d = static_cast<uint64_t>(dim);
    if (d == 0) {
      empty = true;
      continue;
    }
    if (product > kMax / d)
      fail_tensor(label, name, "shape " + shape_str(shape) + " of " + dtype_name(dtype) + " overflows a 64-bit byte count");
    product *= d;
  }
  return empty ? 0 : product;
}

std::pair<uint64_t, uint64_t> parse_offsets(const std::string& label, const std::string& name, const json& value) {
  if (!value.is_array() || value.size() != 2 || !value[0].is_number_unsigned() || !value[1].is_number_unsigned())
    fail_tensor(label, name, "\"data_offsets\" must be [begin, end] with non-negative integers, got " + value.dump());
  const auto begin = value[0].get<uint64_t>(), end = value[1].get<uint64_t>();
  if (begin > end) fail_tensor(label, name, "data_offsets " + range_str(begin, end) + " has begin > end");
  return {begin, end};
}

const json& require_field(const std::string& label, const std::string& name, const json& entry, const char* field) {
  auto it = entry.find(field);
  if (it == entry.end()) fail_tensor(label, name, std::string("missing \"") + field + "\"");
  return *it;
}

// Parses the JSON text, rejecting duplicate keys in any object (nlohmann would keep the last one
// silently, and two readers could then disagree about a file's contents).
json parse_json(const std::string& label, std::string_view text) {
  std::vector<std::set<std::string>> keys_per_object;
  auto on_event = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start: keys_per_object.emplace_back(); break;
      case json::parse_event_t::object_end: keys_per_object.pop_back(); break;
      case json::parse_event_t::key:
        if (!keys_per_object.back().insert(parsed.get<std::string>()).second)
          fail(label, "duplicate key \"" + parsed.get<std::string>() + "\" in the JSON header");
        break;
      default: break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), on_event);
  } catch (const json::exception& e) {
    fail(label, std::string("header is not valid JSON: ") + e.what());
  }
}

}  // namespace

const char* safetensors_dtype_name(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.name;
  return "?";
}

// --- reading ---

struct SafetensorsFile::Impl {
  std::string label;
  void* mapping = nullptr;  // mmap'ed file, or null when the bytes are owned
  std::size_t mapping_size = 0;
  std::string owned;
  const unsigned char* file = nullptr;  // the whole file
  uint64_t file_size = 0;
  uint64_t buffer_start = 0;  // 8 + header length
  std::map<std::string, TensorInfo> tensors;
  std::map<std::string, std::string> metadata;

  ~Impl() {
    if (mapping != nullptr) ::munmap(mapping, mapping_size);
  }
  void parse();
};

// Validates everything a later load() relies on, so load() itself cannot go out of bounds.
void SafetensorsFile::Impl::parse() {
  if (file_size < 8) fail(label, "file is " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
  uint64_t header_size = 0;
  std::memcpy(&header_size, file, 8);
  if (header_size > kMaxHeaderBytes)
    fail(label, "header length " + std::to_string(header_size) + " exceeds the limit of " + std::to_string(kMaxHeaderBytes) + " bytes");
  if (header_size > file_size - 8)
    fail(label, "header length " + std::to_string(header_size) + " is beyond the end of the file (" +
                    std::to_string(file_size - 8) + " bytes follow the length)");
  buffer_start = 8 + header_size;
  const uint64_t buffer_size = file_size - buffer_start;

  const json header = parse_json(label, std::string_view(reinterpret_cast<const char*>(file) + 8, header_size));
  if (!header.is_object()) fail(label, std::string("header must be a JSON object, got ") + header.type_name());

  for (const auto& [name, entry] : header.items()) {
    if (name == kMetadataKey) {
      if (!entry.is_object()) fail(label, std::string("\"__metadata__\" must be an object of strings, got ") + entry.type_name());
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string())
          fail(label, "\"__metadata__\" value for key '" + key + "' must be a string, got " + value.type_name());
        metadata.emplace(key, value.get<std::string>());
      }
      continue;
    }
    if (!entry.is_object()) fail_tensor(label, name, std::string("entry must be an object, got ") + entry.type_name());
    // Other fields are ignored, as Hugging Face's reader does.
    TensorInfo info;
    info.dtype = parse_dtype(label, name, require_field(label, name, entry, "dtype"));
    info.shape = parse_shape(label, name, require_field(label, name, entry, "shape"));
    std::tie(info.begin, info.end) = parse_offsets(label, name, require_field(label, name, entry, "data_offsets"));
    const uint64_t nbytes = checked_nbytes(label, name, info.shape, info.dtype);
    if (info.end - info.begin != nbytes)
      fail_tensor(label, name, "data_offsets " + range_str(info.begin, info.end) + " hold " + std::to_string(info.end - info.begin) +
                                   " bytes but dtype " + safetensors_dtype_name(info.dtype) + " and shape " + shape_str(info.shape) +
                                   " need " + std::to_string(nbytes));
    if (info.end > buffer_size)
      fail_tensor(label, name, "data_offsets " + range_str(info.begin, info.end) + " end beyond the data buffer of " +
                                   std::to_string(buffer_size) + " bytes (file truncated?)");
    tensors.emplace(name, std::move(info));
  }

  // Decision: like Hugging Face's reader, the tensors must tile the data buffer exactly: sorted by
  // offset, each begins where the previous one ends and the last ends at the end of the file. No
  // overlaps (two tensors sharing bytes), no gaps, no trailing bytes: a file graft accepts is one
  // that every other safetensors reader accepts too, and stray bytes are a sign of corruption.
  std::vector<std::pair<const std::string*, const TensorInfo*>> by_offset;
  for (const auto& [name, info] : tensors) by_offset.emplace_back(&name, &info);
  std::sort(by_offset.begin(), by_offset.end(), [](const auto& a, const auto& b) {
    return std::pair(a.second->begin, a.second->end) < std::pair(b.second->begin, b.second->end);
  });
  uint64_t covered = 0;
  const std::string* previous = nullptr;
  for (const auto& [name, info] : by_offset) {
    if (info->begin < covered)
      fail_tensor(label, *name, "data_offsets " + range_str(info->begin, info->end) + " overlap tensor '" + *previous +
                                    "', which ends at " + std::to_string(covered));
    if (info->begin > covered)
      fail_tensor(label, *name, "data_offsets " + range_str(info->begin, info->end) + " leave a gap: expected begin " +
                                    std::to_string(covered) + (previous ? " (the end of tensor '" + *previous + "')" : std::string()) +
                                    "; safetensors requires the data buffer to be fully covered");
    covered = info->end;
    previous = name;
  }
  if (covered != buffer_size)
    fail(label, "the tensors cover " + std::to_string(covered) + " bytes of the " + std::to_string(buffer_size) +
                    "-byte data buffer; safetensors allows no trailing bytes");
}

SafetensorsFile::SafetensorsFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  auto impl = std::make_unique<Impl>();
  impl->label = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IOError("safetensors: cannot open '" + impl->label + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    throw IOError("safetensors: cannot stat '" + impl->label + "': " + std::strerror(error));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw IOError("safetensors: '" + impl->label + "' is not a regular file");
  }
  impl->file_size = static_cast<uint64_t>(st.st_size);
  if (impl->file_size > 0) {  // mmap refuses length 0; parse() reports the short file
    void* mapping = ::mmap(nullptr, impl->file_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping == MAP_FAILED) {
      const int error = errno;
      ::close(fd);
      throw IOError("safetensors: cannot mmap '" + impl->label + "': " + std::strerror(error));
    }
    impl->mapping = mapping;
    impl->mapping_size = impl->file_size;
    impl->file = static_cast<const unsigned char*>(mapping);
  }
  ::close(fd);  // the mapping stays valid without the descriptor
  impl->parse();
  return SafetensorsFile(std::move(impl));
}

SafetensorsFile SafetensorsFile::from_bytes(std::string bytes) {
  auto impl = std::make_unique<Impl>();
  impl->label = "<bytes>";
  impl->owned = std::move(bytes);  // Impl lives on the heap: the pointer below survives moves of the file
  impl->file = reinterpret_cast<const unsigned char*>(impl->owned.data());
  impl->file_size = impl->owned.size();
  impl->parse();
  return SafetensorsFile(std::move(impl));
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(impl_->tensors.size());
  for (const auto& entry : impl_->tensors) out.push_back(entry.first);
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const { return impl_->tensors.count(name) != 0; }

TensorInfo SafetensorsFile::info(const std::string& name) const {
  auto it = impl_->tensors.find(name);
  if (it == impl_->tensors.end()) {
    std::string some;
    int shown = 0;
    for (const auto& entry : impl_->tensors) {
      if (shown++ == 5) {
        some += ", ...";
        break;
      }
      some += (some.empty() ? "'" : ", '") + entry.first + "'";
    }
    throw ValueError("safetensors '" + impl_->label + "': no tensor named '" + name + "' (the file has " +
                     std::to_string(impl_->tensors.size()) + " tensors" + (some.empty() ? "" : ": " + some) + ")");
  }
  return it->second;
}

const std::map<std::string, std::string>& SafetensorsFile::metadata() const { return impl_->metadata; }
const std::string& SafetensorsFile::label() const { return impl_->label; }

Tensor SafetensorsFile::load(const std::string& name, std::optional<DType> as) const {
  const TensorInfo tensor_info = info(name);
  const unsigned char* src = impl_->file + impl_->buffer_start + tensor_info.begin;  // in bounds: checked by parse()
  const auto nbytes = static_cast<std::size_t>(tensor_info.end - tensor_info.begin);
  if (tensor_info.dtype == DType::boolean) {
    // Any other byte would be an invalid C++ bool once copied in.
    const auto* bad = std::find_if(src, src + nbytes, [](unsigned char b) { return b > 1; });
    if (bad != src + nbytes)
      fail_tensor(impl_->label, name, "BOOL element " + std::to_string(bad - src) + " is byte " + std::to_string(*bad) +
                                          ", expected 0 or 1");
  }
  Tensor out = empty(tensor_info.shape, tensor_info.dtype);
  if (nbytes > 0) std::memcpy(out.data_ptr(), src, nbytes);
  if (as && *as != tensor_info.dtype) return ops::cast(out, *as);
  return out;
}

std::map<std::string, Tensor> SafetensorsFile::load_all(std::optional<DType> as) const {
  std::map<std::string, Tensor> out;
  for (const auto& entry : impl_->tensors) out.emplace(entry.first, load(entry.first, as));
  return out;
}

// --- writing ---

std::string serialize_safetensors(const std::map<std::string, Tensor>& tensors, const std::map<std::string, std::string>& metadata) {
  struct Entry {
    const std::string* name;
    Tensor host;  // contiguous, on the CPU
  };
  std::vector<Entry> entries;
  entries.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey) throw ValueError("serialize_safetensors: \"__metadata__\" is reserved and cannot name a tensor");
    if (!tensor.defined()) throw ValueError("serialize_safetensors: tensor '" + name + "' is undefined");
    Tensor host = ops::contiguous(tensor);
    if (!host.device().is_cpu()) host = ops::to_device(host, Device::cpu());
    entries.push_back({&name, std::move(host)});
  }
  // Hugging Face's writer order: by dtype rank (below), then by name. Element sizes never grow
  // along it, so every tensor starts at a multiple of its element size with no padding between
  // tensors (Hugging Face's reader rejects gaps), and graft's bytes equal the Python library's.
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return writer_rank(a.host.dtype()) < writer_rank(b.host.dtype());
  });

  // ordered_json keeps insertion order: "__metadata__" first, then tensors in data order, as
  // Hugging Face writes it.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  uint64_t offset = 0;
  for (const Entry& e : entries) {
    const uint64_t nbytes = static_cast<uint64_t>(e.host.numel()) * e.host.element_size();
    header[*e.name] = {{"dtype", safetensors_dtype_name(e.host.dtype())},
                       {"shape", e.host.shape()},
                       {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(std::string("serialize_safetensors: a tensor name or metadata string is not valid UTF-8: ") + e.what());
  }
  // Pad with spaces (valid JSON whitespace) so the data buffer starts 8-byte aligned.
  text.append((8 - text.size() % 8) % 8, ' ');

  std::string out;
  out.reserve(8 + text.size() + offset);
  const uint64_t header_size = text.size();
  out.append(reinterpret_cast<const char*>(&header_size), 8);
  out += text;
  for (const Entry& e : entries) {
    const auto nbytes = static_cast<std::size_t>(e.host.numel()) * e.host.element_size();
    if (nbytes > 0) out.append(static_cast<const char*>(e.host.data_ptr()), nbytes);
  }
  return out;
}

void save_safetensors(const std::filesystem::path& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, serialize_safetensors(tensors, metadata));
}

std::map<std::string, Tensor> load_safetensors(const std::filesystem::path& path, std::optional<DType> as) {
  return SafetensorsFile::open(path).load_all(as);
}

}  // namespace graft::nn
