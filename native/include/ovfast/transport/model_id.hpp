// Model ids carried outside the request message, as ModelMesh sends them.
//
// ModelMesh's `mm` container forwards an inference call to its runtime with
// the metadata `mm-model-id` (and `mm-model-id-bin`, the same id as binary
// metadata) naming the concrete model it loaded there through loadModel; a
// client calling the runtime directly may name a model by `mm-vmodel-id`
// (ModelMesh's alias, an InferenceService name) instead. With header routing
// on (GrpcServerOptions::model_id_headers), the native front-end runs such a
// call on that model whatever its request message names, and a call it hands
// to the control plane gets the id spliced into the message (inject_model_id)
// so that the Python handlers see the same name.
//
// Pure functions: no gRPC types, any thread.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ovfast {

// Metadata keys, in the order they are honoured: the first present one names
// the model. ModelMesh strips `mm-*` client headers and adds its own
// `mm-model-id(-bin)`, so a call from ModelMesh carries nothing else.
inline constexpr std::string_view kModelIdHeaders[] = {"mm-model-id", "mm-model-id-bin", "mm-vmodel-id",
                                                       "mm-vmodel-id-bin"};

// Looks a metadata key up: its (first) value, or nullopt when absent.
using MetadataLookup = std::function<std::optional<std::string_view>(std::string_view key)>;

// The model a call's metadata names (kModelIdHeaders, first present and
// non-empty wins); "" when none does.
std::string model_id_from_metadata(const MetadataLookup& lookup);

// The field path (protobuf field numbers, ModelMesh's idInjectionPath) of the
// model name in the request message of `method` ("/package.Service/Method"),
// or nullptr for a method that names no model: KServe ModelInfer,
// ModelMetadata, ModelReady, ModelConfig, ModelStatistics ([1]); TF-Serving
// Predict, GetModelMetadata, Classify, Regress ([1, 1]: model_spec.name) and
// GetModelStatus ([1, 1]).
const std::vector<uint32_t>* model_name_path(std::string_view method);

// The bytes that, appended to a serialized message, set the string field at
// `path` to `id`: protobuf parsers keep the last value of a scalar field and
// merge repeated occurrences of an embedded message, so the message then names
// `id` and is otherwise unchanged. `path` must not be empty.
std::string inject_model_id(const std::vector<uint32_t>& path, std::string_view id);

}  // namespace ovfast
