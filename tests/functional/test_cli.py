"""Command line: usage errors, single-model mode, the built-in demo model, config.json tolerance, ONNX."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from conftest import free_ports, ovfast_cmd
from kserve_util import assert_rest_serving, rest
from tritonclient.utils import triton_to_np_dtype

pytestmark = pytest.mark.timeout(180)

EX_USAGE = 64


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            ovfast_cmd(*args), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as e:  # it started serving instead of rejecting the arguments
        raise AssertionError(f"ovfast {args} did not exit within {timeout} s: {e.stderr!r}") from None


@pytest.fixture(scope="module")
def ports():
    return free_ports(2)


def _addr(ports):
    g, r = ports
    return [
        *("--port", str(g), "--rest_port", str(r)),
        *("--grpc_bind_address", "127.0.0.1", "--rest_bind_address", "127.0.0.1"),
    ]


USAGE_CASES = {
    "model_name_without_path": (lambda p, m, c: ["--model_name", "add", *_addr(p)], "model_path"),
    "model_path_without_name": (lambda p, m, c: ["--model_path", str(m), *_addr(p)], "model_name"),
    "config_and_model_path": (
        lambda p, m, c: ["--config_path", str(c), "--model_name", "add", "--model_path", str(m), *_addr(p)],
        None,
    ),
    "config_and_model_path_without_name": (
        lambda p, m, c: ["--config_path", str(c), "--model_path", str(m), *_addr(p)],
        None,
    ),
    "same_port": (
        lambda p, m, c: ["--model_name", "add", "--model_path", str(m), "--port", str(p[0]), "--rest_port", str(p[0])],
        "port",
    ),
    "unknown_flag": (
        lambda p, m, c: ["--model_name", "add", "--model_path", str(m), "--no_such_flag", "1", *_addr(p)],
        "no_such_flag",
    ),
    "port_out_of_range": (
        lambda p, m, c: ["--model_name", "add", "--model_path", str(m), "--port", "70000", "--rest_port", str(p[1])],
        "port",
    ),
    "non_integer_port": (
        lambda p, m, c: ["--model_name", "add", "--model_path", str(m), "--port", "abc", "--rest_port", str(p[1])],
        "port",
    ),
    "bad_log_level": (
        lambda p, m, c: ["--model_name", "add", "--model_path", str(m), *_addr(p), "--log_level", "CHATTY"],
        "log_level",
    ),
}


@pytest.mark.parametrize("case", list(USAGE_CASES))
def test_usage_errors(case, ports, model_repo, tmp_path):
    cfg = model_repo.write_config(tmp_path / "config.json", ["add"])
    build, mention = USAGE_CASES[case]
    res = run_cli(*build(ports, model_repo.paths["add"], cfg))
    assert res.returncode == EX_USAGE, (res.returncode, res.stderr)
    assert res.stderr.strip(), "usage error must explain itself on stderr"
    if mention:
        assert mention in res.stderr, res.stderr


def test_help():
    res = run_cli("--help")
    assert res.returncode == 0, res.stderr
    for flag in ("--model_name", "--model_path", "--config_path", "--port", "--rest_port"):
        assert flag in res.stdout, flag


def test_demo_model_without_model_args(ovfast_server):
    srv = ovfast_server()
    client = grpcclient.InferenceServerClient(srv.grpc_url)
    try:
        index = client.get_model_repository_index().models
        assert index, "the demo server lists no model"
        name = index[0].name
        assert client.is_model_ready(name)
        md = client.get_model_metadata(name)
        inputs = []
        for t in md.inputs:
            shape = [d if d > 0 else 1 for d in t.shape]
            np_dtype = triton_to_np_dtype(t.datatype)
            if t.datatype == "BYTES":
                arr = np.array([b"demo"] * int(np.prod(shape)), dtype=np.object_).reshape(shape)
            else:
                arr = np.ones(shape, dtype=np_dtype)
            i = grpcclient.InferInput(t.name, shape, t.datatype)
            i.set_data_from_numpy(arr)
            inputs.append(i)
        res = client.infer(name, inputs)
        resp = res.get_response()
        assert sorted(o.name for o in resp.outputs) == sorted(o.name for o in md.outputs)
        for o in md.outputs:
            got = res.as_numpy(o.name)
            assert got is not None
            assert len(got.shape) == len(o.shape)
        # REST lists it too
        r = rest(srv.http_url, "GET", "/v2/models")
        assert r.status == 200 and name in r.json()["models"]
    finally:
        client.close()
    assert srv.stop() == 0, srv.log()


def test_single_model_mode_all_flags(ovfast_server, model_repo):
    srv = ovfast_server(
        "--model_name",
        "mymodel",
        "--model_path",
        str(model_repo.paths["versioned"]),
        "--target_device",
        "CPU",
        "--nireq",
        "2",
        "--plugin_config",
        '{"PERFORMANCE_HINT":"LATENCY"}',
        "--file_system_poll_wait_seconds",
        "0",
    )
    client = grpcclient.InferenceServerClient(srv.grpc_url)
    try:
        md = client.get_model_metadata("mymodel")
        assert list(md.versions) == ["3"]  # highest version served
        x = np.arange(10, dtype=np.float32).reshape(1, 10)
        i = grpcclient.InferInput("b", [1, 10], "FP32")
        i.set_data_from_numpy(x)
        np.testing.assert_array_equal(client.infer("mymodel", [i]).as_numpy("a"), x + 3)
    finally:
        client.close()
    r = rest(
        srv.http_url,
        "POST",
        "/v2/models/mymodel/versions/3/infer",
        {"inputs": [{"name": "b", "shape": [1, 10], "datatype": "FP32", "data": [0.0] * 10}]},
    )
    assert r.status == 200, r.body
    assert r.json()["outputs"][0]["data"] == [3.0] * 10
    assert srv.stop() == 0, srv.log()


def test_config_unknown_key_in_entry(ovfast_server, model_repo, tmp_path):
    """Strict schema (OVMS): an entry with an unknown key is refused and reported; the other entries serve."""
    cfg = model_repo.write_config(
        tmp_path / "config.json",
        ["add", "two_io"],
        extra={"two_io": {"unknown_flag": True}},
    )
    srv = ovfast_server("--config_path", str(cfg))
    assert_rest_serving(srv.http_url)
    assert rest(srv.http_url, "GET", "/v2/models/add/ready").status == 200
    assert rest(srv.http_url, "GET", "/v2/models/two_io/ready").status == 404
    assert srv.stop() == 0
    assert "unknown_flag" in srv.log()


def test_config_unknown_top_level_key_is_a_usage_error(model_repo, tmp_path):
    cfg = model_repo.write_config(tmp_path / "config.json", ["add"])
    data = json.loads(cfg.read_text())
    data["some_top_level_key"] = []
    cfg.write_text(json.dumps(data))
    port, rest_port = free_ports(2)
    proc = subprocess.run(ovfast_cmd("--config_path", str(cfg), "--port", str(port), "--rest_port", str(rest_port)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 64, proc.stderr
    assert "some_top_level_key" in proc.stderr


def test_onnx_model(ovfast_server, onnx_model):
    srv = ovfast_server("--model_name", "add_onnx", "--model_path", str(onnx_model))
    client = grpcclient.InferenceServerClient(srv.grpc_url)
    try:
        md = client.get_model_metadata("add_onnx")
        assert [(t.name, t.datatype, list(t.shape)) for t in md.inputs] == [("b", "FP32", [1, 10])]
        assert [(t.name, t.datatype, list(t.shape)) for t in md.outputs] == [("a", "FP32", [1, 10])]
        x = np.linspace(-1, 1, 10, dtype=np.float32).reshape(1, 10)
        i = grpcclient.InferInput("b", [1, 10], "FP32")
        i.set_data_from_numpy(x)
        np.testing.assert_array_equal(client.infer("add_onnx", [i]).as_numpy("a"), x + 1)
    finally:
        client.close()
    assert srv.stop() == 0, srv.log()


def test_cpu_extension_must_exist(tmp_path):
    port, rest_port = free_ports(2)
    proc = subprocess.run(ovfast_cmd("--cpu_extension", str(tmp_path / "missing.so"), "--port", str(port),
                                     "--rest_port", str(rest_port)), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 64, proc.stderr
    assert "cpu_extension" in proc.stderr and "does not exist" in proc.stderr


def test_cpu_extension_that_is_not_a_library_stops_the_start(tmp_path):
    bogus = tmp_path / "not_a_library.so"
    bogus.write_bytes(b"this is not an ELF file")
    port, rest_port = free_ports(2)
    proc = subprocess.run(ovfast_cmd("--cpu_extension", str(bogus), "--port", str(port), "--rest_port", str(rest_port)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "Cannot load OpenVINO extension" in proc.stderr
