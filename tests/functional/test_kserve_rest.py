"""KServe v2 REST against one shared server: plain HTTP (JSON flat/nested, binary both ways)
and tritonclient.http."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tritonclient.http as httpclient
from kserve_util import (
    IDENTITY_KEYS,
    binary_body,
    deserialize_bytes,
    require_model,
    rest,
    serialize_bytes,
    split_binary_response,
)

import models as M

pytestmark = pytest.mark.timeout(120)


# -- health / metadata --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v2/health/live", "/v2/health/ready"])
def test_health(main_server, path):
    assert rest(main_server.http_url, "GET", path).status == 200


@pytest.mark.parametrize(
    "path", ["/v2/models/add/ready", "/v2/models/add/versions/1/ready", "/v2/models/versioned/versions/3/ready"]
)
def test_model_ready(main_server, path):
    assert rest(main_server.http_url, "GET", path).status == 200


def test_tritonclient_health(http_client):
    assert http_client.is_server_live()
    assert http_client.is_server_ready()
    assert http_client.is_model_ready("add")
    assert http_client.is_model_ready("versioned", "3")


def test_server_metadata(main_server):
    r = rest(main_server.http_url, "GET", "/v2")
    assert r.status == 200
    md = r.json()
    assert isinstance(md["name"], str) and md["name"]
    assert isinstance(md["version"], str) and md["version"]


@pytest.mark.parametrize("path", ["/v2/models/add", "/v2/models/add/versions/1"])
def test_model_metadata(main_server, path):
    r = rest(main_server.http_url, "GET", path)
    assert r.status == 200, r.body
    md = r.json()
    assert md["name"] == "add"
    assert md["versions"] == ["1"]
    assert md["platform"] == "OpenVINO"
    assert md["inputs"] == [{"name": "b", "datatype": "FP32", "shape": [1, 10]}]
    assert md["outputs"] == [{"name": "a", "datatype": "FP32", "shape": [1, 10]}]


def test_model_metadata_dynamic_and_versioned(main_server, http_client):
    md = rest(main_server.http_url, "GET", "/v2/models/dynamic").json()
    assert md["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, -1]}]
    md = http_client.get_model_metadata("versioned")
    assert md["versions"] == ["3"]


def test_list_models(main_server, model_repo):
    r = rest(main_server.http_url, "GET", "/v2/models")
    assert r.status == 200, r.body
    models = r.json()["models"]
    assert isinstance(models, list)
    assert all(isinstance(m, str) for m in models), models
    assert set(model_repo.paths) <= set(models)


# -- JSON inference -----------------------------------------------------------------------


def _add_req(data, **extra):
    body = {"inputs": [{"name": "b", "shape": [1, 10], "datatype": "FP32", "data": data}]}
    body.update(extra)
    return body


X10 = [float(i) * 0.5 - 2 for i in range(10)]


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_infer_json(main_server, nested):
    data = [X10] if nested else X10
    r = rest(main_server.http_url, "POST", "/v2/models/add/infer", _add_req(data))
    assert r.status == 200, r.body
    body = r.json()
    assert body["model_name"] == "add"
    assert len(body["outputs"]) == 1
    out = body["outputs"][0]
    assert (out["name"], out["datatype"], out["shape"]) == ("a", "FP32", [1, 10])
    assert np.array(out["data"], np.float32).ravel().tolist() == [v + 1 for v in X10]


def test_infer_json_versioned_path(main_server):
    for path in ("/v2/models/versioned/versions/3/infer", "/v2/models/versioned/infer"):
        r = rest(main_server.http_url, "POST", path, _add_req(X10))
        assert r.status == 200, r.body
        body = r.json()
        assert body["outputs"][0]["data"] == [v + 3 for v in X10]
        assert body["model_version"] == "3"


def test_infer_json_id_echo(main_server):
    r = rest(main_server.http_url, "POST", "/v2/models/add/infer", _add_req(X10, id="my-id-\u00e9 7"))
    assert r.status == 200, r.body
    assert r.json()["id"] == "my-id-\u00e9 7"


def test_infer_json_unknown_parameters_ignored(main_server):
    body = _add_req(X10, parameters={"foo": "bar", "n": 3, "flag": True})
    body["inputs"][0]["parameters"] = {"whatever": 1}
    r = rest(main_server.http_url, "POST", "/v2/models/add/infer", body)
    assert r.status == 200, r.body


@pytest.mark.parametrize("requested", [["prod"], ["sum"], ["prod", "sum"], ["sum", "prod"], None])
def test_infer_json_outputs_filter(main_server, requested):
    body = {
        "inputs": [
            {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
            {"name": "y", "shape": [1, 4], "datatype": "FP32", "data": [[10, 20, 30, 40]]},
        ]
    }
    if requested is not None:
        body["outputs"] = [{"name": n} for n in requested]
    r = rest(main_server.http_url, "POST", "/v2/models/two_io/infer", body)
    assert r.status == 200, r.body
    outs = r.json()["outputs"]
    names = [o["name"] for o in outs]
    if requested is None:
        assert sorted(names) == ["prod", "sum"]
    else:
        assert names == requested
    expected = {"sum": [11, 22, 33, 44], "prod": [10, 40, 90, 160]}
    for o in outs:
        assert o["data"] == expected[o["name"]]
        assert o["shape"] == [1, 4]


@pytest.mark.parametrize("shape", [[1, 1], [3, 5], [2, 7]])
def test_infer_json_dynamic(main_server, shape):
    n = shape[0] * shape[1]
    data = [float(i) for i in range(n)]
    r = rest(
        main_server.http_url,
        "POST",
        "/v2/models/dynamic/infer",
        {"inputs": [{"name": "x", "shape": shape, "datatype": "FP32", "data": data}]},
    )
    assert r.status == 200, r.body
    out = r.json()["outputs"][0]
    assert out["shape"] == shape
    assert out["data"] == [v * 2 for v in data]


JSON_KEYS = [k for k in IDENTITY_KEYS if M.DTYPES[k].kserve not in ("FP16", "BF16")]


@pytest.mark.parametrize("key", JSON_KEYS)
def test_infer_json_dtypes(main_server, model_repo, key):
    require_model(model_repo, f"identity_{key}")
    d = M.DTYPES[key]
    x = M.dtype_values(key, 1)
    body = {"inputs": [{"name": "x", "shape": [1, 6], "datatype": d.kserve, "data": x.ravel().tolist()}]}
    r = rest(main_server.http_url, "POST", f"/v2/models/identity_{key}/infer", body)
    assert r.status == 200, r.body
    out = r.json()["outputs"][0]
    assert (out["name"], out["datatype"], out["shape"]) == ("y", d.kserve, [1, 6])
    assert np.array_equal(np.array(out["data"], dtype=d.np_dtype), x.ravel())


def test_infer_json_string(main_server, model_repo):
    require_model(model_repo, "string")
    items = ["hello", "", "w\u00f6rld", "x" * 100]
    body = {"inputs": [{"name": "s", "shape": [len(items)], "datatype": "BYTES", "data": items}]}
    r = rest(main_server.http_url, "POST", "/v2/models/string/infer", body)
    assert r.status == 200, r.body
    out = r.json()["outputs"][0]
    assert (out["name"], out["datatype"], out["shape"]) == ("out", "BYTES", [len(items)])
    assert out["data"] == items


# -- binary data extension -------------------------------------------------------------


def test_binary_input_json_output(main_server):
    x = np.arange(10, dtype=np.float32).reshape(1, 10)
    header = {"inputs": [{"name": "b", "shape": [1, 10], "datatype": "FP32", "parameters": {"binary_data_size": 40}}]}
    body, headers = binary_body(header, [x.tobytes()])
    r = rest(main_server.http_url, "POST", "/v2/models/add/infer", body, headers)
    assert r.status == 200, r.body
    out = r.json()["outputs"][0]
    assert out["data"] == (x + 1).ravel().tolist()


def test_binary_input_with_json_content_type(main_server):
    # the server decides by the Inference-Header-Content-Length header, not by Content-Type
    x = np.full((1, 10), 4.0, np.float32)
    header = {"inputs": [{"name": "b", "shape": [1, 10], "datatype": "FP32", "parameters": {"binary_data_size": 40}}]}
    body, headers = binary_body(header, [x.tobytes()])
    headers["Content-Type"] = "application/json"
    headers["inference-header-content-length"] = headers.pop("Inference-Header-Content-Length")
    r = rest(main_server.http_url, "POST", "/v2/models/add/infer", body, headers)
    assert r.status == 200, r.body
    assert r.json()["outputs"][0]["data"] == [5.0] * 10


@pytest.mark.parametrize("mode", ["per_output", "request_level"])
def test_binary_output(main_server, mode):
    x = np.linspace(0, 1, 10, dtype=np.float32).reshape(1, 10)
    body = _add_req(x.ravel().tolist(), id="bin-1")
    if mode == "per_output":
        body["outputs"] = [{"name": "a", "parameters": {"binary_data": True}}]
    else:
        body["parameters"] = {"binary_data_output": True}
    r = rest(main_server.http_url, "POST", "/v2/models/add/infer", body)
    assert r.status == 200, r.body
    assert "inference-header-content-length" in r.headers
    header, blobs = split_binary_response(r)
    assert header["id"] == "bin-1"
    out = header["outputs"][0]
    assert out["name"] == "a" and out["shape"] == [1, 10] and out["datatype"] == "FP32"
    assert out["parameters"]["binary_data_size"] == 40
    assert "data" not in out
    np.testing.assert_array_equal(np.frombuffer(blobs["a"], np.float32).reshape(1, 10), x + 1)


def test_binary_mixed_outputs_and_override(main_server):
    # request-level binary default, overridden to JSON for "sum"; order follows the request
    x = np.array([[1, 2, 3, 4]], np.float32)
    y = np.array([[5, 6, 7, 8]], np.float32)
    header = {
        "parameters": {"binary_data_output": True},
        "inputs": [
            {"name": "x", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}},
            {"name": "y", "shape": [1, 4], "datatype": "FP32", "data": y.ravel().tolist()},
        ],
        "outputs": [{"name": "prod"}, {"name": "sum", "parameters": {"binary_data": False}}],
    }
    body, headers = binary_body(header, [x.tobytes()])
    r = rest(main_server.http_url, "POST", "/v2/models/two_io/infer", body, headers)
    assert r.status == 200, r.body
    hdr, blobs = split_binary_response(r)
    assert [o["name"] for o in hdr["outputs"]] == ["prod", "sum"]
    assert set(blobs) == {"prod"}
    np.testing.assert_array_equal(np.frombuffer(blobs["prod"], np.float32), (x * y).ravel())
    assert hdr["outputs"][1]["data"] == (x + y).ravel().tolist()


def test_binary_two_inputs_two_outputs(main_server):
    x = np.array([[1.5, 2, 3, 4]], np.float32)
    y = np.array([[-1, 0.5, 2, 8]], np.float32)
    header = {
        "inputs": [
            {"name": "x", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}},
            {"name": "y", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}},
        ],
        "outputs": [
            {"name": "sum", "parameters": {"binary_data": True}},
            {"name": "prod", "parameters": {"binary_data": True}},
        ],
    }
    body, headers = binary_body(header, [x.tobytes(), y.tobytes()])
    r = rest(main_server.http_url, "POST", "/v2/models/two_io/infer", body, headers)
    assert r.status == 200, r.body
    hdr, blobs = split_binary_response(r)
    assert [o["name"] for o in hdr["outputs"]] == ["sum", "prod"]
    np.testing.assert_array_equal(np.frombuffer(blobs["sum"], np.float32), (x + y).ravel())
    np.testing.assert_array_equal(np.frombuffer(blobs["prod"], np.float32), (x * y).ravel())


def test_binary_bytes_roundtrip(main_server, model_repo):
    require_model(model_repo, "string")
    items = [b"abc", b"", b"\xff\x00z", "\u00fc".encode()]
    raw = serialize_bytes(items)
    header = {
        "inputs": [{"name": "s", "shape": [4], "datatype": "BYTES", "parameters": {"binary_data_size": len(raw)}}],
        "outputs": [{"name": "out", "parameters": {"binary_data": True}}],
    }
    body, headers = binary_body(header, [raw])
    r = rest(main_server.http_url, "POST", "/v2/models/string/infer", body, headers)
    assert r.status == 200, r.body
    hdr, blobs = split_binary_response(r)
    assert hdr["outputs"][0]["datatype"] == "BYTES"
    assert deserialize_bytes(blobs["out"]) == items


# -- tritonclient.http -----------------------------------------------------------------


# FP16/BF16 are not expressible in JSON: binary only
HTTP_DTYPE_PARAMS = [
    pytest.param(k, b, id=f"{k}-{'binary' if b else 'json'}")
    for k in IDENTITY_KEYS
    for b in (True, False)
    if b or M.DTYPES[k].kserve not in ("FP16", "BF16")
]


@pytest.mark.parametrize("key,binary", HTTP_DTYPE_PARAMS)
def test_tritonclient_http_dtypes(http_client, model_repo, key, binary):
    require_model(model_repo, f"identity_{key}")
    d = M.DTYPES[key]
    x = M.dtype_values(key, 4)
    inp = httpclient.InferInput("x", [1, 6], d.kserve)
    inp.set_data_from_numpy(x, binary_data=binary)
    out = httpclient.InferRequestedOutput("y", binary_data=binary)
    res = http_client.infer(f"identity_{key}", [inp], outputs=[out])
    y = res.as_numpy("y")
    if key == "bf16":
        np.testing.assert_array_equal(M.bf16_bits(y), M.bf16_bits(x))
    else:
        assert y.dtype == x.dtype
        np.testing.assert_array_equal(y, x)
    assert res.get_output("y")["datatype"] == d.kserve


def test_tritonclient_http_string(http_client, model_repo):
    require_model(model_repo, "string")
    arr = np.array([b"one", b"two", b"three"], dtype=np.object_)
    for binary in (True, False):
        inp = httpclient.InferInput("s", [3], "BYTES")
        inp.set_data_from_numpy(arr, binary_data=binary)
        res = http_client.infer("string", [inp], outputs=[httpclient.InferRequestedOutput("out", binary_data=binary)])
        got = [v if isinstance(v, bytes) else str(v).encode() for v in res.as_numpy("out").ravel()]
        assert got == arr.tolist()


def test_tritonclient_http_request_id_and_outputs(http_client):
    x = np.array([[1, 2, 3, 4]], np.float32)
    y = np.array([[2, 2, 2, 2]], np.float32)
    ins = []
    for name, v in (("x", x), ("y", y)):
        i = httpclient.InferInput(name, [1, 4], "FP32")
        i.set_data_from_numpy(v)
        ins.append(i)
    res = http_client.infer(
        "two_io", ins, outputs=[httpclient.InferRequestedOutput("prod")], request_id="tc-http-1"
    )
    resp = res.get_response()
    assert resp["id"] == "tc-http-1"
    assert [o["name"] for o in resp["outputs"]] == ["prod"]
    np.testing.assert_array_equal(res.as_numpy("prod"), x * y)


def test_rest_grpc_parity(main_server, grpc_client, http_client):
    import tritonclient.grpc as grpcclient

    x = np.random.default_rng(7).standard_normal((5, 3)).astype(np.float32)
    gi = grpcclient.InferInput("x", [5, 3], "FP32")
    gi.set_data_from_numpy(x)
    hi = httpclient.InferInput("x", [5, 3], "FP32")
    hi.set_data_from_numpy(x, binary_data=True)
    g = grpc_client.infer("dynamic", [gi]).as_numpy("y")
    h = http_client.infer("dynamic", [hi]).as_numpy("y")
    np.testing.assert_array_equal(g, h)
    gm = grpc_client.get_model_metadata("two_io", as_json=True)
    hm = http_client.get_model_metadata("two_io")
    assert gm["name"] == hm["name"] and gm["platform"] == hm["platform"] and gm["versions"] == hm["versions"]
    norm = lambda ts: [(t["name"], t["datatype"], [int(s) for s in t["shape"]]) for t in ts]  # noqa: E731
    assert norm(gm["inputs"]) == norm(hm["inputs"])
    assert norm(gm["outputs"]) == norm(hm["outputs"])


def test_keep_alive_connection_many_requests(main_server):
    import http.client

    host, port = main_server.http_url.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        for i in range(20):
            conn.request(
                "POST",
                "/v2/models/add/infer",
                body=json.dumps(_add_req([float(i)] * 10)),
                headers={"Content-Type": "application/json"},
            )
            r = conn.getresponse()
            data = r.read()
            assert r.status == 200, data
            assert json.loads(data)["outputs"][0]["data"] == [float(i) + 1] * 10
    finally:
        conn.close()


def test_cors_defaults_and_preflight(main_server):
    # OVMS: every response carries the CORS headers (default "*"), and OPTIONS preflights answer 200
    r = rest(main_server.http_url, "GET", "/v2/health/ready")
    assert r.headers["access-control-allow-origin"] == "*"
    r = rest(main_server.http_url, "OPTIONS", "/v2/models/add/infer",
             headers={"Origin": "http://example.test", "Access-Control-Request-Method": "POST"})
    assert r.status == 200
    assert r.headers["access-control-allow-methods"] == "*"


def test_cors_flags(ovfast_server, model_repo):
    srv = ovfast_server("--model_name", "add", "--model_path", str(model_repo.paths["add"]),
                        "--allowed_origins", "http://a.test", "--allowed_methods", "GET,POST",
                        "--allowed_headers", "Content-Type", "--allow_credentials")
    r = rest(srv.http_url, "POST", "/v2/models/add/infer",
             {"inputs": [{"name": "b", "shape": [1, 10], "datatype": "FP32", "data": [0.0] * 10}]})
    assert r.status == 200
    assert r.headers["access-control-allow-origin"] == "http://a.test"
    assert r.headers["access-control-allow-methods"] == "GET,POST"
    assert r.headers["access-control-allow-headers"] == "Content-Type"
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "no effect" not in srv.log()


def test_cors_with_credentials_never_allows_any_origin(ovfast_server, model_repo):
    # browsers refuse "*" with credentials: the request's origin is reflected instead (issue 14)
    srv = ovfast_server("--model_name", "add", "--model_path", str(model_repo.paths["add"]), "--allow_credentials")
    r = rest(srv.http_url, "GET", "/v2/health/ready", headers={"Origin": "http://x.test"})
    assert r.headers["access-control-allow-origin"] == "http://x.test"
    assert r.headers["access-control-allow-credentials"] == "true" and "Origin" in r.headers["vary"]
    r = rest(srv.http_url, "GET", "/v2/health/ready")
    assert "access-control-allow-origin" not in r.headers
    # a list of origins answers the one that asked, and nothing to another
    srv2 = ovfast_server("--model_name", "add", "--model_path", str(model_repo.paths["add"]),
                         "--allowed_origins", "http://a.test,http://b.test")
    r = rest(srv2.http_url, "OPTIONS", "/v2/models/add/infer", headers={"Origin": "http://b.test"})
    assert r.status == 200 and r.headers["access-control-allow-origin"] == "http://b.test"
    r = rest(srv2.http_url, "GET", "/v2/health/ready", headers={"Origin": "http://evil.test"})
    assert "access-control-allow-origin" not in r.headers
