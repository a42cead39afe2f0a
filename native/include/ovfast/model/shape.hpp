// Shapes as the control plane configures them (typed dims, parsed once in
// Python) and as messages print them.
//
// Pure functions; no state, no locking, any thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <openvino/core/partial_shape.hpp>

#include "ovfast/request.hpp"

namespace ovfast {

// One configured dimension: [min, max]; max -1 = unbounded; min == max is a static size.
struct DimRange {
  int64_t min = 0;
  int64_t max = -1;
};
// A configured shape: one DimRange per dimension.
using ShapeSpec = std::vector<DimRange>;

ov::Dimension to_dimension(const DimRange& d);
ov::PartialShape to_partial_shape(const ShapeSpec& s);
// "(1,3,1:8,-1)"; "(...)" for a dynamic rank.
std::string partial_shape_to_string(const ov::PartialShape& ps);
// Element count of a request shape; false for a negative dimension or a count that overflows size_t.
bool checked_count(const Shape& shape, size_t* out);

}  // namespace ovfast
