// BERT's tokenizer: the basic tokenizer (BertNormalizer + BertPreTokenizer), WordPiece, and the
// [CLS] a [SEP] b [SEP] encoding with truncation and padding — equal, id for id, to Hugging Face's
// `tokenizers` (what BertTokenizerFast runs) loading the same tokenizer.json.
//
// The pipeline, in tokenizers' order:
//   1. special tokens ([CLS], [MASK], ... the added tokens) are cut out of the raw text, leftmost
//      longest first, and kept whole (never_split);
//   2. every other piece is normalized: clean_text drops NUL, U+FFFD and control/format characters
//      (Cc, Cf, Co; '\t' '\n' '\r' are whitespace) and turns whitespace into ' '; CJK ideographs get a
//      space on each side; strip_accents (unset: follows lowercase) takes NFD and drops nonspacing
//      marks (Mn); lowercase applies Unicode's full lower-case mapping one character at a time;
//   3. the normalized text is split on whitespace (dropped) and punctuation (each mark a word):
//      ASCII punctuation, symbols such as $ + < = > ^ ` | ~ included, and every Unicode P* category;
//   4. WordPiece cuts each word greedily, longest vocabulary match first, pieces after the first
//      carrying the "##" prefix; a word that cannot be cut, or longer than max_input_chars_per_word
//      characters, is one [UNK].
// tokenizers classifies characters with Unicode 8.0's tables and lower-cases with Rust's (Unicode
// 17); utf8proc gives Unicode 15. The code points where they disagree are listed in
// wordpiece_normalizer.cpp, and the golden test checks every code point.
//
// Text is UTF-8; invalid UTF-8 -> ValueError naming the byte offset. Ids are vocabulary line numbers.
// Shapes: B = batch size, S = padded sequence length.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tensor/tensor.h"

namespace graft::data {

// ---- the basic tokenizer ----

struct BertNormalizerOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  std::optional<bool> strip_accents;  // unset: strip when lower-casing (HF's strip_accents=None)
  bool lowercase = true;
};

// Steps 2 and 3 above: the normalized text, and its words.
std::string bert_normalize(std::string_view text, const BertNormalizerOptions& options = {});
std::vector<std::string> bert_pre_tokenize(std::string_view normalized);

// ---- encoding options ----

enum class TruncationStrategy {
  longest_first,  // pairs: cut the longer side first (tokenizers' rule: see truncate_pair in wordpiece.cpp)
  only_first,
  only_second,
};
enum class Side { right, left };

struct Truncation {
  // Counts the special tokens: [CLS] a [SEP] keeps max_length - 2 tokens of a. A max_length below
  // the special tokens' count -> ValueError (tokenizers wraps around and truncates nothing).
  int64_t max_length = 512;
  TruncationStrategy strategy = TruncationStrategy::longest_first;
  Side side = Side::right;  // which end loses tokens
};

enum class PaddingStrategy {
  none,
  longest,     // to the longest sequence of the batch (a single encode: its own length)
  max_length,  // to Padding::max_length; longer sequences are left as they are
};

struct Padding {
  PaddingStrategy strategy = PaddingStrategy::none;
  int64_t max_length = 0;                     // for PaddingStrategy::max_length
  std::optional<int64_t> pad_to_multiple_of;  // then round the padded length up to a multiple
  Side side = Side::right;
  int64_t pad_type_id = 0;
};

struct EncodeOptions {
  std::optional<Truncation> truncation;  // unset: keep every token
  Padding padding;
  bool add_special_tokens = true;
};

// One encoded sequence (or pair); all vectors have size() entries.
struct Encoding {
  std::vector<int64_t> ids;
  std::vector<int64_t> token_type_ids;  // 0 for [CLS] a [SEP], 1 for b [SEP]; pad_type_id for padding
  std::vector<int64_t> attention_mask;  // 1 for tokens, 0 for padding
  std::vector<std::string> tokens;
  int64_t size() const { return static_cast<int64_t>(ids.size()); }
};

// A batch ready for a BERT model: [B, S] i64 tensors, and the encodings they were made from.
struct BatchEncoding {
  Tensor input_ids;
  Tensor token_type_ids;
  Tensor attention_mask;
  std::vector<Encoding> encodings;
};

// ---- the tokenizer ----

struct BertTokenizerConfig {
  BertNormalizerOptions normalizer;
  std::string unk_token = "[UNK]";
  std::string cls_token = "[CLS]";
  std::string sep_token = "[SEP]";
  std::string pad_token = "[PAD]";
  std::string mask_token = "[MASK]";
  std::string continuing_subword_prefix = "##";
  int64_t max_input_chars_per_word = 100;
  // Cut out of the raw text whole (step 1), and skipped by decode(skip_special_tokens = true).
  // Empty: unk, cls, sep, pad, and mask when the vocabulary has it.
  std::vector<std::string> special_tokens;
  // What encode() and encode_batch() do when given no options (tokenizer.json's truncation and padding).
  EncodeOptions defaults;
  int64_t model_max_length = 512;  // tokenizer_config.json's; informative
};

class BertTokenizer {
 public:
  // vocab[i] is the token of id i (a token listed twice keeps its last id, as HF's load_vocab).
  // A vocabulary lacking unk/cls/sep/pad or a special token -> FormatError naming it and `source`;
  // a bad setting (empty prefix, max_input_chars_per_word < 1) -> ValueError.
  explicit BertTokenizer(std::vector<std::string> vocab, BertTokenizerConfig config = {},
                         std::string source = "<memory>");

  // dir/vocab.txt (required), dir/tokenizer.json and dir/tokenizer_config.json (each optional; absent
  // settings keep BertTokenizerConfig's defaults, and tokenizer_config.json's do_lower_case,
  // strip_accents and tokenize_chinese_chars override tokenizer.json's normalizer, as transformers
  // does). A missing directory or vocab.txt -> IOError; malformed JSON or a setting of the wrong type
  // -> FormatError naming the file; a tokenizer.json that is not a BERT WordPiece one ->
  // NotImplementedError naming what it holds; tokenizer.json's vocabulary differing from vocab.txt's
  // -> FormatError.
  static BertTokenizer from_pretrained(const std::filesystem::path& dir);
  // vocab.txt alone, one token a line (a trailing '\r' is dropped); IOError when unreadable.
  static BertTokenizer from_vocab_file(const std::filesystem::path& vocab_txt, BertTokenizerConfig config = {});

  // WordPiece tokens of the text, no [CLS]/[SEP].
  std::vector<std::string> tokenize(std::string_view text) const;

  // With config().defaults.
  Encoding encode(std::string_view text) const;
  Encoding encode(std::string_view text, std::string_view text_pair) const;
  Encoding encode(std::string_view text, const EncodeOptions& options) const;
  Encoding encode(std::string_view text, std::string_view text_pair, const EncodeOptions& options) const;

  // Encodes and pads every text (pair) together. Unpadded rows of different lengths cannot form a
  // tensor -> ValueError (pad with PaddingStrategy::longest); an empty batch gives [0, 0] tensors;
  // pairs of another size than texts -> ValueError.
  BatchEncoding encode_batch(const std::vector<std::string>& texts) const;
  BatchEncoding encode_batch(const std::vector<std::string>& texts, const EncodeOptions& options) const;
  BatchEncoding encode_batch(const std::vector<std::string>& texts, const std::vector<std::string>& text_pairs,
                             const EncodeOptions& options) const;

  // Tokens joined as HF's WordPiece decoder does: "##" pieces glued on, a space before every other
  // token, and " ." " ?" " !" " ," closed up. An id outside the vocabulary -> IndexError.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = true) const;
  std::vector<std::string> convert_ids_to_tokens(const std::vector<int64_t>& ids) const;
  const std::string& id_to_token(int64_t id) const;     // IndexError outside [0, vocab_size())
  int64_t token_to_id(const std::string& token) const;  // -1 when absent

  int64_t vocab_size() const { return static_cast<int64_t>(vocab_.size()); }
  const BertTokenizerConfig& config() const { return config_; }
  const std::string& source() const { return source_; }  // the file read, named in messages
  int64_t unk_id() const { return unk_id_; }
  int64_t cls_id() const { return cls_id_; }
  int64_t sep_id() const { return sep_id_; }
  int64_t pad_id() const { return pad_id_; }

 private:
  // Appends the WordPiece pieces of one pre-tokenized word.
  void word_piece(const std::string& word, std::vector<int64_t>& ids) const;
  std::vector<int64_t> text_ids(std::string_view text) const;
  Encoding encode_ids(std::string_view text, const std::string_view* text_pair, const EncodeOptions& options) const;
  void pad(std::vector<Encoding>& encodings, const Padding& padding) const;

  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int64_t> ids_;
  std::vector<bool> special_;  // per id: skipped by decode(skip_special_tokens)
  BertTokenizerConfig config_;
  std::string source_;
  int64_t unk_id_ = -1, cls_id_ = -1, sep_id_ = -1, pad_id_ = -1;
};

}  // namespace graft::data
