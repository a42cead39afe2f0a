"""KServe v2 gRPC (``inference.GRPCInferenceService``) against one shared server."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from kserve_util import IDENTITY_KEYS, grpc_input, make_infer_request, output_array, require_model
from tritonclient.grpc import service_pb2

import models as M

pytestmark = pytest.mark.timeout(120)


# -- health / metadata --------------------------------------------------------------------


def test_server_live_and_ready(grpc_client, grpc_stub):
    assert grpc_client.is_server_live()
    assert grpc_client.is_server_ready()
    assert grpc_stub.ServerLive(service_pb2.ServerLiveRequest()).live is True
    assert grpc_stub.ServerReady(service_pb2.ServerReadyRequest()).ready is True


def test_server_metadata(grpc_stub):
    md = grpc_stub.ServerMetadata(service_pb2.ServerMetadataRequest())
    assert md.name
    assert md.version


@pytest.mark.parametrize("version", ["", "1"])
def test_model_ready(grpc_client, version):
    assert grpc_client.is_model_ready("add", version) is True


def test_model_ready_versioned(grpc_client):
    assert grpc_client.is_model_ready("versioned", "3") is True
    assert grpc_client.is_model_ready("versioned") is True


@pytest.mark.parametrize("version", ["", "1"])
def test_model_metadata_add(grpc_stub, version):
    md = grpc_stub.ModelMetadata(service_pb2.ModelMetadataRequest(name="add", version=version))
    assert md.name == "add"
    assert list(md.versions) == ["1"]
    assert md.platform == "OpenVINO"
    assert [(t.name, t.datatype, list(t.shape)) for t in md.inputs] == [("b", "FP32", [1, 10])]
    assert [(t.name, t.datatype, list(t.shape)) for t in md.outputs] == [("a", "FP32", [1, 10])]


def test_model_metadata_highest_version_served(grpc_stub):
    md = grpc_stub.ModelMetadata(service_pb2.ModelMetadataRequest(name="versioned"))
    assert list(md.versions) == ["3"]


def test_model_metadata_dynamic(grpc_client):
    md = grpc_client.get_model_metadata("dynamic")
    assert [(t.name, t.datatype, list(t.shape)) for t in md.inputs] == [("x", "FP32", [-1, -1])]
    assert [(t.name, t.datatype, list(t.shape)) for t in md.outputs] == [("y", "FP32", [-1, -1])]


def test_model_metadata_two_io(grpc_stub):
    md = grpc_stub.ModelMetadata(service_pb2.ModelMetadataRequest(name="two_io"))
    assert sorted((t.name, t.datatype, tuple(t.shape)) for t in md.inputs) == [
        ("x", "FP32", (1, 4)),
        ("y", "FP32", (1, 4)),
    ]
    assert sorted((t.name, t.datatype, tuple(t.shape)) for t in md.outputs) == [
        ("prod", "FP32", (1, 4)),
        ("sum", "FP32", (1, 4)),
    ]


@pytest.mark.parametrize("key", IDENTITY_KEYS)
def test_model_metadata_dtypes(grpc_stub, model_repo, key):
    require_model(model_repo, f"identity_{key}")
    md = grpc_stub.ModelMetadata(service_pb2.ModelMetadataRequest(name=f"identity_{key}"))
    dt = M.DTYPES[key].kserve
    assert [(t.name, t.datatype, list(t.shape)) for t in md.inputs] == [("x", dt, [1, 6])]
    assert [(t.name, t.datatype, list(t.shape)) for t in md.outputs] == [("y", dt, [1, 6])]


def test_model_metadata_string(grpc_stub, model_repo):
    require_model(model_repo, "string")
    md = grpc_stub.ModelMetadata(service_pb2.ModelMetadataRequest(name="string"))
    assert [(t.name, t.datatype, list(t.shape)) for t in md.inputs] == [("s", "BYTES", [-1])]
    assert [(t.name, t.datatype, list(t.shape)) for t in md.outputs] == [("out", "BYTES", [-1])]


# -- inference --------------------------------------------------------------------------


def test_infer_add_tritonclient(grpc_client):
    x = np.linspace(-5, 5, 10, dtype=np.float32).reshape(1, 10)
    inp = grpcclient.InferInput("b", [1, 10], "FP32")
    inp.set_data_from_numpy(x)
    res = grpc_client.infer("add", [inp])
    np.testing.assert_array_equal(res.as_numpy("a"), x + 1)
    resp = res.get_response()
    assert resp.model_name == "add"
    assert [(o.name, o.datatype, list(o.shape)) for o in resp.outputs] == [("a", "FP32", [1, 10])]


def test_infer_response_uses_raw_output_contents(grpc_stub):
    x = np.full((1, 10), 2.5, np.float32)
    resp = grpc_stub.ModelInfer(make_infer_request("add", [grpc_input("b", "FP32", [1, 10], x)]))
    assert len(resp.raw_output_contents) == 1
    assert not resp.outputs[0].HasField("contents")
    assert np.frombuffer(resp.raw_output_contents[0], np.float32).tolist() == [3.5] * 10


def test_infer_typed_contents_fp32(grpc_stub):
    x = np.arange(10, dtype=np.float32).reshape(1, 10) * 0.5
    resp = grpc_stub.ModelInfer(make_infer_request("add", [grpc_input("b", "FP32", [1, 10], x, typed=True)]))
    np.testing.assert_array_equal(output_array(resp, "a"), x + 1)


@pytest.mark.parametrize("key", IDENTITY_KEYS)
def test_infer_dtype_raw(grpc_client, model_repo, key):
    require_model(model_repo, f"identity_{key}")
    d = M.DTYPES[key]
    for offset in range(2):
        x = M.dtype_values(key, offset)
        inp = grpcclient.InferInput("x", [1, 6], d.kserve)
        inp.set_data_from_numpy(x)  # BF16: float32 array, sent as raw bf16 words
        res = grpc_client.infer(f"identity_{key}", [inp])
        resp = res.get_response()
        assert [(o.name, o.datatype, list(o.shape)) for o in resp.outputs] == [("y", d.kserve, [1, 6])]
        if key == "bf16":
            assert resp.raw_output_contents[0] == M.bf16_bits(x).tobytes()
        else:
            y = res.as_numpy("y")
            assert y.dtype == x.dtype
            np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("key", [k for k in IDENTITY_KEYS if M.DTYPES[k].kserve not in ("FP16", "BF16")])
def test_infer_dtype_typed(grpc_stub, model_repo, key):
    require_model(model_repo, f"identity_{key}")
    d = M.DTYPES[key]
    x = M.dtype_values(key, 3)
    req = make_infer_request(f"identity_{key}", [grpc_input("x", d.kserve, [1, 6], x, typed=True)])
    resp = grpc_stub.ModelInfer(req)
    assert [(o.name, o.datatype, list(o.shape)) for o in resp.outputs] == [("y", d.kserve, [1, 6])]
    y = output_array(resp, "y")
    np.testing.assert_array_equal(y, x)


def test_infer_bf16_raw_words(grpc_stub, model_repo):
    require_model(model_repo, "identity_bf16")
    words = M.bf16_bits(np.array([[3.0, -0.5, 1024.0, 0.0, 1.0, -7.0]], np.float32))
    req = make_infer_request("identity_bf16", [grpc_input("x", "BF16", [1, 6], words)])
    resp = grpc_stub.ModelInfer(req)
    assert resp.outputs[0].datatype == "BF16"
    assert resp.raw_output_contents[0] == words.tobytes()


@pytest.mark.parametrize("typed", [False, True], ids=["raw", "typed"])
def test_infer_string_bytes(grpc_stub, model_repo, typed):
    require_model(model_repo, "string")
    items = [b"hello", b"", "w\u00f6rld".encode(), b"x" * 300, b"\x00\x01binary"]
    req = make_infer_request("string", [grpc_input("s", "BYTES", [len(items)], items, typed=typed)])
    resp = grpc_stub.ModelInfer(req)
    assert [(o.name, o.datatype, list(o.shape)) for o in resp.outputs] == [("out", "BYTES", [len(items)])]
    assert output_array(resp, "out").tolist() == items


def test_infer_string_tritonclient(grpc_client, model_repo):
    require_model(model_repo, "string")
    arr = np.array([b"alpha", b"beta", b"gamma"], dtype=np.object_)
    inp = grpcclient.InferInput("s", [3], "BYTES")
    inp.set_data_from_numpy(arr)
    res = grpc_client.infer("string", [inp])
    assert res.as_numpy("out").tolist() == arr.tolist()


def _two_io_inputs(x, y):
    a = grpcclient.InferInput("x", [1, 4], "FP32")
    a.set_data_from_numpy(x)
    b = grpcclient.InferInput("y", [1, 4], "FP32")
    b.set_data_from_numpy(y)
    return [a, b]


TWO_X = np.array([[1, 2, 3, 4]], np.float32)
TWO_Y = np.array([[10, 20, 30, 40]], np.float32)


def test_outputs_all_when_not_requested(grpc_client):
    res = grpc_client.infer("two_io", _two_io_inputs(TWO_X, TWO_Y))
    names = [o.name for o in res.get_response().outputs]
    assert sorted(names) == ["prod", "sum"]
    np.testing.assert_array_equal(res.as_numpy("sum"), TWO_X + TWO_Y)
    np.testing.assert_array_equal(res.as_numpy("prod"), TWO_X * TWO_Y)


@pytest.mark.parametrize("requested", [["prod"], ["sum"], ["prod", "sum"], ["sum", "prod"]])
def test_outputs_filter_and_order(grpc_client, requested):
    outs = [grpcclient.InferRequestedOutput(n) for n in requested]
    res = grpc_client.infer("two_io", _two_io_inputs(TWO_X, TWO_Y), outputs=outs)
    resp = res.get_response()
    assert [o.name for o in resp.outputs] == requested
    assert len(resp.raw_output_contents) == len(requested)
    expected = {"sum": TWO_X + TWO_Y, "prod": TWO_X * TWO_Y}
    for n in requested:
        np.testing.assert_array_equal(res.as_numpy(n), expected[n])


def test_inputs_in_any_order(grpc_stub):
    req = make_infer_request(
        "two_io", [grpc_input("y", "FP32", [1, 4], TWO_Y), grpc_input("x", "FP32", [1, 4], TWO_X)]
    )
    resp = grpc_stub.ModelInfer(req)
    np.testing.assert_array_equal(output_array(resp, "prod"), TWO_X * TWO_Y)


def test_id_echo(grpc_client, grpc_stub):
    inp = grpcclient.InferInput("b", [1, 10], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 10), np.float32))
    res = grpc_client.infer("add", [inp], request_id="req-\u00e9-42")
    assert res.get_response().id == "req-\u00e9-42"
    resp = grpc_stub.ModelInfer(make_infer_request("add", [grpc_input("b", "FP32", [1, 10], np.zeros((1, 10)))]))
    assert resp.id == ""


def test_request_parameters_ignored(grpc_stub):
    req = make_infer_request("add", [grpc_input("b", "FP32", [1, 10], np.zeros((1, 10)))])
    req.parameters["some_unknown_param"].string_param = "x"
    req.parameters["another"].int64_param = 3
    resp = grpc_stub.ModelInfer(req)
    np.testing.assert_array_equal(output_array(resp, "a"), np.ones((1, 10), np.float32))


def test_versioned_infer(grpc_stub):
    x = np.zeros((1, 10), np.float32)
    for version in ("", "3"):
        resp = grpc_stub.ModelInfer(
            make_infer_request("versioned", [grpc_input("b", "FP32", [1, 10], x)], version=version)
        )
        np.testing.assert_array_equal(output_array(resp, "a"), x + 3)
        assert resp.model_name == "versioned"
        assert resp.model_version == "3"


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (7, 2), (1, 1000)])
def test_dynamic_shapes(grpc_client, shape):
    x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
    inp = grpcclient.InferInput("x", list(shape), "FP32")
    inp.set_data_from_numpy(x)
    res = grpc_client.infer("dynamic", [inp])
    y = res.as_numpy("y")
    assert y.shape == shape
    np.testing.assert_array_equal(y, x * 2)


@pytest.mark.timeout(240)
def test_large_message_64mib(main_server):
    client = grpcclient.InferenceServerClient(
        main_server.grpc_url,
        channel_args=[("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)],
    )
    try:
        n = 16 * 1024 * 1024  # 64 MiB of FP32
        x = np.arange(n, dtype=np.float32).reshape(4, n // 4) % 1000.0
        inp = grpcclient.InferInput("x", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        res = client.infer("dynamic", [inp], client_timeout=200)
        y = res.as_numpy("y")
        assert y.shape == x.shape
        np.testing.assert_array_equal(y, x * 2)
    finally:
        client.close()


# -- Triton extension RPCs -------------------------------------------------------------


def test_model_config(grpc_client):
    cfg = grpc_client.get_model_config("add").config
    assert cfg.name == "add"
    assert cfg.platform
    ins = [(i.name, i.data_type, list(i.dims)) for i in cfg.input]
    outs = [(o.name, o.data_type, list(o.dims)) for o in cfg.output]
    from tritonclient.grpc import model_config_pb2 as mc

    full = [1, 10] if cfg.max_batch_size == 0 else [10]
    assert ins == [("b", mc.TYPE_FP32, full)]
    assert outs == [("a", mc.TYPE_FP32, full)]


def test_model_config_dtypes(grpc_client, model_repo):
    from tritonclient.grpc import model_config_pb2 as mc

    expected = {
        "identity_i8": mc.TYPE_INT8,
        "identity_u16": mc.TYPE_UINT16,
        "identity_i64": mc.TYPE_INT64,
        "identity_f64": mc.TYPE_FP64,
        "identity_f16": mc.TYPE_FP16,
        "identity_boolean": mc.TYPE_BOOL,
    }
    for name, dt in expected.items():
        require_model(model_repo, name)
        cfg = grpc_client.get_model_config(name).config
        assert [i.data_type for i in cfg.input] == [dt], name
    cfg = grpc_client.get_model_config("dynamic").config
    assert list(cfg.input[0].dims) == [-1, -1] or (cfg.max_batch_size > 0 and list(cfg.input[0].dims) == [-1])


def test_model_statistics(grpc_client):
    def success_count():
        stats = grpc_client.get_inference_statistics("add").model_stats
        entries = [s for s in stats if s.name == "add"]
        assert entries, stats
        return sum(s.inference_stats.success.count for s in entries)

    before = success_count()
    inp = grpcclient.InferInput("b", [1, 10], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 10), np.float32))
    for _ in range(3):
        grpc_client.infer("add", [inp])
    assert success_count() - before == 3


def test_model_statistics_all_models(grpc_client):
    names = {s.name for s in grpc_client.get_inference_statistics().model_stats}
    assert {"add", "two_io", "dynamic", "versioned"} <= names


def test_repository_index(grpc_client, model_repo):
    index = grpc_client.get_model_repository_index().models
    by_name = {}
    for m in index:
        by_name.setdefault(m.name, []).append(m)
    assert set(model_repo.paths) <= set(by_name)
    add = by_name["add"]
    assert any(m.state == "READY" for m in add), add
    assert any(m.version == "3" and m.state == "READY" for m in by_name["versioned"]), by_name["versioned"]
