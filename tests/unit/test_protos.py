"""Wire compatibility of ovfast's .proto files and proto/generate.py.

The stubs are generated into a temporary directory as the package
``ovfast_testgen`` (so they never shadow the real ``ovfast`` package) and
checked against the descriptors shipped by tritonclient (KServe v2 / Triton)
and ovmsclient (TF-Serving protos vendored under the ``ovmsclient`` package):

* every message present on both sides has the same fields (name, number,
  type, label, oneof, JSON name), with an explicit list of known subset
  differences for the TF-Serving protos;
* messages serialized by us parse with their classes and vice versa;
* gRPC method paths are identical;
* our stubs, tritonclient and ovmsclient can be imported into one process.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

from proto_kit import (  # noqa: F401,F811 - gen is a fixture
    PACKAGE, REPO, descriptor_pool, gen, fields_of, om_model_service_grpc, om_prediction_service_grpc, pb2_modules,
    stub_paths, tr_config, tr_service, tr_service_grpc, walk_enums, walk_messages,
)


# ---------------------------------------------------------- generation


EXPECTED_MODULES = {
    "kserve.grpc_predict_v2_pb2",
    "kserve.grpc_predict_v2_pb2_grpc",
    "kserve.model_config_pb2",
    "tensorflow.core.framework.tensor_pb2",
    "tensorflow.core.framework.tensor_shape_pb2",
    "tensorflow.core.framework.types_pb2",
    "tensorflow.core.framework.resource_handle_pb2",
    "tensorflow.core.protobuf.meta_graph_pb2",
    "tensorflow.core.protobuf.error_codes_pb2",
    "tensorflow_serving.apis.model_pb2",
    "tensorflow_serving.apis.predict_pb2",
    "tensorflow_serving.apis.get_model_metadata_pb2",
    "tensorflow_serving.apis.get_model_status_pb2",
    "tensorflow_serving.apis.model_management_pb2",
    "tensorflow_serving.apis.model_service_pb2",
    "tensorflow_serving.apis.model_service_pb2_grpc",
    "tensorflow_serving.apis.prediction_service_pb2",
    "tensorflow_serving.apis.prediction_service_pb2_grpc",
    "tensorflow_serving.util.status_pb2",
    "tensorflow_serving.config.model_server_config_pb2",
}


def test_layout_and_imports(gen):
    assert EXPECTED_MODULES <= set(gen.modules)
    for directory in [gen.out, *(p for p in gen.out.rglob("*") if p.is_dir())]:
        assert (directory / "__init__.py").is_file(), directory
    assert (gen.out / "kserve" / "grpc_predict_v2_pb2.pyi").is_file()

    # Generated code imports only through the package prefix.
    for path in gen.out.rglob("*.py*"):
        for line in path.read_text().splitlines():
            for top in ("kserve", "tensorflow", "tensorflow_serving"):
                assert not line.startswith((f"from {top} ", f"from {top}.",
                                            f"import {top}")), (path, line)

    # No top-level packages leak out (a real TensorFlow must stay importable):
    # whatever `kserve` / `tensorflow` resolve to, it is not our output.
    for top in ("kserve", "tensorflow", "tensorflow_serving"):
        spec = importlib.util.find_spec(top)
        assert spec is None or not str(spec.origin).startswith(str(gen.root)), top
        mod = sys.modules.get(top)
        assert mod is None or not str(getattr(mod, "__file__", "")).startswith(
            str(gen.root)), top

    msg = gen.grpc_predict_v2_pb2.ModelInferRequest
    assert msg.__module__ == f"{PACKAGE}.kserve.grpc_predict_v2_pb2"
    assert msg.InferInputTensor.__qualname__ == "ModelInferRequest.InferInputTensor"


def test_file_and_symbol_names(gen):
    kserve = gen.grpc_predict_v2_pb2.DESCRIPTOR
    assert kserve.name == "kserve/grpc_predict_v2.proto"
    assert kserve.package == "inference"
    assert [d.name for d in kserve.dependencies] == ["kserve/model_config.proto"]
    assert gen.predict_pb2.DESCRIPTOR.name == "tensorflow_serving/apis/predict.proto"
    assert gen.predict_pb2.DESCRIPTOR.package == "tensorflow.serving"
    assert gen.tensor_pb2.DESCRIPTOR.package == "tensorflow"
    assert gen.status_pb2.DESCRIPTOR.dependencies[0].name == \
        "tensorflow/core/protobuf/error_codes.proto"
    assert gen.error_codes_pb2.DESCRIPTOR.package == "tensorflow.error"
    assert (gen.grpc_predict_v2_pb2.DESCRIPTOR.services_by_name[
        "GRPCInferenceService"].full_name == "inference.GRPCInferenceService")


def test_private_descriptor_pool(gen):
    default = descriptor_pool.Default()
    for name, mod in pb2_modules(gen).items():
        assert mod.DESCRIPTOR.pool is gen.pool, name
        with pytest.raises(KeyError):
            default.FindFileByName(mod.DESCRIPTOR.name)
    # Triton's stubs (same symbols, other file names) live in the default pool.
    assert default.FindMessageTypeByName("inference.ModelInferRequest").file.name \
        == "grpc_service.proto"
    assert gen.pool.FindMessageTypeByName("inference.ModelInferRequest").file.name \
        == "kserve/grpc_predict_v2.proto"


def test_stubs_coexist_in_one_process_both_orders(gen):
    """Fresh interpreters: ours before and after tritonclient + ovmsclient,
    under the default (upb) and the pure-Python protobuf backends."""
    ours = (f"import {PACKAGE}.kserve.grpc_predict_v2_pb2_grpc, "
            f"{PACKAGE}.tensorflow_serving.apis.prediction_service_pb2_grpc, "
            f"{PACKAGE}.tensorflow_serving.apis.model_service_pb2_grpc")
    theirs = ("import tritonclient.grpc, tritonclient.grpc.model_config_pb2; "
              "import ovmsclient; "
              "from ovmsclient.tfs_compat.protos.tensorflow_serving.apis "
              "import prediction_service_pb2_grpc, model_service_pb2_grpc")
    env_variants = [{}, {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}]
    for extra in env_variants:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(gen.root), os.environ.get("PYTHONPATH", "")]), **extra)
        for code in (f"{ours}; {theirs}", f"{theirs}; {ours}"):
            result = subprocess.run([sys.executable, "-c", code], env=env,
                                    capture_output=True, text=True)
            assert result.returncode == 0, (extra, code, result.stderr[-2000:])


# ------------------------------------------- descriptors vs Triton (KServe)


def _triton_files():
    return [tr_service.DESCRIPTOR, tr_config.DESCRIPTOR]


def test_kserve_messages_match_triton(gen):
    ours_files = [gen.grpc_predict_v2_pb2.DESCRIPTOR, gen.model_config_pb2.DESCRIPTOR]
    ours = {d.full_name: d for f in ours_files for d in walk_messages(f)}
    theirs = {d.full_name: d for f in _triton_files() for d in walk_messages(f)}
    # Full copy of Triton 2.51's grpc_service.proto + model_config.proto.
    assert set(ours) == set(theirs)
    for name in sorted(ours):
        assert fields_of(ours[name]) == fields_of(theirs[name]), name
        assert [o.name for o in ours[name].oneofs] == \
            [o.name for o in theirs[name].oneofs], name
        assert ours[name].GetOptions().map_entry == \
            theirs[name].GetOptions().map_entry, name


def test_kserve_enums_match_triton(gen):
    ours_files = [gen.grpc_predict_v2_pb2.DESCRIPTOR, gen.model_config_pb2.DESCRIPTOR]
    ours = {e.full_name: e for f in ours_files for e in walk_enums(f)}
    theirs = {e.full_name: e for f in _triton_files() for e in walk_enums(f)}
    assert set(ours) == set(theirs)
    for name in ours:
        assert {v.name: v.number for v in ours[name].values} == \
            {v.name: v.number for v in theirs[name].values}, name
    assert gen.model_config_pb2.TYPE_STRING == 13
    assert gen.model_config_pb2.TYPE_BF16 == 14


def test_kserve_service_matches_triton(gen):
    ours = gen.grpc_predict_v2_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    theirs = tr_service.DESCRIPTOR.services_by_name["GRPCInferenceService"]

    def methods(svc):
        return {m.name: (m.input_type.full_name, m.output_type.full_name,
                         m.client_streaming, m.server_streaming)
                for m in svc.methods}

    assert methods(ours) == methods(theirs)
    our_paths = stub_paths(gen.grpc_predict_v2_pb2_grpc.GRPCInferenceServiceStub)
    assert our_paths == stub_paths(tr_service_grpc.GRPCInferenceServiceStub)
    assert our_paths["/inference.GRPCInferenceService/ModelInfer"] == "unary_unary"
    assert our_paths["/inference.GRPCInferenceService/ModelStreamInfer"] == "stream_stream"


# ------------------------------------- descriptors vs ovmsclient (TF-Serving)


def _to_ovmsclient(name):
    # ovmsclient vendors the TF protos with `tensorflow` renamed `ovmsclient`.
    assert name.startswith("tensorflow.") or name.startswith("google.protobuf."), name
    return "ovmsclient." + name[len("tensorflow."):] if name.startswith("tensorflow.") else name


def _from_ovmsclient(name):
    return "tensorflow." + name[len("ovmsclient."):] if name.startswith("ovmsclient.") else name


# Deliberate differences: ours follows newer upstream in a few places
# (ours-only) and models a subset elsewhere (theirs-only).
TFS_FIELD_DIFFERENCES = {
    "tensorflow.TensorProto": ({"float8_val"}, set()),
    "tensorflow.SignatureDef": ({"defaults"}, set()),
    "tensorflow.TensorInfo": (set(), {"composite_tensor"}),
    "tensorflow.serving.ModelConfig": (set(), {"logging_config"}),
    "tensorflow.serving.FileSystemStoragePathSourceConfig": (set(), {
        "servables", "servable_name", "base_path",
        "file_system_poll_wait_seconds", "fail_if_zero_versions_at_startup",
        "servable_versions_always_present"}),
}
TFS_ENUM_DIFFERENCES = {
    "tensorflow.DataType": ({
        "DT_FLOAT8_E5M2", "DT_FLOAT8_E4M3FN", "DT_INT4", "DT_UINT4",
        "DT_FLOAT8_E5M2_REF", "DT_FLOAT8_E4M3FN_REF", "DT_INT4_REF", "DT_UINT4_REF",
    }, set()),
}
TFS_MESSAGES_ONLY_OURS = {"tensorflow.SerializedDType", "tensorflow.SignatureDef.DefaultsEntry"}


def _tfs_files(gen):
    return [m.DESCRIPTOR for k, m in pb2_modules(gen).items()
            if k.startswith(("tensorflow.", "tensorflow_serving."))]


def test_tfs_messages_match_ovmsclient(gen):
    default = descriptor_pool.Default()
    compared = set()
    for file_desc in _tfs_files(gen):
        for desc in walk_messages(file_desc):
            try:
                theirs = default.FindMessageTypeByName(_to_ovmsclient(desc.full_name))
            except KeyError:
                assert desc.full_name in TFS_MESSAGES_ONLY_OURS, desc.full_name
                continue
            compared.add(desc.full_name)
            ours_f = fields_of(desc)
            theirs_f = fields_of(theirs, _from_ovmsclient)
            only_ours, only_theirs = TFS_FIELD_DIFFERENCES.get(desc.full_name, (set(), set()))
            assert set(ours_f) - set(theirs_f) == only_ours, desc.full_name
            assert set(theirs_f) - set(ours_f) == only_theirs, desc.full_name
            for name in set(ours_f) & set(theirs_f):
                assert ours_f[name] == theirs_f[name], (desc.full_name, name)
            # No field number is reused for a different field.
            ours_numbers = {v[0]: k for k, v in ours_f.items()}
            theirs_numbers = {v[0]: k for k, v in theirs_f.items()}
            for number in set(ours_numbers) & set(theirs_numbers):
                assert ours_numbers[number] == theirs_numbers[number], (desc.full_name, number)
    for must in ("tensorflow.TensorProto", "tensorflow.TensorShapeProto.Dim",
                 "tensorflow.serving.PredictRequest", "tensorflow.serving.ModelSpec",
                 "tensorflow.serving.GetModelMetadataResponse",
                 "tensorflow.serving.ModelVersionStatus", "tensorflow.serving.StatusProto",
                 "tensorflow.serving.ReloadConfigRequest",
                 "tensorflow.serving.ModelServerConfig"):
        assert must in compared


def test_tfs_enums_match_ovmsclient(gen):
    default = descriptor_pool.Default()
    for file_desc in _tfs_files(gen):
        for enum in walk_enums(file_desc):
            theirs = default.FindEnumTypeByName(_to_ovmsclient(enum.full_name))
            ours_v = {v.name: v.number for v in enum.values}
            theirs_v = {v.name: v.number for v in theirs.values}
            only_ours, only_theirs = TFS_ENUM_DIFFERENCES.get(enum.full_name, (set(), set()))
            assert set(ours_v) - set(theirs_v) == only_ours, enum.full_name
            assert set(theirs_v) - set(ours_v) == only_theirs, enum.full_name
            for name in set(ours_v) & set(theirs_v):
                assert ours_v[name] == theirs_v[name], (enum.full_name, name)
    assert gen.types_pb2.DT_HALF == 19 and gen.types_pb2.DT_STRING == 7
    assert gen.get_model_status_pb2.ModelVersionStatus.AVAILABLE == 30


def test_tfs_services_match_ovmsclient(gen):
    assert stub_paths(gen.prediction_service_pb2_grpc.PredictionServiceStub) == \
        stub_paths(om_prediction_service_grpc.PredictionServiceStub)
    assert stub_paths(gen.model_service_pb2_grpc.ModelServiceStub) == \
        stub_paths(om_model_service_grpc.ModelServiceStub)
    paths = stub_paths(gen.prediction_service_pb2_grpc.PredictionServiceStub)
    assert "/tensorflow.serving.PredictionService/Predict" in paths
    assert "/tensorflow.serving.PredictionService/GetModelMetadata" in paths
    assert "/tensorflow.serving.ModelService/GetModelStatus" in \
        stub_paths(gen.model_service_pb2_grpc.ModelServiceStub)


# ----------------------------------------------------------- generate.py


def test_generate_refuses_foreign_directory(gen, tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("not generated")
    result = subprocess.run(
        [sys.executable, str(REPO / "proto" / "generate.py"), str(REPO / "proto"),
         str(target)],
        capture_output=True, text=True,
    )
    assert result.returncode != 0
    assert (target / "keep.txt").read_text() == "not generated"


def test_generate_default_package_and_regenerate(tmp_path):
    target = tmp_path / "_gen"
    cmd = [sys.executable, str(REPO / "proto" / "generate.py"), str(REPO / "proto"),
           str(target)]
    for _ in range(2):  # second run replaces its own earlier output
        result = subprocess.run(cmd, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    text = (target / "kserve" / "grpc_predict_v2_pb2_grpc.py").read_text()
    assert "from ovfast._gen.kserve import grpc_predict_v2_pb2 as" in text
    text = (target / "tensorflow_serving" / "apis" / "predict_pb2.py").read_text()
    assert "from ovfast._gen.tensorflow.core.framework import tensor_pb2 as" in text
    assert "from ovfast._gen import _pool as _ovfast_pool" in text
    assert "_descriptor_pool.Default()" not in text
    assert not list(tmp_path.glob("._gen.*")), "staging directory left behind"
