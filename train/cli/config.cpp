#include "train/cli/config.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>

#include "tensor/error.h"

namespace graft::cli {

namespace {

using Json = nlohmann::json;

std::vector<std::string> split_path(const std::string& dotted) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(dotted);
  while (std::getline(in, part, '.')) parts.push_back(part);
  return parts;
}

std::string join(const std::string& prefix, const std::string& key) { return prefix.empty() ? key : prefix + "." + key; }

bool is_index(const std::string& s) {
  return !s.empty() && s.size() < 10 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// The line of every key in a JSON text, by dotted path (array elements by index: "tasks.0.name").
// A light scan that only tracks nesting, strings and newlines; it runs after nlohmann has accepted
// the text, so it may assume the text is well formed.
std::map<std::string, int64_t> key_lines(const std::string& text) {
  struct Frame {
    bool object;
    std::string path;
    std::string key;
    int64_t index = 0;
  };
  std::vector<Frame> stack;
  std::map<std::string, int64_t> lines;
  int64_t line = 1;
  auto child_path = [&]() -> std::string {
    if (stack.empty()) return "";
    const Frame& f = stack.back();
    return join(f.path, f.object ? f.key : std::to_string(f.index));
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
    } else if (c == '{' || c == '[') {
      stack.push_back({c == '{', child_path(), "", 0});
    } else if (c == '}' || c == ']') {
      if (!stack.empty()) stack.pop_back();
    } else if (c == ',') {
      if (!stack.empty() && !stack.back().object) ++stack.back().index;
    } else if (c == '"') {
      const int64_t start_line = line;
      std::string s;
      std::size_t j = i + 1;
      for (; j < text.size() && text[j] != '"'; ++j) {
        if (text[j] == '\\' && j + 1 < text.size()) ++j;
        s += text[j];
      }
      std::size_t k = j + 1;
      while (k < text.size() && std::isspace(static_cast<unsigned char>(text[k]))) ++k;
      if (!stack.empty() && stack.back().object && k < text.size() && text[k] == ':') {
        stack.back().key = s;
        lines[child_path()] = start_line;
      }
      i = j;  // the whitespace after the string is scanned by the loop (its newlines count)
    }
  }
  return lines;
}

std::string type_name(const Json& v) {
  if (v.is_number_integer() || v.is_number_unsigned()) return "integer";
  return v.type_name();
}

std::string shown(const Json& v) {
  std::string s = v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = up;
    }
  }
  return row[b.size()];
}

}  // namespace

ConfigDocument ConfigDocument::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IOError("cannot read config " + path + ": no such file, or not readable");
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

ConfigDocument ConfigDocument::parse(const std::string& text, const std::string& name) {
  ConfigDocument doc;
  doc.name_ = name;
  try {
    doc.root_ = Json::parse(text);
  } catch (const Json::parse_error& e) {
    // e.byte is 1-based; turn it into line:column for the message.
    const std::size_t byte = std::min<std::size_t>(e.byte > 0 ? e.byte - 1 : 0, text.size());
    const int64_t line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(byte), '\n');
    const std::size_t line_start = text.rfind('\n', byte == 0 ? 0 : byte - 1);
    const std::size_t column = line_start == std::string::npos ? byte + 1 : byte - line_start;
    std::string what = e.what();
    const auto colon = what.find(": ", what.find("parse error"));
    throw FormatError(name + ":" + std::to_string(line) + ":" + std::to_string(column) + ": malformed JSON" +
                      (colon == std::string::npos ? "" : what.substr(colon)));
  }
  if (!doc.root_.is_object())
    throw FormatError(name + ":1: a config must be a JSON object ({...}), got " + type_name(doc.root_));
  doc.lines_ = key_lines(text);
  return doc;
}

void ConfigDocument::set(const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw FormatError("--set " + assignment + ": expected key=value (e.g. --set optim.lr=3e-5)");
  const std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  Json value;
  try {
    value = Json::parse(text);
  } catch (const Json::parse_error&) {
    value = text;  // not JSON: a plain string (--set model.path=assets/x)
  }
  Json* node = &root_;
  std::string path;
  const std::vector<std::string> parts = split_path(key);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].empty()) throw FormatError("--set " + assignment + ": empty key segment in '" + key + "'");
    path = join(path, parts[i]);
    const bool last = i + 1 == parts.size();
    if (node->is_array() && is_index(parts[i]) && std::stoul(parts[i]) < node->size()) {
      node = &(*node)[std::stoul(parts[i])];
    } else if (node->is_object()) {
      node = &(*node)[parts[i]];
      if (!last && node->is_null()) *node = Json::object();
    } else {
      throw FormatError("--set " + assignment + ": '" + path.substr(0, path.rfind('.')) + "' is a " +
                        type_name(*node) + ", not an object");
    }
    if (last) *node = value;
  }
  overridden_.insert(key);
}

std::string ConfigDocument::where(const std::string& dotted) const {
  if (overridden_.count(dotted)) return "--set " + dotted;
  const auto it = lines_.find(dotted);
  if (it != lines_.end()) return name_ + ":" + std::to_string(it->second) + ": " + dotted;
  return name_ + ": " + dotted;
}

const Json* ConfigReader::find(const std::string& dotted) {
  read_.insert(dotted);
  const Json* node = &doc_.json();
  for (const std::string& part : split_path(dotted)) {
    if (node->is_object()) {
      const auto it = node->find(part);
      if (it == node->end()) return nullptr;
      node = &*it;
    } else if (node->is_array() && is_index(part) && std::stoul(part) < node->size()) {
      node = &(*node)[std::stoul(part)];
    } else {
      return nullptr;
    }
  }
  return node->is_null() ? nullptr : node;
}

bool ConfigReader::has(const std::string& dotted) const {
  return const_cast<ConfigReader*>(this)->find(dotted) != nullptr;
}

void ConfigReader::type_error(const std::string& dotted, const char* expected, const Json& got) const {
  throw FormatError(doc_.where(dotted) + ": expected " + expected + ", got " + shown(got) + " (" + type_name(got) +
                    ")");
}

double ConfigReader::number(const std::string& dotted, double fallback, std::optional<double> min,
                            std::optional<double> max) {
  const Json* v = find(dotted);
  if (!v) return fallback;
  if (!v->is_number()) type_error(dotted, "a number", *v);
  const double x = v->get<double>();
  if (!std::isfinite(x) || (min && x < *min) || (max && x > *max)) {
    std::ostringstream range;
    range << "[" << (min ? std::to_string(*min) : "-inf") << ", " << (max ? std::to_string(*max) : "inf") << "]";
    throw FormatError(doc_.where(dotted) + ": " + shown(*v) + " is out of range " + range.str());
  }
  return x;
}

int64_t ConfigReader::integer(const std::string& dotted, int64_t fallback, std::optional<int64_t> min,
                              std::optional<int64_t> max) {
  const Json* v = find(dotted);
  if (!v) return fallback;
  if (!v->is_number_integer()) type_error(dotted, "an integer", *v);
  const int64_t x = v->get<int64_t>();
  if ((min && x < *min) || (max && x > *max))
    throw FormatError(doc_.where(dotted) + ": " + std::to_string(x) + " is out of range [" +
                      (min ? std::to_string(*min) : "-inf") + ", " + (max ? std::to_string(*max) : "inf") + "]");
  return x;
}

bool ConfigReader::boolean(const std::string& dotted, bool fallback) {
  const Json* v = find(dotted);
  if (!v) return fallback;
  if (!v->is_boolean()) type_error(dotted, "true or false", *v);
  return v->get<bool>();
}

std::string ConfigReader::string(const std::string& dotted, const std::string& fallback) {
  const Json* v = find(dotted);
  if (!v) return fallback;
  if (!v->is_string()) type_error(dotted, "a string", *v);
  return v->get<std::string>();
}

std::string ConfigReader::choice(const std::string& dotted, const std::string& fallback,
                                 const std::vector<std::string>& allowed) {
  const std::string value = string(dotted, fallback);
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return value;
  std::string list;
  for (const std::string& a : allowed) list += (list.empty() ? "" : ", ") + a;
  throw FormatError(doc_.where(dotted) + ": \"" + value + "\" is not one of " + list);
}

std::vector<std::string> ConfigReader::strings(const std::string& dotted, const std::vector<std::string>& fallback) {
  const Json* v = find(dotted);
  if (!v) return fallback;
  if (!v->is_array()) type_error(dotted, "an array of strings", *v);
  std::vector<std::string> out;
  for (const Json& e : *v) {
    if (!e.is_string()) type_error(dotted, "an array of strings", *v);
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::vector<double> ConfigReader::numbers(const std::string& dotted, const std::vector<double>& fallback) {
  const Json* v = find(dotted);
  if (!v) return fallback;
  if (!v->is_array()) type_error(dotted, "an array of numbers", *v);
  std::vector<double> out;
  for (const Json& e : *v) {
    if (!e.is_number()) type_error(dotted, "an array of numbers", *v);
    out.push_back(e.get<double>());
  }
  return out;
}

void ConfigReader::accept(const std::string& dotted) { read_.insert(dotted); }

void ConfigReader::finish() const {
  std::vector<std::string> unknown;
  auto read_below = [&](const std::string& path) {
    const auto it = read_.lower_bound(path + ".");
    return it != read_.end() && it->rfind(path + ".", 0) == 0;
  };
  // A key is known when it was read (its subtree with it), or when something below it was read.
  auto walk = [&](auto&& self, const Json& node, const std::string& path) -> void {
    if (node.is_object()) {
      for (const auto& [key, value] : node.items()) {
        const std::string p = join(path, key);
        if (read_.count(p)) continue;
        if (read_below(p)) self(self, value, p);
        else unknown.push_back(p);
      }
    } else if (node.is_array()) {
      for (std::size_t i = 0; i < node.size(); ++i) {
        const std::string p = join(path, std::to_string(i));
        if (!read_.count(p) && read_below(p)) self(self, node[i], p);
      }
    }
  };
  walk(walk, doc_.json(), "");
  if (unknown.empty()) return;
  std::string message = doc_.name() + ": unknown config key" + (unknown.size() > 1 ? "s" : "") + ":";
  for (const std::string& key : unknown) {
    message += "\n  " + doc_.where(key);
    // A near miss among the keys this run reads at the same depth: "did you mean".
    const std::string parent = key.find('.') == std::string::npos ? "" : key.substr(0, key.rfind('.'));
    std::string best;
    std::size_t best_distance = 3;
    for (const std::string& known : read_) {
      const std::string known_parent = known.find('.') == std::string::npos ? "" : known.substr(0, known.rfind('.'));
      if (known_parent != parent) continue;
      const std::size_t d = edit_distance(known, key);
      if (d < best_distance) best_distance = d, best = known;
    }
    if (!best.empty()) message += " (did you mean " + best + "?)";
  }
  throw FormatError(message);
}

}  // namespace graft::cli
