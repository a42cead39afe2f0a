"""What the proto wire-compatibility tests share (test_protos.py, test_proto_roundtrips.py): ovfast's stubs
generated into a temporary package ``ovfast_testgen`` (the ``gen`` fixture), the descriptors shipped by
tritonclient (KServe v2 / Triton) and ovmsclient (TF-Serving), and helpers comparing them."""
from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

tritonclient_grpc = pytest.importorskip("tritonclient.grpc")
pytest.importorskip("ovmsclient")

from google.protobuf import descriptor_pool, json_format  # noqa: E402,F401 - re-exported
from google.protobuf.descriptor import FieldDescriptor  # noqa: E402
from tritonclient.grpc import model_config_pb2 as tr_config  # noqa: E402
from tritonclient.grpc import service_pb2 as tr_service  # noqa: E402
from tritonclient.grpc import service_pb2_grpc as tr_service_grpc  # noqa: E402
from ovmsclient.tfs_compat.protos.tensorflow.core.framework import (  # noqa: E402
    tensor_pb2 as om_tensor,
    types_pb2 as om_types,
)
from ovmsclient.tfs_compat.protos.tensorflow.core.example import (  # noqa: E402,F401
    example_pb2 as om_example,
)
from ovmsclient.tfs_compat.protos.tensorflow.core.protobuf import (  # noqa: E402,F401
    error_codes_pb2 as om_error_codes,
    meta_graph_pb2 as om_meta_graph,
)
from ovmsclient.tfs_compat.protos.tensorflow_serving.apis import (  # noqa: E402
    classification_pb2 as om_classification,
    get_model_metadata_pb2 as om_metadata,
    get_model_status_pb2 as om_status,
    inference_pb2 as om_inference,  # noqa: F401
    model_management_pb2 as om_management,
    model_service_pb2_grpc as om_model_service_grpc,
    predict_pb2 as om_predict,
    prediction_service_pb2_grpc as om_prediction_service_grpc,
    regression_pb2 as om_regression,  # noqa: F401
)
from ovmsclient.tfs_compat.protos.tensorflow_serving.config import (  # noqa: E402,F401
    file_system_storage_path_source_pb2 as om_fs_source,
    model_server_config_pb2 as om_server_config,
)

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "ovfast_testgen"


# --------------------------------------------------------------- the stubs


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    """ovfast's protos generated as the package ``ovfast_testgen`` and imported (a fixture: the test modules
    import it)."""
    yield from generated_stubs(tmp_path_factory)


def generated_stubs(tmp_path_factory):
    """Generates the stubs and imports every generated module; yields them as a namespace (the ``gen``
    fixture) and forgets them afterwards."""
    root = tmp_path_factory.mktemp("protogen")
    out = root / PACKAGE
    result = subprocess.run(
        [sys.executable, str(REPO / "proto" / "generate.py"),
         "--package", PACKAGE, str(REPO / "proto"), str(out)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    sys.path.insert(0, str(root))
    try:
        pkg = importlib.import_module(PACKAGE)
        modules = {}
        for info in pkgutil.walk_packages(pkg.__path__, PACKAGE + "."):
            modules[info.name[len(PACKAGE) + 1:]] = importlib.import_module(info.name)
        ns = types.SimpleNamespace(root=root, out=out, modules=modules,
                                   pool=modules["_pool"].POOL)
        for key, mod in modules.items():
            setattr(ns, key.rsplit(".", 1)[-1], mod)
        yield ns
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def pb2_modules(gen):
    return {k: m for k, m in gen.modules.items() if k.endswith("_pb2")}


# ---------------------------------------------------------------- helpers


def walk_messages(container):
    """All message descriptors (nested included) of a file or message."""
    for desc in container.message_types_by_name.values() if hasattr(
            container, "message_types_by_name") else container.nested_types:
        yield desc
        yield from walk_messages(desc)


def walk_enums(file_desc):
    yield from file_desc.enum_types_by_name.values()
    for msg in walk_messages(file_desc):
        yield from msg.enum_types


def field_facts(field, rename=lambda n: n):
    """The wire-relevant facts of one field (type names normalised by rename)."""
    return (
        field.number,
        field.type,
        field.label,
        rename(field.message_type.full_name) if field.message_type else None,
        rename(field.enum_type.full_name) if field.enum_type else None,
        field.containing_oneof.name if field.containing_oneof else None,
        field.json_name,
    )


def fields_of(desc, rename=lambda n: n):
    return {f.name: field_facts(f, rename) for f in desc.fields}


def dict_of(msg, **kw):
    return json_format.MessageToDict(msg, preserving_proto_field_name=True, **kw)


def same_bytes(a, b):
    """Equality for messages holding an Any: the pure-Python backend's ``==``
    resolves Any payloads through the default pool, where ours are absent."""
    return (a.SerializeToString(deterministic=True)
            == b.SerializeToString(deterministic=True))


def check_roundtrip(ours, their_cls):
    """ours -> bytes -> theirs -> bytes -> ours; same fields on every hop."""
    theirs = their_cls.FromString(ours.SerializeToString())
    assert dict_of(theirs) == dict_of(ours)
    back = type(ours).FromString(theirs.SerializeToString())
    assert back == ours
    return theirs


def check_reverse_roundtrip(theirs, our_cls):
    """theirs -> bytes -> ours -> bytes -> theirs."""
    ours = our_cls.FromString(theirs.SerializeToString())
    assert dict_of(ours) == dict_of(theirs)
    assert type(theirs).FromString(ours.SerializeToString()) == theirs
    return ours


class RecordingChannel:
    """Stand-in for grpc.Channel that records the method paths a stub uses."""

    def __init__(self):
        self.paths = {}

    def _record(kind):
        def method(self, path, *args, **kwargs):
            self.paths[path] = kind
            return object()
        return method

    unary_unary = _record("unary_unary")
    unary_stream = _record("unary_stream")
    stream_unary = _record("stream_unary")
    stream_stream = _record("stream_stream")


def stub_paths(stub_cls):
    channel = RecordingChannel()
    stub_cls(channel)
    return channel.paths
