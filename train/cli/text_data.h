// A text run's data: the labelled file read and split (train/validation/test, stratified), DANN's
// unlabelled target domain split the same way, and texts encoded to WordPiece ids.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <vector>

#include "train/cli/run_config.h"
#include "train/data/reader.h"
#include "train/data/wordpiece.h"

namespace graft::cli {

struct TextSplits {
  data::TextExamples train, validation, test;
  data::LabelVocab labels;
};

// data.path read, labels kept and numbered (data.labels, or all in the file), split by data.split
// with data.seed, and the training texts augmented (augment.*). ValueError for an empty split.
TextSplits load_splits(const DataConfig& config, std::ostream& log);

// DANN's target domain: its texts, split as the source's (data.split, data.seed). Labels, when the
// file has them, are only evaluated; rows whose label the primary task does not know are left out.
struct TargetDomain {
  data::TextExamples train, validation, test;
  bool labelled = false;
};


TargetDomain load_target_domain(const RunConfig& config, const data::LabelVocab& labels, std::ostream& log);

// Token ids per example, truncated to max_length; special_tokens adds [CLS]/[SEP] (BERT). An empty
// text still gets one token ([UNK]) so that a GRU has a step to run.
std::vector<std::vector<int64_t>> encode(const data::BertTokenizer& tokenizer, const data::TextExamples& examples,
                                         int64_t max_length, bool special_tokens);

}  // namespace graft::cli
