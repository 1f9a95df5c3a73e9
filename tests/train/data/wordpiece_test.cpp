// The WordPiece tokenizer: equal to Hugging Face's `tokenizers` on the all-MiniLM-L6-v2 vocabulary
// (tests/golden/wordpiece/golden.json, made by tests/golden/make_wordpiece_golden.py: every text,
// pair, batch and every Unicode code point), and unit tests on a small hand-written vocabulary.
#include "train/data/wordpiece.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "error_matchers.h"
#include "tensor/error.h"

using namespace graft;
using namespace graft::data;
using graft::test::mentions;
using graft::test::message_of;
using nlohmann::json;

namespace {

namespace fs = std::filesystem;
using Ids = std::vector<int64_t>;
using Strings = std::vector<std::string>;

fs::path assets_dir() {
  if (const char* dir = std::getenv("GRAFT_ASSETS_DIR")) return dir;
  return fs::path(GRAFT_TEST_DATA_DIR) / ".." / "assets" / "all-MiniLM-L6-v2";
}

std::string utf8(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

Ids tensor_row(const Tensor& t, int64_t row) {
  const Tensor contiguous = t.contiguous();
  const auto* data = contiguous.data_ptr<int64_t>();
  const int64_t width = t.size(1);
  return Ids(data + row * width, data + (row + 1) * width);
}

Side side_of(const std::string& name) { return name == "left" ? Side::left : Side::right; }

// ---- the golden: Hugging Face's tokenizers on the real vocabulary ----

class WordPieceGolden : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(assets_dir() / "vocab.txt")) return;
    tokenizer_ = new BertTokenizer(BertTokenizer::from_pretrained(assets_dir()));
    std::ifstream in(fs::path(GRAFT_TEST_DATA_DIR) / "golden/wordpiece/golden.json");
    golden_ = new json(json::parse(in));
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    delete golden_;
    tokenizer_ = nullptr;
    golden_ = nullptr;
  }
  void SetUp() override {
    if (!tokenizer_)
      GTEST_SKIP() << "the all-MiniLM-L6-v2 assets are missing at " << assets_dir()
                   << ": run scripts/fetch-assets.sh (or set GRAFT_ASSETS_DIR)";
  }
  static BertTokenizer* tokenizer_;
  static json* golden_;
};
BertTokenizer* WordPieceGolden::tokenizer_ = nullptr;
json* WordPieceGolden::golden_ = nullptr;

EncodeOptions plain() { return {}; }

TEST_F(WordPieceGolden, EveryTextAlone) {
  const auto& cases = (*golden_)["single"];
  ASSERT_GE(cases.size(), 500u);
  int failures = 0;
  for (const auto& c : cases) {
    const std::string text = c["text"];
    const Encoding e = tokenizer_->encode(text, plain());
    const bool same = e.ids == c["ids"].get<Ids>() && e.token_type_ids == c["type_ids"].get<Ids>() &&
                      e.attention_mask == c["mask"].get<Ids>();
    EXPECT_TRUE(same) << "text " << json(text).dump() << "\n graft: " << json(e.tokens).dump()
                      << "\n HF ids: " << c["ids"].dump() << "\n graft : " << json(e.ids).dump();
    EXPECT_EQ(tokenizer_->decode(e.ids), c["decoded"].get<std::string>()) << json(text).dump();
    if (!same && ++failures > 20) FAIL() << "more than 20 texts differ";
  }
}

TEST_F(WordPieceGolden, PairsTruncated) {
  static const std::map<std::string, TruncationStrategy> strategies = {
      {"longest_first", TruncationStrategy::longest_first},
      {"only_first", TruncationStrategy::only_first},
      {"only_second", TruncationStrategy::only_second}};
  int errors = 0;
  for (const auto& c : (*golden_)["pairs"]) {
    EncodeOptions options;
    options.truncation = Truncation{c["max_length"].get<int64_t>(), strategies.at(c["strategy"].get<std::string>()),
                                    side_of(c["side"].get<std::string>())};
    const std::string a = c["text"], b = c["pair"];
    const std::string what = json(a).dump() + " + " + json(b).dump() + " max_length " + c["max_length"].dump() + " " +
                             c["strategy"].get<std::string>() + " " + c["side"].get<std::string>();
    if (c.contains("error")) {  // HF: the one side to cut is too short
      EXPECT_THROW(tokenizer_->encode(a, b, options), ValueError) << what;
      ++errors;
      continue;
    }
    const Encoding e = tokenizer_->encode(a, b, options);
    EXPECT_EQ(e.ids, c["ids"].get<Ids>()) << what;
    EXPECT_EQ(e.token_type_ids, c["type_ids"].get<Ids>()) << what;
    EXPECT_EQ(e.attention_mask, c["mask"].get<Ids>()) << what;
  }
  EXPECT_GT(errors, 0);  // the golden holds both outcomes
}

TEST_F(WordPieceGolden, PaddedBatches) {
  for (const auto& c : (*golden_)["batches"]) {
    EncodeOptions options;
    const auto& padding = c["padding"];
    options.padding.strategy =
        padding["strategy"].get<std::string>() == "longest" ? PaddingStrategy::longest : PaddingStrategy::max_length;
    if (padding.contains("max_length")) options.padding.max_length = padding["max_length"].get<int64_t>();
    if (padding.contains("pad_to_multiple_of"))
      options.padding.pad_to_multiple_of = padding["pad_to_multiple_of"].get<int64_t>();
    if (padding.contains("side")) options.padding.side = side_of(padding["side"].get<std::string>());
    if (!c["truncation"].is_null()) options.truncation = Truncation{c["truncation"]["max_length"].get<int64_t>()};
    const auto texts = c["texts"].get<Strings>();
    const Strings pairs = c.contains("pairs") ? c["pairs"].get<Strings>() : Strings{};
    const BatchEncoding batch = tokenizer_->encode_batch(texts, pairs, options);
    const auto ids = c["ids"].get<std::vector<Ids>>();
    ASSERT_EQ(batch.input_ids.dtype(), DType::i64);
    ASSERT_EQ(batch.input_ids.shape(), Shape({static_cast<int64_t>(ids.size()), static_cast<int64_t>(ids[0].size())}))
        << c["padding"].dump();
    for (size_t row = 0; row < ids.size(); ++row) {
      const auto r = static_cast<int64_t>(row);
      EXPECT_EQ(tensor_row(batch.input_ids, r), ids[row]) << c["padding"].dump() << " row " << row;
      EXPECT_EQ(tensor_row(batch.token_type_ids, r), c["type_ids"][row].get<Ids>()) << row;
      EXPECT_EQ(tensor_row(batch.attention_mask, r), c["mask"][row].get<Ids>()) << row;
      EXPECT_EQ(batch.encodings[row].ids, ids[row]);
    }
  }
}

TEST_F(WordPieceGolden, TokenizerJsonDefaults) {
  // tokenizer.json asks for truncation and fixed padding at 128; tokenizer_config.json for 512 at most.
  ASSERT_TRUE(tokenizer_->config().defaults.truncation.has_value());
  EXPECT_EQ(tokenizer_->config().defaults.truncation->max_length, 128);
  EXPECT_EQ(tokenizer_->config().defaults.padding.strategy, PaddingStrategy::max_length);
  EXPECT_EQ(tokenizer_->config().model_max_length, 512);
  EXPECT_EQ(tokenizer_->vocab_size(), 30522);
  for (const auto& c : (*golden_)["defaults"]) {
    const Encoding e = tokenizer_->encode(c["text"].get<std::string>());
    EXPECT_EQ(e.ids, c["ids"].get<Ids>()) << c["text"];
    EXPECT_EQ(e.attention_mask, c["mask"].get<Ids>()) << c["text"];
  }
  const auto& pair = (*golden_)["defaults_pair"];
  const Encoding e = tokenizer_->encode(pair["text"].get<std::string>(), pair["pair"].get<std::string>());
  EXPECT_EQ(e.ids, pair["ids"].get<Ids>());
  EXPECT_EQ(e.token_type_ids, pair["type_ids"].get<Ids>());
}

// Every Unicode scalar value through each normalizer step alone, and through the pre-tokenizer.
TEST_F(WordPieceGolden, EveryCodePoint) {
  const auto& sweep = (*golden_)["code_points"];
  auto in_ranges = [&](const char* name) {
    std::vector<bool> set(0x110000, false);
    for (const auto& range : sweep[name])
      for (uint32_t c = range[0]; c <= range[1].get<uint32_t>(); ++c) set[c] = true;
    return set;
  };
  auto mapping = [&](const char* name) {
    std::vector<std::string> out(0x110000);
    std::vector<bool> changed(0x110000, false);
    for (const auto& entry : sweep[name]) {
      const auto c = entry[0].get<uint32_t>();
      changed[c] = true;
      for (size_t i = 1; i < entry.size(); ++i) out[c] += utf8(entry[i].get<char32_t>());
    }
    return std::pair{out, changed};
  };
  const auto removed = in_ranges("removed"), to_space = in_ranges("to_space"), chinese = in_ranges("chinese");
  const auto whitespace = in_ranges("pre_whitespace"), punctuation = in_ranges("pre_punctuation");
  const auto [stripped, strip_changes] = mapping("strip_accents");
  const auto [lowered, lower_changes] = mapping("lowercase");
  auto step = [](bool clean, bool chinese_chars, bool strip, bool lower) {
    return BertNormalizerOptions{clean, chinese_chars, strip, lower};
  };
  const auto clean_only = step(true, false, false, false), chinese_only = step(false, true, false, false);
  const auto strip_only = step(false, false, true, false), lower_only = step(false, false, false, true);
  int failures = 0;
  auto check = [&](bool ok, const char* what, char32_t c) {
    if (ok) return;
    ADD_FAILURE() << what << " differs from tokenizers at U+" << std::hex << std::uppercase << static_cast<uint32_t>(c);
    if (++failures > 30) throw std::runtime_error("more than 30 code points differ");
  };
  for (char32_t c = 0; c < 0x110000; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    const std::string s = utf8(c);
    check(bert_normalize(s, clean_only) == (removed[c] ? "" : to_space[c] ? " " : s), "clean_text", c);
    check(bert_normalize(s, chinese_only) == (chinese[c] ? " " + s + " " : s), "handle_chinese_chars", c);
    check(bert_normalize(s, strip_only) == (strip_changes[c] ? stripped[c] : s), "strip_accents", c);
    check(bert_normalize(s, lower_only) == (lower_changes[c] ? lowered[c] : s), "lowercase", c);
    const size_t pieces = bert_pre_tokenize("a" + s + "a").size();
    check(pieces == (whitespace[c] ? 2u : punctuation[c] ? 3u : 1u), "bert_pre_tokenize", c);
  }
}

// ---- a small hand-written vocabulary ----

const Strings kVocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##want", "##ed", "want", "wa",
                        "runn",  "##ing", ",",     ".",     "!",      "a",  "b",      "c",    "d",    "e",
                        "##ly",  "ru",    "##nn",  "é",     "日",     "本", "cafe",   "##s",  "##é"};

class WordPiece : public ::testing::Test {
 protected:
  BertTokenizer tokenizer_{kVocab};
  static Ids ids(const Encoding& e) { return e.ids; }
};

TEST_F(WordPiece, SplitsLongestMatchFirst) {
  EXPECT_EQ(tokenizer_.tokenize("unwanted running"), (Strings{"un", "##want", "##ed", "runn", "##ing"}));
  EXPECT_EQ(tokenizer_.tokenize("UnWanted, RUNNING!"), (Strings{"un", "##want", "##ed", ",", "runn", "##ing", "!"}));
  // "runn" beats "ru" + "##nn": the longest prefix wins even when a shorter one would also finish.
  EXPECT_EQ(tokenizer_.tokenize("runn"), (Strings{"runn"}));
  EXPECT_EQ(tokenizer_.tokenize("Cafés 日本"), (Strings{"cafe", "##s", "日", "本"}));
}

TEST_F(WordPiece, UnknownWordsAreOneUnk) {
  EXPECT_EQ(tokenizer_.tokenize("wantx unwanted"), (Strings{"[UNK]", "un", "##want", "##ed"}));
  EXPECT_EQ(tokenizer_.tokenize("x"), (Strings{"[UNK]"}));
  EXPECT_EQ(tokenizer_.tokenize(""), Strings{});
  EXPECT_EQ(tokenizer_.tokenize(" \t\n"), Strings{});
}

TEST_F(WordPiece, WordsOverMaxCharsAreUnk) {
  BertTokenizerConfig config;
  config.max_input_chars_per_word = 4;
  config.normalizer.lowercase = false;  // keeps the accents too
  const BertTokenizer tokenizer(kVocab, config);
  EXPECT_EQ(tokenizer.tokenize("runn runnin"), (Strings{"runn", "[UNK]"}));
  // Characters, not bytes: "éééé" is 4 (8 bytes).
  EXPECT_EQ(tokenizer.tokenize("éééé ééééé"), (Strings{"é", "##é", "##é", "##é", "[UNK]"}));
  EXPECT_EQ(BertTokenizer(kVocab).tokenize(std::string(101, 'a')), (Strings{"[UNK]"}));
}

TEST_F(WordPiece, SpecialTokensAreNeverSplit) {
  EXPECT_EQ(tokenizer_.tokenize("a[MASK]b [SEP]"), (Strings{"a", "[MASK]", "b", "[SEP]"}));
  EXPECT_EQ(tokenizer_.tokenize("[mask]"), (Strings{"[UNK]", "[UNK]", "[UNK]"}));  // lower case: plain text
}

TEST_F(WordPiece, EncodesSinglesAndPairs) {
  const Encoding one = tokenizer_.encode("a b", EncodeOptions{});
  EXPECT_EQ(one.ids, (Ids{2, 15, 16, 3}));
  EXPECT_EQ(one.token_type_ids, (Ids{0, 0, 0, 0}));
  EXPECT_EQ(one.attention_mask, (Ids{1, 1, 1, 1}));
  EXPECT_EQ(one.tokens, (Strings{"[CLS]", "a", "b", "[SEP]"}));
  const Encoding two = tokenizer_.encode("a", "b c", EncodeOptions{});
  EXPECT_EQ(two.ids, (Ids{2, 15, 3, 16, 17, 3}));
  EXPECT_EQ(two.token_type_ids, (Ids{0, 0, 0, 1, 1, 1}));
  EncodeOptions bare;
  bare.add_special_tokens = false;
  EXPECT_EQ(tokenizer_.encode("a", "b", bare).ids, (Ids{15, 16}));
}

TEST_F(WordPiece, TruncatesPairsLongestFirst) {
  auto lengths = [&](const std::string& a, const std::string& b, int64_t max_length,
                     TruncationStrategy strategy = TruncationStrategy::longest_first) {
    EncodeOptions options;
    options.truncation = Truncation{max_length, strategy};
    const Encoding e = tokenizer_.encode(a, b, options);
    // [CLS] a [SEP] has type 0, b [SEP] type 1.
    const int64_t second = std::count(e.token_type_ids.begin(), e.token_type_ids.end(), 1) - 1;
    return std::pair<int64_t, int64_t>{e.size() - 3 - second, second};
  };
  const std::string four = "a b c d", eight = "a b c d e a b c";
  EXPECT_EQ(lengths(four, eight, 100), (std::pair<int64_t, int64_t>{4, 8}));
  EXPECT_EQ(lengths(four, eight, 3 + 10), (std::pair<int64_t, int64_t>{4, 6}));  // only the longer is cut
  EXPECT_EQ(lengths(four, eight, 3 + 7), (std::pair<int64_t, int64_t>{3, 4}));   // both: halves, odd one to the longer
  EXPECT_EQ(lengths(eight, four, 3 + 7), (std::pair<int64_t, int64_t>{4, 3}));
  EXPECT_EQ(lengths(four, four, 3 + 5), (std::pair<int64_t, int64_t>{2, 3}));  // equal: the odd one to the second
  EXPECT_EQ(lengths(four, eight, 3), (std::pair<int64_t, int64_t>{0, 0}));     // room for [CLS] [SEP] [SEP] only
  EXPECT_TRUE(mentions(message_of<ValueError>([&] { lengths(four, eight, 2); }), {"max_length 2", "3 special tokens"}));
  EXPECT_EQ(lengths(four, eight, 3 + 9, TruncationStrategy::only_second), (std::pair<int64_t, int64_t>{4, 5}));
  EXPECT_THROW(lengths(four, eight, 3 + 2, TruncationStrategy::only_first), ValueError);
  EncodeOptions left;
  left.truncation = Truncation{5, TruncationStrategy::longest_first, Side::left};
  EXPECT_EQ(tokenizer_.encode("a b c d e", left).tokens, (Strings{"[CLS]", "c", "d", "e", "[SEP]"}));
  EncodeOptions only_second;
  only_second.truncation = Truncation{3, TruncationStrategy::only_second};
  EXPECT_TRUE(mentions(message_of<ValueError>([&] { tokenizer_.encode("a b c", only_second); }), {"text pair"}));
}

TEST_F(WordPiece, PadsBatches) {
  EncodeOptions options;
  options.padding.strategy = PaddingStrategy::longest;
  const BatchEncoding batch = tokenizer_.encode_batch({"a", "a b c", ""}, options);
  ASSERT_EQ(batch.input_ids.shape(), Shape({3, 5}));
  EXPECT_EQ(tensor_row(batch.input_ids, 0), (Ids{2, 15, 3, 0, 0}));
  EXPECT_EQ(tensor_row(batch.attention_mask, 0), (Ids{1, 1, 1, 0, 0}));
  EXPECT_EQ(tensor_row(batch.input_ids, 1), (Ids{2, 15, 16, 17, 3}));
  EXPECT_EQ(tensor_row(batch.input_ids, 2), (Ids{2, 3, 0, 0, 0}));
  EXPECT_EQ(batch.encodings[2].tokens, (Strings{"[CLS]", "[SEP]", "[PAD]", "[PAD]", "[PAD]"}));

  options.padding.pad_to_multiple_of = 4;
  EXPECT_EQ(tokenizer_.encode_batch({"a", "a b c"}, options).input_ids.shape(), Shape({2, 8}));
  options.padding = Padding{PaddingStrategy::max_length, 6, std::nullopt, Side::left};
  const BatchEncoding left = tokenizer_.encode_batch({"a", "b"}, {"c", "d e"}, options);
  EXPECT_EQ(tensor_row(left.input_ids, 0), (Ids{0, 2, 15, 3, 17, 3}));
  EXPECT_EQ(tensor_row(left.token_type_ids, 0), (Ids{0, 0, 0, 0, 1, 1}));
  EXPECT_EQ(tensor_row(left.attention_mask, 0), (Ids{0, 1, 1, 1, 1, 1}));
  EXPECT_EQ(tensor_row(left.input_ids, 1), (Ids{2, 16, 3, 18, 19, 3}));
  // A single encode pads too; a sequence longer than max_length stays whole.
  EXPECT_EQ(tokenizer_.encode("a b c d e", options).size(), 7);
  EXPECT_EQ(tokenizer_.encode_batch({}, options).input_ids.shape(), Shape({0, 0}));
}

TEST_F(WordPiece, RaggedBatchesNeedPadding) {
  EXPECT_TRUE(mentions(message_of<ValueError>([&] {
                         tokenizer_.encode_batch({"a", "a b"}, EncodeOptions{});
                       }),
                       {"row 1", "PaddingStrategy::longest"}));
  EXPECT_THROW(tokenizer_.encode_batch({"a", "b"}, {"c"}, EncodeOptions{}), ValueError);
}

TEST_F(WordPiece, DecodesAsHuggingFace) {
  const Ids ids = tokenizer_.encode("unwanted, running!", EncodeOptions{}).ids;
  EXPECT_EQ(tokenizer_.decode(ids), "unwanted, running!");
  EXPECT_EQ(tokenizer_.decode(ids, /*skip_special_tokens=*/false), "[CLS] unwanted, running! [SEP]");
  EXPECT_EQ(tokenizer_.convert_ids_to_tokens({5, 6}), (Strings{"un", "##want"}));
  EXPECT_TRUE(mentions(message_of<IndexError>([&] { tokenizer_.decode({2, 999}); }), {"999", "29"}));
}

TEST_F(WordPiece, RejectsBadInput) {
  EXPECT_TRUE(mentions(message_of<ValueError>([&] { tokenizer_.tokenize("ok \xff\xfe"); }), {"UTF-8", "byte 3"}));
  EncodeOptions bad;
  bad.padding.pad_to_multiple_of = 0;
  EXPECT_THROW(tokenizer_.encode("a", bad), ValueError);
  BertTokenizerConfig config;
  config.continuing_subword_prefix = "";
  EXPECT_THROW(BertTokenizer(kVocab, config), ValueError);
}

TEST_F(WordPiece, NormalizerOptions) {
  BertNormalizerOptions cased;
  cased.lowercase = false;
  EXPECT_EQ(bert_normalize("Café İ", cased), "Café İ");  // strip_accents follows lowercase: off
  cased.strip_accents = true;
  EXPECT_EQ(bert_normalize("Café", cased), "Cafe");
  BertNormalizerOptions lower_keep_accents;
  lower_keep_accents.strip_accents = false;
  EXPECT_EQ(bert_normalize("CAFÉ İ", lower_keep_accents), "café i\u0307");
  EXPECT_EQ(bert_normalize(std::string_view("a\0b\u200b\tc日d", 12)), "ab c 日 d");
  EXPECT_EQ(bert_pre_tokenize("don't stop-me"), (Strings{"don", "'", "t", "stop", "-", "me"}));
}

// ---- loading files ----

class BertTokenizerFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("graft_wordpiece_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name, std::ios::binary) << text; }
  void write_vocab(const Strings& vocab) {
    std::string text;
    for (const auto& token : vocab) text += token + "\n";
    write("vocab.txt", text);
  }
  fs::path dir_;
};

TEST_F(BertTokenizerFiles, ReadsVocabAndSettings) {
  write_vocab(kVocab);
  write("tokenizer.json", R"({"normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
    "strip_accents": null, "lowercase": false},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 7},
    "truncation": {"max_length": 9, "strategy": "LongestFirst", "stride": 0, "direction": "Right"},
    "padding": {"strategy": "BatchLongest", "direction": "Right", "pad_to_multiple_of": 4, "pad_id": 0,
                "pad_type_id": 0, "pad_token": "[PAD]"}})");
  const BertTokenizer tokenizer = BertTokenizer::from_pretrained(dir_);
  EXPECT_FALSE(tokenizer.config().normalizer.lowercase);
  EXPECT_EQ(tokenizer.config().max_input_chars_per_word, 7);
  EXPECT_EQ(tokenizer.tokenize("Un un"), (Strings{"[UNK]", "un"}));  // cased
  EXPECT_EQ(tokenizer.encode("a b c d e a b c d").size(), 12);       // truncated to 9, padded to 12
  write("tokenizer_config.json", R"({"do_lower_case": true, "model_max_length": 1000000000000000019884624838656})");
  const BertTokenizer lowered = BertTokenizer::from_pretrained(dir_);
  EXPECT_EQ(lowered.tokenize("Un"), (Strings{"un"}));
  EXPECT_EQ(lowered.config().model_max_length, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(BertTokenizer::from_vocab_file(dir_ / "vocab.txt").vocab_size(), static_cast<int64_t>(kVocab.size()));
}

TEST_F(BertTokenizerFiles, MissingSpecialTokensNameTokenAndFile) {
  for (const std::string token : {"[CLS]", "[SEP]", "[UNK]", "[PAD]"}) {
    Strings vocab = kVocab;
    vocab.erase(std::find(vocab.begin(), vocab.end(), token));
    write_vocab(vocab);
    EXPECT_TRUE(mentions(message_of<FormatError>([&] { BertTokenizer::from_pretrained(dir_); }), {token, "vocab.txt"}));
  }
}

TEST_F(BertTokenizerFiles, MissingFilesAreIOErrors) {
  EXPECT_TRUE(mentions(message_of<IOError>([&] { BertTokenizer::from_pretrained(dir_ / "nowhere"); }),
                       {"nowhere", "scripts/fetch-assets.sh"}));
  EXPECT_TRUE(mentions(message_of<IOError>([&] { BertTokenizer::from_pretrained(dir_); }), {"vocab.txt"}));
  EXPECT_TRUE(mentions(message_of<IOError>([&] { BertTokenizer::from_vocab_file(dir_ / "none.txt"); }), {"none.txt"}));
}

TEST_F(BertTokenizerFiles, MalformedJsonIsFormatError) {
  write_vocab(kVocab);
  write("tokenizer.json", R"({"model": {"type": "WordPiece", )");
  EXPECT_TRUE(
      mentions(message_of<FormatError>([&] { BertTokenizer::from_pretrained(dir_); }), {"tokenizer.json", "JSON"}));
  write("tokenizer.json", R"({"normalizer": {"type": "BertNormalizer", "lowercase": "yes"}})");
  EXPECT_TRUE(mentions(message_of<FormatError>([&] { BertTokenizer::from_pretrained(dir_); }),
                       {"tokenizer.json", "normalizer.lowercase", "\"yes\""}));
  write("tokenizer.json", "{}");
  write("tokenizer_config.json", "[1, 2");
  EXPECT_THROW(BertTokenizer::from_pretrained(dir_), NotImplementedError);  // {} has no BertNormalizer
  fs::remove(dir_ / "tokenizer.json");
  EXPECT_TRUE(
      mentions(message_of<FormatError>([&] { BertTokenizer::from_pretrained(dir_); }), {"tokenizer_config.json"}));
}

TEST_F(BertTokenizerFiles, OtherTokenizersAreNotImplemented) {
  write_vocab(kVocab);
  write("tokenizer.json", R"({"normalizer": {"type": "BertNormalizer"}, "pre_tokenizer": {"type": "BertPreTokenizer"},
    "model": {"type": "BPE"}})");
  EXPECT_TRUE(mentions(message_of<NotImplementedError>([&] { BertTokenizer::from_pretrained(dir_); }), {"BPE"}));
}

TEST_F(BertTokenizerFiles, VocabularyMustAgreeWithTokenizerJson) {
  write_vocab(kVocab);
  write("tokenizer.json", R"({"normalizer": {"type": "BertNormalizer"}, "pre_tokenizer": {"type": "BertPreTokenizer"},
    "model": {"type": "WordPiece", "vocab": {"[PAD]": 0}}})");
  EXPECT_TRUE(
      mentions(message_of<FormatError>([&] { BertTokenizer::from_pretrained(dir_); }), {"model.vocab", "vocab.txt"}));
}

}  // namespace
