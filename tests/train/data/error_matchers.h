// Checking error messages: what a call threw, and whether the message names what it should.
#pragma once

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

namespace graft::test {

// The message of the E that f throws; a test failure (and "") when it throws nothing.
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return {};
}

inline ::testing::AssertionResult mentions(const std::string& message, std::initializer_list<std::string> parts) {
  for (const auto& part : parts)
    if (message.find(part) == std::string::npos)
      return ::testing::AssertionFailure() << "message lacks \"" << part << "\": " << message;
  return ::testing::AssertionSuccess();
}

}  // namespace graft::test
