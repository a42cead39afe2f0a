#include "ovfast/model/shape.hpp"

#include <limits>

namespace ovfast {

ov::Dimension to_dimension(const DimRange& d) {
  if (d.min == d.max) return ov::Dimension(d.min);
  if (d.min <= 0 && d.max < 0) return ov::Dimension::dynamic();
  return ov::Dimension(d.min, d.max);
}

ov::PartialShape to_partial_shape(const ShapeSpec& s) {
  std::vector<ov::Dimension> dims;
  dims.reserve(s.size());
  for (const DimRange& d : s) dims.push_back(to_dimension(d));
  return ov::PartialShape(dims);
}

std::string partial_shape_to_string(const ov::PartialShape& ps) {
  if (ps.rank().is_dynamic()) return "(...)";
  std::string out = "(";
  for (size_t i = 0; i < ps.size(); ++i) {
    if (i) out += ",";
    const ov::Dimension& d = ps[i];
    if (d.is_static()) {
      out += std::to_string(d.get_length());
    } else if (d.get_min_length() > 0 || d.get_max_length() != -1) {
      out += std::to_string(d.get_min_length()) + ":" +
             (d.get_max_length() == -1 ? std::string("-1") : std::to_string(d.get_max_length()));
    } else {
      out += "-1";
    }
  }
  return out + ")";
}

bool checked_count(const Shape& shape, size_t* out) {
  size_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (d != 0 && n > std::numeric_limits<size_t>::max() / static_cast<size_t>(d)) return false;
    n *= static_cast<size_t>(d);
  }
  *out = n;
  return true;
}

}  // namespace ovfast
