// Pretrained word vectors (word2vec text and binary, GloVe text) and the embedding matrix they give
// a model's vocabulary, with a policy for the words they lack (OOV).
//
// Formats, as gensim's KeyedVectors.load_word2vec_format and the GloVe release read them:
//   word2vec text   : "count dim\n", then count lines "word v1 ... vdim"
//   word2vec binary : "count dim\n", then per word: its bytes up to a space, dim little-endian float32,
//                     optionally one '\n' (the original tool writes it)
//   GloVe text      : no header; "word v1 ... vdim" lines, dim taken from the first line
// Text fields are separated by spaces or tabs; a trailing '\r' and blank lines are ignored. Words
// are byte strings (UTF-8 is not checked) and cannot contain spaces: a row with a different number
// of fields is an error, never a guess.
//
// Files are untrusted: a truncated file, a count that disagrees with the rows, a row with the
// wrong number of values, a value that is not a finite number -> FormatError naming the file and
// the line (text) or word index (binary). A header's count reserves no more than the file's size
// can hold, so a lying header cannot make the reader allocate. A word seen again keeps its first
// vector; the later rows are dropped and listed in `duplicates`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "tensor/tensor.h"

namespace graft::nn {
class Embedding;
}

namespace graft::data {

enum class WordVectorFormat {
  // ".bin" -> word2vec binary; ".gz"/".zip"/".bz2" -> ValueError (decompress first); anything else is
  // sniffed: a first line of two integers "count dim" is a header (word2vec text, or word2vec
  // binary when the bytes after the first word are not text), otherwise GloVe.
  automatic,
  word2vec_text,
  word2vec_binary,
  glove_text,
};

class WordVectors {
 public:
  WordVectors() = default;
  // vectors [words.size(), dim], floating (stored as f32); duplicate or empty words -> ValueError.
  WordVectors(std::vector<std::string> words, const Tensor& vectors, std::string source = "<memory>");

  const std::vector<std::string>& words() const { return words_; }
  const Tensor& vectors() const { return vectors_; }  // [size(), dim()] f32, contiguous
  int64_t dim() const { return dim_; }
  int64_t size() const { return static_cast<int64_t>(words_.size()); }
  const std::string& source() const { return source_; }  // the path read, named in messages
  // Words that appeared again in the file, in file order (their later rows were dropped).
  const std::vector<std::string>& duplicates() const { return duplicates_; }

  int64_t index(const std::string& word) const;  // row of the word, -1 when absent
  bool contains(const std::string& word) const { return index(word) >= 0; }
  Tensor vector(const std::string& word) const;  // [dim] view; absent -> ValueError

 private:
  friend WordVectors read_word_vectors(const std::filesystem::path&, WordVectorFormat, int64_t);
  std::vector<std::string> words_;
  Tensor vectors_;
  int64_t dim_ = 0;
  std::string source_;
  std::vector<std::string> duplicates_;
  std::unordered_map<std::string, int64_t> index_;
};

// Reads the first max_words rows of the file (-1: all of them; a row that repeats a word counts, as
// gensim's `limit`). Missing file -> IOError; malformed contents -> FormatError.
WordVectors read_word_vectors(const std::filesystem::path& path, WordVectorFormat format = WordVectorFormat::automatic,
                              int64_t max_words = -1);

// Writers, for tests and for exporting trained embeddings; IOError when the file cannot be written.
void write_word2vec_text(const std::filesystem::path& path, const WordVectors& vectors);
void write_word2vec_binary(const std::filesystem::path& path, const WordVectors& vectors);

// ---- from vectors to a model's embedding matrix ----

enum class OovFill {
  zeros,
  random_normal,  // N(0, std^2), drawn from a Generator seeded with the call's seed
  mean,           // the mean of all the pretrained vectors (the file's, not only the found ones)
};

struct OovPolicy {
  OovFill fill = OovFill::random_normal;
  // For random_normal: the std; unset = the std of all pretrained values, so OOV rows have the
  // pretrained rows' scale.
  std::optional<double> std;
  // When the exact word is missing, try its lower-cased form (ASCII letters only) — GloVe's
  // vocabulary is lower-case, a cased tokenizer's is not.
  bool try_lowercase = true;
  // This vocabulary row gets zeros (the padding token); negative counts from the end.
  std::optional<int64_t> padding_idx;
};

struct OovReport {
  int64_t found = 0;       // exact word present
  int64_t lowercased = 0;  // found only as its lower-cased form
  int64_t oov = 0;         // filled by the policy
  int64_t padding = 0;     // 1 when a padding row was zeroed
  std::vector<std::string> oov_words;  // in vocabulary order
  // "found 9 of 12 (7 exact, 2 lower-cased), 2 OOV, 1 padding"
  std::string str() const;
};

// A [vocab.size(), dim] f32 matrix whose row i is the vector of vocab[i], for
// nn::Embedding::from_pretrained. Bad padding_idx -> IndexError; a negative std -> ValueError;
// `mean` or the default std over an empty WordVectors -> ValueError.
Tensor embedding_matrix(const WordVectors& vectors, const std::vector<std::string>& vocab, const OovPolicy& policy,
                        uint64_t seed = 0, OovReport* report = nullptr);

// Writes embedding_matrix(...) into an existing Embedding in place (its parameter handle is kept,
// so optimizers built before still see it) and freezes the table, or leaves it trainable. The
// embedding's padding row (if any) is zeroed; a policy padding_idx naming another row ->
// ValueError; sizes that disagree -> ShapeError naming both. Returns the report.
OovReport load_word_vectors(nn::Embedding& embedding, const WordVectors& vectors,
                            const std::vector<std::string>& vocab, const OovPolicy& policy, bool freeze = false,
                            uint64_t seed = 0);

const char* oov_fill_name(OovFill fill);

}  // namespace graft::data
