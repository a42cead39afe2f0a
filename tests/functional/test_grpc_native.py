"""The gRPC port is native: ModelInfer and Predict for an AVAILABLE fixed-shape model never reach
Python, while a model with shape "auto" and every other RPC go through the Python handlers. The
server reports its native and forwarded call counts when it stops."""
from __future__ import annotations

import json
import re

import numpy as np
import tritonclient.grpc as grpcclient
from ovmsclient import make_grpc_client

import models as M

COUNTS = re.compile(r"gRPC calls: (\d+) served natively, (\d+) forwarded to Python")


def counts(srv) -> tuple[int, int]:
    assert srv.stop() == 0, srv.log()
    (found,) = COUNTS.findall(srv.stderr() + srv.stdout())
    return int(found[0]), int(found[1])


def test_fixed_shape_inference_is_native_and_auto_is_forwarded(ovfast_server, tmp_path):
    M.build_add(tmp_path / "add")
    M.build_add(tmp_path / "auto")
    cfg = {"model_config_list": [
        {"config": {"name": "add", "base_path": str(tmp_path / "add")}},
        {"config": {"name": "auto", "base_path": str(tmp_path / "auto"), "shape": "auto"}},
    ]}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    srv = ovfast_server("--config_path", str(tmp_path / "config.json"))
    x = np.arange(10, dtype=np.float32).reshape(1, 10)
    client = grpcclient.InferenceServerClient(srv.grpc_url)
    try:
        for _ in range(5):
            inp = grpcclient.InferInput(M.ADD_INPUT, [1, 10], "FP32")
            inp.set_data_from_numpy(x)
            out = client.infer("add", [inp]).as_numpy(M.ADD_OUTPUT)
            np.testing.assert_array_equal(out, x + 1)
        tfs = make_grpc_client(srv.grpc_url)
        for _ in range(3):
            np.testing.assert_array_equal(tfs.predict({M.ADD_INPUT: x}, "add"), x + 1)
        inp = grpcclient.InferInput(M.ADD_INPUT, [1, 10], "FP32")
        inp.set_data_from_numpy(x)
        np.testing.assert_array_equal(client.infer("auto", [inp]).as_numpy(M.ADD_OUTPUT), x + 1)
        assert client.is_server_live()
    finally:
        client.close()
    native, forwarded = counts(srv)
    assert native == 8, "ModelInfer x5 and Predict x3 for a fixed-shape model"
    assert forwarded >= 2, "the auto model's ModelInfer and ServerLive go to Python"


def test_grpc_workers_and_max_threads_take_effect(ovfast_server, tmp_path):
    """--grpc_workers N starts N server instances sharing the port (SO_REUSEPORT, as OVMS); each fresh
    connection lands on one of them and is served; --grpc_max_threads sets gRPC's thread quota."""
    M.build_add(tmp_path / "add")
    srv = ovfast_server("--model_name", "add", "--model_path", str(tmp_path / "add"),
                        "--grpc_workers", "2", "--grpc_max_threads", "16")
    x = np.arange(10, dtype=np.float32).reshape(1, 10)
    for _ in range(8):  # new connections: the kernel spreads them over the instances
        client = grpcclient.InferenceServerClient(srv.grpc_url)
        inp = grpcclient.InferInput(M.ADD_INPUT, [1, 10], "FP32")
        inp.set_data_from_numpy(x)
        np.testing.assert_array_equal(client.infer("add", [inp]).as_numpy(M.ADD_OUTPUT), x + 1)
        client.close()
    log = srv.log()
    assert "(2 server instances)" in log
    assert "no effect" not in log
    native, _ = counts(srv)
    assert native == 8
