#include "train/data/word_vectors.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <string_view>

#include "autograd/grad_mode.h"
#include "nn/embedding.h"
#include "tensor/factory.h"
#include "tensor/ops.h"
#include "train/data/quoting.h"

namespace graft::data {

using detail::in_quotes;

namespace {

constexpr int64_t kMaxDim = int64_t{1} << 20;      // no real embedding is wider; guards allocations
constexpr size_t kMaxWordBytes = size_t{1} << 16;  // a binary "word" longer than this is a broken file

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw FormatError("read_word_vectors: " + where + ": " + what);
}

std::string at_line(const std::string& source, int64_t line) { return source + " line " + std::to_string(line); }

// Fields separated by runs of spaces/tabs; a trailing '\r' (CRLF files) is not part of the last one.
std::vector<std::string_view> split_fields(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

bool parse_count(std::string_view text, int64_t& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() && value >= 0;
}

float parse_value(std::string_view text, const std::string& where, std::string_view word, int64_t column) {
  std::string_view digits = text;
  if (digits.size() > 1 && digits[0] == '+' && digits[1] != '-' && digits[1] != '+') digits.remove_prefix(1);
  float value = 0.0f;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (error != std::errc() || end != digits.data() + digits.size() || !std::isfinite(value)) {
    fail(where, "value " + std::to_string(column) + " of " + in_quotes(std::string(word)) + " is " +
                    in_quotes(std::string(text)) + "; expected a finite number");
  }
  return value;
}

// Rows as they are read: values in one growing buffer, duplicates dropped (first kept).
struct Rows {
  int64_t dim = 0;
  std::vector<std::string> words;
  std::vector<float> values;
  std::vector<std::string> duplicates;
  std::unordered_map<std::string, int64_t> index;

  // Appends the row unless the word was seen before (then it is listed as a duplicate).
  bool add(std::string word, const float* row) {
    if (index.count(word)) {
      duplicates.push_back(std::move(word));
      return false;
    }
    index.emplace(word, static_cast<int64_t>(words.size()));
    words.push_back(std::move(word));
    values.insert(values.end(), row, row + dim);
    return true;
  }
};

// The file's floats are little-endian; swapping is its own inverse, so this converts both ways.
void to_little_endian(std::vector<float>& values) {
  if constexpr (std::endian::native == std::endian::big) {
    for (auto& value : values) {
      auto bits = std::bit_cast<uint32_t>(value);
      bits = (bits >> 24) | ((bits >> 8) & 0xff00u) | ((bits << 8) & 0xff0000u) | (bits << 24);
      value = std::bit_cast<float>(bits);
    }
  }
}

// Zero-copy hand-over of the buffer to a tensor.
Tensor to_tensor(std::vector<float>&& values, int64_t rows, int64_t dim) {
  auto* owned = new std::vector<float>(std::move(values));
  return from_blob(owned->data(), {rows, dim}, DType::f32, [owned](void*) { delete owned; });
}

// Rows to reserve for a header's promise: no more than the bytes left can hold (each row takes at
// least `min_row_bytes`), so a lying header cannot make us allocate; a short file is then reported
// where it ends.
int64_t plausible_rows(int64_t rows, int64_t min_row_bytes, int64_t bytes_left) {
  return std::max<int64_t>(0, std::min(rows, bytes_left / min_row_bytes));
}

struct Header {
  int64_t count = 0, dim = 0;
};

std::optional<Header> parse_header(std::string_view line) {
  const auto fields = split_fields(line);
  Header header;
  if (fields.size() != 2 || !parse_count(fields[0], header.count) || !parse_count(fields[1], header.dim)) return {};
  return header;
}

void check_header(const std::string& source, const Header& header) {
  if (header.dim < 1 || header.dim > kMaxDim) {
    fail(at_line(source, 1), "the header's dim is " + std::to_string(header.dim) + "; expected 1 <= dim <= " +
                                 std::to_string(kMaxDim));
  }
}

int64_t size_in_bytes(const std::filesystem::path& path) {
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  return error ? 0 : static_cast<int64_t>(size);
}

std::ifstream open(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::error_code error;
  if (std::filesystem::is_directory(path, error))
    throw IOError("read_word_vectors: " + in_quotes(name) + " is a directory; expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IOError("read_word_vectors: cannot open " + in_quotes(name) + ": " + std::strerror(errno));
  return in;
}

// Text rows (word2vec text when `header` is set, GloVe otherwise).
Rows read_text(std::istream& in, const std::string& source, std::optional<Header> header, int64_t max_words,
               int64_t bytes) {
  Rows rows;
  std::string line;
  int64_t line_number = 0, read = 0;
  int64_t limit = max_words < 0 ? std::numeric_limits<int64_t>::max() : max_words;
  if (header) {
    std::getline(in, line);
    line_number = 1;
    check_header(source, *header);
    rows.dim = header->dim;
    limit = std::min(limit, header->count);
    // A row is at least a 1-byte word and dim values of "0" with a separator each.
    const int64_t reserve = plausible_rows(limit, 2 * header->dim + 1, bytes - static_cast<int64_t>(line.size()));
    rows.values.reserve(static_cast<size_t>(reserve * header->dim));
  }
  std::vector<float> row;
  while (read < limit && std::getline(in, line)) {
    ++line_number;
    const auto fields = split_fields(line);
    if (fields.empty()) continue;  // blank line
    const std::string where = at_line(source, line_number);
    if (rows.dim == 0) {  // GloVe: the first row decides
      if (fields.size() < 2) fail(where, "expected a word followed by its values, found one field");
      rows.dim = static_cast<int64_t>(fields.size()) - 1;
      if (rows.dim > kMaxDim) fail(where, "a first row of " + std::to_string(rows.dim) + " values; expected at most " + std::to_string(kMaxDim));
    }
    if (static_cast<int64_t>(fields.size()) != rows.dim + 1) {
      fail(where, "expected a word and " + std::to_string(rows.dim) + " values, found " +
                      std::to_string(fields.size()) + " fields (first: " + in_quotes(std::string(fields[0])) +
                      "; words cannot contain spaces)");
    }
    row.resize(static_cast<size_t>(rows.dim));
    for (int64_t j = 0; j < rows.dim; ++j) row[static_cast<size_t>(j)] = parse_value(fields[static_cast<size_t>(j) + 1], where, fields[0], j + 1);
    rows.add(std::string(fields[0]), row.data());
    ++read;
  }
  if (in.bad()) throw IOError("read_word_vectors: reading " + in_quotes(source) + " failed");
  if (!header && read == 0 && max_words != 0) fail(source, "the file holds no vectors");
  if (header && read < limit) {
    fail(at_line(source, line_number), "the header (line 1) promises " + std::to_string(header->count) +
                                           " words, but the file ends after " + std::to_string(read));
  }
  if (header && limit == header->count) {  // read all the header promised: nothing may follow
    while (std::getline(in, line)) {
      ++line_number;
      if (!split_fields(line).empty()) {
        fail(at_line(source, line_number), "more rows than the header's count of " + std::to_string(header->count) +
                                               " words");
      }
    }
  }
  return rows;
}

// word2vec binary: the header line, then "word " + dim float32 (+ optional '\n') per word.
Rows read_binary(std::istream& in, const std::string& source, int64_t max_words, int64_t bytes) {
  std::string line;
  if (!std::getline(in, line)) fail(at_line(source, 1), "the file is empty; expected a header \"count dim\"");
  const auto header = parse_header(line);
  if (!header) fail(at_line(source, 1), "expected a header \"count dim\", found " + in_quotes(line.substr(0, 80)));
  check_header(source, *header);
  Rows rows;
  rows.dim = header->dim;
  const int64_t limit = max_words < 0 ? header->count : std::min(header->count, max_words);
  const int64_t row_bytes = 4 * header->dim;
  const int64_t reserve = plausible_rows(limit, row_bytes + 2, bytes - static_cast<int64_t>(line.size()) - 1);
  rows.values.reserve(static_cast<size_t>(reserve * header->dim));

  std::vector<float> row(static_cast<size_t>(header->dim));
  std::string word;
  for (int64_t i = 0; i < limit; ++i) {
    const std::string where = source + " word index " + std::to_string(i);
    word.clear();
    int c = in.get();
    while (c == '\n' || c == '\r') c = in.get();  // the separator the original tool writes after each vector
    for (; c != std::char_traits<char>::eof() && c != ' '; c = in.get()) {
      if (word.size() == kMaxWordBytes) fail(where, "a word longer than " + std::to_string(kMaxWordBytes) + " bytes");
      word.push_back(static_cast<char>(c));
    }
    if (c == std::char_traits<char>::eof()) {
      fail(where, word.empty() ? "the header promises " + std::to_string(header->count) +
                                     " words, but the file ends after " + std::to_string(i)
                               : "the file ends inside the word " + in_quotes(word.substr(0, 80)));
    }
    if (word.empty()) fail(where, "an empty word (a space where the word should start)");
    in.read(reinterpret_cast<char*>(row.data()), row_bytes);
    if (in.gcount() != row_bytes) {
      fail(where, "the file ends inside the vector of " + in_quotes(word) + ": expected " + std::to_string(row_bytes) +
                      " bytes, found " + std::to_string(in.gcount()));
    }
    to_little_endian(row);
    for (int64_t j = 0; j < header->dim; ++j) {
      if (!std::isfinite(row[static_cast<size_t>(j)]))
        fail(where, "value " + std::to_string(j + 1) + " of " + in_quotes(word) + " is not a finite number");
    }
    rows.add(word, row.data());
  }
  if (in.bad()) throw IOError("read_word_vectors: reading " + in_quotes(source) + " failed");
  if (limit == header->count) {  // whitespace may follow the last vector, nothing else
    for (int c = in.get(); c != std::char_traits<char>::eof(); c = in.get()) {
      if (c != '\n' && c != '\r' && c != ' ' && c != '\t')
        fail(source + " word index " + std::to_string(limit), "data after the header's " +
                                                                  std::to_string(header->count) + " words");
    }
  }
  return rows;
}

// After "count dim\n": whether the first record is binary. Text when the rest of its line is
// printable ASCII (numbers) and the bytes after it hold no control characters; float32 bytes pass
// both only by a fluke that vanishes as dim grows. Malformed text still reads as text, so its
// errors name lines. (For a tiny dim, name the format rather than trust the guess.)
bool looks_binary(std::istream& in, int64_t dim) {
  const auto eof = std::char_traits<char>::eof();
  int c = in.get();
  while (c == '\n' || c == '\r') c = in.get();
  for (size_t n = 0; c != eof && c != ' ' && c != '\t'; c = in.get())
    if (++n > kMaxWordBytes) return true;
  const int64_t probe = std::min<int64_t>(4 * dim, 1 << 16);
  int64_t rest = 0;
  for (c = in.get(); c != eof && c != '\n'; c = in.get(), ++rest) {
    const bool printable = (c >= 0x20 && c <= 0x7e) || c == '\t' || c == '\r';
    if (!printable || rest > 64 * probe) return true;
  }
  if (rest == 0) return true;  // "word\n" with no values: a float whose first byte is '\n'
  for (int64_t i = 0; i < probe && (c = in.get()) != eof; ++i) {
    const bool control = (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f;
    if (control) return true;
  }
  return false;
}

std::string lowercase_ascii(std::string word) {
  for (auto& c : word)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return word;
}

void write_value_text(std::string& out, float value) {
  char buffer[32];
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value);  // shortest round trip
  out.append(buffer, error == std::errc() ? end : buffer);
}

void check_writable_word(const std::string& word, const char* op) {
  if (word.empty() || word.find_first_of(" \t\r\n") != std::string::npos) {
    throw ValueError(std::string(op) + ": the word " + in_quotes(word) +
                     " is empty or holds whitespace; the format cannot store it");
  }
}

std::ofstream create(const std::filesystem::path& path, const char* op) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw IOError(std::string(op) + ": cannot create " + in_quotes(path.string()) + ": " + std::strerror(errno));
  return out;
}

void finish(std::ofstream& out, const std::filesystem::path& path, const char* op) {
  out.close();
  if (!out) throw IOError(std::string(op) + ": writing " + in_quotes(path.string()) + " failed");
}

}  // namespace

// ---- WordVectors ----

WordVectors::WordVectors(std::vector<std::string> words, const Tensor& vectors, std::string source)
    : words_(std::move(words)), source_(std::move(source)) {
  if (!vectors.defined() || vectors.dim() != 2 || vectors.size(0) != static_cast<int64_t>(words_.size())) {
    throw ShapeError("WordVectors: expected vectors [" + std::to_string(words_.size()) + ", dim] for " +
                     std::to_string(words_.size()) + " words, got " +
                     (vectors.defined() ? shape_str(vectors.shape()) : std::string("undefined")));
  }
  if (!is_floating(vectors.dtype()))
    throw DTypeError("WordVectors: vectors must be floating, got " + std::string(dtype_name(vectors.dtype())));
  Tensor copy = vectors.detach();
  if (copy.device() != Device::cpu()) copy = copy.to(Device::cpu());
  vectors_ = copy.to(DType::f32).contiguous().clone();  // owned: later edits to the caller's tensor do not leak in
  dim_ = vectors.size(1);
  for (size_t i = 0; i < words_.size(); ++i) {
    if (words_[i].empty()) throw ValueError("WordVectors: word " + std::to_string(i) + " is empty");
    if (!index_.emplace(words_[i], static_cast<int64_t>(i)).second)
      throw ValueError("WordVectors: the word " + in_quotes(words_[i]) + " appears twice (rows " +
                       std::to_string(index_[words_[i]]) + " and " + std::to_string(i) + ")");
  }
}

int64_t WordVectors::index(const std::string& word) const {
  const auto found = index_.find(word);
  return found == index_.end() ? -1 : found->second;
}

Tensor WordVectors::vector(const std::string& word) const {
  const int64_t row = index(word);
  if (row < 0) throw ValueError("WordVectors::vector: " + in_quotes(word) + " is not among the " +
                                std::to_string(size()) + " words of " + source_);
  return vectors_.select(0, row);
}

WordVectors read_word_vectors(const std::filesystem::path& path, WordVectorFormat format, int64_t max_words) {
  const std::string source = path.string();
  if (max_words < -1) throw ValueError("read_word_vectors: max_words must be -1 (all) or >= 0, got " + std::to_string(max_words));
  std::ifstream in = open(path);
  const int64_t bytes = size_in_bytes(path);
  std::optional<Header> header;
  if (format == WordVectorFormat::automatic) {
    const std::string extension = lowercase_ascii(path.extension().string());
    if (extension == ".gz" || extension == ".bz2" || extension == ".zip" || extension == ".xz") {
      throw ValueError("read_word_vectors: " + in_quotes(source) + " is compressed (" + extension +
                       "); decompress it first");
    }
    std::string first;
    std::getline(in, first);
    header = parse_header(first);
    if (extension == ".bin") {
      format = WordVectorFormat::word2vec_binary;
    } else if (header) {
      format = header->dim >= 1 && looks_binary(in, header->dim) ? WordVectorFormat::word2vec_binary
                                                                 : WordVectorFormat::word2vec_text;
    } else {
      format = WordVectorFormat::glove_text;
    }
    in.clear();
    in.seekg(0);
  } else if (format == WordVectorFormat::word2vec_text) {
    std::string first;
    if (!std::getline(in, first)) fail(at_line(source, 1), "the file is empty; expected a header \"count dim\"");
    header = parse_header(first);
    if (!header) fail(at_line(source, 1), "expected a header \"count dim\", found " + in_quotes(first.substr(0, 80)));
    in.seekg(0);
  }

  Rows rows = format == WordVectorFormat::word2vec_binary
                  ? read_binary(in, source, max_words, bytes)
                  : read_text(in, source, format == WordVectorFormat::word2vec_text ? header : std::nullopt, max_words,
                              bytes);
  WordVectors out;
  const auto count = static_cast<int64_t>(rows.words.size());
  out.vectors_ = to_tensor(std::move(rows.values), count, rows.dim);
  out.words_ = std::move(rows.words);
  out.index_ = std::move(rows.index);
  out.duplicates_ = std::move(rows.duplicates);
  out.dim_ = rows.dim;
  out.source_ = source;
  return out;
}

void write_word2vec_text(const std::filesystem::path& path, const WordVectors& vectors) {
  const char* op = "write_word2vec_text";
  for (const auto& word : vectors.words()) check_writable_word(word, op);
  std::ofstream out = create(path, op);
  const float* values = vectors.size() ? vectors.vectors().data_ptr<float>() : nullptr;
  std::string line = std::to_string(vectors.size()) + " " + std::to_string(vectors.dim()) + "\n";
  out << line;
  for (int64_t i = 0; i < vectors.size(); ++i) {
    line = vectors.words()[static_cast<size_t>(i)];
    for (int64_t j = 0; j < vectors.dim(); ++j) {
      line += ' ';
      write_value_text(line, values[i * vectors.dim() + j]);
    }
    line += '\n';
    out << line;
  }
  finish(out, path, op);
}

void write_word2vec_binary(const std::filesystem::path& path, const WordVectors& vectors) {
  const char* op = "write_word2vec_binary";
  for (const auto& word : vectors.words()) check_writable_word(word, op);
  std::ofstream out = create(path, op);
  const float* values = vectors.size() ? vectors.vectors().data_ptr<float>() : nullptr;
  out << vectors.size() << ' ' << vectors.dim() << '\n';
  std::vector<float> row(static_cast<size_t>(vectors.dim()));
  for (int64_t i = 0; i < vectors.size(); ++i) {
    out << vectors.words()[static_cast<size_t>(i)] << ' ';
    std::copy_n(values + i * vectors.dim(), vectors.dim(), row.begin());
    to_little_endian(row);
    out.write(reinterpret_cast<const char*>(row.data()), static_cast<std::streamsize>(4 * vectors.dim()));
    out << '\n';
  }
  finish(out, path, op);
}

// ---- embedding matrix ----

const char* oov_fill_name(OovFill fill) {
  switch (fill) {
    case OovFill::zeros: return "zeros";
    case OovFill::random_normal: return "random_normal";
    case OovFill::mean: return "mean";
  }
  return "?";
}

std::string OovReport::str() const {
  const int64_t total = found + lowercased + oov + padding;
  return "found " + std::to_string(found + lowercased) + " of " + std::to_string(total) + " (" +
         std::to_string(found) + " exact, " + std::to_string(lowercased) + " lower-cased), " + std::to_string(oov) +
         " OOV, " + std::to_string(padding) + " padding";
}

Tensor embedding_matrix(const WordVectors& vectors, const std::vector<std::string>& vocab, const OovPolicy& policy,
                        uint64_t seed, OovReport* report) {
  const auto size = static_cast<int64_t>(vocab.size());
  const int64_t dim = vectors.dim();
  int64_t padding = -1;
  if (policy.padding_idx) {
    const int64_t p = *policy.padding_idx;
    if (p < -size || p >= size) {
      throw IndexError("embedding_matrix: padding_idx " + std::to_string(p) + " is out of range for a vocabulary of " +
                       std::to_string(size) + " (expected -" + std::to_string(size) + " <= padding_idx < " +
                       std::to_string(size) + ")");
    }
    padding = p < 0 ? p + size : p;
  }
  if (policy.std && !(*policy.std >= 0.0 && std::isfinite(*policy.std)))
    throw ValueError("embedding_matrix: std must be finite and >= 0, got " + std::to_string(*policy.std));
  const bool needs_stats = policy.fill == OovFill::mean || (policy.fill == OovFill::random_normal && !policy.std);
  if (needs_stats && vectors.size() == 0) {
    throw ValueError(std::string("embedding_matrix: the ") + oov_fill_name(policy.fill) +
                     " OOV fill needs statistics of the pretrained vectors, but " +
                     (vectors.source().empty() ? std::string("they are") : vectors.source() + " is") + " empty");
  }

  OovReport local;
  Tensor matrix = zeros({size, dim});
  float* out = matrix.data_ptr<float>();
  const float* in = vectors.size() ? vectors.vectors().data_ptr<float>() : nullptr;
  std::vector<int64_t> oov_rows;
  for (int64_t i = 0; i < size; ++i) {
    if (i == padding) {
      local.padding = 1;
      continue;
    }
    const std::string& word = vocab[static_cast<size_t>(i)];
    int64_t row = vectors.index(word);
    if (row >= 0) {
      ++local.found;
    } else if (policy.try_lowercase) {
      const std::string lower = lowercase_ascii(word);
      if (lower != word && (row = vectors.index(lower)) >= 0) ++local.lowercased;
    }
    if (row >= 0) {
      std::copy_n(in + row * dim, dim, out + i * dim);
    } else {
      ++local.oov;
      local.oov_words.push_back(word);
      oov_rows.push_back(i);
    }
  }

  if (!oov_rows.empty() && policy.fill != OovFill::zeros) {
    // Statistics over every pretrained value, in double so a large file does not lose precision.
    const int64_t n = vectors.size();
    std::vector<double> column_mean(static_cast<size_t>(dim), 0.0);
    double total = 0.0, total_sq = 0.0;
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t j = 0; j < dim; ++j) {
        const double v = in[r * dim + j];
        column_mean[static_cast<size_t>(j)] += v;
        total += v;
        total_sq += v * v;
      }
    }
    if (policy.fill == OovFill::mean) {
      for (auto& m : column_mean) m /= static_cast<double>(n);
      for (int64_t i : oov_rows)
        for (int64_t j = 0; j < dim; ++j) out[i * dim + j] = static_cast<float>(column_mean[static_cast<size_t>(j)]);
    } else {
      double std = 0.0;
      if (policy.std) {
        std = *policy.std;
      } else if (n * dim > 0) {
        const double count = static_cast<double>(n * dim), mean = total / count;
        std = std::sqrt(std::max(0.0, total_sq / count - mean * mean));
      }
      Generator generator(seed);
      const Tensor noise = normal({static_cast<int64_t>(oov_rows.size()), dim}, 0.0, std, {}, &generator);
      const float* draw = noise.data_ptr<float>();
      for (size_t k = 0; k < oov_rows.size(); ++k) std::copy_n(draw + static_cast<int64_t>(k) * dim, dim, out + oov_rows[k] * dim);
    }
  }
  if (report) *report = std::move(local);
  return matrix;
}

OovReport load_word_vectors(nn::Embedding& embedding, const WordVectors& vectors, const std::vector<std::string>& vocab,
                            const OovPolicy& policy, bool freeze, uint64_t seed) {
  const auto& shape = embedding.weight.shape();
  if (shape[0] != static_cast<int64_t>(vocab.size()) || shape[1] != vectors.dim()) {
    throw ShapeError("load_word_vectors: the embedding is " + shape_str(shape) + " but the vocabulary has " +
                     std::to_string(vocab.size()) + " words and the vectors (" + vectors.source() + ") have dim " +
                     std::to_string(vectors.dim()) + "; expected [" + std::to_string(vocab.size()) + ", " +
                     std::to_string(vectors.dim()) + "]");
  }
  OovPolicy effective = policy;
  const int64_t row = embedding.padding_row();
  if (!effective.padding_idx && row >= 0) effective.padding_idx = row;
  if (effective.padding_idx && row >= 0) {
    const int64_t asked = *effective.padding_idx < 0 ? *effective.padding_idx + shape[0] : *effective.padding_idx;
    if (asked != row) {
      throw ValueError("load_word_vectors: the policy's padding_idx " + std::to_string(*effective.padding_idx) +
                       " differs from the embedding's padding row " + std::to_string(row));
    }
  }
  OovReport report;
  const Tensor matrix = embedding_matrix(vectors, vocab, effective, seed, &report);
  {
    NoGradGuard no_grad;
    ops::copy_into(embedding.weight, matrix);  // in place: the parameter handle is kept
  }
  embedding.weight.requires_grad_(!freeze);
  return report;
}

}  // namespace graft::data
