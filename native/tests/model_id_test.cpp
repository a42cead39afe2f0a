// Header routing helpers (ovfast/transport/model_id.hpp): which metadata key
// names the model, which methods carry a model name where, and that the
// injected bytes make a message name the id under protobuf's merge rules
// (checked by decoding the result with a minimal wire reader).
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ovfast/transport/model_id.hpp"

namespace ovfast {
namespace {

MetadataLookup lookup_in(const std::map<std::string, std::string>& md) {
  return [md](std::string_view key) -> std::optional<std::string_view> {
    auto it = md.find(std::string(key));
    if (it == md.end()) return std::nullopt;
    return std::string_view(it->second);
  };
}

TEST(ModelIdFromMetadata, NoneGivesEmpty) {
  EXPECT_EQ(model_id_from_metadata(lookup_in({})), "");
  EXPECT_EQ(model_id_from_metadata(lookup_in({{"authorization", "Bearer x"}, {"mm-balanced", "true"}})), "");
}

TEST(ModelIdFromMetadata, ConcreteIdWinsOverVirtual) {
  EXPECT_EQ(model_id_from_metadata(lookup_in({{"mm-model-id", "mnist__isvc-6b2eb0b8bf"}, {"mm-vmodel-id", "mnist"}})),
            "mnist__isvc-6b2eb0b8bf");
  EXPECT_EQ(model_id_from_metadata(lookup_in({{"mm-vmodel-id", "mnist"}})), "mnist");
}

TEST(ModelIdFromMetadata, BinaryFormsAndEmptyValues) {
  // ModelMesh always sends mm-model-id-bin; mm-model-id only when the id is visible ASCII.
  EXPECT_EQ(model_id_from_metadata(lookup_in({{"mm-model-id-bin", "modèle"}})), "modèle");
  EXPECT_EQ(model_id_from_metadata(lookup_in({{"mm-model-id", ""}, {"mm-model-id-bin", "a"}})), "a");
  EXPECT_EQ(model_id_from_metadata(lookup_in({{"mm-vmodel-id-bin", "v"}})), "v");
}

TEST(ModelNamePath, KnownMethods) {
  ASSERT_NE(model_name_path("/inference.GRPCInferenceService/ModelInfer"), nullptr);
  EXPECT_EQ(*model_name_path("/inference.GRPCInferenceService/ModelInfer"), (std::vector<uint32_t>{1}));
  EXPECT_EQ(*model_name_path("/inference.GRPCInferenceService/ModelMetadata"), (std::vector<uint32_t>{1}));
  EXPECT_EQ(*model_name_path("/tensorflow.serving.PredictionService/Predict"), (std::vector<uint32_t>{1, 1}));
  EXPECT_EQ(*model_name_path("/tensorflow.serving.ModelService/GetModelStatus"), (std::vector<uint32_t>{1, 1}));
  EXPECT_EQ(model_name_path("/inference.GRPCInferenceService/ServerLive"), nullptr);
  EXPECT_EQ(model_name_path("/mmesh.ModelRuntime/loadModel"), nullptr);
  EXPECT_EQ(model_name_path(""), nullptr);
}

// --- a minimal protobuf reader: the last string at `path`, merging embedded messages as parsers do

uint64_t varint(std::string_view s, size_t* i) {
  uint64_t v = 0;
  for (int shift = 0; *i < s.size(); shift += 7) {
    const auto b = static_cast<uint8_t>(s[(*i)++]);
    v |= static_cast<uint64_t>(b & 0x7F) << shift;
    if (!(b & 0x80)) return v;
  }
  ADD_FAILURE() << "truncated varint";
  return 0;
}

// Every length-delimited payload of field `field` in message `s`, in order; other wire types skipped.
std::vector<std::string> fields(std::string_view s, uint32_t field) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    const uint64_t tag = varint(s, &i);
    const uint32_t wire = tag & 7;
    if (wire == 0) {
      varint(s, &i);
    } else if (wire == 2) {
      const uint64_t n = varint(s, &i);
      if ((tag >> 3) == field) out.emplace_back(s.substr(i, n));
      i += n;
    } else if (wire == 5) {
      i += 4;
    } else if (wire == 1) {
      i += 8;
    } else {
      ADD_FAILURE() << "unexpected wire type " << wire;
      return out;
    }
  }
  return out;
}

// The string a parser reads at `path`: embedded messages concatenated (merged), the last string kept.
std::string read_path(std::string_view msg, const std::vector<uint32_t>& path) {
  std::string cur(msg);
  for (size_t k = 0; k < path.size(); ++k) {
    std::vector<std::string> found = fields(cur, path[k]);
    if (found.empty()) return "<absent>";
    if (k + 1 == path.size()) return found.back();
    std::string merged;
    for (const std::string& f : found) merged += f;
    cur = merged;
  }
  return "<absent>";
}

std::string field_bytes(uint32_t field, const std::string& payload) {
  std::string out(1, static_cast<char>((field << 3) | 2));
  out.push_back(static_cast<char>(payload.size()));  // payloads here stay under 128 bytes
  return out + payload;
}

TEST(InjectModelId, TopLevelFieldIsReplaced) {
  // ModelInferRequest: model_name = 1, model_version = 2, id = 3.
  const std::string msg = field_bytes(1, "mnist") + field_bytes(2, "1") + field_bytes(3, "req-7");
  const std::string out = msg + inject_model_id({1}, "mnist-svm__isvc-6b2eb0b8bf");
  EXPECT_EQ(read_path(out, {1}), "mnist-svm__isvc-6b2eb0b8bf");
  EXPECT_EQ(read_path(out, {2}), "1");
  EXPECT_EQ(read_path(out, {3}), "req-7");
}

TEST(InjectModelId, NestedFieldMergesIntoTheMessage) {
  // PredictRequest: model_spec = 1 { name = 1, signature_name = 3 }, inputs = 2.
  const std::string spec = field_bytes(1, "resnet") + field_bytes(3, "serving_default");
  const std::string msg = field_bytes(1, spec) + field_bytes(2, "xx");
  const std::string out = msg + inject_model_id({1, 1}, "m__isvc-0123456789");
  EXPECT_EQ(read_path(out, {1, 1}), "m__isvc-0123456789");
  EXPECT_EQ(read_path(out, {1, 3}), "serving_default");  // the rest of model_spec is kept
  EXPECT_EQ(read_path(out, {2}), "xx");
}

TEST(InjectModelId, WorksOnAnEmptyMessageAndLongIds) {
  const std::string id(300, 'x');  // a two-byte length
  const std::string out = inject_model_id({1, 1}, id);
  std::vector<std::string> spec = fields(out, 1);
  ASSERT_EQ(spec.size(), 1u);
  EXPECT_EQ(fields(spec[0], 1), std::vector<std::string>{id});
  EXPECT_EQ(inject_model_id({}, "x"), "");
}

}  // namespace
}  // namespace ovfast
