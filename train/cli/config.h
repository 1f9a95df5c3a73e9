// Run configs: JSON files whose errors name the file, the line and the field.
//
// A ConfigDocument is a parsed JSON object plus, for every key in the file, the line it is on, and
// the `--set key=value` overrides applied on top (their "line" is the override itself). A
// ConfigReader reads typed values out of it by dotted path, each with its documented default, and
// remembers which keys it read; finish() then rejects every key nobody read, so a misspelt key is an
// error instead of a silently ignored setting.
//
//   ConfigDocument doc = ConfigDocument::load("run.json");
//   doc.set("optim.lr=3e-5");                              // --set
//   ConfigReader r(doc);
//   double lr = r.number("optim.lr", 2e-5);                // default when absent
//   std::string pooling = r.choice("model.pooling", "cls", {"cls", "mean"});
//   r.finish();                                            // unknown keys -> FormatError
//
// Errors are graft::FormatError (malformed JSON, a value of the wrong type or out of range, an
// unknown key) and graft::IOError (the file cannot be read), each naming "file:line: field".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace graft::cli {

class ConfigDocument {
 public:
  static ConfigDocument load(const std::string& path);
  // `name` stands for the file in messages (e.g. "<string>").
  static ConfigDocument parse(const std::string& text, const std::string& name);

  // Applies "a.b.c=value": value is parsed as JSON (numbers, true/false, null, arrays, objects,
  // quoted strings), and taken as a plain string when it is not JSON. Intermediate objects are
  // created; setting below a non-object is a FormatError.
  void set(const std::string& assignment);

  const nlohmann::json& json() const { return root_; }
  const std::string& name() const { return name_; }
  // "run.json:12: optim.lr", or "--set optim.lr" for an override, or "run.json: optim.lr" when
  // the key is absent (a default was used).
  std::string where(const std::string& dotted) const;

 private:
  std::string name_;
  nlohmann::json root_ = nlohmann::json::object();
  std::map<std::string, int64_t> lines_;  // dotted key -> 1-based line in the file
  std::set<std::string> overridden_;      // dotted keys set from the command line
};

class ConfigReader {
 public:
  explicit ConfigReader(const ConfigDocument& document) : doc_(document) {}

  bool has(const std::string& dotted) const;
  double number(const std::string& dotted, double fallback, std::optional<double> min = std::nullopt,
                std::optional<double> max = std::nullopt);
  int64_t integer(const std::string& dotted, int64_t fallback, std::optional<int64_t> min = std::nullopt,
                  std::optional<int64_t> max = std::nullopt);
  bool boolean(const std::string& dotted, bool fallback);
  std::string string(const std::string& dotted, const std::string& fallback);
  // One of `allowed`; anything else is an error listing them.
  std::string choice(const std::string& dotted, const std::string& fallback, const std::vector<std::string>& allowed);
  std::vector<std::string> strings(const std::string& dotted, const std::vector<std::string>& fallback);
  std::vector<double> numbers(const std::string& dotted, const std::vector<double>& fallback);
  // Marks a whole subtree as read (a section handed on to another reader, or free-form metadata).
  void accept(const std::string& dotted);

  // Every key in the document that was neither read nor accepted is an error; the message names
  // them all, each with its line.
  void finish() const;

 private:
  const nlohmann::json* find(const std::string& dotted);
  [[noreturn]] void type_error(const std::string& dotted, const char* expected, const nlohmann::json& got) const;

  const ConfigDocument& doc_;
  std::set<std::string> read_;
};

}  // namespace graft::cli
