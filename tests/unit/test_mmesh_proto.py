"""proto/mmesh/model-runtime.proto against ModelMesh's original (kserve/modelmesh
src/main/proto/current/model-runtime.proto, HEAD ea13cdc of 2026-04-14): every message's fields with their
numbers, types and labels, the enum, and the five method paths ModelMesh calls. No package ships that proto,
so the facts are written out here."""
from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor as F

from ovfast._gen.mmesh import model_runtime_pb2 as pb
from ovfast._gen.mmesh import model_runtime_pb2_grpc as pb_grpc

S, U64, U32, B, E, M = F.TYPE_STRING, F.TYPE_UINT64, F.TYPE_UINT32, F.TYPE_BOOL, F.TYPE_ENUM, F.TYPE_MESSAGE
UPSTREAM = {
    "LoadModelRequest": {"modelId": (1, S), "modelType": (2, S), "modelPath": (3, S), "modelKey": (4, S)},
    "LoadModelResponse": {"sizeInBytes": (1, U64), "maxConcurrency": (2, U32)},
    "UnloadModelRequest": {"modelId": (1, S)},
    "UnloadModelResponse": {},
    "PredictModelSizeRequest": {"modelId": (1, S), "modelType": (2, S), "modelPath": (3, S), "modelKey": (4, S)},
    "PredictModelSizeResponse": {"sizeInBytes": (1, U64)},
    "ModelSizeRequest": {"modelId": (1, S)},
    "ModelSizeResponse": {"sizeInBytes": (1, U64)},
    "RuntimeStatusRequest": {},
    "RuntimeStatusResponse": {
        "status": (1, E), "capacityInBytes": (2, U64), "maxLoadingConcurrency": (3, U32),
        "modelLoadingTimeoutMs": (4, U32), "defaultModelSizeInBytes": (5, U64), "runtimeVersion": (6, S),
        "numericRuntimeVersion": (7, U64), "methodInfos": (8, M), "limitModelConcurrency": (9, B),
        "allowAnyMethod": (10, B)},
}


def test_messages_match_modelmesh():
    file = pb.DESCRIPTOR
    assert file.package == "mmesh" and file.name == "mmesh/model-runtime.proto"
    assert set(file.message_types_by_name) == set(UPSTREAM)
    for name, fields in UPSTREAM.items():
        desc = file.message_types_by_name[name]
        assert {f.name: (f.number, f.type) for f in desc.fields} == fields, name
    status = file.message_types_by_name["RuntimeStatusResponse"]
    assert {v.name: v.number for v in status.enum_types_by_name["Status"].values} == \
        {"STARTING": 0, "READY": 1, "FAILING": 2}
    info = status.nested_types_by_name["MethodInfo"]
    (path,) = info.fields
    assert (path.name, path.number, path.type, path.label) == ("idInjectionPath", 1, U32, F.LABEL_REPEATED)
    entry = status.fields_by_name["methodInfos"].message_type
    assert entry.GetOptions().map_entry and entry.fields_by_name["value"].message_type is info


def test_service_paths():
    service = pb.DESCRIPTOR.services_by_name["ModelRuntime"]
    assert service.full_name == "mmesh.ModelRuntime"
    assert [(m.name, m.input_type.name, m.output_type.name) for m in service.methods] == [
        ("loadModel", "LoadModelRequest", "LoadModelResponse"),
        ("unloadModel", "UnloadModelRequest", "UnloadModelResponse"),
        ("predictModelSize", "PredictModelSizeRequest", "PredictModelSizeResponse"),
        ("modelSize", "ModelSizeRequest", "ModelSizeResponse"),
        ("runtimeStatus", "RuntimeStatusRequest", "RuntimeStatusResponse"),
    ]
    assert hasattr(pb_grpc, "ModelRuntimeStub") and hasattr(pb_grpc, "add_ModelRuntimeServicer_to_server")
