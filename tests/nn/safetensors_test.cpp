// safetensors I/O: goldens written by the Hugging Face library (tests/golden/make_safetensors_golden.py),
// graft -> bytes -> graft round trips for every dtype, and hostile files: each malformed header
// must throw FormatError naming the tensor, and every truncation of a valid file must throw.
#include "nn/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tensor/factory.h"
#include "tensor/ops.h"

namespace graft::nn {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

fs::path golden_dir() { return fs::path(GRAFT_TEST_DATA_DIR) / "golden" / "safetensors"; }

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A file from a header text and a data buffer (the header length is the text's length).
std::string make_file(const std::string& header, const std::string& data = "") {
  const uint64_t n = header.size();
  std::string out(reinterpret_cast<const char*>(&n), 8);
  return out + header + data;
}

// A per-test scratch directory, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::path(::testing::TempDir()) /
            ("graft_st_" + std::string(test->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Expects FormatError whose message contains every one of `parts`.
void expect_format_error(const std::string& bytes, std::initializer_list<std::string> parts) {
  try {
    auto file = SafetensorsFile::from_bytes(bytes);
    ADD_FAILURE() << "no FormatError; the file opened with " << file.names().size() << " tensors";
  } catch (const FormatError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("<bytes>"), std::string::npos) << message;
    for (const auto& part : parts) EXPECT_NE(message.find(part), std::string::npos) << "missing '" << part << "' in: " << message;
  }
}

// Compares a loaded tensor with a golden entry {"dtype", "shape", "values"} bit for bit (NaN = NaN).
void expect_matches_golden(const Tensor& t, const json& want, const std::string& name) {
  SCOPED_TRACE(name);
  EXPECT_EQ(safetensors_dtype_name(t.dtype()), want["dtype"].get<std::string>());
  EXPECT_EQ(t.shape(), want["shape"].get<Shape>());
  const json& values = want["values"];
  ASSERT_EQ(static_cast<std::size_t>(t.numel()), values.size());
  if (is_integral(t.dtype())) {
    const auto got = t.to_vector<int64_t>();
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], values[i].get<int64_t>()) << "element " << i;
    return;
  }
  const auto got = t.to_vector<double>();
  for (std::size_t i = 0; i < got.size(); ++i) {
    const json& v = values[i];
    if (v.is_boolean()) {
      EXPECT_EQ(got[i], v.get<bool>() ? 1.0 : 0.0) << "element " << i;
    } else if (v.is_string()) {
      const auto s = v.get<std::string>();
      if (s == "nan") EXPECT_TRUE(std::isnan(got[i])) << "element " << i << " = " << got[i];
      else EXPECT_EQ(got[i], s == "inf" ? INFINITY : -INFINITY) << "element " << i;
    } else {
      const double expected = v.get<double>();
      EXPECT_EQ(got[i], expected) << "element " << i;
      EXPECT_EQ(std::signbit(got[i]), std::signbit(expected)) << "element " << i << " (sign of zero)";
    }
  }
}

class SafetensorsGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(SafetensorsGolden, ReadsThePythonLibrarysFileExactly) {
  const json want = json::parse(read_bytes(golden_dir() / (GetParam() + ".json")));
  const auto file = SafetensorsFile::open(golden_dir() / (GetParam() + ".safetensors"));
  std::vector<std::string> names;
  for (const auto& [name, entry] : want.items())
    if (name != "__metadata__") names.push_back(name);  // json's object keys are sorted
  EXPECT_EQ(file.names(), names);
  EXPECT_EQ(file.metadata(), (want["__metadata__"].get<std::map<std::string, std::string>>()));
  for (const auto& name : names) {
    EXPECT_TRUE(file.contains(name));
    expect_matches_golden(file.load(name), want[name], name);
  }
}

TEST_P(SafetensorsGolden, ConvertsToF32OnLoad) {
  const json want = json::parse(read_bytes(golden_dir() / (GetParam() + ".json")));
  const auto tensors = load_safetensors(golden_dir() / (GetParam() + ".safetensors"), DType::f32);
  for (const auto& [name, t] : tensors) {
    EXPECT_EQ(t.dtype(), DType::f32) << name;
    json as_f32 = want[name];
    as_f32["dtype"] = "F32";
    // Every golden value is exact in f32 except f64/i64 ones, compared in f32 precision instead.
    const std::string stored = want[name]["dtype"];
    if (stored == "F64" || stored == "I64") {
      const auto got = t.to_vector<float>();
      for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], static_cast<float>(want[name]["values"][i].get<double>()));
    } else if (stored != "I32") {
      expect_matches_golden(t, as_f32, name);
    }
  }
}

TEST_P(SafetensorsGolden, TruncationAtEveryByteThrowsFormatError) {
  const std::string bytes = read_bytes(golden_dir() / (GetParam() + ".safetensors"));
  for (std::size_t size = 0; size < bytes.size(); ++size)
    EXPECT_THROW(SafetensorsFile::from_bytes(bytes.substr(0, size)), FormatError) << "prefix of " << size << " bytes";
}

INSTANTIATE_TEST_SUITE_P(Files, SafetensorsGolden, ::testing::Values("mixed", "special"));

TEST(Safetensors, WritesBytesIdenticalToThePythonLibrary) {
  // mixed.safetensors has a single metadata key, so its header order is deterministic.
  const std::string want = read_bytes(golden_dir() / "mixed.safetensors");
  const auto file = SafetensorsFile::from_bytes(want);
  EXPECT_EQ(serialize_safetensors(file.load_all(), file.metadata()), want);
}

TEST(Safetensors, TruncatedFileOnDiskThrowsFormatError) {
  TempDir dir;
  const std::string bytes = read_bytes(golden_dir() / "mixed.safetensors");
  for (std::size_t size : {std::size_t{0}, std::size_t{7}, std::size_t{8}, std::size_t{100}, bytes.size() - 1}) {
    const fs::path path = dir.path() / ("cut" + std::to_string(size));
    std::ofstream(path, std::ios::binary) << bytes.substr(0, size);
    try {
      SafetensorsFile::open(path);
      ADD_FAILURE() << "prefix of " << size << " bytes opened";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    }
  }
}

// One tensor of every dtype, with a 0-d, an empty and a non-contiguous one among them.
std::map<std::string, Tensor> every_dtype() {
  std::map<std::string, Tensor> t;
  t["f32"] = from_vector<float>({1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-40f}, {2, 3});
  t["f64"] = from_vector<double>({M_PI, -1e300, 5e-324}, {3});
  t["bf16"] = from_vector<float>({1.0f, -3.140625f, 256.0f, 0.5f}, {2, 2}).to(DType::bf16);
  t["f16"] = from_vector<float>({0.099975586f, 65504.0f, -1.0f}, {3, 1}).to(DType::f16);
  t["i32"] = from_vector<int32_t>({std::numeric_limits<int32_t>::min(), 0, 7}, {3});
  t["i64"] = from_vector<int64_t>({std::numeric_limits<int64_t>::max(), -1}, {1, 2});
  t["bool"] = from_vector<bool>({true, false, true}, {3});
  t["scalar"] = scalar_tensor(-4.5, DType::f64);
  t["empty"] = zeros({0, 4}, DType::i64);
  t["empty_bool"] = zeros({2, 0}, DType::boolean);
  t["transposed"] = arange(0.0, 12.0, 1.0).reshape({3, 4}).t();  // not contiguous
  return t;
}

void expect_same_tensors(const std::map<std::string, Tensor>& got, const std::map<std::string, Tensor>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, w] : want) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(got.count(name));
    const Tensor& g = got.at(name);
    EXPECT_EQ(g.dtype(), w.dtype());
    EXPECT_EQ(g.shape(), w.shape());
    EXPECT_TRUE(g.is_contiguous());
    const Tensor wc = ops::contiguous(w);
    ASSERT_EQ(g.numel() * static_cast<int64_t>(g.element_size()), wc.numel() * static_cast<int64_t>(wc.element_size()));
    if (g.numel() > 0) EXPECT_EQ(std::memcmp(g.data_ptr(), wc.data_ptr(), g.numel() * g.element_size()), 0) << "bytes differ";
  }
}

TEST(Safetensors, RoundTripsEveryDtypeBitForBit) {
  const auto tensors = every_dtype();
  const std::map<std::string, std::string> metadata{{"format", "pt"}, {"note", "\xc3\xa9 \xe2\x9c\x93"}, {"", ""}};
  const std::string bytes = serialize_safetensors(tensors, metadata);
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  EXPECT_EQ(header_size % 8, 0u) << "header padded so the data starts 8-byte aligned";

  auto file = SafetensorsFile::from_bytes(bytes);
  SafetensorsFile moved = std::move(file);  // the owned buffer must survive the move
  EXPECT_EQ(moved.metadata(), metadata);
  EXPECT_EQ(moved.info("scalar").shape, Shape{});
  for (const auto& name : moved.names()) {
    const TensorInfo info = moved.info(name);
    EXPECT_EQ((8 + header_size + info.begin) % dtype_size(info.dtype), 0u) << name << " is misaligned";
  }
  expect_same_tensors(moved.load_all(), tensors);
}

TEST(Safetensors, SaveAndLoadThroughTheFileSystem) {
  TempDir dir;
  const auto tensors = every_dtype();
  const fs::path path = dir.path() / "model.safetensors";
  save_safetensors(path, tensors, {{"step", "12"}});
  save_safetensors(path, tensors, {{"step", "13"}});  // replaces the file
  EXPECT_EQ(SafetensorsFile::open(path).metadata().at("step"), "13");
  std::map<std::string, Tensor> loaded;
  {
    auto file = SafetensorsFile::open(path);
    loaded = file.load_all();
  }  // unmapped: the loaded tensors are copies and stay valid
  expect_same_tensors(loaded, tensors);
  for (const auto& entry : fs::directory_iterator(dir.path()))
    EXPECT_EQ(entry.path().filename(), "model.safetensors") << "left behind: " << entry.path();
}

TEST(Safetensors, LoadConvertsHalfTypesToF32) {
  const auto tensors = every_dtype();
  const auto file = SafetensorsFile::from_bytes(serialize_safetensors(tensors));
  const Tensor bf = file.load("bf16", DType::f32);
  EXPECT_EQ(bf.dtype(), DType::f32);
  EXPECT_EQ(bf.to_vector<float>(), (std::vector<float>{1.0f, -3.140625f, 256.0f, 0.5f}));
  EXPECT_EQ(file.load("f16", DType::f32).to_vector<float>(), (std::vector<float>{0.099975586f, 65504.0f, -1.0f}));
  EXPECT_EQ(file.load("f32", DType::f32).dtype(), DType::f32);  // no conversion needed
  EXPECT_EQ(file.load("empty", DType::f32).shape(), (Shape{0, 4}));
}

TEST(Safetensors, ValidEdgeCases) {
  EXPECT_TRUE(SafetensorsFile::from_bytes(make_file("{}")).names().empty());
  EXPECT_TRUE(SafetensorsFile::from_bytes(make_file("  {  }  ")).names().empty());
  // Zero-size tensors may sit at the start, between and after others.
  const std::string header = R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
                             R"("b":{"dtype":"I32","shape":[],"data_offsets":[0,4]},)"
                             R"("c":{"dtype":"BOOL","shape":[3,0],"data_offsets":[4,4]},)"
                             R"("d":{"dtype":"BF16","shape":[1,1],"data_offsets":[4,6]},)"
                             R"("e":{"dtype":"F64","shape":[0,7],"data_offsets":[6,6],"extra":"ignored"}})";
  const auto file = SafetensorsFile::from_bytes(make_file(header, std::string("\x07\x00\x00\x00\x80\x3f", 6)));
  EXPECT_EQ(file.names(), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(file.load("b").item<int64_t>(), 7);
  EXPECT_EQ(file.load("d", DType::f32).item<float>(), 1.0f);
  EXPECT_EQ(file.load("c").shape(), (Shape{3, 0}));
}

TEST(Safetensors, RejectsMalformedHeaders) {
  const std::string f32x2 = R"("dtype":"F32","shape":[2])";
  const std::string data8(8, '\0');
  // too short for the length field, length beyond the file, absurd length
  expect_format_error("", {"0 bytes", "shorter than the 8-byte"});
  expect_format_error("abc", {"3 bytes"});
  expect_format_error(make_file("{}").substr(0, 8) + "{", {"header length 2", "beyond the end of the file"});
  std::string huge(8, '\0');
  huge[5] = 1;  // 2^40
  expect_format_error(huge + "{}", {"exceeds the limit"});
  expect_format_error(std::string(8, '\xff') + "{}", {"exceeds the limit"});
  // not JSON, not an object, not UTF-8
  expect_format_error(make_file("{not json"), {"not valid JSON"});
  expect_format_error(make_file(""), {"not valid JSON"});
  expect_format_error(make_file("[1, 2]"), {"must be a JSON object", "array"});
  expect_format_error(make_file("{\"w\xff\":1}"), {"not valid JSON"});
  expect_format_error(make_file("{} {}"), {"not valid JSON"});
  // entries of the wrong kind
  expect_format_error(make_file(R"({"w": 5})"), {"'w'", "entry must be an object", "number"});
  expect_format_error(make_file(R"({"w": {"shape":[2],"data_offsets":[0,8]}})", data8), {"'w'", "missing \"dtype\""});
  expect_format_error(make_file(R"({"w": {"dtype":"F32","data_offsets":[0,8]}})", data8), {"'w'", "missing \"shape\""});
  expect_format_error(make_file(R"({"w": {)" + f32x2 + "}}", data8), {"'w'", "missing \"data_offsets\""});
  expect_format_error(make_file(R"({"w": {"dtype":5,"shape":[2],"data_offsets":[0,8]}})", data8), {"'w'", "\"dtype\" must be a string"});
  expect_format_error(make_file(R"({"w": {"dtype":"F32","shape":"2","data_offsets":[0,8]}})", data8), {"'w'", "\"shape\" must be an array"});
  expect_format_error(make_file(R"({"w": {"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}})", data8), {"'w'", "shape[0]", "1.5"});
  expect_format_error(make_file(R"({"w": {"dtype":"F32","shape":[2,-1],"data_offsets":[0,8]}})", data8), {"'w'", "shape[1]", "-1"});
  expect_format_error(make_file(R"({"w": {)" + f32x2 + R"(,"data_offsets":[0]}})", data8), {"'w'", "[begin, end]", "[0]"});
  expect_format_error(make_file(R"({"w": {)" + f32x2 + R"(,"data_offsets":[0,"8"]}})", data8), {"'w'", "[begin, end]"});
  expect_format_error(make_file(R"({"w": {)" + f32x2 + R"(,"data_offsets":[-1,7]}})", data8), {"'w'", "[begin, end]"});
  expect_format_error(make_file(R"({"w": {)" + f32x2 + R"(,"data_offsets":{"a":1}}})", data8), {"'w'", "[begin, end]"});
  expect_format_error(make_file(R"({"w": {)" + f32x2 + R"(,"data_offsets":[8,0]}})", data8), {"'w'", "[8, 0]", "begin > end"});
  // dtypes
  expect_format_error(make_file(R"({"w": {"dtype":"F17","shape":[2],"data_offsets":[0,8]}})", data8), {"'w'", "unknown dtype \"F17\"", "F32"});
  expect_format_error(make_file(R"({"w": {"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", data8), {"'w'", "U8", "graft has no such dtype"});
  expect_format_error(make_file(R"({"w": {"dtype":"f32","shape":[2],"data_offsets":[0,8]}})", data8), {"'w'", "unknown dtype"});
  // sizes
  expect_format_error(make_file(R"({"w": {"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}})", data8), {"'w'", "overflows"});
  expect_format_error(make_file(R"({"w": {"dtype":"F32","shape":[0,4611686018427387904,4],"data_offsets":[0,0]}})"), {"'w'", "overflows"});
  expect_format_error(make_file(R"({"w": {"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,8]}})", data8), {"'w'", "overflows int64"});
  expect_format_error(make_file(R"({"w": {"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8), {"'w'", "[0, 8]", "hold 8 bytes", "F32", "[3]", "need 12"});
  expect_format_error(make_file(R"({"w": {)" + f32x2 + R"(,"data_offsets":[8,16]}})", data8), {"'w'", "[8, 16]", "beyond the data buffer of 8 bytes"});
  expect_format_error(make_file(R"({"w": {)" + f32x2 + R"(,"data_offsets":[18446744073709551615,18446744073709551615]}})", data8), {"'w'"});
  // layout: overlap, gap, trailing bytes
  const std::string data12(12, '\0');
  expect_format_error(make_file(R"({"a": {)" + f32x2 + R"(,"data_offsets":[0,8]}, "b": {)" + f32x2 + R"(,"data_offsets":[4,12]}})", data12),
                      {"'b'", "overlap", "'a'", "[4, 12]"});
  expect_format_error(make_file(R"({"a": {)" + f32x2 + R"(,"data_offsets":[0,8]}, "b": {)" + f32x2 + R"(,"data_offsets":[0,8]}})", data8),
                      {"'b'", "overlap", "'a'"});
  expect_format_error(make_file(R"({"a": {"dtype":"F32","shape":[1],"data_offsets":[0,4]}, "b": {"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", data12),
                      {"'b'", "gap", "expected begin 4", "'a'"});
  expect_format_error(make_file(R"({"a": {"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data8), {"'a'", "gap", "expected begin 0"});
  expect_format_error(make_file(R"({"a": {"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", data8), {"cover 4 bytes", "8-byte data buffer", "trailing"});
  expect_format_error(make_file(R"({"z": {"dtype":"F32","shape":[0],"data_offsets":[4,4]},"a": {)" + f32x2 + R"(,"data_offsets":[0,8]}})", data8),
                      {"'z'", "overlap", "'a'"});
  // metadata
  expect_format_error(make_file(R"({"__metadata__": [1]})"), {"__metadata__", "must be an object of strings"});
  expect_format_error(make_file(R"({"__metadata__": {"epoch": 3}})"), {"__metadata__", "'epoch'", "must be a string"});
  // duplicate keys, at the top and inside an entry
  expect_format_error(make_file(R"({"w": {)" + f32x2 + R"(,"data_offsets":[0,8]}, "w": {)" + f32x2 + R"(,"data_offsets":[0,8]}})", data8),
                      {"duplicate key \"w\""});
  expect_format_error(make_file(R"({"w": {"dtype":"F16",)" + f32x2 + R"(,"data_offsets":[0,8]}})", data8), {"duplicate key \"dtype\""});
}

TEST(Safetensors, DeeplyNestedJsonIsRejectedWithoutExhaustingTheStack) {
  const int depth = 200000;
  expect_format_error(make_file(R"({"w": {"dtype": )" + std::string(depth, '[') + std::string(depth, ']') + "}}"),
                      {"'w'", "\"dtype\" must be a string"});
  expect_format_error(make_file(R"({"w": )" + std::string(depth, '[')), {"not valid JSON"});
}

TEST(Safetensors, RejectsInvalidBoolBytesOnLoad) {
  const auto file = SafetensorsFile::from_bytes(make_file(R"({"mask":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})", std::string("\x01\x00\x02", 3)));
  try {
    file.load("mask");
    ADD_FAILURE() << "no FormatError";
  } catch (const FormatError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'mask'"), std::string::npos) << message;
    EXPECT_NE(message.find("element 2 is byte 2"), std::string::npos) << message;
  }
}

TEST(Safetensors, ReportsMissingTensorsAndFiles) {
  const auto file = SafetensorsFile::from_bytes(serialize_safetensors(every_dtype()));
  EXPECT_FALSE(file.contains("nope"));
  try {
    file.load("nope");
    ADD_FAILURE() << "no ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("'nope'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(SafetensorsFile::open("/nonexistent/graft/model.safetensors"), IOError);
  EXPECT_THROW(SafetensorsFile::open(GRAFT_TEST_DATA_DIR), IOError);  // a directory
}

TEST(Safetensors, WriterRejectsBadInput) {
  EXPECT_THROW(serialize_safetensors({{"__metadata__", zeros({1})}}), ValueError);
  EXPECT_THROW(serialize_safetensors({{"w", Tensor()}}), ValueError);
  EXPECT_THROW(serialize_safetensors({{"w\xff", zeros({1})}}), ValueError);
  EXPECT_THROW(serialize_safetensors({{"w", zeros({1})}}, {{"k", "\xc3"}}), ValueError);
}

}  // namespace
}  // namespace graft::nn
