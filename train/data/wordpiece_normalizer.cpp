// BERT's basic tokenizer: BertNormalizer and BertPreTokenizer as Hugging Face's `tokenizers` runs
// them, with utf8proc for the Unicode data.
//
// tokenizers asks the unicode_categories crate (Unicode 8.0) whether a character is "other"
// (clean_text), a nonspacing mark (strip_accents) or punctuation (the pre-tokenizer); its NFD and
// Rust's char::to_lowercase are newer. utf8proc 2.8 answers from Unicode 15.0. The tables below are
// every code point where the two disagree, found by running both over all 1,112,064 scalar values;
// the golden test (WordPieceGolden.EveryCodePoint) repeats that check.
#include <utf8proc.h>

#include <algorithm>
#include <string>

#include "tensor/error.h"
#include "train/data/wordpiece.h"

namespace graft::data {

namespace {

struct Range {
  char32_t first, last;
};

// Whether c lies in one of the sorted, disjoint ranges.
template <size_t N>
bool in(const Range (&ranges)[N], char32_t c) {
  const Range* it = std::upper_bound(ranges, ranges + N, c, [](char32_t v, const Range& r) { return v < r.first; });
  return it != ranges && c <= (it - 1)->last;
}

// Format characters assigned after Unicode 8.0: tokenizers keeps them.
constexpr Range kFormatUnknownToHf[] = {{0x890, 0x891}, {0x8E2, 0x8E2}, {0x110CD, 0x110CD}, {0x13430, 0x1343F}};

// Punctuation assigned after Unicode 8.0: not punctuation to tokenizers.
constexpr Range kPunctuationUnknownToHf[] = {
    {0x61D, 0x61D},     {0x9FD, 0x9FD},     {0xA76, 0xA76},     {0xC77, 0xC77},     {0xC84, 0xC84},
    {0x1B7D, 0x1B7E},   {0x2E43, 0x2E4F},   {0x2E52, 0x2E5D},   {0x10EAD, 0x10EAD}, {0x10F55, 0x10F59},
    {0x10F86, 0x10F89}, {0x1144B, 0x1144F}, {0x1145A, 0x1145B}, {0x1145D, 0x1145D}, {0x11660, 0x1166C},
    {0x116B9, 0x116B9}, {0x1183B, 0x1183B}, {0x11944, 0x11946}, {0x119E2, 0x119E2}, {0x11A3F, 0x11A46},
    {0x11A9A, 0x11A9C}, {0x11A9E, 0x11AA2}, {0x11B00, 0x11B09}, {0x11C41, 0x11C45}, {0x11C70, 0x11C71},
    {0x11EF7, 0x11EF8}, {0x11F43, 0x11F4F}, {0x11FFF, 0x11FFF}, {0x12FF1, 0x12FF2}, {0x16E97, 0x16E9A},
    {0x16FE2, 0x16FE2}, {0x1E95E, 0x1E95F},
};

// Punctuation (Po) in Unicode 8.0 that later versions moved to other categories.
constexpr Range kPunctuationOnlyToHf[] = {{0x166D, 0x166D}, {0x111C9, 0x111C9}};

// Nonspacing marks assigned after Unicode 8.0 (or, U+111C9, made Mn later): tokenizers keeps them.
constexpr Range kMarksUnknownToHf[] = {
    {0x7FD, 0x7FD},     {0x898, 0x89F},     {0x8CA, 0x8E1},     {0x9FE, 0x9FE},     {0xAFA, 0xAFF},
    {0xB55, 0xB55},     {0xC04, 0xC04},     {0xC3C, 0xC3C},     {0xD00, 0xD00},     {0xD3B, 0xD3C},
    {0xD81, 0xD81},     {0xEBA, 0xEBA},     {0xECE, 0xECE},     {0x180F, 0x180F},   {0x1885, 0x1886},
    {0x1ABF, 0x1ACE},   {0x1DF6, 0x1DFB},   {0xA82C, 0xA82C},   {0xA8C5, 0xA8C5},   {0xA8FF, 0xA8FF},
    {0xA9BD, 0xA9BD},   {0x10D24, 0x10D27}, {0x10EAB, 0x10EAC}, {0x10EFD, 0x10EFF}, {0x10F46, 0x10F50},
    {0x10F82, 0x10F85}, {0x11070, 0x11070}, {0x11073, 0x11074}, {0x110C2, 0x110C2}, {0x111C9, 0x111C9},
    {0x111CF, 0x111CF}, {0x1123E, 0x1123E}, {0x11241, 0x11241}, {0x1133B, 0x1133B}, {0x11438, 0x1143F},
    {0x11442, 0x11444}, {0x11446, 0x11446}, {0x1145E, 0x1145E}, {0x1182F, 0x11837}, {0x11839, 0x1183A},
    {0x1193B, 0x1193C}, {0x1193E, 0x1193E}, {0x11943, 0x11943}, {0x119D4, 0x119D7}, {0x119DA, 0x119DB},
    {0x119E0, 0x119E0}, {0x11A01, 0x11A0A}, {0x11A33, 0x11A38}, {0x11A3B, 0x11A3E}, {0x11A47, 0x11A47},
    {0x11A51, 0x11A56}, {0x11A59, 0x11A5B}, {0x11A8A, 0x11A96}, {0x11A98, 0x11A99}, {0x11C30, 0x11C36},
    {0x11C38, 0x11C3D}, {0x11C3F, 0x11C3F}, {0x11C92, 0x11CA7}, {0x11CAA, 0x11CB0}, {0x11CB2, 0x11CB3},
    {0x11CB5, 0x11CB6}, {0x11D31, 0x11D36}, {0x11D3A, 0x11D3A}, {0x11D3C, 0x11D3D}, {0x11D3F, 0x11D45},
    {0x11D47, 0x11D47}, {0x11D90, 0x11D91}, {0x11D95, 0x11D95}, {0x11D97, 0x11D97}, {0x11EF3, 0x11EF4},
    {0x11F00, 0x11F01}, {0x11F36, 0x11F3A}, {0x11F40, 0x11F40}, {0x11F42, 0x11F42}, {0x13440, 0x13440},
    {0x13447, 0x13455}, {0x16F4F, 0x16F4F}, {0x16FE4, 0x16FE4}, {0x1CF00, 0x1CF2D}, {0x1CF30, 0x1CF46},
    {0x1E000, 0x1E006}, {0x1E008, 0x1E018}, {0x1E01B, 0x1E021}, {0x1E023, 0x1E024}, {0x1E026, 0x1E02A},
    {0x1E08F, 0x1E08F}, {0x1E130, 0x1E136}, {0x1E2AE, 0x1E2AE}, {0x1E2EC, 0x1E2EF}, {0x1E4EC, 0x1E4EF},
    {0x1E944, 0x1E94A},
};

// U+1734 HANUNOO SIGN PAMUDPOD was Mn in Unicode 8.0 (Mc since 14.0).
constexpr char32_t kMarkOnlyToHf = 0x1734;
// U+11938 DIVES AKURU VOWEL SIGN O (Unicode 13): tokenizers' NFD tables lack its decomposition.
constexpr char32_t kNoDecompositionInHf = 0x11938;

// Lower-case pairs Rust knows (Unicode 16/17) and utf8proc 2.8 does not.
struct LowerCase {
  char32_t upper, lower;
};
constexpr LowerCase kLowerCaseOnlyInHf[] = {
    {0x1C89, 0x1C8A}, {0xA7CB, 0x264},  {0xA7CC, 0xA7CD}, {0xA7CE, 0xA7CF},
    {0xA7D2, 0xA7D3}, {0xA7D4, 0xA7D5}, {0xA7DA, 0xA7DB}, {0xA7DC, 0x19B},
};
// Whole blocks of such pairs: [first, last] lower-case by adding `offset`.
struct LowerCaseBlock {
  char32_t first, last, offset;
};
constexpr LowerCaseBlock kLowerCaseBlocksOnlyInHf[] = {{0x10D50, 0x10D65, 0x20}, {0x16EA0, 0x16EB8, 0x1B}};

utf8proc_category_t category(char32_t c) { return utf8proc_category(static_cast<utf8proc_int32_t>(c)); }

// Rust's char::is_whitespace (Unicode White_Space).
bool is_whitespace(char32_t c) {
  switch (c) {
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return (c >= 0x9 && c <= 0xD) || (c >= 0x2000 && c <= 0x200A);
  }
}

// unicode_categories' is_other: Cc, Cf, Co, Cs (not Cn: unassigned code points are kept).
bool is_other(char32_t c) {
  const auto k = category(c);
  const bool other =
      k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CO || k == UTF8PROC_CATEGORY_CS;
  return other && !in(kFormatUnknownToHf, c);
}

bool is_nonspacing_mark(char32_t c) {
  return (category(c) == UTF8PROC_CATEGORY_MN && !in(kMarksUnknownToHf, c)) || c == kMarkOnlyToHf;
}

bool is_punctuation(char32_t c) {
  if (c < 0x80) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
  const auto k = category(c);
  const bool punctuation = k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
  return (punctuation && !in(kPunctuationUnknownToHf, c)) || in(kPunctuationOnlyToHf, c);
}

// The CJK ideograph blocks of tokenizers' is_chinese_char (note: not 0x2B820-0x2B91F).
bool is_chinese_char(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

std::u32string decode_utf8(std::string_view text, const char* op) {
  std::u32string out;
  out.reserve(text.size());
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  size_t i = 0;
  while (i < text.size()) {
    utf8proc_int32_t c = 0;
    const auto n = utf8proc_iterate(bytes + i, static_cast<utf8proc_ssize_t>(text.size() - i), &c);
    if (n <= 0)
      throw ValueError(std::string(op) + ": the text is not valid UTF-8 at byte " + std::to_string(i) + " (of " +
                       std::to_string(text.size()) + ")");
    out.push_back(static_cast<char32_t>(c));
    i += static_cast<size_t>(n);
  }
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  utf8proc_uint8_t buffer[4];
  const auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buffer);
  out.append(reinterpret_cast<const char*>(buffer), static_cast<size_t>(n));
}

std::string encode_utf8(const std::u32string& text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) append_utf8(out, c);
  return out;
}

std::u32string clean_text(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    const bool kept_control = c == '\t' || c == '\n' || c == '\r';
    if (c == 0 || c == 0xFFFD || (!kept_control && is_other(c))) continue;
    out.push_back(is_whitespace(c) ? U' ' : c);
  }
  return out;
}

std::u32string space_chinese_chars(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (is_chinese_char(c)) {
      out += U' ';
      out += c;
      out += U' ';
    } else {
      out += c;
    }
  }
  return out;
}

int combining_class(char32_t c) { return utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class; }

// NFD (canonical decomposition, then canonical ordering of each run of combining marks), without
// the nonspacing marks.
std::u32string strip_accents(const std::u32string& text) {
  std::u32string nfd;
  nfd.reserve(text.size());
  for (char32_t c : text) {
    utf8proc_int32_t buffer[8];  // the longest canonical decomposition is 4 code points
    int boundclass = 0;
    const auto n = c == kNoDecompositionInHf ? 0
                                             : utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buffer, 8,
                                                                       UTF8PROC_DECOMPOSE, &boundclass);
    if (n <= 0) {
      nfd.push_back(c);
    } else {
      for (utf8proc_ssize_t i = 0; i < n; ++i) nfd.push_back(static_cast<char32_t>(buffer[i]));
    }
  }
  for (size_t start = 0; start < nfd.size();) {
    size_t end = start;
    while (end < nfd.size() && combining_class(nfd[end]) != 0) ++end;
    if (end > start + 1)
      std::stable_sort(nfd.begin() + static_cast<std::ptrdiff_t>(start), nfd.begin() + static_cast<std::ptrdiff_t>(end),
                       [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    start = end + 1;
  }
  std::u32string out;
  out.reserve(nfd.size());
  for (char32_t c : nfd)
    if (!is_nonspacing_mark(c)) out.push_back(c);
  return out;
}

// Rust's char::to_lowercase: the full mapping, whose only multi-character case is U+0130.
void append_lowercase(std::u32string& out, char32_t c) {
  if (c == 0x130) {
    out += U"i\u0307";
    return;
  }
  for (const auto& pair : kLowerCaseOnlyInHf)
    if (c == pair.upper) {
      out.push_back(pair.lower);
      return;
    }
  for (const auto& block : kLowerCaseBlocksOnlyInHf)
    if (c >= block.first && c <= block.last) {
      out.push_back(c + block.offset);
      return;
    }
  out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
}

std::u32string lowercase(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) append_lowercase(out, c);
  return out;
}

}  // namespace

std::string bert_normalize(std::string_view text, const BertNormalizerOptions& options) {
  std::u32string chars = decode_utf8(text, "bert_normalize");
  if (options.clean_text) chars = clean_text(chars);
  if (options.handle_chinese_chars) chars = space_chinese_chars(chars);
  if (options.strip_accents.value_or(options.lowercase)) chars = strip_accents(chars);
  if (options.lowercase) chars = lowercase(chars);
  return encode_utf8(chars);
}

std::vector<std::string> bert_pre_tokenize(std::string_view normalized) {
  std::vector<std::string> words;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) words.push_back(std::move(word));
    word.clear();
  };
  for (char32_t c : decode_utf8(normalized, "bert_pre_tokenize")) {
    if (is_whitespace(c)) {
      flush();
    } else if (is_punctuation(c)) {
      flush();
      append_utf8(word, c);
      flush();
    } else {
      append_utf8(word, c);
    }
  }
  flush();
  return words;
}

}  // namespace graft::data
