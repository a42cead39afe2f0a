"""Pipelines over dynamically batched models and dynamic demultiplexing, against a real server: many
concurrent pipeline requests through a model node with ``dynamic_batching`` each get their own rows back;
a dynamic demultiplexer splits as many rows as a request brings, and one with no rows gets OVMS's answer
(gRPC ABORTED, HTTP 204) while the server keeps serving."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import openvino as ov
import pytest
import tritonclient.grpc as grpcclient
from openvino import opset13 as ops
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.timeout(300)


def _model(base: Path, shape, scale: float, shift: float) -> str:
    """x FP32 ``shape`` -> y = scale * x + shift."""
    x = ops.parameter(ov.PartialShape(shape), ov.Type.f32, name="x")
    x.output(0).get_tensor().set_names({"x"})
    y = ops.add(ops.multiply(x, ops.constant(np.float32(scale))), ops.constant(np.float32(shift)))
    y.output(0).get_tensor().set_names({"y"})
    (base / "1").mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.Model([ops.result(y)], [x], "affine"), base / "1" / "model.xml", compress_to_fp16=False)
    return str(base)


def node(name, model, source, item, **kw):
    return {"name": name, "type": "DL model", "model_name": model,
            "inputs": [{"x": {"node_name": source, "data_item": item}}],
            "outputs": [{"data_item": "y", "alias": "y"}], **kw}


@pytest.fixture(scope="module")
def server(tmp_path_factory, ovfast_server_session):
    root = tmp_path_factory.mktemp("dagbatch")
    f32 = {"INFERENCE_PRECISION_HINT": "f32"}
    models = [
        {"name": "batched", "base_path": _model(root / "batched", [-1, 4], 2, 1), "plugin_config": f32,
         "dynamic_batching": {"max_batch_size": 8, "max_queue_delay_us": 2000}},
        {"name": "rows", "base_path": _model(root / "rows", [-1, 2], 1, 1), "plugin_config": f32},
        {"name": "row", "base_path": _model(root / "row", [2], 1, 10), "plugin_config": f32},
    ]
    pipelines = [
        {"name": "via_batcher", "inputs": ["in"], "nodes": [node("b", "batched", "request", "in")],
         "outputs": [{"out": {"node_name": "b", "data_item": "y"}}]},
        {"name": "split", "inputs": ["in"], "nodes": [
            node("rows", "rows", "request", "in", demultiply_count=-1), node("row", "row", "rows", "y")],
         "outputs": [{"out": {"node_name": "row", "data_item": "y"}}]},
    ]
    cfg = root / "config.json"
    cfg.write_text(json.dumps({"model_config_list": [{"config": m} for m in models],
                               "pipeline_config_list": pipelines}))
    return ovfast_server_session("--config_path", str(cfg), "--file_system_poll_wait_seconds", "0")


def infer(url: str, name: str, x: np.ndarray) -> np.ndarray:
    client = grpcclient.InferenceServerClient(url)
    i = grpcclient.InferInput("in", list(x.shape), "FP32")
    i.set_data_from_numpy(x)
    return client.infer(name, [i]).as_numpy("out")


def test_concurrent_requests_through_a_batching_model_node(server):
    xs = [np.full((1, 4), float(k), np.float32) + np.arange(4, dtype=np.float32) for k in range(64)]
    with ThreadPoolExecutor(16) as pool:
        outs = list(pool.map(lambda x: infer(server.grpc_url, "via_batcher", x), xs))
    for x, out in zip(xs, outs):
        np.testing.assert_allclose(out, 2 * x + 1)


def test_dynamic_demultiplexing_takes_as_many_rows_as_come(server):
    for n in (1, 5):
        x = np.arange(2 * n, dtype=np.float32).reshape(n, 2)
        np.testing.assert_allclose(infer(server.grpc_url, "split", x), x + 11)  # gathered: [n, 2]


def test_no_rows_to_demultiply_is_aborted(server):
    empty = np.zeros((0, 2), np.float32)
    with pytest.raises(InferenceServerException) as info:
        infer(server.grpc_url, "split", empty)
    assert info.value.status() == str(grpc.StatusCode.ABORTED)
    assert "Pipeline execution aborted due to no content from custom node" in info.value.message()
    body = json.dumps({"inputs": [{"name": "in", "datatype": "FP32", "shape": [0, 2], "data": []}]}).encode()
    req = urllib.request.Request(f"http://{server.http_url}/v2/models/split/infer", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 204
    np.testing.assert_allclose(infer(server.grpc_url, "split", np.ones((2, 2), np.float32)), np.full((2, 2), 12))
