// Typed errors. Every public entry point validates its inputs and throws one of these with a
// message that names the op and what it was given (shapes, dtypes, devices) and what it expected.
#pragma once

#include <stdexcept>
#include <string>

namespace graft {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

class ShapeError : public Error { using Error::Error; };          // shapes do not fit the op
class DTypeError : public Error { using Error::Error; };          // dtype not supported / mismatched
class DeviceError : public Error { using Error::Error; };         // mixed or unavailable devices
class IndexError : public Error { using Error::Error; };          // dim or index out of range
class ValueError : public Error { using Error::Error; };          // a bad argument value
class NotImplementedError : public Error { using Error::Error; };  // op/backward/device not there yet
class AutogradError : public Error { using Error::Error; };       // misuse of the graph
class NumericError : public Error { using Error::Error; };        // NaN/Inf where none may be
class FormatError : public Error { using Error::Error; };         // a file's contents are malformed
class IOError : public Error { using Error::Error; };             // the file system refused (open, write, rename)

}  // namespace graft
