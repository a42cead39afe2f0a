#include "ovfast/dtype.hpp"

#include <array>

namespace ovfast {
namespace {
using ET = ov::element::Type_t;
// tf_enum values are tensorflow.DataType numbers (types.proto).
constexpr std::array<DataTypeInfo, 15> kTable{{
    {DataType::INVALID, "INVALID", "DT_INVALID", 0, "TYPE_INVALID", ET::dynamic, 0},
    {DataType::BOOL, "BOOL", "DT_BOOL", 10, "TYPE_BOOL", ET::boolean, 1},
    {DataType::UINT8, "UINT8", "DT_UINT8", 4, "TYPE_UINT8", ET::u8, 1},
    {DataType::UINT16, "UINT16", "DT_UINT16", 17, "TYPE_UINT16", ET::u16, 2},
    {DataType::UINT32, "UINT32", "DT_UINT32", 22, "TYPE_UINT32", ET::u32, 4},
    {DataType::UINT64, "UINT64", "DT_UINT64", 23, "TYPE_UINT64", ET::u64, 8},
    {DataType::INT8, "INT8", "DT_INT8", 6, "TYPE_INT8", ET::i8, 1},
    {DataType::INT16, "INT16", "DT_INT16", 5, "TYPE_INT16", ET::i16, 2},
    {DataType::INT32, "INT32", "DT_INT32", 3, "TYPE_INT32", ET::i32, 4},
    {DataType::INT64, "INT64", "DT_INT64", 9, "TYPE_INT64", ET::i64, 8},
    {DataType::FP16, "FP16", "DT_HALF", 19, "TYPE_FP16", ET::f16, 2},
    {DataType::BF16, "BF16", "DT_BFLOAT16", 14, "TYPE_BF16", ET::bf16, 2},
    {DataType::FP32, "FP32", "DT_FLOAT", 1, "TYPE_FP32", ET::f32, 4},
    {DataType::FP64, "FP64", "DT_DOUBLE", 2, "TYPE_FP64", ET::f64, 8},
    {DataType::BYTES, "BYTES", "DT_STRING", 7, "TYPE_STRING", ET::string, 0},
}};
}  // namespace

const DataTypeInfo& datatype_info(DataType dt) { return kTable[static_cast<size_t>(dt)]; }

DataType datatype_from_name(std::string_view name) {
  if (name == "STRING") return DataType::BYTES;
  for (size_t i = 1; i < kTable.size(); ++i)
    if (kTable[i].kserve_name == name) return kTable[i].dtype;
  return DataType::INVALID;
}

DataType datatype_from_element(ov::element::Type t) {
  for (size_t i = 1; i < kTable.size(); ++i)
    if (kTable[i].element == static_cast<ET>(t)) return kTable[i].dtype;
  return DataType::INVALID;
}

}  // namespace ovfast
