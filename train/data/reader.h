// Reading labelled text from TSV, CSV (RFC 4180) and JSONL files into a Table of strings, and
// mapping its columns to examples (text, optional text pair, label) as Hugging Face `datasets`
// users do with `load_dataset("csv", ...)` and `class_encode_column`.
//
// Every cell is kept as a string; numbers are parsed only where they are used (label_ids,
// regression_targets), so a bad value is reported with the file, the line and the column.
// Files are untrusted: malformed input is a FormatError naming the file and line, never a crash.
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace graft::data {

enum class TableFormat {
  from_extension,  // .csv -> csv; .tsv / .tab -> tsv; .jsonl / .ndjson -> jsonl
  csv,
  tsv,
  jsonl,
};

struct ReadOptions {
  TableFormat format = TableFormat::from_extension;
  // CSV/TSV: the first row names the columns. Without a header the columns are named
  // "column_0", "column_1", ... (0-based, as positions). Blank lines are skipped (as pandas does),
  // lines end in LF, CRLF or CR, and a UTF-8 BOM at the start is dropped.
  bool header = true;
  // CSV/TSV: a field that starts with '"' is quoted as in RFC 4180 (doubled quotes, embedded
  // delimiters and newlines). Set false for TSV files whose text holds stray quotes (csv.QUOTE_NONE).
  bool quoting = true;
};

struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;  // each has columns.size() fields
  std::string source;                          // file path or "<string>", named in errors
  std::vector<int64_t> row_lines;              // 1-based line where each row starts (may be empty)

  int64_t num_rows() const { return static_cast<int64_t>(rows.size()); }
  int64_t column_index(const std::string& name) const;  // -1 when absent
  // All values of a column; FormatError naming the source and the columns present when absent.
  std::vector<std::string> column(const std::string& name) const;
  // "data.csv line 7" (or "data.csv row 5" for a table without line numbers), for messages.
  std::string where(int64_t row) const;
};

// Reads a whole file. Missing or unreadable file -> IOError naming the path; unknown extension
// with from_extension -> ValueError; malformed contents -> FormatError naming file and line.
Table read_table(const std::filesystem::path& path, TableFormat format = TableFormat::from_extension);
Table read_table(const std::filesystem::path& path, const ReadOptions& options);
// Reads from a stream or a string; `source` names it in errors and, with from_extension, its
// extension picks the format.
Table read_table(std::istream& in, const ReadOptions& options, const std::string& source = "<stream>");
Table parse_table(std::string_view text, const ReadOptions& options, const std::string& source = "<string>");

// ---- from columns to examples ----

// Which columns hold what. An empty name means "not used": text_pair for single-sentence tasks,
// label for unlabelled (prediction) data.
struct ColumnMap {
  std::string text = "text";
  std::string text_pair;
  std::string label = "label";
};

struct TextExample {
  std::string text;
  std::string text_pair;  // empty when ColumnMap::text_pair is
  std::string label;      // the raw label string; empty when ColumnMap::label is
};
using TextExamples = std::vector<TextExample>;

// A mapped column missing -> FormatError naming the source and listing the columns present; an
// empty value in the label column -> FormatError naming the line (a missing label is never a class).
TextExamples to_examples(const Table& table, const ColumnMap& map = {});

// Label strings <-> class ids 0..size()-1.
class LabelVocab {
 public:
  LabelVocab() = default;
  // An explicit order (id i = labels[i]); duplicates or empty labels -> ValueError.
  explicit LabelVocab(std::vector<std::string> labels);
  // Sorted unique labels: numerically when every label is an integer ("2" before "10"),
  // lexicographically otherwise.
  static LabelVocab from_labels(const std::vector<std::string>& labels);
  static LabelVocab from_examples(const TextExamples& examples);

  int64_t id(const std::string& label) const;    // unknown -> ValueError naming it and the known ones
  const std::string& label(int64_t id) const;    // out of range -> IndexError
  bool contains(const std::string& label) const;
  int64_t size() const { return static_cast<int64_t>(labels_.size()); }
  const std::vector<std::string>& labels() const { return labels_; }

 private:
  std::vector<std::string> labels_;
  std::vector<size_t> order_;  // indices into labels_ sorted by label, for lookup
};

// Class ids of the examples' labels; an unknown label -> ValueError naming the example and label.
std::vector<int64_t> label_ids(const TextExamples& examples, const LabelVocab& vocab);
// A numeric column as doubles (regression targets); a non-number or non-finite value ->
// FormatError naming the source, line and column.
std::vector<double> regression_targets(const Table& table, const std::string& column = "label");

}  // namespace graft::data
