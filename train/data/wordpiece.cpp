// WordPiece and BERT's encoding: special tokens, truncation, padding, batches and decoding, as
// Hugging Face's `tokenizers` does them (the basic tokenizer is in wordpiece_normalizer.cpp, the
// loading of vocab.txt / tokenizer.json in wordpiece_files.cpp).
#include "train/data/wordpiece.h"

#include <algorithm>

#include "tensor/error.h"
#include "tensor/factory.h"
#include "train/data/quoting.h"

namespace graft::data {

namespace {

using detail::in_quotes;

int64_t count_chars(const std::string& utf8) {
  return std::count_if(utf8.begin(), utf8.end(),
                       [](char byte) { return (static_cast<unsigned char>(byte) & 0xC0) != 0x80; });
}

// Bytes of the last UTF-8 character of utf8[0, end).
size_t last_char_bytes(const std::string& utf8, size_t end) {
  size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(utf8[start]) & 0xC0) == 0x80) --start;
  return end - start;
}

void check_options(const EncodeOptions& options, const char* op) {
  if (options.truncation && options.truncation->max_length < 0)
    throw ValueError(std::string(op) + ": truncation max_length is " + std::to_string(options.truncation->max_length) +
                     "; expected >= 0");
  const Padding& padding = options.padding;
  if (padding.strategy == PaddingStrategy::max_length && padding.max_length < 0)
    throw ValueError(std::string(op) + ": padding max_length is " + std::to_string(padding.max_length) +
                     "; expected >= 0");
  if (padding.pad_to_multiple_of && *padding.pad_to_multiple_of < 1)
    throw ValueError(std::string(op) + ": pad_to_multiple_of is " + std::to_string(*padding.pad_to_multiple_of) +
                     "; expected >= 1");
}

void truncate(std::vector<int64_t>& ids, size_t length, Side side) {
  if (ids.size() <= length) return;
  if (side == Side::right)
    ids.resize(length);
  else
    ids.erase(ids.begin(), ids.end() - static_cast<std::ptrdiff_t>(length));
}

// tokenizers' longest_first for a pair, with n1 the shorter length and n2 the longer: if the
// shorter fits in half, the longer gets the rest; otherwise each gets half, and the longer side the
// odd token (for equal lengths, the second).
void truncate_pair(std::vector<int64_t>& a, std::vector<int64_t>& b, size_t max_length, Side side) {
  const bool swapped = a.size() > b.size();
  size_t n1 = std::min(a.size(), b.size()), n2 = std::max(a.size(), b.size());
  n2 = n1 > max_length ? n1 : std::max(n1, max_length - n1);
  if (n1 + n2 > max_length) {
    n1 = max_length / 2;
    n2 = n1 + max_length % 2;
  }
  if (swapped) std::swap(n1, n2);
  truncate(a, n1, side);
  truncate(b, n2, side);
}

// `max_length` counts text tokens only (the special tokens are already taken off).
void truncate_ids(std::vector<int64_t>& a, std::vector<int64_t>* b, size_t max_length, const Truncation& truncation) {
  if (max_length == 0) {  // no room for text: whatever the strategy, as tokenizers
    a.clear();
    if (b) b->clear();
    return;
  }
  const size_t total = a.size() + (b ? b->size() : 0);
  if (total <= max_length) return;
  const size_t to_remove = total - max_length;
  switch (truncation.strategy) {
    case TruncationStrategy::longest_first:
      if (b)
        truncate_pair(a, *b, max_length, truncation.side);
      else
        truncate(a, max_length, truncation.side);
      return;
    case TruncationStrategy::only_first:
    case TruncationStrategy::only_second: {
      const bool first = truncation.strategy == TruncationStrategy::only_first;
      if (!first && !b) throw ValueError("BertTokenizer::encode: truncation only_second needs a text pair");
      std::vector<int64_t>& target = first ? a : *b;
      if (target.size() <= to_remove)
        throw ValueError("BertTokenizer::encode: truncating only the " + std::string(first ? "first" : "second") +
                         " sequence (" + std::to_string(target.size()) + " tokens) cannot remove the " +
                         std::to_string(to_remove) + " tokens over max_length " +
                         std::to_string(truncation.max_length) + "; use longest_first");
      truncate(target, target.size() - to_remove, truncation.side);
      return;
    }
  }
}

// tokenizers' WordPiece decoder cleanup, applied to each token with its leading space.
std::string cleanup(std::string token) {
  static const std::pair<std::string_view, std::string_view> kReplacements[] = {
      {" .", "."},   {" ?", "?"},           {" !", "!"},   {" ,", ","},     {" ' ", "'"},    {" n't", "n't"},
      {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
  };
  for (const auto& [from, to] : kReplacements) {
    for (size_t at = token.find(from); at != std::string::npos; at = token.find(from, at + to.size()))
      token.replace(at, from.size(), to);
  }
  return token;
}

}  // namespace

BertTokenizer::BertTokenizer(std::vector<std::string> vocab, BertTokenizerConfig config, std::string source)
    : vocab_(std::move(vocab)), config_(std::move(config)), source_(std::move(source)) {
  if (config_.continuing_subword_prefix.empty())
    throw ValueError("BertTokenizer: continuing_subword_prefix is empty; expected a prefix such as \"##\"");
  if (config_.max_input_chars_per_word < 1)
    throw ValueError("BertTokenizer: max_input_chars_per_word is " + std::to_string(config_.max_input_chars_per_word) +
                     "; expected >= 1");
  check_options(config_.defaults, "BertTokenizer");
  ids_.reserve(vocab_.size());
  for (size_t i = 0; i < vocab_.size(); ++i) ids_[vocab_[i]] = static_cast<int64_t>(i);  // a repeat keeps the last id
  auto require = [&](const std::string& token, const char* role) {
    const int64_t id = token_to_id(token);
    if (id < 0)
      throw FormatError("BertTokenizer: the vocabulary of " + source_ + " (" + std::to_string(vocab_.size()) +
                        " tokens) lacks the " + role + " token " + in_quotes(token));
    return id;
  };
  unk_id_ = require(config_.unk_token, "unknown");
  cls_id_ = require(config_.cls_token, "classifier");
  sep_id_ = require(config_.sep_token, "separator");
  pad_id_ = require(config_.pad_token, "padding");
  if (config_.special_tokens.empty()) {
    config_.special_tokens = {config_.pad_token, config_.unk_token, config_.cls_token, config_.sep_token};
    if (token_to_id(config_.mask_token) >= 0) config_.special_tokens.push_back(config_.mask_token);
  }
  special_.assign(vocab_.size(), false);
  for (const auto& token : config_.special_tokens) {
    if (token.empty()) throw ValueError("BertTokenizer: an empty special token");
    special_[static_cast<size_t>(require(token, "special"))] = true;
  }
}

int64_t BertTokenizer::token_to_id(const std::string& token) const {
  const auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

const std::string& BertTokenizer::id_to_token(int64_t id) const {
  if (id < 0 || id >= vocab_size())
    throw IndexError("BertTokenizer: id " + std::to_string(id) + " is outside the vocabulary [0, " +
                     std::to_string(vocab_size()) + ") of " + source_);
  return vocab_[static_cast<size_t>(id)];
}

void BertTokenizer::word_piece(const std::string& word, std::vector<int64_t>& ids) const {
  if (count_chars(word) > config_.max_input_chars_per_word) {
    ids.push_back(unk_id_);
    return;
  }
  const size_t first = ids.size();
  std::string piece;
  for (size_t start = 0; start < word.size();) {
    size_t end = word.size();
    int64_t id = -1;
    while (start < end) {
      piece = start > 0 ? config_.continuing_subword_prefix : std::string();
      piece.append(word, start, end - start);
      id = token_to_id(piece);
      if (id >= 0) break;
      end -= last_char_bytes(word, end);
    }
    if (id < 0) {  // no piece starts here: the whole word is unknown
      ids.resize(first);
      ids.push_back(unk_id_);
      return;
    }
    ids.push_back(id);
    start = end;
  }
}

std::vector<int64_t> BertTokenizer::text_ids(std::string_view text) const {
  std::vector<int64_t> ids;
  auto add_plain = [&](std::string_view plain) {
    for (const auto& word : bert_pre_tokenize(bert_normalize(plain, config_.normalizer))) word_piece(word, ids);
  };
  // Special tokens are cut out of the raw text first, leftmost and then longest match.
  size_t plain_start = 0;
  for (size_t at = 0; at < text.size();) {
    const std::string* match = nullptr;
    for (const auto& token : config_.special_tokens)
      if (text.compare(at, token.size(), token) == 0 && (!match || token.size() > match->size())) match = &token;
    if (!match) {
      ++at;
      continue;
    }
    add_plain(text.substr(plain_start, at - plain_start));
    ids.push_back(token_to_id(*match));
    at += match->size();
    plain_start = at;
  }
  add_plain(text.substr(plain_start));
  return ids;
}

std::vector<std::string> BertTokenizer::tokenize(std::string_view text) const {
  return convert_ids_to_tokens(text_ids(text));
}

Encoding BertTokenizer::encode_ids(std::string_view text, const std::string_view* text_pair,
                                   const EncodeOptions& options) const {
  check_options(options, "BertTokenizer::encode");
  std::vector<int64_t> a = text_ids(text), b;
  if (text_pair) b = text_ids(*text_pair);
  if (options.truncation) {
    const int64_t added = options.add_special_tokens ? (text_pair ? 3 : 2) : 0;
    // tokenizers' unsigned subtraction wraps here and then truncates nothing; refuse instead.
    if (options.truncation->max_length < added)
      throw ValueError("BertTokenizer::encode: truncation max_length " +
                       std::to_string(options.truncation->max_length) + " cannot hold the " + std::to_string(added) +
                       " special tokens of a " + (text_pair ? "pair" : "single text") +
                       "; expected max_length >= " + std::to_string(added));
    truncate_ids(a, text_pair ? &b : nullptr, static_cast<size_t>(options.truncation->max_length - added),
                 *options.truncation);
  }
  Encoding encoding;
  auto add = [&](int64_t id, int64_t type) {
    encoding.ids.push_back(id);
    encoding.token_type_ids.push_back(type);
  };
  if (options.add_special_tokens) add(cls_id_, 0);
  for (int64_t id : a) add(id, 0);
  if (options.add_special_tokens) add(sep_id_, 0);
  if (text_pair) {
    for (int64_t id : b) add(id, 1);
    if (options.add_special_tokens) add(sep_id_, 1);
  }
  encoding.attention_mask.assign(encoding.ids.size(), 1);
  encoding.tokens = convert_ids_to_tokens(encoding.ids);
  return encoding;
}

void BertTokenizer::pad(std::vector<Encoding>& encodings, const Padding& padding) const {
  if (padding.strategy == PaddingStrategy::none) return;
  int64_t length = padding.max_length;
  if (padding.strategy == PaddingStrategy::longest) {
    length = 0;
    for (const auto& encoding : encodings) length = std::max(length, encoding.size());
  }
  if (padding.pad_to_multiple_of && length % *padding.pad_to_multiple_of != 0)
    length += *padding.pad_to_multiple_of - length % *padding.pad_to_multiple_of;
  for (auto& encoding : encodings) {
    if (encoding.size() >= length) continue;
    const auto missing = static_cast<size_t>(length - encoding.size());
    auto extend = [&](auto& values, const auto& value) {
      values.insert(padding.side == Side::right ? values.end() : values.begin(), missing, value);
    };
    extend(encoding.ids, pad_id_);
    extend(encoding.token_type_ids, padding.pad_type_id);
    extend(encoding.attention_mask, int64_t{0});
    extend(encoding.tokens, config_.pad_token);
  }
}

Encoding BertTokenizer::encode(std::string_view text) const { return encode(text, config_.defaults); }

Encoding BertTokenizer::encode(std::string_view text, std::string_view text_pair) const {
  return encode(text, text_pair, config_.defaults);
}

Encoding BertTokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  std::vector<Encoding> one{encode_ids(text, nullptr, options)};
  pad(one, options.padding);
  return std::move(one[0]);
}

Encoding BertTokenizer::encode(std::string_view text, std::string_view text_pair, const EncodeOptions& options) const {
  std::vector<Encoding> one{encode_ids(text, &text_pair, options)};
  pad(one, options.padding);
  return std::move(one[0]);
}

BatchEncoding BertTokenizer::encode_batch(const std::vector<std::string>& texts) const {
  return encode_batch(texts, config_.defaults);
}

BatchEncoding BertTokenizer::encode_batch(const std::vector<std::string>& texts, const EncodeOptions& options) const {
  return encode_batch(texts, {}, options);
}

BatchEncoding BertTokenizer::encode_batch(const std::vector<std::string>& texts,
                                          const std::vector<std::string>& text_pairs,
                                          const EncodeOptions& options) const {
  if (!text_pairs.empty() && text_pairs.size() != texts.size())
    throw ValueError("BertTokenizer::encode_batch: " + std::to_string(texts.size()) + " texts but " +
                     std::to_string(text_pairs.size()) + " text pairs; expected as many pairs as texts (or none)");
  BatchEncoding batch;
  batch.encodings.reserve(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string_view pair = text_pairs.empty() ? std::string_view() : std::string_view(text_pairs[i]);
    batch.encodings.push_back(encode_ids(texts[i], text_pairs.empty() ? nullptr : &pair, options));
  }
  pad(batch.encodings, options.padding);
  const int64_t rows = static_cast<int64_t>(texts.size());
  const int64_t length = rows ? batch.encodings[0].size() : 0;
  std::vector<int64_t> ids, types, mask;
  ids.reserve(static_cast<size_t>(rows * length));
  types.reserve(ids.capacity());
  mask.reserve(ids.capacity());
  for (int64_t row = 0; row < rows; ++row) {
    const Encoding& encoding = batch.encodings[static_cast<size_t>(row)];
    if (encoding.size() != length)
      throw ValueError("BertTokenizer::encode_batch: row " + std::to_string(row) + " has " +
                       std::to_string(encoding.size()) + " tokens and row 0 has " + std::to_string(length) +
                       "; rows of different lengths need padding (PaddingStrategy::longest)");
    ids.insert(ids.end(), encoding.ids.begin(), encoding.ids.end());
    types.insert(types.end(), encoding.token_type_ids.begin(), encoding.token_type_ids.end());
    mask.insert(mask.end(), encoding.attention_mask.begin(), encoding.attention_mask.end());
  }
  batch.input_ids = from_vector(ids, {rows, length});
  batch.token_type_ids = from_vector(types, {rows, length});
  batch.attention_mask = from_vector(mask, {rows, length});
  return batch;
}

std::vector<std::string> BertTokenizer::convert_ids_to_tokens(const std::vector<int64_t>& ids) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int64_t id : ids) tokens.push_back(id_to_token(id));
  return tokens;
}

std::string BertTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  const std::string& prefix = config_.continuing_subword_prefix;
  std::string text;
  bool first = true;
  for (int64_t id : ids) {
    const std::string& token = id_to_token(id);
    if (skip_special_tokens && special_[static_cast<size_t>(id)]) continue;
    if (first)
      text += cleanup(token);
    else if (token.compare(0, prefix.size(), prefix) == 0)
      text += cleanup(token.substr(prefix.size()));
    else
      text += cleanup(" " + token);
    first = false;
  }
  return text;
}

}  // namespace graft::data
