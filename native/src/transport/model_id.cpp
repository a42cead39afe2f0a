#include "ovfast/transport/model_id.hpp"

#include <map>

namespace ovfast {
namespace {

void put_varint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// A length-delimited field (wire type 2): tag, length, bytes.
std::string length_delimited(uint32_t field, std::string_view payload) {
  std::string out;
  put_varint(&out, (static_cast<uint64_t>(field) << 3) | 2);
  put_varint(&out, payload.size());
  out.append(payload.data(), payload.size());
  return out;
}

}  // namespace

std::string model_id_from_metadata(const MetadataLookup& lookup) {
  for (std::string_view key : kModelIdHeaders) {
    std::optional<std::string_view> v = lookup(key);
    if (v && !v->empty()) return std::string(*v);
  }
  return {};
}

const std::vector<uint32_t>* model_name_path(std::string_view method) {
  static const std::vector<uint32_t> kTop{1}, kSpec{1, 1};
  static const std::map<std::string_view, const std::vector<uint32_t>*, std::less<>> kPaths{
      {"/inference.GRPCInferenceService/ModelInfer", &kTop},
      {"/inference.GRPCInferenceService/ModelMetadata", &kTop},
      {"/inference.GRPCInferenceService/ModelReady", &kTop},
      {"/inference.GRPCInferenceService/ModelConfig", &kTop},
      {"/inference.GRPCInferenceService/ModelStatistics", &kTop},
      {"/tensorflow.serving.PredictionService/Predict", &kSpec},
      {"/tensorflow.serving.PredictionService/GetModelMetadata", &kSpec},
      {"/tensorflow.serving.PredictionService/Classify", &kSpec},
      {"/tensorflow.serving.PredictionService/Regress", &kSpec},
      {"/tensorflow.serving.ModelService/GetModelStatus", &kSpec},
  };
  auto it = kPaths.find(method);
  return it == kPaths.end() ? nullptr : it->second;
}

std::string inject_model_id(const std::vector<uint32_t>& path, std::string_view id) {
  if (path.empty()) return {};
  // Innermost first: the string field, then each enclosing message around it.
  std::string out = length_delimited(path.back(), id);
  for (size_t i = path.size() - 1; i-- > 0;) out = length_delimited(path[i], out);
  return out;
}

}  // namespace ovfast
