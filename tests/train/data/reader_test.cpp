// read_table: CSV (RFC 4180), TSV and JSONL, from files, streams and strings; every malformed
// input is a FormatError naming the source, the line and what was expected.
#include <gtest/gtest.h>

#include "error_matchers.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "tensor/error.h"
#include "train/data/reader.h"

using namespace graft;
using graft::test::mentions;
using graft::test::message_of;
using namespace graft::data;

namespace {

const std::filesystem::path kFixtures = std::filesystem::path(GRAFT_TEST_DATA_DIR) / "train/data/fixtures";

Table csv(const std::string& text, bool header = true, bool quoting = true) {
  ReadOptions options;
  options.format = TableFormat::csv;
  options.header = header;
  options.quoting = quoting;
  return parse_table(text, options, "test.csv");
}

Table jsonl(const std::string& text) {
  ReadOptions options;
  options.format = TableFormat::jsonl;
  return parse_table(text, options, "test.jsonl");
}

using Rows = std::vector<std::vector<std::string>>;

}  // namespace

TEST(Reader, CsvFileWithBomCrlfQuotesAndEmbeddedNewline) {
  const Table t = read_table(kFixtures / "reviews.csv");
  EXPECT_EQ(t.columns, (std::vector<std::string>{"text", "label"}));  // BOM skipped
  EXPECT_EQ(t.rows, (Rows{{"a fine, \"quoted\" film", "positive"}, {"two\r\nlines", "negative"}, {"plain text", "positive"}}));
  EXPECT_EQ(t.row_lines, (std::vector<int64_t>{2, 3, 5}));  // the row after a two-line field starts on line 5
  EXPECT_EQ(t.column("label"), (std::vector<std::string>{"positive", "negative", "positive"}));
  EXPECT_EQ(t.column_index("label"), 1);
  EXPECT_EQ(t.column_index("nope"), -1);
  EXPECT_EQ(t.where(2), (kFixtures / "reviews.csv").string() + " line 5");
}

TEST(Reader, TsvFileKeepsQuotesInsideFields) {
  const Table t = read_table(kFixtures / "pairs.tsv");
  EXPECT_EQ(t.columns, (std::vector<std::string>{"sentence1", "sentence2", "label"}));
  ASSERT_EQ(t.num_rows(), 2);
  EXPECT_EQ(t.rows[1], (std::vector<std::string>{"She said \"no\" twice", "She agreed.", "contradiction"}));
}

TEST(Reader, JsonlFileTurnsValuesIntoStrings) {
  const Table t = read_table(kFixtures / "reviews.jsonl");
  EXPECT_EQ(t.columns, (std::vector<std::string>{"text", "label", "score"}));  // file order, not sorted
  EXPECT_EQ(t.rows, (Rows{{"good movie", "1", "4.5"}, {"bad \"movie\"", "0", "1.0"}, {"meh", "2", "-2000.0"}}));
  EXPECT_EQ(t.row_lines, (std::vector<int64_t>{1, 3, 4}));  // the blank line 2 is skipped
}

TEST(Reader, JsonlBoolsNullsAndNestedValues) {
  const Table t = jsonl("{\"a\": true, \"b\": null, \"c\": [1, 2], \"d\": {\"x\": 1}, \"e\": 18446744073709551615}\n");
  EXPECT_EQ(t.rows, (Rows{{"true", "", "[1,2]", "{\"x\":1}", "18446744073709551615"}}));
  EXPECT_TRUE(jsonl("").rows.empty());
  EXPECT_TRUE(jsonl("\n  \n").columns.empty());
}

TEST(Reader, CsvQuotingEdgeCases) {
  EXPECT_EQ(csv("a,b\n\"x,y\",\"\"\n").rows, (Rows{{"x,y", ""}}));                 // delimiter inside, empty quoted
  EXPECT_EQ(csv("a,b\n\"\"\"\",\"say \"\"hi\"\"\"\n").rows, (Rows{{"\"", "say \"hi\""}}));  // doubled quotes
  EXPECT_EQ(csv("a,b\nx\"y,z\"\n").rows, (Rows{{"x\"y", "z\""}}));                 // quotes inside unquoted fields
  EXPECT_EQ(csv("a,b\n\"line1\nline2\",2\n").rows, (Rows{{"line1\nline2", "2"}}));
  EXPECT_EQ(csv("a,b\n,\n").rows, (Rows{{"", ""}}));                               // empty fields
  EXPECT_EQ(csv("a,b\n1,2").rows, (Rows{{"1", "2"}}));                             // no final newline
  EXPECT_EQ(csv("a,b,c\n1,2,").rows, (Rows{{"1", "2", ""}}));                      // trailing delimiter at EOF
  EXPECT_EQ(csv("a,b\r\n1,2\r\n\r\n3,4\r\n").rows, (Rows{{"1", "2"}, {"3", "4"}}));  // CRLF, blank line skipped
  EXPECT_EQ(csv("a,b\r1,2\r").rows, (Rows{{"1", "2"}}));                            // old Mac line ends
  EXPECT_EQ(csv(" a , b \n 1 , 2 \n").columns, (std::vector<std::string>{" a ", " b "}));  // spaces kept
  const Table header_only = csv("a,b\n");
  EXPECT_EQ(header_only.columns.size(), 2u);
  EXPECT_TRUE(header_only.rows.empty());
  // Unicode passes through as bytes.
  EXPECT_EQ(csv("t\n\"caf\xC3\xA9 \xE2\x9C\x93\"\n").rows, (Rows{{"caf\xC3\xA9 \xE2\x9C\x93"}}));
}

TEST(Reader, NoHeaderGeneratesColumnNames) {
  const Table t = csv("1,x\n2,y\n", /*header=*/false);
  EXPECT_EQ(t.columns, (std::vector<std::string>{"column_0", "column_1"}));
  EXPECT_EQ(t.rows, (Rows{{"1", "x"}, {"2", "y"}}));
  EXPECT_EQ(t.row_lines, (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(csv("", false).columns.empty());
  const std::string m = message_of<FormatError>([] { csv("1,x\n2\n", false); });
  EXPECT_TRUE(mentions(m, {"test.csv line 2", "expected 2 fields", "first row", "found 1"}));
}

TEST(Reader, QuotingOffReadsQuotesLiterally) {
  EXPECT_EQ(csv("a,b\n\"x\" y,\"z\n", true, false).rows, (Rows{{"\"x\" y", "\"z"}}));
}

TEST(Reader, StreamAndStringSources) {
  std::istringstream in("text\tlabel\nhello\t1\n");
  ReadOptions options;  // from_extension: the source name's extension picks TSV
  const Table t = read_table(in, options, "memory.tsv");
  EXPECT_EQ(t.rows, (Rows{{"hello", "1"}}));
  EXPECT_EQ(t.source, "memory.tsv");
  EXPECT_TRUE(mentions(message_of<ValueError>([] { parse_table("a\n1\n", ReadOptions{}, "<string>"); }),
                       {"cannot infer the format", "<string>", ".csv", "TableFormat"}));
}

TEST(Reader, ExtensionsPickTheFormat) {
  const auto dir = std::filesystem::temp_directory_path() / ("graft_reader_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "a.TSV") << "x\ty\n1\t2\n";
  std::ofstream(dir / "a.ndjson") << "{\"x\": 1}\n";
  std::ofstream(dir / "a.txt") << "x,y\n1,2\n";
  EXPECT_EQ(read_table(dir / "a.TSV").rows, (Rows{{"1", "2"}}));
  EXPECT_EQ(read_table(dir / "a.ndjson").rows, (Rows{{"1"}}));
  EXPECT_EQ(read_table(dir / "a.txt", TableFormat::csv).rows, (Rows{{"1", "2"}}));  // explicit format
  EXPECT_TRUE(mentions(message_of<ValueError>([&] { read_table(dir / "a.txt"); }), {"a.txt", "\".txt\""}));
  EXPECT_TRUE(mentions(message_of<IOError>([&] { read_table(dir / "missing.csv"); }), {"missing.csv", "cannot open"}));
  EXPECT_TRUE(mentions(message_of<IOError>([&] { read_table(dir, TableFormat::csv); }), {"is a directory"}));
  std::filesystem::remove_all(dir);
}

TEST(Reader, UnterminatedQuoteNamesWhereItOpened) {
  const std::string m = message_of<FormatError>([] { csv("a,b\n1,2\n3,\"open\nmore\n"); });
  EXPECT_TRUE(mentions(m, {"test.csv line 3, column 3", "unterminated quoted field", "closing '\"'"}));
}

TEST(Reader, TextAfterClosingQuoteIsAnError) {
  const std::string m = message_of<FormatError>([] { csv("a,b\n\"x\"y,2\n"); });
  EXPECT_TRUE(mentions(m, {"test.csv line 2, column 4", "after a closing quote", "found 'y'", "quoting = false"}));
}

TEST(Reader, RaggedRowNamesLineAndCounts) {
  const std::string few = message_of<FormatError>([] { csv("text,label\nok,1\n\"two\nlines\"\nx,1\n"); });
  EXPECT_TRUE(mentions(few, {"test.csv line 3", "expected 2 fields", "\"text\", \"label\"", "found 1"}));
  const std::string many = message_of<FormatError>([] { csv("text,label\na,b,c\n"); });
  EXPECT_TRUE(mentions(many, {"line 2", "expected 2 fields", "found 3"}));
}

TEST(Reader, HeaderErrors) {
  EXPECT_TRUE(mentions(message_of<FormatError>([] { csv(""); }), {"test.csv", "empty", "header"}));
  EXPECT_TRUE(mentions(message_of<FormatError>([] { csv("\xEF\xBB\xBF\r\n"); }), {"empty"}));
  EXPECT_TRUE(mentions(message_of<FormatError>([] { csv("a,b,a\n1,2,3\n"); }), {"line 1", "\"a\"", "twice"}));
}

TEST(Reader, JsonlErrorsNameTheLine) {
  EXPECT_TRUE(mentions(message_of<FormatError>([] { jsonl("{\"a\": 1}\n{\"a\": 2\n"); }),
                       {"test.jsonl line 2", "invalid JSON", "one JSON object per line"}));
  EXPECT_TRUE(mentions(message_of<FormatError>([] { jsonl("\n[1, 2]\n"); }),
                       {"test.jsonl line 2", "expected a JSON object", "found a JSON array"}));
  EXPECT_TRUE(mentions(message_of<FormatError>([] { jsonl("{\"a\": 1, \"b\": 2}\n{\"a\": 3}\n"); }),
                       {"line 2", "missing key \"b\"", "\"a\", \"b\""}));
  EXPECT_TRUE(mentions(message_of<FormatError>([] { jsonl("{\"a\": 1}\n{\"a\": 3, \"z\": 0}\n"); }),
                       {"line 2", "unexpected key \"z\""}));
  EXPECT_TRUE(mentions(message_of<FormatError>([] { jsonl("{\"a\": 1} {\"a\": 2}\n"); }), {"line 1", "invalid JSON"}));
}

TEST(Reader, ColumnLookupListsColumnsPresent) {
  const Table t = csv("text,label\nx,1\n");
  EXPECT_TRUE(mentions(message_of<FormatError>([&] { t.column("sentence"); }),
                       {"test.csv", "no column \"sentence\"", "\"text\", \"label\""}));
}

TEST(Reader, DeepJsonNestingIsRefusedNotACrash) {
  const std::string deep = "{\"a\": " + std::string(100000, '[') + std::string(100000, ']') + "}\n";
  EXPECT_TRUE(mentions(message_of<FormatError>([&] { jsonl(deep); }), {"line 1", "nested deeper than 64"}));
  const std::string fine = "{\"a\": " + std::string(20, '[') + std::string(20, ']') + "}\n";
  EXPECT_EQ(jsonl(fine).rows[0][0], std::string(20, '[') + std::string(20, ']'));
}

TEST(Reader, RandomBytesParseOrThrowFormatError) {
  // Hostile input: any text either parses or is a FormatError, never a crash or another error.
  const std::string alphabet = "\",\t\n\r a{}[]:1\xEF\xBB\xBF";
  uint64_t state = 99;
  auto next = [&] { state = state * 6364136223846793005ULL + 1442695040888963407ULL; return state >> 33; };
  for (int trial = 0; trial < 3000; ++trial) {
    std::string text(next() % 40, ' ');
    for (char& c : text) c = alphabet[next() % alphabet.size()];
    for (TableFormat format : {TableFormat::csv, TableFormat::tsv, TableFormat::jsonl}) {
      ReadOptions options;
      options.format = format;
      options.header = trial % 2 == 0;
      try {
        const Table t = parse_table(text, options, "fuzz");
        for (const auto& row : t.rows) ASSERT_EQ(row.size(), t.columns.size());
        ASSERT_EQ(t.row_lines.size(), t.rows.size());
      } catch (const FormatError&) {
      }
    }
  }
}
