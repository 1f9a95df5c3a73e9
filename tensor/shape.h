// Shape arithmetic shared by every op: broadcasting, contiguous strides, dim normalisation and the
// text form used in error messages.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace graft {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2, 3]"

// NumPy broadcasting of two shapes; throws ShapeError naming op and both shapes when impossible.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

// Maps a possibly negative dim into [0, ndim); throws IndexError naming op when out of range.
int64_t normalize_dim(const char* op, int64_t dim, int64_t ndim);
// Normalises a list of dims; an empty list means all dims. Sorted, duplicates rejected.
std::vector<int64_t> normalize_dims(const char* op, const std::vector<int64_t>& dims, int64_t ndim);

}  // namespace graft
