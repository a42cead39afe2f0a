"""Issue 14, point 1: one poisoned completion hurts no one.

The poison goes through a real path: a model whose output is f8e4m3 compiles and runs, but no API can
carry its result, so every one of its completions fails while its outputs are read. Its requests are
interleaved with good ones for other models over KServe gRPC (native path) and REST (the Python
completion dispatcher), many at once: every good request must come back right, every poisoned one
must fail alone with INTERNAL / 500, and nothing may hang (a lost completion would wait out the
client's timeout)."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import openvino as ov
import pytest
import tritonclient.grpc as grpcclient
from openvino import opset13 as ops

import models as M
from kserve_util import rest

ROUNDS = 40


def build_f8_output(base):
    b = ops.parameter([1, 10], ov.Type.f32, name="b")
    b.output(0).get_tensor().set_names({"b"})
    y = ops.convert(b, ov.Type.f8e4m3)
    y.output(0).get_tensor().set_names({"y"})
    (base / "1").mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.Model([ops.result(y)], [b], "f8"), base / "1" / "model.xml")
    return base


@pytest.fixture(scope="module")
def server(ovfast_server_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("poisoned")
    M.build_add(root / "add")
    M.build_add(root / "add3", addend=3.0)
    build_f8_output(root / "f8")
    cfg = {"model_config_list": [{"config": {"name": n, "base_path": str(root / n)}} for n in ("add", "add3", "f8")]}
    (root / "config.json").write_text(json.dumps(cfg))
    return ovfast_server_session("--config_path", str(root / "config.json"))


def _grpc(server, model: str, value: float):
    client = grpcclient.InferenceServerClient(server.grpc_url)
    x = np.full((1, 10), value, np.float32)
    inp = grpcclient.InferInput("b", [1, 10], "FP32")
    inp.set_data_from_numpy(x)
    try:
        out = client.infer(model, [inp], client_timeout=60)
        return "ok", out.as_numpy("y" if model == "f8" else "a")
    except grpcclient.InferenceServerException as exc:
        return exc.status(), exc.message()
    finally:
        client.close()


def _rest(server, model: str, value: float):
    body = {"inputs": [{"name": "b", "shape": [1, 10], "datatype": "FP32", "data": [value] * 10}]}
    r = rest(server.http_url, "POST", f"/v2/models/{model}/infer", body, timeout=60)
    if r.status != 200:
        return r.status, r.body.decode(errors="replace")
    return "ok", np.array(r.json()["outputs"][0]["data"], np.float32)


def test_a_failing_completion_fails_its_request_alone(server):
    jobs = []
    for i in range(ROUNDS):
        for send in (_grpc, _rest):
            jobs.append((send, "add", float(i), 1.0))
            jobs.append((send, "f8", float(i), None))
            jobs.append((send, "add3", float(i), 3.0))
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda j: (j, j[0](server, j[1], j[2])), jobs))
    for (send, model, value, addend), (kind, got) in results:
        where = f"{send.__name__} {model} {value}"
        if addend is None:
            assert kind in ("StatusCode.INTERNAL", 500), (where, kind, got)
            assert "no API can carry" in got, (where, got)
        else:
            assert kind == "ok", (where, kind, got)
            np.testing.assert_array_equal(got.ravel(), np.full(10, value + addend, np.float32), err_msg=where)
