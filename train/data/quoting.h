// How the data readers name things in error messages: values in double quotes, long lists cut.
#pragma once

#include <string>
#include <vector>

namespace graft::data::detail {

inline std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

inline std::string quoted_list(const std::vector<std::string>& names, size_t limit = 30) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + in_quotes(names[i]);
  if (names.size() > limit) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out;
}

}  // namespace graft::data::detail
