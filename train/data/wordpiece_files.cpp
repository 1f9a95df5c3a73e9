// Loading a BERT tokenizer from a Hugging Face checkpoint directory: vocab.txt, tokenizer.json
// (what `tokenizers` reads) and tokenizer_config.json (what transformers adds on top).
// Files are untrusted: every field is type-checked, and a setting graft does not implement is a
// NotImplementedError rather than a tokenizer that silently differs from Hugging Face's.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tensor/error.h"
#include "train/data/quoting.h"
#include "train/data/wordpiece.h"

namespace graft::data {

namespace {

namespace fs = std::filesystem;
using detail::in_quotes;
using nlohmann::json;

std::string read_file(const fs::path& path) {
  std::error_code error;
  if (fs::is_directory(path, error))
    throw IOError("BertTokenizer: " + in_quotes(path.string()) + " is a directory; expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IOError("BertTokenizer: cannot open " + in_quotes(path.string()) + ": " + std::strerror(errno));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) throw IOError("BertTokenizer: reading " + in_quotes(path.string()) + " failed");
  return bytes.str();
}

std::vector<std::string> read_vocab(const fs::path& path) {
  const std::string text = read_file(path);
  std::vector<std::string> vocab;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string token = text.substr(start, end - start);
    if (!token.empty() && token.back() == '\r') token.pop_back();
    vocab.push_back(std::move(token));
    start = end + 1;
  }
  if (vocab.empty())
    throw FormatError("BertTokenizer: " + in_quotes(path.string()) + " is empty; expected one token a line");
  return vocab;
}

// A JSON file and the path of the value being read, for messages: "tokenizer.json: model.unk_token".
struct JsonFile {
  std::string name;
  json root;

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw FormatError("BertTokenizer: " + name + ": " + key + " " + what);
  }

  // The member, or nullptr when absent or null.
  const json* find(const json& object, const std::string& key) const {
    const auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
  }
  const json& object(const json& object, const std::string& key, const std::string& path) const {
    const json* value = find(object, key);
    if (!value || !value->is_object()) fail(path, "is missing or not an object");
    return *value;
  }
  void read(const json& object, const std::string& key, const std::string& path, bool& out) const {
    if (const json* value = find(object, key)) {
      if (!value->is_boolean()) fail(path, "is " + value->dump() + "; expected true or false");
      out = value->get<bool>();
    }
  }
  void read(const json& object, const std::string& key, const std::string& path, int64_t& out) const {
    if (const json* value = find(object, key)) {
      if (!value->is_number_integer() || (value->is_number_unsigned() && value->get<uint64_t>() > INT64_MAX))
        fail(path, "is " + value->dump() + "; expected an integer");
      out = value->get<int64_t>();
    }
  }
  // A token: a string, or an AddedToken object {"content": ...} as transformers writes them.
  void read(const json& object, const std::string& key, const std::string& path, std::string& out) const {
    if (const json* value = find(object, key)) {
      const json* content = value->is_object() ? find(*value, "content") : value;
      if (!content || !content->is_string()) fail(path, "is " + value->dump() + "; expected a string");
      out = content->get<std::string>();
    }
  }
  std::string type(const json& object, const std::string& path) const {
    std::string name;
    read(object, "type", path + ".type", name);
    return name;
  }
};

std::optional<JsonFile> read_json(const fs::path& path) {
  std::error_code error;
  if (!fs::exists(path, error)) return std::nullopt;
  JsonFile file{path.string(), json::parse(read_file(path), nullptr, /*allow_exceptions=*/false)};
  if (file.root.is_discarded() || !file.root.is_object())
    throw FormatError("BertTokenizer: " + file.name + " is not a JSON object (malformed JSON)");
  return file;
}

[[noreturn]] void unsupported(const JsonFile& file, const std::string& key, const std::string& what) {
  throw NotImplementedError("BertTokenizer: " + file.name + ": " + key + " is " + what +
                            "; graft's BertTokenizer implements BERT's WordPiece tokenizer only");
}

void read_normalizer(const JsonFile& file, BertTokenizerConfig& config) {
  const json* normalizer = file.find(file.root, "normalizer");
  if (!normalizer || file.type(*normalizer, "normalizer") != "BertNormalizer")
    unsupported(file, "normalizer", normalizer ? normalizer->dump() : "null");
  auto& options = config.normalizer;
  file.read(*normalizer, "clean_text", "normalizer.clean_text", options.clean_text);
  file.read(*normalizer, "handle_chinese_chars", "normalizer.handle_chinese_chars", options.handle_chinese_chars);
  file.read(*normalizer, "lowercase", "normalizer.lowercase", options.lowercase);
  options.strip_accents.reset();
  if (file.find(*normalizer, "strip_accents")) {
    bool strip = false;
    file.read(*normalizer, "strip_accents", "normalizer.strip_accents", strip);
    options.strip_accents = strip;
  }
}

void read_model(const JsonFile& file, BertTokenizerConfig& config, const std::vector<std::string>& vocab) {
  const json& model = file.object(file.root, "model", "model");
  if (file.type(model, "model") != "WordPiece") unsupported(file, "model.type", in_quotes(file.type(model, "model")));
  file.read(model, "unk_token", "model.unk_token", config.unk_token);
  file.read(model, "continuing_subword_prefix", "model.continuing_subword_prefix", config.continuing_subword_prefix);
  file.read(model, "max_input_chars_per_word", "model.max_input_chars_per_word", config.max_input_chars_per_word);
  // The ids tokenizers would use must be vocab.txt's line numbers.
  const json* ids = file.find(model, "vocab");
  if (!ids) return;
  if (!ids->is_object()) file.fail("model.vocab", "is not an object");
  std::unordered_map<std::string, int64_t> expected;
  for (size_t i = 0; i < vocab.size(); ++i) expected[vocab[i]] = static_cast<int64_t>(i);
  if (ids->size() != expected.size())
    file.fail("model.vocab", "holds " + std::to_string(ids->size()) + " tokens and vocab.txt " +
                                 std::to_string(expected.size()) + "; expected the same vocabulary");
  for (const auto& [token, id] : ids->items()) {
    const auto it = expected.find(token);
    if (!id.is_number_integer() || it == expected.end() || it->second != id.get<int64_t>())
      file.fail("model.vocab",
                "gives " + in_quotes(token) + " id " + id.dump() + ", which is not its line in vocab.txt");
  }
}

void read_added_tokens(const JsonFile& file, BertTokenizerConfig& config, const std::vector<std::string>& vocab) {
  const json* added = file.find(file.root, "added_tokens");
  if (!added) return;
  if (!added->is_array()) file.fail("added_tokens", "is not an array");
  config.special_tokens.clear();
  for (size_t i = 0; i < added->size(); ++i) {
    const json& token = (*added)[i];
    const std::string path = "added_tokens[" + std::to_string(i) + "]";
    if (!token.is_object()) file.fail(path, "is not an object");
    std::string content;
    int64_t id = -1;
    bool special = false, normalized = false, lstrip = false, rstrip = false, single_word = false;
    file.read(token, "content", path + ".content", content);
    file.read(token, "id", path + ".id", id);
    file.read(token, "special", path + ".special", special);
    file.read(token, "normalized", path + ".normalized", normalized);
    file.read(token, "lstrip", path + ".lstrip", lstrip);
    file.read(token, "rstrip", path + ".rstrip", rstrip);
    file.read(token, "single_word", path + ".single_word", single_word);
    if (!special || normalized || lstrip || rstrip || single_word)
      unsupported(file, path, token.dump() + " (only special, unnormalized tokens matched exactly are)");
    if (id < 0 || id >= static_cast<int64_t>(vocab.size()) || vocab[static_cast<size_t>(id)] != content)
      file.fail(path,
                "is " + in_quotes(content) + " with id " + std::to_string(id) + ", which is not its line in vocab.txt");
    config.special_tokens.push_back(content);
  }
}

// The [CLS] and [SEP] of the post-processor: BertProcessing's pairs, or the BERT template.
void read_post_processor(const JsonFile& file, BertTokenizerConfig& config) {
  const json* post = file.find(file.root, "post_processor");
  if (!post) return;
  const std::string type = file.type(*post, "post_processor");
  if (type == "BertProcessing") {
    for (auto [key, token] : {std::pair{"cls", &config.cls_token}, std::pair{"sep", &config.sep_token}}) {
      const json* pair = file.find(*post, key);
      if (!pair || !pair->is_array() || pair->empty() || !(*pair)[0].is_string())
        file.fail(std::string("post_processor.") + key, "is not a [token, id] pair");
      *token = (*pair)[0].get<std::string>();
    }
    return;
  }
  if (type != "TemplateProcessing") unsupported(file, "post_processor.type", in_quotes(type));
  const json* single = file.find(*post, "single");
  auto special = [&](size_t i) -> std::string {
    const json& piece = (*single)[i];
    if (!piece.is_object() || !piece.contains("SpecialToken") || !piece["SpecialToken"].is_object() ||
        !piece["SpecialToken"].contains("id") || !piece["SpecialToken"]["id"].is_string())
      unsupported(file, "post_processor.single", single->dump() + ", not the template [CLS] $A [SEP]");
    return piece["SpecialToken"]["id"].get<std::string>();
  };
  if (!single || !single->is_array() || single->size() != 3)
    unsupported(file, "post_processor.single", single ? single->dump() : "null");
  config.cls_token = special(0);
  config.sep_token = special(2);
}

void read_truncation(const JsonFile& file, BertTokenizerConfig& config) {
  const json* truncation = file.find(file.root, "truncation");
  if (!truncation) return;
  Truncation out;
  file.read(*truncation, "max_length", "truncation.max_length", out.max_length);
  std::string strategy = "LongestFirst", direction = "Right";
  file.read(*truncation, "strategy", "truncation.strategy", strategy);
  file.read(*truncation, "direction", "truncation.direction", direction);
  if (strategy == "LongestFirst")
    out.strategy = TruncationStrategy::longest_first;
  else if (strategy == "OnlyFirst")
    out.strategy = TruncationStrategy::only_first;
  else if (strategy == "OnlySecond")
    out.strategy = TruncationStrategy::only_second;
  else
    file.fail("truncation.strategy", "is " + in_quotes(strategy) + "; expected LongestFirst, OnlyFirst or OnlySecond");
  if (direction != "Right" && direction != "Left")
    file.fail("truncation.direction", "is " + in_quotes(direction) + "; expected Right or Left");
  out.side = direction == "Right" ? Side::right : Side::left;
  config.defaults.truncation = out;  // stride only shapes overflowing tokens, which graft does not return
}

void read_padding(const JsonFile& file, BertTokenizerConfig& config) {
  const json* padding = file.find(file.root, "padding");
  if (!padding) return;
  Padding& out = config.defaults.padding;
  const json* strategy = file.find(*padding, "strategy");
  if (strategy && strategy->is_string() && *strategy == "BatchLongest") {
    out.strategy = PaddingStrategy::longest;
  } else if (strategy && strategy->is_object() && strategy->contains("Fixed")) {
    out.strategy = PaddingStrategy::max_length;
    file.read(*strategy, "Fixed", "padding.strategy.Fixed", out.max_length);
  } else {
    file.fail("padding.strategy",
              "is " + (strategy ? strategy->dump() : "missing") + R"(; expected "BatchLongest" or {"Fixed": n})");
  }
  std::string direction = "Right";
  file.read(*padding, "direction", "padding.direction", direction);
  if (direction != "Right" && direction != "Left")
    file.fail("padding.direction", "is " + in_quotes(direction) + "; expected Right or Left");
  out.side = direction == "Right" ? Side::right : Side::left;
  if (file.find(*padding, "pad_to_multiple_of")) {
    int64_t multiple = 0;
    file.read(*padding, "pad_to_multiple_of", "padding.pad_to_multiple_of", multiple);
    out.pad_to_multiple_of = multiple;
  }
  file.read(*padding, "pad_type_id", "padding.pad_type_id", out.pad_type_id);
  file.read(*padding, "pad_token", "padding.pad_token", config.pad_token);
}

// transformers' BertTokenizerFast: the config's settings replace tokenizer.json's normalizer ones.
void read_tokenizer_config(const JsonFile& file, BertTokenizerConfig& config) {
  const json& root = file.root;
  file.read(root, "do_lower_case", "do_lower_case", config.normalizer.lowercase);
  file.read(root, "tokenize_chinese_chars", "tokenize_chinese_chars", config.normalizer.handle_chinese_chars);
  if (root.contains("strip_accents")) {
    if (root["strip_accents"].is_null()) {
      config.normalizer.strip_accents.reset();
    } else {
      bool strip = false;
      file.read(root, "strip_accents", "strip_accents", strip);
      config.normalizer.strip_accents = strip;
    }
  }
  for (auto [key, token] : {std::pair{"unk_token", &config.unk_token}, std::pair{"cls_token", &config.cls_token},
                            std::pair{"sep_token", &config.sep_token}, std::pair{"pad_token", &config.pad_token},
                            std::pair{"mask_token", &config.mask_token}})
    file.read(root, key, key, *token);
  // transformers writes int(1e30) for "no limit", beyond int64: that is no limit here too.
  if (const json* length = file.find(root, "model_max_length")) {
    if (length->is_number_float() || (length->is_number_unsigned() && length->get<uint64_t>() > INT64_MAX))
      config.model_max_length = std::numeric_limits<int64_t>::max();
    else
      file.read(root, "model_max_length", "model_max_length", config.model_max_length);
  }
}

}  // namespace

BertTokenizer BertTokenizer::from_vocab_file(const std::filesystem::path& vocab_txt, BertTokenizerConfig config) {
  return BertTokenizer(read_vocab(vocab_txt), std::move(config), vocab_txt.string());
}

BertTokenizer BertTokenizer::from_pretrained(const std::filesystem::path& dir) {
  std::error_code error;
  if (!fs::is_directory(dir, error))
    throw IOError(
        "BertTokenizer::from_pretrained: " + in_quotes(dir.string()) +
        " is not a directory; expected a checkpoint directory holding vocab.txt (assets: scripts/fetch-assets.sh)");
  const fs::path vocab_path = dir / "vocab.txt";
  if (!fs::exists(vocab_path, error))
    throw IOError("BertTokenizer::from_pretrained: " + in_quotes(vocab_path.string()) + " does not exist");
  std::vector<std::string> vocab = read_vocab(vocab_path);
  BertTokenizerConfig config;
  if (const auto file = read_json(dir / "tokenizer.json")) {
    read_normalizer(*file, config);
    if (const json* pre = file->find(file->root, "pre_tokenizer");
        !pre || file->type(*pre, "pre_tokenizer") != "BertPreTokenizer")
      unsupported(*file, "pre_tokenizer", pre ? pre->dump() : "null");
    read_model(*file, config, vocab);
    read_added_tokens(*file, config, vocab);
    read_post_processor(*file, config);
    read_truncation(*file, config);
    read_padding(*file, config);
  }
  if (const auto file = read_json(dir / "tokenizer_config.json")) read_tokenizer_config(*file, config);
  return BertTokenizer(std::move(vocab), std::move(config), vocab_path.string());
}

}  // namespace graft::data
