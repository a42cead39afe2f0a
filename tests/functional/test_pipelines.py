"""DAG pipelines served like models, against a real server with real clients: parallel branches and a
chain of model nodes over KServe (gRPC and REST, tritonclient) and TFS (gRPC and REST, ovmsclient);
demultiplexing a model's rows into sub-requests gathered back in order (at the response and at a node);
PNG images into a pipeline whose first node takes images; metadata, status and OVMS's pipeline metrics;
invalid definitions reported in the pipeline's status with OVMS's message while everything else serves.
Models are built here with the openvino API."""
from __future__ import annotations

import io
import json
import urllib.request
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from openvino import opset13 as ops
from ovmsclient import make_grpc_client, make_http_client
from tritonclient.utils import InferenceServerException

from lifecycle_util import states

pytestmark = pytest.mark.timeout(300)


def _save(model: ov.Model, base: Path) -> str:
    (base / "1").mkdir(parents=True, exist_ok=True)
    ov.save_model(model, base / "1" / "model.xml", compress_to_fp16=False)
    return str(base)


def _named(node, name):
    node.output(0).get_tensor().set_names({name})
    return node


def build_affine(base: Path) -> str:
    """x FP32 [1,4] -> y = 2x + 1, z = 3x."""
    x = _named(ops.parameter([1, 4], ov.Type.f32, name="x"), "x")
    y = _named(ops.add(ops.multiply(x, ops.constant(np.float32(2))), ops.constant(np.float32(1))), "y")
    z = _named(ops.multiply(x, ops.constant(np.float32(3))), "z")
    return _save(ov.Model([ops.result(y), ops.result(z)], [x], "affine"), base)


def build_rows(base: Path) -> str:
    """x FP32 [1,2] -> rows FP32 [3,1,2]: row i is x * (i + 1)."""
    x = _named(ops.parameter([1, 2], ov.Type.f32, name="x"), "x")
    parts = [ops.unsqueeze(ops.multiply(x, ops.constant(np.float32(i + 1))), ops.constant(np.int64(0)))
             for i in range(3)]
    rows = _named(ops.concat(parts, 0), "rows")
    return _save(ov.Model([ops.result(rows)], [x], "rows"), base)


def build_plus10(base: Path, shape) -> str:
    """x FP32 ``shape`` -> y = x + 10."""
    x = _named(ops.parameter(shape, ov.Type.f32, name="x"), "x")
    y = _named(ops.add(x, ops.constant(np.float32(10))), "y")
    return _save(ov.Model([ops.result(y)], [x], "plus10"), base)


def build_pixels(base: Path) -> str:
    """img FP32 [1,4,4,3] (NHWC) -> mean FP32 [1,3]: the mean of each channel."""
    x = _named(ops.parameter([1, 4, 4, 3], ov.Type.f32, name="img"), "img")
    m = _named(ops.reduce_mean(x, ops.constant(np.array([1, 2], np.int64)), False), "mean")
    return _save(ov.Model([ops.result(m)], [x], "pixels"), base)


def src(node, item):
    return {"node_name": node, "data_item": item}


def dl(name, model, inputs, outputs, **kw):
    return {"name": name, "type": "DL model", "model_name": model, "inputs": inputs,
            "outputs": [{"data_item": o, "alias": o} for o in outputs], **kw}


PIPELINES = [
    {"name": "branches", "inputs": ["in"], "nodes": [
        dl("a", "affine", [{"x": src("request", "in")}], ["y", "z"]),
        dl("b", "affine", [{"x": src("request", "in")}], ["y", "z"]),
        dl("c", "affine", [{"x": src("a", "y")}], ["y"])],
     "outputs": [{"a_z": src("a", "z")}, {"b_y": src("b", "y")}, {"c_y": src("c", "y")}]},
    {"name": "demux", "inputs": ["in"], "nodes": [
        dl("split", "rows", [{"x": src("request", "in")}], ["rows"], demultiply_count=3),
        dl("row", "plus10", [{"x": src("split", "rows")}], ["y"]),
        dl("join", "plus10_rows", [{"x": src("row", "y")}], ["y"], gather_from="split")],
     "outputs": [{"each": src("row", "y")}, {"joined": src("join", "y")}]},
    {"name": "images", "inputs": ["picture"], "nodes": [
        dl("px", "pixels", [{"img": src("request", "picture")}], ["mean"])],
     "outputs": [{"mean": src("px", "mean")}]},
    {"name": "images_rgb", "inputs": ["picture"], "nodes": [
        dl("px", "pixels_rgb", [{"img": src("request", "picture")}], ["mean"])],
     "outputs": [{"mean": src("px", "mean")}]},
    {"name": "images_nchw", "inputs": ["picture"], "nodes": [
        dl("px", "pixels_nchw", [{"img": src("request", "picture")}], ["mean"])],
     "outputs": [{"mean": src("px", "mean")}]},
    {"name": "per_image", "inputs": ["picture"], "demultiply_count": 0, "nodes": [
        dl("px", "pixels", [{"img": src("request", "picture")}], ["mean"])],
     "outputs": [{"mean": src("px", "mean")}]},
    {"name": "per_item", "inputs": ["in"], "demultiply_count": 0, "nodes": [
        dl("a", "affine", [{"x": src("request", "in")}], ["z"])],
     "outputs": [{"out": src("a", "z")}]},
    {"name": "broken", "inputs": ["in"], "nodes": [
        dl("a", "affine", [{"x": src("b", "y")}], ["y"]),
        dl("b", "affine", [{"x": src("a", "y")}], ["y"])],
     "outputs": [{"out": src("b", "y")}]},
    {"name": "nomodel", "inputs": ["in"], "nodes": [dl("a", "ghost", [{"x": src("request", "in")}], ["y"])],
     "outputs": [{"out": src("a", "y")}]},
]


@pytest.fixture(scope="module")
def dag_server(tmp_path_factory, ovfast_server_session):
    root = tmp_path_factory.mktemp("dag")
    models = {"affine": build_affine(root / "affine"), "rows": build_rows(root / "rows"),
              "plus10": build_plus10(root / "plus10", [1, 2]),
              "plus10_rows": build_plus10(root / "plus10_rows", [3, 1, 2]),
              "pixels": build_pixels(root / "pixels")}
    models["pixels_rgb"] = models["pixels_nchw"] = models["pixels"]
    extra = {"pixels": {"layout": "NHWC"}, "pixels_rgb": {"layout": "NHWC", "color_format": "RGB"},
             "pixels_nchw": {"layout": "NCHW"}}
    entries = [{"config": {"name": k, "base_path": v, "plugin_config": {"INFERENCE_PRECISION_HINT": "f32"},
                           **extra.get(k, {})}} for k, v in models.items()]
    cfg = root / "config.json"
    cfg.write_text(json.dumps({"model_config_list": entries, "pipeline_config_list": PIPELINES,
                               "monitoring": {"metrics": {"enable": True}}}))
    return ovfast_server_session("--config_path", str(cfg), "--file_system_poll_wait_seconds", "0")


X = np.array([[1.0, -2.0, 0.5, 4.0]], np.float32)


def _kserve_infer(client, mod, name, arrays):
    inputs = []
    for key, arr in arrays.items():
        i = mod.InferInput(key, list(arr.shape), "FP32")
        i.set_data_from_numpy(arr)
        inputs.append(i)
    return client.infer(name, inputs)


def _check_branches(out):
    np.testing.assert_allclose(out["a_z"], 3 * X)
    np.testing.assert_allclose(out["b_y"], 2 * X + 1)
    np.testing.assert_allclose(out["c_y"], 2 * (2 * X + 1) + 1)


def test_parallel_branches_on_every_api(dag_server):
    g = grpcclient.InferenceServerClient(dag_server.grpc_url)
    h = httpclient.InferenceServerClient(dag_server.http_url)
    for client, mod in ((g, grpcclient), (h, httpclient)):
        for _ in range(3):
            r = _kserve_infer(client, mod, "branches", {"in": X})
            _check_branches({k: r.as_numpy(k) for k in ("a_z", "b_y", "c_y")})
    for make, url in ((make_grpc_client, dag_server.grpc_url), (make_http_client, dag_server.http_url)):
        out = make(url).predict({"in": X}, "branches")
        _check_branches(out)


def test_metadata_and_status_like_a_model(dag_server):
    g = grpcclient.InferenceServerClient(dag_server.grpc_url)
    md = g.get_model_metadata("branches")
    assert md.versions == ["1"]
    assert [(i.name, i.datatype, list(i.shape)) for i in md.inputs] == [("in", "FP32", [1, 4])]
    assert [(o.name, list(o.shape)) for o in md.outputs] == [("a_z", [1, 4]), ("b_y", [1, 4]), ("c_y", [1, 4])]
    assert g.is_model_ready("branches")
    cfg = g.get_model_config("branches", as_json=True)["config"]
    assert [i["name"] for i in cfg["input"]] == ["in"]
    _kserve_infer(g, grpcclient, "branches", {"in": X})
    (stats,) = g.get_inference_statistics("branches", as_json=True)["model_stats"]
    assert (stats["version"], int(stats["inference_stats"]["success"]["count"]) >= 1) == ("1", True)
    tfs = make_grpc_client(dag_server.grpc_url)
    assert tfs.get_model_status("branches") == {1: {"state": "AVAILABLE", "error_code": 0, "error_message": "OK"}}
    md = make_http_client(dag_server.http_url).get_model_metadata("demux")
    assert md["inputs"]["in"]["shape"] == [1, 2]
    assert md["outputs"]["each"]["shape"] == [3, 1, 2] and md["outputs"]["joined"]["shape"] == [3, 1, 2]


def test_demultiplexed_rows_come_back_in_order(dag_server):
    g = grpcclient.InferenceServerClient(dag_server.grpc_url)
    x = np.array([[1.5, -3.0]], np.float32)
    r = _kserve_infer(g, grpcclient, "demux", {"in": x})
    rows = np.stack([x * (i + 1) for i in range(3)])  # [3,1,2]
    np.testing.assert_allclose(r.as_numpy("each"), rows + 10)
    np.testing.assert_allclose(r.as_numpy("joined"), rows + 20)


def test_demultiplexing_at_the_entry(dag_server):
    """Pipeline-level demultiply_count: the client sends an extra leading dimension, each item runs alone."""
    g = grpcclient.InferenceServerClient(dag_server.grpc_url)
    md = g.get_model_metadata("per_item")
    assert list(md.inputs[0].shape) == [-1, 1, 4] and list(md.outputs[0].shape) == [-1, 1, 4]
    x = np.stack([X, X + 1, X * 2])  # [3, 1, 4]
    np.testing.assert_allclose(_kserve_infer(g, grpcclient, "per_item", {"in": x}).as_numpy("out"), 3 * x)


def test_png_into_a_pipeline_whose_first_node_takes_images(dag_server):
    image = pytest.importorskip("PIL.Image")
    buf = io.BytesIO()
    image.new("RGB", (4, 4), (10, 20, 30)).save(buf, format="PNG")
    g = grpcclient.InferenceServerClient(dag_server.grpc_url)
    i = grpcclient.InferInput("picture", [1], "BYTES")
    i.set_data_from_numpy(np.array([buf.getvalue()], dtype=np.object_))
    out = g.infer("images", [i]).as_numpy("mean")
    np.testing.assert_allclose(out, [[30, 20, 10]])  # decoded as BGR, as OVMS


def _png(rgb: tuple[int, int, int]) -> bytes:
    image = pytest.importorskip("PIL.Image")
    buf = io.BytesIO()
    image.new("RGB", (4, 4), rgb).save(buf, format="PNG")
    return buf.getvalue()


def test_images_into_pipelines_as_their_models_take_them(dag_server):
    """The pipeline decodes as its model nodes need: RGB when they are configured so; one image per item
    when the entry demultiplexes ([N] images -> [N,1,H,W,C]); refused with OVMS's message when a model
    node's layout does not take NHWC images."""
    g = grpcclient.InferenceServerClient(dag_server.grpc_url)
    h = httpclient.InferenceServerClient(dag_server.http_url)

    def send(client, mod, name, images):
        i = mod.InferInput("picture", [len(images)], "BYTES")
        i.set_data_from_numpy(np.array(images, dtype=np.object_))
        return client.infer(name, [i]).as_numpy("mean")

    np.testing.assert_allclose(send(g, grpcclient, "images_rgb", [_png((10, 20, 30))]), [[10, 20, 30]])
    assert list(g.get_model_metadata("per_image").inputs[0].shape) == [-1, 1, 4, 4, 3]
    out = send(h, httpclient, "per_image", [_png((10, 20, 30)), _png((1, 2, 3)), _png((7, 8, 9))])
    np.testing.assert_allclose(out, [[[30, 20, 10]], [[3, 2, 1]], [[9, 8, 7]]])  # in order, BGR
    for client, mod, status in ((g, grpcclient, "INVALID_ARGUMENT"), (h, httpclient, "400")):
        with pytest.raises(InferenceServerException) as e:
            send(client, mod, "images_nchw", [_png((10, 20, 30))])
        assert e.value.message() == ("Received binary image input but resource not configured to accept NHWC "
                                     "layout; input name: picture") and status in str(e.value.status())


def test_invalid_definitions_say_why_and_the_rest_serves(dag_server):
    st = states(dag_server)
    assert st["broken"] == {"1": "LOADING"} and st["nomodel"] == {"1": "LOADING"}
    tfs = make_grpc_client(dag_server.grpc_url)  # TFS status carries the reason (/v1/config repeats the code)
    broken = tfs.get_model_status("broken")[1]
    assert (broken["state"], broken["error_code"]) == ("LOADING", 9)  # FAILED_PRECONDITION
    assert broken["error_message"].startswith("Pipeline definition contains a cycle")
    nomodel = tfs.get_model_status("nomodel")[1]
    assert nomodel["error_message"].startswith("Pipeline definition has reference to missing model - node: a "
                                               "model: ghost")
    g = grpcclient.InferenceServerClient(dag_server.grpc_url)
    h = httpclient.InferenceServerClient(dag_server.http_url)
    for client, mod, code in ((g, grpcclient, "UNAVAILABLE"), (h, httpclient, "503")):
        # OVMS's pipeline wording (PIPELINE_DEFINITION_NOT_LOADED_YET), not the model one
        with pytest.raises(InferenceServerException) as e:
            _kserve_infer(client, mod, "broken", {"in": X})
        assert e.value.message() == "Pipeline is not loaded yet" and code in str(e.value.status())
    with pytest.raises(Exception, match="Pipeline is not loaded yet"):
        tfs.predict({"in": X}, "nomodel")
    assert not g.is_model_ready("broken")
    _check_branches({k: _kserve_infer(g, grpcclient, "branches", {"in": X}).as_numpy(k)
                     for k in ("a_z", "b_y", "c_y")})


def test_bad_requests_are_refused_cleanly(dag_server):
    g = grpcclient.InferenceServerClient(dag_server.grpc_url)
    with pytest.raises(InferenceServerException, match=r"Invalid input shape - Expected: \(1,4\); Actual: \(1,5\)"):
        _kserve_infer(g, grpcclient, "branches", {"in": np.zeros((1, 5), np.float32)})
    with pytest.raises(InferenceServerException, match="Missing input with specific name - Required input: in"):
        _kserve_infer(g, grpcclient, "branches", {"other": X})
    with pytest.raises(InferenceServerException, match="Invalid input precision"):
        i = grpcclient.InferInput("in", [1, 4], "INT32")
        i.set_data_from_numpy(X.astype(np.int32))
        g.infer("branches", [i])
    _check_branches({k: _kserve_infer(g, grpcclient, "branches", {"in": X}).as_numpy(k)
                     for k in ("a_z", "b_y", "c_y")})


def test_pipeline_metrics_as_ovms(dag_server):
    g = grpcclient.InferenceServerClient(dag_server.grpc_url)
    _kserve_infer(g, grpcclient, "demux", {"in": np.ones((1, 2), np.float32)})
    with urllib.request.urlopen(f"http://{dag_server.http_url}/metrics", timeout=30) as r:
        text = r.read().decode()
    ok = [line for line in text.splitlines() if line.startswith(
        'ovms_requests_success{api="KServe",interface="gRPC",method="ModelInfer",name="demux",version="1"}')]
    assert ok and float(ok[0].split()[-1]) >= 1
    assert 'ovms_request_time_us_count{interface="gRPC",name="demux",version="1"}' in text


def _scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{url}/metrics", timeout=30) as r:
        lines = r.read().decode().splitlines()
    return {k: float(v) for k, v in (line.rsplit(" ", 1) for line in lines if line and not line.startswith("#"))}


def test_models_count_their_pipeline_traffic(dag_server):
    """OVMS counts a model node's executions in its model's own families (spec/ovms.md §6.1, §8): requests
    under the pipeline request's api/interface/method, inference and wait times; the request time stays
    the pipeline's. Triton statistics count them too. demux runs rows once, plus10 three times (one per
    demultiplexed row) and plus10_rows once per request."""
    g = grpcclient.InferenceServerClient(dag_server.grpc_url)
    runs = {"rows": 1, "plus10": 3, "plus10_rows": 1}

    def triton(model: str) -> int:
        (s,) = g.get_inference_statistics(model, as_json=True)["model_stats"]
        return int(s["inference_stats"]["success"].get("count", 0))

    before, stats_before = _scrape(dag_server.http_url), {m: triton(m) for m in runs}
    for _ in range(2):
        _kserve_infer(g, grpcclient, "demux", {"in": np.ones((1, 2), np.float32)})
    make_http_client(dag_server.http_url).predict({"in": np.ones((1, 2), np.float32)}, "demux")
    after = _scrape(dag_server.http_url)

    def moved(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    for model, n in runs.items():
        v = f'name="{model}",version="1"'
        assert moved(f'ovms_requests_success{{api="KServe",interface="gRPC",method="ModelInfer",{v}}}') == 2 * n
        assert moved(f'ovms_requests_success{{api="TensorFlowServing",interface="REST",method="Predict",{v}}}') == n
        assert moved(f"ovms_inference_time_us_count{{{v}}}") == 3 * n
        assert moved(f"ovms_wait_for_infer_req_time_us_count{{{v}}}") == 3 * n
        assert moved(f'ovms_request_time_us_count{{interface="gRPC",{v}}}') == 0
        assert after[f"ovms_current_requests{{{v}}}"] == 0
        assert triton(model) - stats_before[model] == 3 * n
    assert moved('ovms_requests_success{api="KServe",interface="gRPC",method="ModelInfer",name="demux",version="1"}') == 2
