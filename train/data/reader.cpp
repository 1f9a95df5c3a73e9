// Table reading: a CSV/TSV state machine over the whole text (RFC 4180 quoting, CRLF or LF) and a
// line-by-line JSONL reader on nlohmann-json. Column mapping lives in examples.cpp.
#include "train/data/reader.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <istream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tensor/error.h"
#include "train/data/quoting.h"

namespace graft::data {

namespace {

using detail::in_quotes;

// A character as it reads in a message: printable as itself, others as a hex escape.
std::string describe_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (std::isprint(u)) return std::string("'") + c + "'";
  static const char* hex = "0123456789abcdef";
  return std::string("byte 0x") + hex[u >> 4] + hex[u & 15];
}

std::string_view skip_bom(std::string_view text) {
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  return text;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

TableFormat resolve_format(TableFormat format, const std::string& source) {
  if (format != TableFormat::from_extension) return format;
  const std::string ext = lower(std::filesystem::path(source).extension().string());
  if (ext == ".csv") return TableFormat::csv;
  if (ext == ".tsv" || ext == ".tab") return TableFormat::tsv;
  if (ext == ".jsonl" || ext == ".ndjson") return TableFormat::jsonl;
  throw ValueError("read_table: cannot infer the format of " + in_quotes(source) + " from its extension " +
                   in_quotes(ext) + "; expected .csv, .tsv, .tab, .jsonl or .ndjson, or pass a TableFormat");
}

std::vector<std::string> generated_names(size_t count) {
  std::vector<std::string> names(count);
  for (size_t i = 0; i < count; ++i) names[i] = "column_" + std::to_string(i);
  return names;
}

void check_unique_columns(const std::vector<std::string>& columns, const std::string& where) {
  std::vector<std::string> sorted = columns;
  std::sort(sorted.begin(), sorted.end());
  const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
  if (dup != sorted.end())
    throw FormatError("read_table: " + where + ": column " + in_quotes(*dup) +
                      " appears twice in the header; expected unique column names");
}

// ---- CSV / TSV ----

// Walks the text record by record. Positions are tracked as (line, column) for messages, both
// 1-based, the column in bytes.
class DelimitedParser {
 public:
  DelimitedParser(std::string_view text, char delimiter, bool quoting, const std::string& source)
      : text_(text), delimiter_(delimiter), quoting_(quoting), source_(source) {}

  // Reads the next non-blank record into `fields`; false at the end of the text.
  bool next(std::vector<std::string>& fields, int64_t& record_line) {
    while (pos_ < text_.size() && (text_[pos_] == '\n' || text_[pos_] == '\r')) consume_newline();  // blank lines
    if (pos_ >= text_.size()) return false;
    fields.clear();
    record_line = line_;
    std::string field;
    while (true) {
      field.clear();
      if (quoting_ && text_[pos_] == '"') read_quoted(field);
      else read_unquoted(field);
      fields.push_back(std::move(field));
      if (pos_ >= text_.size()) return true;
      const char c = text_[pos_];
      if (c == delimiter_) {
        ++pos_;
        if (pos_ >= text_.size()) {  // a trailing delimiter at the very end: one more empty field
          fields.emplace_back();
          return true;
        }
        continue;
      }
      consume_newline();  // read_* stop only at the delimiter, a newline or the end
      return true;
    }
  }

  const std::string& source() const { return source_; }

 private:
  std::string at(int64_t line, size_t column) const {
    return source_ + " line " + std::to_string(line) + ", column " + std::to_string(column);
  }
  size_t column() const { return pos_ - line_start_ + 1; }

  void consume_newline() {  // "\r\n", "\n" or a lone "\r"
    if (text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') ++pos_;
    ++pos_;
    ++line_;
    line_start_ = pos_;
  }

  void read_unquoted(std::string& field) {
    const size_t start = pos_;
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == delimiter_ || c == '\n' || c == '\r') break;
      ++pos_;  // quotes inside an unquoted field are literal, as in Python's csv
    }
    field.assign(text_.substr(start, pos_ - start));
  }

  void read_quoted(std::string& field) {
    const int64_t open_line = line_;
    const size_t open_column = column();
    ++pos_;  // the opening quote
    while (true) {
      if (pos_ >= text_.size())
        throw FormatError("read_table: " + at(open_line, open_column) +
                          ": unterminated quoted field; expected a closing '\"' before the end of the file");
      const char c = text_[pos_];
      if (c == '"') {
        if (pos_ + 1 < text_.size() && text_[pos_ + 1] == '"') {  // a doubled quote is one quote
          field += '"';
          pos_ += 2;
          continue;
        }
        ++pos_;
        break;
      }
      field += c;
      ++pos_;
      if (c == '\n' || (c == '\r' && (pos_ >= text_.size() || text_[pos_] != '\n'))) {  // embedded newline
        ++line_;
        line_start_ = pos_;
      }
    }
    if (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c != delimiter_ && c != '\n' && c != '\r')
        throw FormatError("read_table: " + at(line_, column()) + ": expected the delimiter or the end of the line " +
                          "after a closing quote, found " + describe_char(c) +
                          " (quotes inside a quoted field are doubled: \"\"; set ReadOptions::quoting = false "
                          "to read quotes literally)");
    }
  }

  std::string_view text_;
  char delimiter_;
  bool quoting_;
  std::string source_;
  size_t pos_ = 0, line_start_ = 0;
  int64_t line_ = 1;
};

Table parse_delimited(std::string_view text, char delimiter, const ReadOptions& options, const std::string& source) {
  Table table;
  table.source = source;
  DelimitedParser parser(skip_bom(text), delimiter, options.quoting, source);
  std::vector<std::string> fields;
  int64_t line = 0;
  if (options.header) {
    if (!parser.next(fields, line))
      throw FormatError("read_table: " + source + ": the file is empty; expected a header row naming the columns");
    table.columns = fields;
    check_unique_columns(table.columns, source + " line " + std::to_string(line));
  }
  bool first = true;
  while (parser.next(fields, line)) {
    if (!options.header && first) table.columns = generated_names(fields.size());
    first = false;
    if (fields.size() != table.columns.size())
      throw FormatError("read_table: " + source + " line " + std::to_string(line) + ": expected " +
                        std::to_string(table.columns.size()) + " fields" +
                        (options.header ? " (as in the header: " + detail::quoted_list(table.columns) + ")" : " (as in the first row)") +
                        ", found " + std::to_string(fields.size()));
    table.rows.push_back(fields);
    table.row_lines.push_back(line);
  }
  return table;
}

// ---- JSONL ----

// A JSON value as a cell: strings as they are, numbers and bools as their JSON text, null as
// empty, arrays and objects as compact JSON text.
std::string cell_of(const nlohmann::ordered_json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return {};
  return value.dump();
}

Table parse_jsonl(std::string_view text, const std::string& source) {
  Table table;
  table.source = source;
  text = skip_bom(text);
  int64_t line = 0;
  size_t pos = 0;
  bool first = true;
  while (pos < text.size()) {
    ++line;
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view content = text.substr(pos, end - pos);
    pos = end + 1;
    if (!content.empty() && content.back() == '\r') content.remove_suffix(1);
    if (content.find_first_not_of(" \t\r") == std::string_view::npos) continue;  // blank line

    const std::string where = source + " line " + std::to_string(line);
    nlohmann::ordered_json object;
    // Values are flat in practice; a hostile line of a million '[' would overflow the stack in
    // dump(), which recurses, so nesting is capped while parsing.
    constexpr int kMaxDepth = 64;
    const auto limit_depth = [&](int depth, nlohmann::ordered_json::parse_event_t, nlohmann::ordered_json&) {
      if (depth > kMaxDepth)
        throw FormatError("read_table: " + where + ": JSON nested deeper than " + std::to_string(kMaxDepth) +
                          " levels; expected one flat JSON object per line");
      return true;
    };
    try {
      object = nlohmann::ordered_json::parse(content, limit_depth);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError("read_table: " + where + ": invalid JSON (" + e.what() +
                        "); expected one JSON object per line");
    }
    if (!object.is_object())
      throw FormatError("read_table: " + where + ": expected a JSON object, found a JSON " +
                        std::string(object.type_name()));
    if (first) {  // the first object's keys, in file order, are the columns
      for (const auto& item : object.items()) table.columns.push_back(item.key());
      first = false;
    }
    std::vector<std::string> row;
    row.reserve(table.columns.size());
    for (const auto& name : table.columns) {
      const auto found = object.find(name);
      if (found == object.end())
        throw FormatError("read_table: " + where + ": missing key " + in_quotes(name) + "; expected the keys " +
                          detail::quoted_list(table.columns) + " (as in the first object)");
      row.push_back(cell_of(*found));
    }
    if (object.size() != table.columns.size())
      for (const auto& item : object.items())
        if (std::find(table.columns.begin(), table.columns.end(), item.key()) == table.columns.end())
          throw FormatError("read_table: " + where + ": unexpected key " + in_quotes(item.key()) +
                            "; expected the keys " + detail::quoted_list(table.columns) + " (as in the first object)");
    table.rows.push_back(std::move(row));
    table.row_lines.push_back(line);
  }
  return table;
}

}  // namespace

int64_t Table::column_index(const std::string& name) const {
  const auto it = std::find(columns.begin(), columns.end(), name);
  return it == columns.end() ? -1 : static_cast<int64_t>(it - columns.begin());
}

std::vector<std::string> Table::column(const std::string& name) const {
  const int64_t index = column_index(name);
  if (index < 0)
    throw FormatError("Table::column: " + (source.empty() ? std::string("the table") : source) + " has no column " +
                      in_quotes(name) + "; columns present: " + detail::quoted_list(columns));
  std::vector<std::string> values;
  values.reserve(rows.size());
  for (const auto& row : rows) values.push_back(row.at(static_cast<size_t>(index)));
  return values;
}

std::string Table::where(int64_t row) const {
  const std::string name = source.empty() ? std::string("table") : source;
  if (row >= 0 && row < static_cast<int64_t>(row_lines.size()))
    return name + " line " + std::to_string(row_lines[static_cast<size_t>(row)]);
  return name + " row " + std::to_string(row);
}

namespace {

// Length of the valid UTF-8 sequence at text[i], or 0 (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF).
size_t utf8_sequence(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
  else if (c >= 0xF0 && c <= 0xF4) n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
  else return 0;
  if (i + n > text.size() || byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  return n;
}

// Text files must be UTF-8: a Latin-1 or cp1252 byte would otherwise reach the tokenizer as a
// broken character. The first bad byte is named with its line and column.
void check_utf8(std::string_view text, const std::string& source) {
  int64_t line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '\n') line_start = i + 1, ++line;
    const size_t n = utf8_sequence(text, i);
    if (n == 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(text[i])));
      throw FormatError("read_table: " + source + " line " + std::to_string(line) + ", column " +
                        std::to_string(i - line_start + 1) + ": not valid UTF-8 (byte " + hex +
                        "); convert the file to UTF-8 (e.g. iconv -f cp1252 -t utf-8)");
    }
    i += n;
  }
}

}  // namespace

Table parse_table(std::string_view text, const ReadOptions& options, const std::string& source) {
  check_utf8(text, source);
  switch (resolve_format(options.format, source)) {
    case TableFormat::csv: return parse_delimited(text, ',', options, source);
    case TableFormat::tsv: return parse_delimited(text, '\t', options, source);
    case TableFormat::jsonl: return parse_jsonl(text, source);
    case TableFormat::from_extension: break;
  }
  throw ValueError("read_table: unknown TableFormat");
}

Table read_table(std::istream& in, const ReadOptions& options, const std::string& source) {
  const TableFormat format = resolve_format(options.format, source);  // before reading: fail fast
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw IOError("read_table: reading " + in_quotes(source) + " failed");
  ReadOptions resolved = options;
  resolved.format = format;
  return parse_table(text, resolved, source);
}

Table read_table(const std::filesystem::path& path, const ReadOptions& options) {
  const std::string name = path.string();
  ReadOptions resolved = options;
  resolved.format = resolve_format(options.format, name);
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw IOError("read_table: " + in_quotes(name) + " is a directory; expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IOError("read_table: cannot open " + in_quotes(name) + ": " + std::strerror(errno));
  return read_table(in, resolved, name);
}

Table read_table(const std::filesystem::path& path, TableFormat format) {
  ReadOptions options;
  options.format = format;
  return read_table(path, options);
}

}  // namespace graft::data
