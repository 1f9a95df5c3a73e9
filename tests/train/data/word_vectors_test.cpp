// Word vectors: word2vec text/binary and GloVe read back exactly (committed text fixtures, binary
// files built byte by byte here), every malformed file is a FormatError naming the file and the
// line or word index, and embedding_matrix applies the OOV policy.
#include <gtest/gtest.h>

#include "error_matchers.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "autograd/ops.h"
#include "nn/embedding.h"
#include "nn/models/gru_classifier.h"
#include "tensor/error.h"
#include "train/data/word_vectors.h"

using namespace graft;
using namespace graft::data;
using graft::test::mentions;
using graft::test::message_of;

namespace {

namespace fs = std::filesystem;
const fs::path kFixtures = fs::path(GRAFT_TEST_DATA_DIR) / "train/data/fixtures";

using Strings = std::vector<std::string>;

// Bytes of a word2vec binary record: "word " + little-endian float32s + '\n'.
std::string record(const std::string& word, const std::vector<float>& values, bool newline = true) {
  std::string out = word + " ";
  for (float v : values) {
    char bytes[4];
    std::memcpy(bytes, &v, 4);  // the test machines are little-endian, as the format
    out.append(bytes, 4);
  }
  if (newline) out += '\n';
  return out;
}

class WordVectorFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("graft_word_vectors_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path write(const std::string& name, const std::string& bytes) {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  // The FormatError message of reading these bytes (from a file named `name`).
  std::string format_error(const std::string& name, const std::string& bytes,
                           WordVectorFormat format = WordVectorFormat::automatic) {
    const fs::path path = write(name, bytes);
    return message_of<FormatError>([&] { read_word_vectors(path, format); });
  }
  fs::path dir_;
};

std::vector<float> row(const WordVectors& vectors, const std::string& word) {
  return vectors.vector(word).to_vector<float>();
}

WordVectors small_vectors() {
  return WordVectors({"the", "cat", "dog"}, from_vector<float>({1, 2, 3, 4, 5, 6}, {3, 2}), "small");
}

}  // namespace

// ---- reading ----

TEST(WordVectors, Word2vecTextFixtureKeepsFirstOfDuplicatesAndCase) {
  const WordVectors v = read_word_vectors(kFixtures / "word_vectors.txt");
  EXPECT_EQ(v.words(), (Strings{"the", "cat", "The", "dog"}));  // case matters: "The" is its own word
  EXPECT_EQ(v.dim(), 3);
  EXPECT_EQ(v.vectors().shape(), (Shape{4, 3}));
  EXPECT_EQ(v.vectors().dtype(), DType::f32);
  EXPECT_EQ(row(v, "cat"), (std::vector<float>{-1.0f, 0.5f, 0.2f}));
  EXPECT_EQ(row(v, "dog"), (std::vector<float>{0.25f, -0.125f, 4.0f}));  // a tab and a trailing space
  EXPECT_EQ(v.index("The"), 2);
  EXPECT_EQ(v.index("cow"), -1);
  EXPECT_TRUE(v.duplicates().empty());
  EXPECT_TRUE(mentions(message_of<ValueError>([&] { v.vector("cow"); }), {"\"cow\"", "word_vectors.txt"}));
}

TEST(WordVectors, GloveFixtureTakesDimFromTheFirstLine) {
  const WordVectors v = read_word_vectors(kFixtures / "word_vectors.glove.txt");
  EXPECT_EQ(v.words(), (Strings{"the", "of", "and"}));  // the blank line is skipped
  EXPECT_EQ(v.dim(), 2);
  EXPECT_EQ(v.vectors().to_vector<float>(), (std::vector<float>{0.5f, -0.5f, 1.5f, 2.0f, -3.0f, 0.25f}));
  // Forced word2vec text, the same file lacks a header.
  EXPECT_TRUE(mentions(message_of<FormatError>([&] {
                         read_word_vectors(kFixtures / "word_vectors.glove.txt", WordVectorFormat::word2vec_text);
                       }),
                       {"word_vectors.glove.txt line 1", "expected a header"}));
}

TEST_F(WordVectorFiles, Word2vecBinaryBuiltByteByByte) {
  const std::string bytes = "3 2\n" + record("king", {0.5f, -1.0f}) + record("queen", {2.0f, 3.25f}) +
                            record("\xc3\xa9t\xc3\xa9", {-0.0f, 1e-30f}, /*newline=*/false);  // UTF-8 bytes as they are
  for (const std::string name : {"vectors.bin", "vectors.dat"}) {  // .dat: sniffed as binary
    const WordVectors v = read_word_vectors(write(name, bytes));
    EXPECT_EQ(v.words(), (Strings{"king", "queen", "\xc3\xa9t\xc3\xa9"})) << name;
    EXPECT_EQ(v.vectors().to_vector<float>(), (std::vector<float>{0.5f, -1.0f, 2.0f, 3.25f, -0.0f, 1e-30f})) << name;
  }
  // Without the separating newlines, as some writers do, and with a trailing newline after the last.
  const std::string packed = "2 2\n" + record("a", {1, 2}, false) + record("b", {3, 4}, false) + "\n";
  EXPECT_EQ(read_word_vectors(write("packed.bin", packed)).words(), (Strings{"a", "b"}));
}

TEST_F(WordVectorFiles, WritersRoundTripExactly) {
  const WordVectors original({"alpha", "beta", "gamma"},
                             from_vector<float>({0.1f, -2.5e-7f, 3.0f, 1e20f, -0.0f, 0.333333343f, 7, 8, 9}, {3, 3}));
  write_word2vec_text(dir_ / "out.txt", original);
  write_word2vec_binary(dir_ / "out.bin", original);
  for (const auto& [name, format] : {std::pair{"out.txt", WordVectorFormat::automatic},
                                     std::pair{"out.txt", WordVectorFormat::word2vec_text},
                                     std::pair{"out.bin", WordVectorFormat::automatic},
                                     std::pair{"out.bin", WordVectorFormat::word2vec_binary}}) {
    const WordVectors back = read_word_vectors(dir_ / name, format);
    EXPECT_EQ(back.words(), original.words()) << name;
    EXPECT_EQ(back.vectors().to_vector<float>(), original.vectors().to_vector<float>()) << name;  // bit for bit
  }
  // Real-looking binary vectors under a text-like name are recognised as binary.
  std::vector<std::string> words;
  for (int i = 0; i < 20; ++i) words.push_back("w" + std::to_string(i));
  const WordVectors wide(words, randn({20, 50}) * 0.3);
  write_word2vec_binary(dir_ / "wide.vec", wide);
  EXPECT_EQ(read_word_vectors(dir_ / "wide.vec").vectors().to_vector<float>(), wide.vectors().to_vector<float>());
  EXPECT_THROW(write_word2vec_text(dir_ / "bad.txt", WordVectors({"two words"}, zeros({1, 2}))), ValueError);
  EXPECT_THROW(write_word2vec_binary(dir_ / "no_such_dir" / "x.bin", original), IOError);
}

TEST_F(WordVectorFiles, MaxWordsReadsOnlyTheFirstRows) {
  EXPECT_EQ(read_word_vectors(kFixtures / "word_vectors.txt", WordVectorFormat::automatic, 2).words(),
            (Strings{"the", "cat"}));
  EXPECT_EQ(read_word_vectors(kFixtures / "word_vectors.glove.txt", WordVectorFormat::automatic, 1).words(),
            (Strings{"the"}));
  const WordVectors none = read_word_vectors(kFixtures / "word_vectors.txt", WordVectorFormat::automatic, 0);
  EXPECT_EQ(none.size(), 0);
  EXPECT_EQ(none.dim(), 3);
  EXPECT_EQ(none.vectors().shape(), (Shape{0, 3}));
  // The rest of the file is not read, so what lies past the limit does not matter.
  const fs::path bin = write("v.bin", "3 1\n" + record("a", {1}) + record("b", {2}) + "c \x01");
  EXPECT_EQ(read_word_vectors(bin, WordVectorFormat::automatic, 2).words(), (Strings{"a", "b"}));
  EXPECT_THROW(read_word_vectors(bin), FormatError);
  EXPECT_THROW(read_word_vectors(bin, WordVectorFormat::automatic, -2), ValueError);
}

TEST_F(WordVectorFiles, DuplicateWordsKeepTheFirstVectorAndAreListed) {
  const WordVectors text = read_word_vectors(write("d.txt", "3 1\nx 1\ny 2\nx 3\n"));
  EXPECT_EQ(text.words(), (Strings{"x", "y"}));
  EXPECT_EQ(row(text, "x"), (std::vector<float>{1.0f}));
  EXPECT_EQ(text.duplicates(), (Strings{"x"}));
  const WordVectors binary = read_word_vectors(write("d.bin", "2 1\n" + record("x", {1}) + record("x", {2})));
  EXPECT_EQ(binary.size(), 1);
  EXPECT_EQ(row(binary, "x"), (std::vector<float>{1.0f}));
  EXPECT_EQ(binary.duplicates(), (Strings{"x"}));
  EXPECT_THROW(WordVectors({"a", "a"}, zeros({2, 1})), ValueError);
  EXPECT_THROW(WordVectors({"a"}, zeros({2, 1})), ShapeError);
}

// ---- hostile files ----

TEST_F(WordVectorFiles, MalformedTextIsAFormatErrorNamingFileAndLine) {
  EXPECT_TRUE(mentions(format_error("few.txt", "3 2\na 1 2\nb 3 4\n"), {"few.txt line 3", "promises 3 words", "after 2"}));
  EXPECT_TRUE(mentions(format_error("many.txt", "1 2\na 1 2\nb 3 4\n"), {"many.txt line 3", "more rows"}));
  EXPECT_TRUE(mentions(format_error("short.txt", "2 3\na 1 2 3\nb 1 2\n"),
                       {"short.txt line 3", "expected a word and 3 values, found 3 fields", "\"b\""}));
  EXPECT_TRUE(mentions(format_error("long.txt", "1 2\nnew york 1 2\n"), {"long.txt line 2", "found 4 fields"}));
  EXPECT_TRUE(mentions(format_error("nan.txt", "2 2\na 1 2\nb 1 x7\n"), {"nan.txt line 3", "value 2 of \"b\"", "\"x7\""}));
  EXPECT_TRUE(mentions(format_error("inf.txt", "1 2\na inf 2\n"), {"inf.txt line 2", "finite"}));
  EXPECT_TRUE(mentions(format_error("big.txt", "1 1\na 1e60\n"), {"big.txt line 2", "\"1e60\""}));  // f32 overflow
  EXPECT_TRUE(mentions(format_error("dim0.txt", "0 0\n"), {"dim0.txt line 1", "dim is 0"}));
  // A header promising more than the file holds allocates nothing much and fails where the file ends.
  EXPECT_TRUE(mentions(format_error("huge.txt", "4000000000 1\na 1\n"), {"huge.txt line 2", "promises 4000000000 words"}));
  EXPECT_TRUE(mentions(format_error("glove.txt", "a 1 2\nb 1 2 3\n"), {"glove.txt line 2", "2 values, found 4"}));
  EXPECT_TRUE(mentions(format_error("one.txt", "lonely\n"), {"one.txt line 1", "one field"}));
  EXPECT_TRUE(mentions(format_error("empty.txt", ""), {"empty.txt", "no vectors"}));
  // CRLF files read as LF ones.
  EXPECT_EQ(read_word_vectors(write("crlf.txt", "1 2\r\na 1 2\r\n")).words(), (Strings{"a"}));
}

TEST_F(WordVectorFiles, MalformedBinaryIsAFormatErrorNamingTheWordIndex) {
  const std::string good = record("a", {1, 2});
  EXPECT_TRUE(mentions(format_error("cut.bin", "2 2\n" + good + record("b", {3, 4}).substr(0, 6)),
                       {"cut.bin word index 1", "ends inside the vector of \"b\"", "expected 8 bytes, found 4"}));
  EXPECT_TRUE(mentions(format_error("few.bin", "3 2\n" + good + record("b", {3, 4})),
                       {"few.bin word index 2", "promises 3 words", "after 2"}));
  EXPECT_TRUE(mentions(format_error("word.bin", "2 2\n" + good + "unfinished"), {"word index 1", "inside the word"}));
  EXPECT_TRUE(mentions(format_error("more.bin", "1 2\n" + good + good), {"more.bin word index 1", "data after"}));
  EXPECT_TRUE(mentions(format_error("nan.bin", "1 2\n" + record("a", {1, std::nanf("")})),
                       {"nan.bin word index 0", "value 2 of \"a\"", "finite"}));
  EXPECT_TRUE(mentions(format_error("space.bin", "1 1\n " + record("a", {1})), {"word index 0", "empty word"}));
  EXPECT_TRUE(mentions(format_error("header.bin", "vectors\n" + good), {"header.bin line 1", "\"count dim\""}));
  EXPECT_TRUE(mentions(format_error("huge.bin", "1000000 2\n" + good), {"huge.bin word index 1", "promises 1000000"}));
  EXPECT_TRUE(mentions(format_error("empty.bin", ""), {"empty.bin line 1", "empty"}));
}

TEST_F(WordVectorFiles, MissingDirectoryAndCompressedFilesAreNamed) {
  EXPECT_TRUE(mentions(message_of<IOError>([&] { read_word_vectors(dir_ / "absent.txt"); }), {"absent.txt"}));
  EXPECT_TRUE(mentions(message_of<IOError>([&] { read_word_vectors(dir_); }), {"directory"}));
  const fs::path gz = write("v.txt.gz", "\x1f\x8b");
  EXPECT_TRUE(mentions(message_of<ValueError>([&] { read_word_vectors(gz); }), {"v.txt.gz", "decompress"}));
}

// ---- embedding matrix ----

TEST(EmbeddingMatrix, FindsExactAndLowercasedWordsAndZeroesPadding) {
  const WordVectors v = small_vectors();
  OovPolicy policy;
  policy.fill = OovFill::zeros;
  policy.padding_idx = 0;
  OovReport report;
  const Tensor m = embedding_matrix(v, {"<pad>", "cat", "The", "DOG", "bird", "the"}, policy, 0, &report);
  EXPECT_EQ(m.shape(), (Shape{6, 2}));
  EXPECT_EQ(m.to_vector<float>(), (std::vector<float>{0, 0, 3, 4, 1, 2, 5, 6, 0, 0, 1, 2}));
  EXPECT_EQ(report.found, 2);
  EXPECT_EQ(report.lowercased, 2);
  EXPECT_EQ(report.oov, 1);
  EXPECT_EQ(report.padding, 1);
  EXPECT_EQ(report.oov_words, (Strings{"bird"}));
  EXPECT_EQ(report.str(), "found 4 of 6 (2 exact, 2 lower-cased), 1 OOV, 1 padding");

  policy.try_lowercase = false;
  embedding_matrix(v, {"<pad>", "cat", "The", "DOG"}, policy, 0, &report);
  EXPECT_EQ(report.found, 1);
  EXPECT_EQ(report.oov_words, (Strings{"The", "DOG"}));
  policy.padding_idx = -4;  // counts from the end: row 0 again
  EXPECT_EQ(embedding_matrix(v, {"the", "x", "y", "z"}, policy, 0).select(0, 0).to_vector<float>(),
            (std::vector<float>{0, 0}));
}

TEST(EmbeddingMatrix, OovFillsMeanAndSeededNormal) {
  const WordVectors v = small_vectors();
  OovPolicy policy;
  policy.fill = OovFill::mean;
  EXPECT_EQ(embedding_matrix(v, {"x", "cat"}, policy).to_vector<float>(), (std::vector<float>{3, 4, 3, 4}));

  policy.fill = OovFill::random_normal;
  policy.std = 0.5;
  const Tensor a = embedding_matrix(v, {"x", "cat", "y"}, policy, 7);
  const Tensor b = embedding_matrix(v, {"x", "cat", "y"}, policy, 7);
  const Tensor c = embedding_matrix(v, {"x", "cat", "y"}, policy, 8);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());  // same seed, same rows
  EXPECT_NE(a.to_vector<float>(), c.to_vector<float>());
  EXPECT_EQ(a.select(0, 1).to_vector<float>(), (std::vector<float>{3, 4}));
  EXPECT_NE(a.select(0, 0).to_vector<float>(), a.select(0, 2).to_vector<float>());

  // Many OOV rows: the draw has the std asked for, or the pretrained values' std by default.
  const Strings unknown(2000, "?");
  const Tensor wide = embedding_matrix(v, unknown, policy, 1);
  EXPECT_NEAR(stddev(wide).item(), 0.5, 0.02);
  policy.std.reset();
  EXPECT_NEAR(stddev(embedding_matrix(v, unknown, policy, 1)).item(), std::sqrt(35.0 / 12.0), 0.05);  // std of 1..6
}

TEST(EmbeddingMatrix, BadPoliciesAreErrors) {
  const WordVectors v = small_vectors();
  OovPolicy policy;
  policy.padding_idx = 3;
  EXPECT_TRUE(mentions(message_of<IndexError>([&] { embedding_matrix(v, {"a", "b", "c"}, policy); }), {"padding_idx 3"}));
  policy.padding_idx.reset();
  policy.std = -1.0;
  EXPECT_THROW(embedding_matrix(v, {"a"}, policy), ValueError);
  policy.std.reset();
  policy.fill = OovFill::mean;
  EXPECT_THROW(embedding_matrix(WordVectors(), {"a"}, policy), ValueError);
  policy.fill = OovFill::zeros;  // zeros need no statistics
  EXPECT_EQ(embedding_matrix(WordVectors({}, zeros({0, 3})), {"a"}, policy).shape(), (Shape{1, 3}));
}

TEST(EmbeddingMatrix, LoadsIntoAnEmbeddingInPlace) {
  const WordVectors v = small_vectors();
  nn::Embedding table(3, 2, /*padding_idx=*/0);
  const Tensor handle = table.weight;
  OovPolicy policy;
  policy.fill = OovFill::zeros;
  const OovReport report = load_word_vectors(table, v, {"<pad>", "dog", "cow"}, policy, /*freeze=*/true);
  EXPECT_TRUE(table.weight.is_same(handle));
  EXPECT_FALSE(table.weight.requires_grad());
  EXPECT_EQ(table.weight.to_vector<float>(), (std::vector<float>{0, 0, 5, 6, 0, 0}));
  EXPECT_EQ(report.padding, 1);  // the embedding's padding row, though the policy named none
  EXPECT_EQ(report.oov, 1);
  load_word_vectors(table, v, {"<pad>", "dog", "cow"}, policy, /*freeze=*/false);
  EXPECT_TRUE(table.weight.requires_grad());

  EXPECT_TRUE(mentions(message_of<ShapeError>([&] { load_word_vectors(table, v, {"a", "b"}, policy); }),
                       {"[3, 2]", "2 words"}));
  policy.padding_idx = 1;
  EXPECT_THROW(load_word_vectors(table, v, {"a", "b", "c"}, policy), ValueError);

  // A model's embedding, through the same call.
  nn::GruClassifierOptions options;
  options.vocab_size = 3;
  options.embedding_dim = 2;
  options.hidden_size = 4;
  nn::GruClassifier model(options);
  policy.padding_idx.reset();
  load_word_vectors(*model.embedding, v, {"<pad>", "cat", "the"}, policy, /*freeze=*/true);
  EXPECT_EQ(model.embedding->weight.to_vector<float>(), (std::vector<float>{0, 0, 3, 4, 1, 2}));
  EXPECT_EQ(model.num_parameters(/*trainable_only=*/true), model.num_parameters() - 6);
}
