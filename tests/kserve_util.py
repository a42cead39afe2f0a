"""Wire helpers shared by the functional tests: raw KServe protobufs, plain-HTTP REST calls,
the REST binary-data extension, and "server still serves" checks."""

from __future__ import annotations

import contextlib
import http.client
import json
import struct
from dataclasses import dataclass

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.grpc import service_pb2

import models as M

IDENTITY_KEYS = list(M.DTYPES)


def require_model(repo, name: str) -> None:
    """Skip when ``name`` could not be built for this OpenVINO/CPU (reason recorded by ``model_repo``)."""
    if name in repo.unsupported:
        pytest.skip(repo.unsupported[name])


# KServe datatype -> (numpy dtype, InferTensorContents field or None for raw-only)
WIRE = {
    "BOOL": (np.bool_, "bool_contents"),
    "UINT8": (np.uint8, "uint_contents"),
    "UINT16": (np.uint16, "uint_contents"),
    "UINT32": (np.uint32, "uint_contents"),
    "UINT64": (np.uint64, "uint64_contents"),
    "INT8": (np.int8, "int_contents"),
    "INT16": (np.int16, "int_contents"),
    "INT32": (np.int32, "int_contents"),
    "INT64": (np.int64, "int64_contents"),
    "FP16": (np.float16, None),
    "BF16": (np.uint16, None),  # raw words
    "FP32": (np.float32, "fp32_contents"),
    "FP64": (np.float64, "fp64_contents"),
}


# -- BYTES ------------------------------------------------------------------------------


def serialize_bytes(items) -> bytes:
    out = bytearray()
    for it in items:
        b = it.encode() if isinstance(it, str) else bytes(it)
        out += struct.pack("<I", len(b)) + b
    return bytes(out)


def deserialize_bytes(buf: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(buf):
        (n,) = struct.unpack_from("<I", buf, i)
        i += 4
        out.append(bytes(buf[i : i + n]))
        i += n
    return out


# -- gRPC -------------------------------------------------------------------------------


def grpc_input(name: str, datatype: str, shape, arr=None, typed: bool = False):
    """``(InferInputTensor, raw_bytes_or_None)``; ``typed`` puts ``arr`` in ``contents``."""
    t = service_pb2.ModelInferRequest().InferInputTensor(name=name, datatype=datatype, shape=list(shape))
    raw = None
    if arr is not None:
        if datatype == "BYTES":
            items = [x if isinstance(x, bytes) else str(x).encode() for x in np.asarray(arr, dtype=object).ravel()]
            if typed:
                t.contents.bytes_contents.extend(items)
            else:
                raw = serialize_bytes(items)
        else:
            np_dtype, field = WIRE[datatype]
            a = np.ascontiguousarray(arr, dtype=np_dtype)
            if typed:
                assert field is not None, f"{datatype} has no typed field"
                getattr(t.contents, field).extend(a.ravel().tolist())
            else:
                raw = a.tobytes()
    return t, raw


def make_infer_request(model: str, inputs, *, version: str = "", id: str = "", outputs=(), raw=None):
    """``inputs``: list of (InferInputTensor, raw_bytes_or_None). ``raw`` overrides raw_input_contents."""
    req = service_pb2.ModelInferRequest(model_name=model, model_version=version, id=id)
    raws = []
    for t, r in inputs:
        req.inputs.append(t)
        if r is not None:
            raws.append(r)
    req.raw_input_contents.extend(raws if raw is None else raw)
    for o in outputs:
        req.outputs.add(name=o)
    return req


def predict_request(model: str, inputs: dict, output_filter=()):
    """A TFS ``PredictRequest`` (ovmsclient's stubs) with FP32 ``tensor_content`` for each ``{name: array}``."""
    from ovmsclient.tfs_compat.protos.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
    from ovmsclient.tfs_compat.protos.tensorflow_serving.apis import predict_pb2

    req = predict_pb2.PredictRequest()
    req.model_spec.name = model
    for name, arr in inputs.items():
        a = np.ascontiguousarray(arr, np.float32)
        dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in a.shape]
        req.inputs[name].CopyFrom(tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT, tensor_content=a.tobytes(), tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims)))
    req.output_filter.extend(output_filter)
    return req


def grpc_error(call, request, timeout: float = 30):
    """Call a stub method expecting failure; return ``(code, details)``."""
    try:
        resp = call(request, timeout=timeout)
    except grpc.RpcError as e:
        return e.code(), e.details() or ""
    raise AssertionError(f"expected a gRPC error, got a response: {resp}")


def output_array(resp, name: str) -> np.ndarray:
    """Decode output ``name`` of a ModelInferResponse (raw or typed)."""
    for i, o in enumerate(resp.outputs):
        if o.name != name:
            continue
        shape = list(o.shape)
        if i < len(resp.raw_output_contents):
            buf = resp.raw_output_contents[i]
            if o.datatype == "BYTES":
                return np.array(deserialize_bytes(buf), dtype=object).reshape(shape)
            return np.frombuffer(buf, dtype=WIRE[o.datatype][0]).reshape(shape)
        if o.datatype == "BYTES":
            return np.array(list(o.contents.bytes_contents), dtype=object).reshape(shape)
        field = WIRE[o.datatype][1]
        return np.array(getattr(o.contents, field), dtype=WIRE[o.datatype][0]).reshape(shape)
    raise KeyError(name)


ADD_IN = np.arange(10, dtype=np.float32).reshape(1, 10)


def assert_grpc_serving(stub, value: float = 0.0) -> None:
    """A good ``add`` request after an error still returns b + 1."""
    x = ADD_IN + value
    resp = stub.ModelInfer(make_infer_request("add", [grpc_input("b", "FP32", [1, 10], x)]), timeout=30)
    np.testing.assert_array_equal(output_array(resp, "a"), x + 1)


@contextlib.contextmanager
def triton_clients(server):
    """tritonclient's (gRPC, HTTP) clients for an OvfastServer; closed on exit."""
    g, h = grpcclient.InferenceServerClient(server.grpc_url), httpclient.InferenceServerClient(server.http_url)
    try:
        yield g, h
    finally:
        g.close()
        h.close()


# -- REST -------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict  # lower-cased names
    body: bytes

    def json(self):
        return json.loads(self.body)

    def error(self) -> str:
        """The ``error`` string of an error body (asserts the ``{"error": str}`` shape)."""
        try:
            obj = json.loads(self.body)
        except ValueError as e:
            raise AssertionError(f"error body is not JSON: {self.body[:200]!r}") from e
        assert isinstance(obj, dict) and isinstance(obj.get("error"), str), f"bad error body: {obj!r}"
        return obj["error"]


def rest(http_url: str, method: str, path: str, body: bytes | str | dict | None = None, headers=None, timeout=60):
    host, port = http_url.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def json_input(name: str, shape, datatype: str, data) -> dict:
    """One KServe REST JSON input."""
    return {"name": name, "shape": list(shape), "datatype": datatype, "data": data}


def binary_body(header: dict, blobs: list[bytes]) -> tuple[bytes, dict]:
    """Body and headers for a binary-extension request."""
    hjson = json.dumps(header).encode()
    return hjson + b"".join(blobs), {
        "Inference-Header-Content-Length": str(len(hjson)),
        "Content-Type": "application/octet-stream",
    }


def split_binary_response(resp: Response) -> tuple[dict, dict[str, bytes]]:
    """Parse a binary-extension response into (json_header, {output name: bytes})."""
    n = resp.headers.get("inference-header-content-length")
    if n is None:
        return resp.json(), {}
    n = int(n)
    header = json.loads(resp.body[:n])
    blobs, off = {}, n
    for o in header["outputs"]:
        size = (o.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            blobs[o["name"]] = resp.body[off : off + size]
            off += size
    assert off == len(resp.body), f"binary sizes ({off - n}) do not add up to the body tail ({len(resp.body) - n})"
    return header, blobs


def assert_rest_serving(http_url: str, value: float = 0.0) -> None:
    x = (ADD_IN + value).ravel().tolist()
    r = rest(
        http_url,
        "POST",
        "/v2/models/add/infer",
        {"inputs": [{"name": "b", "shape": [1, 10], "datatype": "FP32", "data": x}]},
    )
    assert r.status == 200, r.body
    out = r.json()["outputs"][0]
    assert out["name"] == "a"
    np.testing.assert_array_equal(np.array(out["data"], np.float32), np.array(x, np.float32) + 1)
