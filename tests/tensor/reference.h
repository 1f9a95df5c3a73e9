// Plain references shared by the tensor suites: values as std::vector<double>, index arithmetic
// over row-major shapes, and element-wise comparison with a readable failure.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"

namespace graft::testing {

inline std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

// Row-major multi-index of linear index i in shape.
inline std::vector<int64_t> unravel(int64_t i, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] == 0 ? 0 : i % shape[d];
    i = shape[d] == 0 ? 0 : i / shape[d];
  }
  return idx;
}

inline int64_t ravel(const std::vector<int64_t>& idx, const Shape& shape) {
  int64_t i = 0;
  for (size_t d = 0; d < shape.size(); ++d) i = i * shape[d] + idx[d];
  return i;
}

// Linear index into `shape` of the element that broadcasting maps `out_idx` (of a longer or equal
// shape) to.
inline int64_t broadcast_index(const std::vector<int64_t>& out_idx, const Shape& shape) {
  const size_t lead = out_idx.size() - shape.size();
  int64_t i = 0;
  for (size_t d = 0; d < shape.size(); ++d) i = i * shape[d] + (shape[d] == 1 ? 0 : out_idx[lead + d]);
  return i;
}

// NumPy broadcast of two shapes, written independently of the library's.
inline Shape broadcast(const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Reference binary op with broadcasting.
inline std::vector<double> broadcast_binary(const std::vector<double>& a, const Shape& as, const std::vector<double>& b,
                                            const Shape& bs, const std::function<double(double, double)>& f) {
  const Shape os = broadcast(as, bs);
  std::vector<double> out(static_cast<size_t>(shape_numel(os)));
  for (int64_t i = 0; i < static_cast<int64_t>(out.size()); ++i) {
    auto idx = unravel(i, os);
    out[static_cast<size_t>(i)] = f(a[static_cast<size_t>(broadcast_index(idx, as))], b[static_cast<size_t>(broadcast_index(idx, bs))]);
  }
  return out;
}

// |got - want| <= atol + rtol * |want| for every element; NaNs must match NaNs, infinities must match.
inline ::testing::AssertionResult all_close(const std::vector<double>& got, const std::vector<double>& want,
                                            double rtol = 1e-5, double atol = 1e-6) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " != " << want.size();
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    if (std::isnan(w) ? std::isnan(g) : (std::isinf(w) ? g == w : std::abs(g - w) <= atol + rtol * std::abs(w)))
      continue;
    return ::testing::AssertionFailure() << "element " << i << ": got " << g << ", want " << w;
  }
  return ::testing::AssertionSuccess();
}

// Expects f() to throw E whose what() contains every fragment.
template <class E, class F>
::testing::AssertionResult throws_with(F f, std::initializer_list<std::string> fragments) {
  try {
    f();
  } catch (const E& e) {
    const std::string what = e.what();
    for (const auto& s : fragments)
      if (what.find(s) == std::string::npos)
        return ::testing::AssertionFailure() << "message \"" << what << "\" lacks \"" << s << "\"";
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a different exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

}  // namespace graft::testing
