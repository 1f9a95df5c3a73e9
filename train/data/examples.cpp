// From a Table to training examples: column mapping, the label vocabulary and regression targets.
// Declared in reader.h beside the Table they read.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>

#include "tensor/error.h"
#include "train/data/quoting.h"
#include "train/data/reader.h"

namespace graft::data {

namespace {

using detail::in_quotes;

std::string source_name(const Table& table) { return table.source.empty() ? std::string("the table") : table.source; }

size_t require_column(const Table& table, const std::string& name, const char* role) {
  const int64_t index = table.column_index(name);
  if (index < 0)
    throw FormatError("to_examples: " + source_name(table) + " has no column " + in_quotes(name) + " (mapped as " +
                      role + "); columns present: " + detail::quoted_list(table.columns));
  return static_cast<size_t>(index);
}

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

bool parse_integer(const std::string& s, int64_t& value) {
  const char* end = s.data() + s.size();
  const auto result = std::from_chars(s.data(), end, value);
  return result.ec == std::errc() && result.ptr == end;
}

}  // namespace

TextExamples to_examples(const Table& table, const ColumnMap& map) {
  if (map.text.empty()) throw ValueError("to_examples: ColumnMap::text must name a column");
  const size_t text = require_column(table, map.text, "text");
  const bool has_pair = !map.text_pair.empty(), has_label = !map.label.empty();
  const size_t pair = has_pair ? require_column(table, map.text_pair, "text_pair") : 0;
  const size_t label = has_label ? require_column(table, map.label, "label") : 0;
  TextExamples examples;
  examples.reserve(table.rows.size());
  for (size_t r = 0; r < table.rows.size(); ++r) {
    const auto& row = table.rows[r];
    if (row.size() != table.columns.size())
      throw FormatError("to_examples: " + table.where(static_cast<int64_t>(r)) + ": expected " +
                        std::to_string(table.columns.size()) + " fields, found " + std::to_string(row.size()));
    TextExample example;
    example.text = row[text];
    if (has_pair) example.text_pair = row[pair];
    if (has_label) {
      example.label = std::string(trim(row[label]));
      if (example.label.empty())
        throw FormatError("to_examples: " + table.where(static_cast<int64_t>(r)) + ", column " + in_quotes(map.label) +
                          ": empty label; expected a label in every row (map label to \"\" for unlabelled data)");
    }
    examples.push_back(std::move(example));
  }
  return examples;
}

// ---- LabelVocab ----

LabelVocab::LabelVocab(std::vector<std::string> labels) : labels_(std::move(labels)) {
  order_.resize(labels_.size());
  std::iota(order_.begin(), order_.end(), size_t{0});
  std::sort(order_.begin(), order_.end(), [&](size_t a, size_t b) { return labels_[a] < labels_[b]; });
  for (size_t i = 0; i < order_.size(); ++i) {
    if (labels_[order_[i]].empty()) throw ValueError("LabelVocab: an empty label is not a class");
    if (i > 0 && labels_[order_[i]] == labels_[order_[i - 1]])
      throw ValueError("LabelVocab: label " + in_quotes(labels_[order_[i]]) + " is listed twice; expected unique labels");
  }
}

LabelVocab LabelVocab::from_labels(const std::vector<std::string>& labels) {
  std::vector<std::string> unique = labels;
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  std::vector<int64_t> numbers(unique.size());
  bool all_integers = true;
  for (size_t i = 0; i < unique.size() && all_integers; ++i) all_integers = parse_integer(unique[i], numbers[i]);
  if (all_integers) {  // "2" before "10", as the numbers read
    std::vector<size_t> order(unique.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return numbers[a] != numbers[b] ? numbers[a] < numbers[b] : unique[a] < unique[b];
    });
    std::vector<std::string> sorted;
    for (size_t i : order) sorted.push_back(unique[i]);
    unique = std::move(sorted);
  }
  return LabelVocab(std::move(unique));
}

LabelVocab LabelVocab::from_examples(const TextExamples& examples) {
  std::vector<std::string> labels;
  labels.reserve(examples.size());
  for (const auto& e : examples) labels.push_back(e.label);
  return from_labels(labels);
}

bool LabelVocab::contains(const std::string& label) const {
  const auto it = std::lower_bound(order_.begin(), order_.end(), label,
                                   [&](size_t i, const std::string& l) { return labels_[i] < l; });
  return it != order_.end() && labels_[*it] == label;
}

int64_t LabelVocab::id(const std::string& label) const {
  const auto it = std::lower_bound(order_.begin(), order_.end(), label,
                                   [&](size_t i, const std::string& l) { return labels_[i] < l; });
  if (it == order_.end() || labels_[*it] != label)
    throw ValueError("LabelVocab: unknown label " + in_quotes(label) + "; known labels (" + std::to_string(size()) +
                     "): " + detail::quoted_list(labels_));
  return static_cast<int64_t>(*it);
}

const std::string& LabelVocab::label(int64_t id) const {
  if (id < 0 || id >= size())
    throw IndexError("LabelVocab: id " + std::to_string(id) + " is out of range for " + std::to_string(size()) +
                     " labels");
  return labels_[static_cast<size_t>(id)];
}

std::vector<int64_t> label_ids(const TextExamples& examples, const LabelVocab& vocab) {
  std::vector<int64_t> ids;
  ids.reserve(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    try {
      ids.push_back(vocab.id(examples[i].label));
    } catch (const ValueError& e) {
      throw ValueError("label_ids: example " + std::to_string(i) + ": " + e.what());
    }
  }
  return ids;
}

std::vector<double> regression_targets(const Table& table, const std::string& column) {
  const int64_t index = table.column_index(column);
  if (index < 0)
    throw FormatError("regression_targets: " + source_name(table) + " has no column " + in_quotes(column) +
                      "; columns present: " + detail::quoted_list(table.columns));
  std::vector<double> targets;
  targets.reserve(table.rows.size());
  for (size_t r = 0; r < table.rows.size(); ++r) {
    const std::string& cell = table.rows[r].at(static_cast<size_t>(index));
    std::string_view text = trim(cell);
    if (text.size() > 1 && text[0] == '+' && text[1] != '-') text.remove_prefix(1);  // from_chars takes no '+'; Python's float does
    double value = 0;
    const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
    const bool number = !text.empty() && result.ec == std::errc() && result.ptr == text.data() + text.size();
    if (!number || !std::isfinite(value))
      throw FormatError("regression_targets: " + table.where(static_cast<int64_t>(r)) + ", column " + in_quotes(column) +
                        ": expected a finite number, found " + in_quotes(cell));
    targets.push_back(value);
  }
  return targets;
}

}  // namespace graft::data
