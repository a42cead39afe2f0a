// One table: KServe datatype name <-> ov::element::Type <-> element size.
// Immutable and constexpr: any thread, no locking. Python reads it through
// _native.datatypes() (src/ovfast/api/types.py); no other table exists.
#pragma once
#include <cstddef>
#include <string_view>

#include <openvino/core/type/element_type.hpp>

namespace ovfast {

enum class DataType : int {
  INVALID = 0, BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64,
  FP16, BF16, FP32, FP64, BYTES,
};

struct DataTypeInfo {
  DataType dtype;
  std::string_view kserve_name;   // "FP32"
  std::string_view tf_name;       // "DT_FLOAT"
  int tf_enum;                    // tensorflow.DataType value
  std::string_view triton_config; // "TYPE_FP32"
  ov::element::Type_t element;
  size_t size;                    // bytes per element; 0 for BYTES
};

// Returns INVALID when the name is unknown. "STRING" is accepted as BYTES.
DataType datatype_from_name(std::string_view name);
const DataTypeInfo& datatype_info(DataType dt);
// INVALID when OpenVINO's element type has no wire datatype (u4, nf4, ...).
DataType datatype_from_element(ov::element::Type t);
inline size_t datatype_size(DataType dt) { return datatype_info(dt).size; }

}  // namespace ovfast
