"""Issue 14 point 8: --api_key_file (every endpoint but the KServe health probes needs
``Authorization: Bearer <key>``) and --disable_model_control (state-changing endpoints refused)."""
from __future__ import annotations

import subprocess

import grpc
import numpy as np
import pytest
import requests
import tritonclient.http as httpclient

from conftest import ovfast_cmd

from ovfast._gen.tensorflow_serving.apis import model_management_pb2 as mm_pb

pytestmark = pytest.mark.timeout(180)
KEY = "s3cr3t-Key_0123456789"
INFER = {"inputs": [{"name": "b", "datatype": "FP32", "shape": [1, 10], "data": [0.0] * 10}]}


@pytest.fixture(scope="module")
def key_server(model_repo, ovfast_server_session, tmp_path_factory):
    d = tmp_path_factory.mktemp("auth")
    key_file = d / "key.txt"
    key_file.write_text(KEY + "\n")
    cfg = model_repo.write_config(d / "config.json", ["add"])
    return ovfast_server_session("--config_path", str(cfg), "--api_key_file", str(key_file), "--metrics_enable")


def _url(srv, path: str) -> str:
    return f"http://{srv.http_url}{path}"


PROTECTED = [
    ("GET", "/v2", None), ("GET", "/v2/models", None), ("GET", "/v2/models/add", None),
    ("GET", "/v2/models/add/ready", None), ("GET", "/v2/models/add/config", None),
    ("GET", "/v2/models/stats", None), ("POST", "/v2/models/add/infer", INFER),
    ("POST", "/v2/repository/index", {}), ("GET", "/v1/config", None), ("POST", "/v1/config/reload", None),
    ("GET", "/v1/models/add", None), ("GET", "/v1/models/add/metadata", None),
    ("POST", "/v1/models/add:predict", {"instances": [[0.0] * 10]}), ("GET", "/metrics", None),
    ("GET", "/no/such/path", None),
]


@pytest.mark.parametrize("method,path,body", PROTECTED, ids=[p[1] for p in PROTECTED])
@pytest.mark.parametrize("auth", [None, "Bearer wrong", f"Basic {KEY}", f"Bearer {KEY}x", f"Bearer {KEY[:-1]}",
                                  "Bearer", "Bearer ключ"])
def test_without_the_key_every_endpoint_is_401(key_server, method, path, body, auth):
    headers = {} if auth is None else {"Authorization": auth.encode()}
    r = requests.request(method, _url(key_server, path), json=body, headers=headers, timeout=30)
    assert r.status_code == 401, (r.status_code, r.text)
    assert "API key" in r.json()["error"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("method,path,body", PROTECTED[:-1], ids=[p[1] for p in PROTECTED[:-1]])
def test_with_the_key_every_endpoint_answers(key_server, method, path, body):
    for scheme in ("Bearer", "bearer"):
        r = requests.request(method, _url(key_server, path), json=body,
                             headers={"Authorization": f"{scheme} {KEY}"}, timeout=30)
        assert r.status_code in (200, 201), (r.status_code, r.text)


@pytest.mark.parametrize("path", ["/v2/health/live", "/v2/health/ready"])
def test_health_needs_no_key(key_server, path):
    assert requests.get(_url(key_server, path), timeout=10).status_code == 200


def test_an_unauthenticated_upload_is_not_read(key_server):
    """401 comes from the headers: a 64 MB body announced by an unauthenticated client is never read."""
    import socket

    host, port = key_server.http_url.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"POST /v2/models/add/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 67108864\r\n\r\n{")
        head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 401"), head


def test_tritonclient_with_the_key(key_server):
    c = httpclient.InferenceServerClient(key_server.http_url)
    headers = {"Authorization": f"Bearer {KEY}"}
    try:
        inp = httpclient.InferInput("b", [1, 10], "FP32")
        inp.set_data_from_numpy(np.zeros((1, 10), np.float32))
        out = c.infer("add", [inp], headers=headers).as_numpy("a")
        np.testing.assert_array_equal(out, np.ones((1, 10), np.float32))
        with pytest.raises(Exception, match="API key"):
            c.get_model_metadata("add")
    finally:
        c.close()


def test_key_from_the_api_key_environment_variable(model_repo, ovfast_server, monkeypatch):
    """Without --api_key_file the key comes from API_KEY, as in OVMS."""
    monkeypatch.setenv("API_KEY", KEY)
    srv = ovfast_server("--model_name", "add", "--model_path", str(model_repo.paths["add"]))
    assert requests.get(_url(srv, "/v2/models/add"), timeout=30).status_code == 401
    assert requests.get(_url(srv, "/v2/models/add"), headers={"Authorization": f"Bearer {KEY}"},
                        timeout=30).status_code == 200


def test_key_file_problems_stop_the_start(model_repo, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    spaced = tmp_path / "spaced.txt"
    spaced.write_text("two words\n")
    for path in (tmp_path / "absent.txt", empty, spaced):
        res = subprocess.run(ovfast_cmd("--model_name", "add", "--model_path", str(model_repo.paths["add"]),
                                        "--rest_port", "1", "--api_key_file", str(path)),
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert res.returncode == 64, (path, res.returncode, res.stderr)
        assert "--api_key_file" in res.stderr


# -- --disable_model_control ------------------------------------------------------------------

@pytest.fixture(scope="module")
def locked_server(model_repo, ovfast_server_session, tmp_path_factory):
    cfg = model_repo.write_config(tmp_path_factory.mktemp("locked") / "config.json", ["add"])
    return ovfast_server_session("--config_path", str(cfg), "--disable_model_control")


def test_config_reload_is_forbidden_on_rest(locked_server):
    r = requests.post(_url(locked_server, "/v1/config/reload"), timeout=30)
    assert r.status_code == 403, r.text
    assert "disable_model_control" in r.json()["error"]
    # reading stays allowed
    assert requests.get(_url(locked_server, "/v1/config"), timeout=30).status_code == 200


def test_config_reload_is_permission_denied_on_grpc(locked_server):
    with grpc.insecure_channel(locked_server.grpc_url) as ch:
        call = ch.unary_unary("/tensorflow.serving.ModelService/HandleReloadConfigRequest",
                              request_serializer=mm_pb.ReloadConfigRequest.SerializeToString,
                              response_deserializer=mm_pb.ReloadConfigResponse.FromString)
        with pytest.raises(grpc.RpcError) as info:
            call(mm_pb.ReloadConfigRequest(), timeout=30)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "disable_model_control" in info.value.details()


def test_repository_load_and_unload_are_forbidden_on_rest_and_grpc(locked_server):
    import tritonclient.grpc as grpcclient

    for action in ("load", "unload"):
        r = requests.post(_url(locked_server, f"/v2/repository/models/add/{action}"), json={}, timeout=30)
        assert r.status_code == 403 and "disable_model_control" in r.json()["error"], (action, r.text)
    client = grpcclient.InferenceServerClient(locked_server.grpc_url)
    try:
        for call in (client.load_model, client.unload_model):
            with pytest.raises(grpcclient.InferenceServerException) as info:
                call("add")
            assert info.value.status() == "StatusCode.PERMISSION_DENIED"
            assert "disable_model_control" in info.value.message()
        assert client.is_model_ready("add")  # nothing was unloaded; reading stays allowed
        assert requests.post(_url(locked_server, "/v2/repository/index"), json={}, timeout=30).status_code == 200
    finally:
        client.close()


def test_config_reload_allowed_by_default(main_server):
    assert requests.post(_url(main_server, "/v1/config/reload"), timeout=60).status_code in (200, 201)
    with grpc.insecure_channel(main_server.grpc_url) as ch:
        call = ch.unary_unary("/tensorflow.serving.ModelService/HandleReloadConfigRequest",
                              request_serializer=mm_pb.ReloadConfigRequest.SerializeToString,
                              response_deserializer=mm_pb.ReloadConfigResponse.FromString)
        assert call(mm_pb.ReloadConfigRequest(), timeout=60).status.error_code == 0


# -- gRPC: the native server checks metadata "authorization" before it parses or forwards anything --

def test_grpc_needs_the_key_on_every_rpc_but_health(key_server):
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    from kserve_util import predict_request

    x = np.zeros((1, 10), np.float32)
    good = {"authorization": f"Bearer {KEY}"}
    with grpcclient.InferenceServerClient(key_server.grpc_url) as c:
        assert c.is_server_live() and c.is_server_ready()  # health stays open
        inp = grpcclient.InferInput("b", [1, 10], "FP32")
        inp.set_data_from_numpy(x)
        for headers in (None, {"authorization": "Bearer wrong"}, {"authorization": KEY}):
            for call in (lambda h: c.infer("add", [inp], headers=h),  # native ModelInfer
                         lambda h: c.get_model_metadata("add", headers=h),  # forwarded to Python
                         lambda h: c.is_model_ready("add", headers=h)):
                with pytest.raises(InferenceServerException) as e:
                    call(headers)
                assert "UNAUTHENTICATED" in str(e.value.status()), e.value
                assert "API key" in e.value.message()
        np.testing.assert_array_equal(c.infer("add", [inp], headers=good).as_numpy("a"), x + 1)
        np.testing.assert_array_equal(
            c.infer("add", [inp], headers={"authorization": f"bearer {KEY}"}).as_numpy("a"), x + 1)
        assert c.get_model_metadata("add", headers=good).name == "add"
    with grpc.insecure_channel(key_server.grpc_url) as ch:
        predict = ch.unary_unary("/tensorflow.serving.PredictionService/Predict",
                                 request_serializer=lambda m: m.SerializeToString(), response_deserializer=bytes)
        req = predict_request("add", {"b": x})
        with pytest.raises(grpc.RpcError) as e:
            predict(req, timeout=30)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert predict(req, timeout=30, metadata=[("authorization", f"Bearer {KEY}")])
