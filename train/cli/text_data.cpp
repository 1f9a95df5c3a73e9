#include "train/cli/text_data.h"

#include <numeric>
#include <ostream>
#include <string>

#include "tensor/error.h"
#include "train/data/augment.h"
#include "train/data/reader.h"
#include "train/data/split.h"

namespace graft::cli {

TextSplits load_splits(const DataConfig& config, std::ostream& log) {
  data::ColumnMap columns{config.text_column, config.text_pair_column, config.label_column};
  const data::Table table = data::read_table(config.path);
  data::TextExamples all = data::to_examples(table, columns);
  TextSplits s;
  if (!config.labels.empty()) {
    // Rows with other labels (Rotten Tomatoes' plot summaries) are left out, and counted.
    s.labels = data::LabelVocab(config.labels);
    const size_t before = all.size();
    std::erase_if(all, [&](const data::TextExample& e) { return !s.labels.contains(e.label); });
    if (all.size() < before)
      log << "data: " << before - all.size() << " of " << before << " rows of " << config.path
          << " have a label outside data.labels and are left out\n";
  } else {
    s.labels = data::LabelVocab::from_examples(all);
  }
  if (s.labels.size() < 2)
    throw ValueError("data: " + config.path + " has " + std::to_string(s.labels.size()) +
                     " label(s) to classify; at least 2 are needed (data.labels, data.label_column)");
  std::vector<int64_t> ids;
  for (const auto& e : all) ids.push_back(s.labels.id(e.label));
  std::vector<int64_t> count(static_cast<size_t>(s.labels.size()), 0);
  for (int64_t y : ids) ++count[static_cast<size_t>(y)];
  for (int64_t c = 0; c < s.labels.size(); ++c)
    if (count[static_cast<size_t>(c)] == 0)
      throw ValueError("data: label \"" + s.labels.label(c) + "\" (data.labels) has no example in " + config.path +
                       " (column " + config.label_column + ")");
  auto pick = [&](const std::vector<int64_t>& idx) {
    data::TextExamples out;
    for (int64_t i : idx) out.push_back(all[static_cast<size_t>(i)]);
    return out;
  };
  if (config.max_examples > 0 && config.max_examples < static_cast<int64_t>(all.size())) {
    const double keep = static_cast<double>(config.max_examples) / static_cast<double>(all.size());
    const auto parts = config.stratified ? data::stratified_split_indices(ids, {keep, 1 - keep}, config.seed)
                                         : data::split_indices(static_cast<int64_t>(all.size()), {keep, 1 - keep}, config.seed);
    all = pick(parts[0]);
    ids.clear();
    for (const auto& e : all) ids.push_back(s.labels.id(e.label));
  }
  const double total = config.split[0] + config.split[1] + config.split[2];
  const std::vector<double> ratios{config.split[0] / total, config.split[1] / total, config.split[2] / total};
  const auto parts = config.stratified ? data::stratified_split_indices(ids, ratios, config.seed)
                                       : data::split_indices(static_cast<int64_t>(all.size()), ratios, config.seed);
  s.train = pick(parts[0]);
  s.validation = pick(parts[1]);
  s.test = pick(parts[2]);
  const char* names[3] = {"train", "validation", "test"};
  for (int k = 0; k < 3; ++k)
    if (parts[static_cast<size_t>(k)].empty())
      throw ValueError(std::string("data: the ") + names[k] + " split of " + config.path + " is empty (" +
                       std::to_string(all.size()) + " examples, data.split)");
  return s;
}

TargetDomain load_target_domain(const RunConfig& config, const data::LabelVocab& labels, std::ostream& log) {
  const DomainAdaptationConfig& da = config.domain_adaptation;
  const data::Table table = data::read_table(da.path);
  data::TextExamples all = data::to_examples(table, {da.text_column, "", da.label_column});
  TargetDomain t;
  t.labelled = !da.label_column.empty();
  if (t.labelled) {
    const size_t before = all.size();
    std::erase_if(all, [&](const data::TextExample& e) { return !labels.contains(e.label); });
    if (all.size() < before)
      log << "domain_adaptation: " << before - all.size() << " of " << before << " rows of " << da.path
          << " have a label the primary task does not have and are left out\n";
  }
  auto n = static_cast<int64_t>(all.size());
  std::vector<int64_t> keep(static_cast<size_t>(n));
  std::iota(keep.begin(), keep.end(), int64_t{0});
  if (da.max_examples > 0 && da.max_examples < n) {
    const double fraction = static_cast<double>(da.max_examples) / static_cast<double>(n);
    keep = data::split_indices(n, {fraction, 1 - fraction}, config.data.seed)[0];
    n = static_cast<int64_t>(keep.size());
  }
  const std::vector<double>& r = config.data.split;
  const double total = r[0] + r[1] + r[2];
  const auto parts = data::split_indices(n, {r[0] / total, r[1] / total, r[2] / total}, config.data.seed);
  data::TextExamples* out[3] = {&t.train, &t.validation, &t.test};
  const char* names[3] = {"train", "validation", "test"};
  for (size_t k = 0; k < 3; ++k) {
    if (parts[k].empty())
      throw ValueError(std::string("domain_adaptation: the ") + names[k] + " part of " + da.path + " is empty (" +
                       std::to_string(n) + " texts, data.split)");
    for (int64_t i : parts[k]) out[k]->push_back(all[static_cast<size_t>(keep[static_cast<size_t>(i)])]);
  }
  log << "domain_adaptation: target " << da.path << ": " << t.train.size() << " train (unlabelled), "
      << t.validation.size() << " validation, " << t.test.size() << " test"
      << (t.labelled ? " (labels evaluated only)" : "") << "\n";
  return t;
}

std::vector<std::vector<int64_t>> encode(const data::BertTokenizer& tokenizer, const data::TextExamples& examples,
                                         int64_t max_length, bool special_tokens) {
  data::EncodeOptions options;
  options.truncation = data::Truncation{max_length};
  options.add_special_tokens = special_tokens;
  std::vector<std::vector<int64_t>> out;
  out.reserve(examples.size());
  for (const auto& e : examples) {
    data::Encoding enc = e.text_pair.empty() ? tokenizer.encode(e.text, options)
                                             : tokenizer.encode(e.text, e.text_pair, options);
    if (enc.ids.empty()) enc.ids.push_back(tokenizer.unk_id());  // an empty text still needs one step (GRU)
    out.push_back(std::move(enc.ids));
  }
  return out;
}

}  // namespace graft::cli
