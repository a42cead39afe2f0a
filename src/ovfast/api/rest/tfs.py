"""REST transport for the TensorFlow-Serving API (``/v1/...``), OVMS flavour.

Routes are matched with OVMS's own regexes (spec/ovms.md 3.3) inside one
catch-all handler, since aiohttp's path templates cannot express ``:predict``.
Request JSON is converted once into typed numpy buffers (or packed BYTES elements,
``tensors.pack_element``, for strings / ``{"b64": ...}`` values) and run through ``DataPlane.infer``;
responses follow TF Serving's row (``predictions``) / column (``outputs``) rules.
"""
from __future__ import annotations

import base64
import re
import time
from urllib.parse import unquote

import numpy as np
import orjson
from aiohttp import web
from google.protobuf import json_format

from ovfast import _native
from ovfast.api.dataplane import DataPlane, TensorsRequest
from ovfast.api.rest.app import json_response
from ovfast.api.held_memory import HeldMemory
from ovfast.api.rest.limits import body_of, held_of
from ovfast.api.rest.tensors import (
    MAX_NESTING, NonFinite, check_float_range, nested_too_deep, over_limit, pack_element, parse_json,
)
from ovfast.api.tfs import TfsApi
from ovfast.api.types import JSON_KINDS_ACCEPTED, NUMPY_DTYPE
from ovfast.errors import FailedPreconditionError, InternalError, InvalidArgumentError
from ovfast.observability.metrics import REST, TFS
from ovfast.runtime.model import ModelHandle, TensorSpec

from ovfast._gen._pool import POOL

PREDICT_RE = re.compile(r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/(\w+)))?:(classify|regress|predict)")
STATUS_RE = re.compile(r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/(\w+)))?(?:/(metadata))?")

INVALID_URL = "Invalid request URL"
UNSUPPORTED_METHOD = "Unsupported method"
REST_NOT_FOUND = "Requested REST resource not found"
NO_FORMAT = "Invalid JSON structure. Could not detect row or column format"
NOT_AN_OBJECT = "Request body should be JSON object"
NOT_NDARRAY = "Could not parse instance content. Not valid ndarray detected"
_PRETTY = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
_INT_KINDS = "iu"


def _pretty(obj, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj, option=_PRETTY), status=status, content_type="application/json")


def _error(message: str, status: int) -> web.Response:
    return json_response({"error": message}, status)


# -- request parsing ---------------------------------------------------------------------------

def _is_b64(v) -> bool:
    return isinstance(v, dict) and len(v) == 1 and "b64" in v


def _strings(name: str, value) -> tuple[bytearray, list[int]]:
    """Nested lists of strings / {"b64": ...} -> (elements packed by pack_element, shape). Ragged -> error."""
    out = bytearray()
    shape: list[int] = []
    leaf_depth = [-1]

    def walk(v, depth: int) -> None:
        if isinstance(v, list):
            if depth >= MAX_NESTING:
                raise nested_too_deep(name)
            if len(shape) == depth:
                shape.append(len(v))
            elif len(shape) < depth or shape[depth] != len(v):
                raise InvalidArgumentError(f"{NOT_NDARRAY}; input name: {name}")
            for x in v:
                walk(x, depth + 1)
            return
        if leaf_depth[0] == -1:
            leaf_depth[0] = depth
        elif leaf_depth[0] != depth:
            raise InvalidArgumentError(f"{NOT_NDARRAY}; input name: {name}")
        if _is_b64(v):
            if not isinstance(v["b64"], str):
                raise InvalidArgumentError(f"{NOT_NDARRAY}; input name: {name}")
            try:
                pack_element(out, base64.b64decode(v["b64"], validate=True))
            except ValueError:
                raise InvalidArgumentError(f"Invalid base64 data; input name: {name}") from None
        elif isinstance(v, str):
            pack_element(out, v.encode())
        else:
            raise InvalidArgumentError(f"{NOT_NDARRAY}; input name: {name}")

    walk(value, 0)
    if leaf_depth[0] != -1 and leaf_depth[0] != len(shape):
        raise InvalidArgumentError(f"{NOT_NDARRAY}; input name: {name}")
    return out, shape


def _has_b64(value) -> bool:
    while isinstance(value, list) and value:
        value = value[0]
    return _is_b64(value)


def to_input(name: str, value, spec: TensorSpec | None) -> tuple:
    """One JSON input -> (name, datatype, shape, ndarray | packed BYTES) typed as the servable expects."""
    datatype = spec.datatype if spec is not None else None
    if _has_b64(value):
        data, shape = _strings(name, value)
        return (name, "BYTES", shape, data)
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        raise InvalidArgumentError(f"{NOT_NDARRAY}; input name: {name}") from None
    kind = arr.dtype.kind
    if kind in "OUS":
        data, shape = _strings(name, value)
        if datatype not in (None, "BYTES", "UINT8"):
            raise InvalidArgumentError(
                f"{NOT_NDARRAY}; string values are accepted only for string or uint8 inputs; input name: {name}")
        return (name, "BYTES", shape, data)
    if kind not in "biuf":
        raise InvalidArgumentError(f"{NOT_NDARRAY}; input name: {name}")
    if datatype is None or datatype == "BYTES":
        # Unknown input (validation reports it) or numbers for a string input (precision error follows).
        datatype = {"b": "BOOL", "i": "INT64", "u": "UINT64"}.get(kind, "FP32")
    if datatype == "BF16":
        wide = np.ascontiguousarray(arr, np.float32)
        check_float_range(arr, wide, datatype, name, NOT_NDARRAY + ";")
        bits = wide.view(np.uint32) >> 16
        return (name, datatype, list(arr.shape), bits.astype(np.uint16))
    np_type = NUMPY_DTYPE[datatype]
    if arr.size and kind not in JSON_KINDS_ACCEPTED[np_type.kind]:
        # Integral floats may feed integer inputs (JSON has one number type).
        if not (kind == "f" and np_type.kind in _INT_KINDS and np.all(np.isfinite(arr)) and np.all(arr == np.trunc(arr))):
            raise InvalidArgumentError(f"{NOT_NDARRAY}; values do not match {datatype}; input name: {name}")
    if arr.size and np_type.kind in _INT_KINDS:
        info = np.iinfo(np_type)
        if arr.min() < info.min or arr.max() > info.max:
            raise InvalidArgumentError(f"{NOT_NDARRAY}; values out of range for {datatype}; input name: {name}")
    typed = np.ascontiguousarray(arr, dtype=np_type)
    check_float_range(arr, typed, datatype, name, NOT_NDARRAY + ";")
    return (name, datatype, list(arr.shape), typed)


# A stateful model's special inputs (spec/ovms.md §5): typed as OVMS types them, their JSON values are typed
# values (uint64_val / uint32_val), as the REST API of OVMS makes them.
SEQUENCE_INPUTS = (TensorSpec("sequence_id", "UINT64", (1,)), TensorSpec("sequence_control_input", "UINT32", (1,)))


def _check_limits(names, limits: dict | None) -> None:
    """The server-wide request limits (config/request_limits.py) on the named inputs, before any is converted."""
    if limits is not None and len(names) > limits["max_inputs"]:
        raise over_limit("inputs", limits["max_inputs"], "--max_request_inputs")


def _checked_dims(one: tuple, limits: dict | None) -> tuple:
    if limits is not None and len(one[2]) > limits["max_dims"]:
        raise over_limit(f"dimensions in the shape of input {one[0]}", limits["max_dims"], "--max_tensor_dims")
    return one


def parse_predict_body(doc, specs: tuple[TensorSpec, ...], special: tuple[TensorSpec, ...] = (),
                       limits: dict | None = None) -> tuple[list, bool]:
    """A TFS predict JSON document -> (native input tuples, row_format). ``special``: inputs accepted by
    name besides the model's (a stateful model's sequence inputs). ``limits``: `_native.decode_limits()`."""
    if not isinstance(doc, dict):
        raise InvalidArgumentError(NOT_AN_OBJECT)
    has_rows, has_cols = "instances" in doc, "inputs" in doc
    if has_rows == has_cols:
        raise InvalidArgumentError(NO_FORMAT)
    by_name = {s.name: s for s in (*specs, *special)}
    inputs = []
    if has_rows:
        rows = doc["instances"]
        if not isinstance(rows, list) or not rows:
            raise InvalidArgumentError("Invalid JSON structure. Missing instances in row format")
        named = [isinstance(r, dict) and not _is_b64(r) for r in rows]
        if all(named):
            names = list(dict.fromkeys(k for r in rows for k in r))
            _check_limits(names, limits)
            for n in names:
                if any(n not in r for r in rows):
                    raise InvalidArgumentError(
                        "Invalid JSON structure. Request inputs have different batch sizes")
                inputs.append(to_input(n, [r[n] for r in rows], by_name.get(n)))
        elif any(named):
            raise InvalidArgumentError("Invalid JSON structure. Mixed named and unnamed instances in row format")
        else:
            name, spec = _only_input(specs)
            inputs.append(to_input(name, rows, spec))
    else:
        cols = doc["inputs"]
        if isinstance(cols, dict) and not _is_b64(cols):
            _check_limits(cols, limits)
            for n, v in cols.items():
                inputs.append(to_input(n, v, by_name.get(n)))
        else:
            name, spec = _only_input(specs)
            inputs.append(to_input(name, cols, spec))
    inputs = [_checked_dims(i, limits) for i in inputs]
    if special:
        extra = {s.name for s in special} - {s.name for s in specs}
        inputs = [(*i, True) if i[0] in extra and i[1] != "BYTES" else i for i in inputs]
    return inputs, has_rows


class TfsJsonRequest(TensorsRequest):
    """A TFS REST predict body; decoded once the model is known (its inputs type the JSON values)."""

    def __init__(self, body: bytes, received_ns: int, held: HeldMemory | None = None) -> None:
        super().__init__([], None, received_ns, held=held)
        self.body = body
        self.row_format = False

    def prepare(self, handle: ModelHandle) -> None:
        doc, error = parse_json(self.body)
        if error is not None:
            raise FailedPreconditionError(f"The file is not valid json - Error: {error}")
        self.inputs, self.row_format = parse_predict_body(doc, handle.inputs,
                                                          SEQUENCE_INPUTS if handle.stateful else (),
                                                          _native.decode_limits())
        super().prepare(handle)


def _only_input(specs):
    if len(specs) != 1:
        raise InvalidArgumentError(
            "Invalid input format - inputs without names are accepted only by servables with one input")
    return specs[0].name, specs[0]


# -- response ----------------------------------------------------------------------------------

def _nest(flat: list, shape: list[int]):
    if not shape:
        return flat[0] if flat else None
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def _json_value(datatype: str, shape: list[int], data, nonfinite: NonFinite):
    if datatype == "BYTES":
        items = []
        for b in data:
            try:
                items.append(b.decode())
            except UnicodeDecodeError:
                items.append({"b64": base64.b64encode(b).decode()})
        return _nest(items, shape)
    if datatype == "BF16":
        data = (data.astype(np.uint32) << 16).view(np.float32)
    return nonfinite.values(data)


def _slice(datatype: str, shape: list[int], data, i: int, nonfinite: NonFinite):
    if datatype == "BYTES":
        step = len(data) // shape[0]
        return _json_value(datatype, shape[1:], data[i * step:(i + 1) * step], nonfinite)
    return _json_value(datatype, shape[1:], data[i], nonfinite)


def encode_predict_response(outs: list, row_format: bool) -> bytes:
    """[(name, datatype, shape, data)] -> TF Serving JSON (pretty-printed, as OVMS; NaN and ±inf
    written as TF Serving writes them)."""
    nf = NonFinite()
    if row_format:
        if len(outs) == 1:
            name, dt, shape, data = outs[0]
            doc = {"predictions": _json_value(dt, shape, data, nf)}
        else:
            batches = {o[2][0] if o[2] else None for o in outs}
            if len(batches) != 1 or None in batches:
                raise InternalError("Cannot build row-format predictions: outputs have different batch sizes; "
                                    "use the column format (\"inputs\")")
            n = batches.pop()
            doc = {"predictions": [{name: _slice(dt, shape, data, i, nf) for name, dt, shape, data in outs}
                                   for i in range(n)]}
    elif len(outs) == 1:
        name, dt, shape, data = outs[0]
        doc = {"outputs": _json_value(dt, shape, data, nf)}
    else:
        doc = {"outputs": {name: _json_value(dt, shape, data, nf) for name, dt, shape, data in outs}}
    try:
        return nf.dumps(doc, option=_PRETTY)
    except TypeError:  # dtypes orjson cannot serialize natively
        return nf.dumps(doc, option=_PRETTY, default=lambda a: a.tolist())


# -- routes ------------------------------------------------------------------------------------

def status_json(api: TfsApi, name: str, version) -> dict:
    return {"model_version_status": [
        {"version": str(s.version), "state": s.state_name,
         "status": {"error_code": s.error_code, "error_message": s.error_message}}
        for s in api.status(name, version)]}


def tfs_routes(dp: DataPlane) -> list[tuple[str, str, object]]:
    """(method, path, handler) triples for ``build_rest_app(extra_routes=...)``."""
    api = TfsApi(dp)

    async def predict(request: web.Request, name: str, version: str | None) -> web.Response:
        # The body is decoded after the model resolves (OVMS counts a body that cannot be parsed as a
        # failed request of that model).
        received_ns = time.monotonic_ns()
        req = TfsJsonRequest(body_of(request), received_ns, held_of(request))
        _, outs = await api.predict(name, version, dp.metrics.route_tfs_rest_predict, req)
        return web.Response(body=encode_predict_response(outs, req.row_format), content_type="application/json")

    async def models(request: web.Request) -> web.Response:
        path = request.rel_url.raw_path
        if ".." in path:
            return _error(INVALID_URL, 400)
        m = PREDICT_RE.fullmatch(path)
        if m:
            if request.method != "POST":
                return _error(UNSUPPORTED_METHOD, 406)
            if m[4] != "predict":
                return _error(REST_NOT_FOUND, 404)
            return await predict(request, unquote(m[1]), m[2])
        m = STATUS_RE.fullmatch(path)
        if m and m[1]:
            if request.method != "GET":
                return _error(UNSUPPORTED_METHOD, 406)
            name = unquote(m[1])
            if m[4]:
                resp = api.metadata(name, m[2])
                dp.metrics.count(api.resolve(name, m[2]), TFS, REST, "GetModelMetadata", True)
                text = json_format.MessageToJson(resp, descriptor_pool=POOL, indent=1)
                return web.Response(text=text, content_type="application/json")
            status = status_json(api, name, m[2])
            dp.metrics.count(name, TFS, REST, "GetModelStatus", True)
            return _pretty(status)
        return _error(INVALID_URL, 400)

    async def config(request: web.Request) -> web.Response:
        return _pretty({name: status_json(api, name, None) for name in api.model_names()})

    return [("*", "/v1/models{tail:.*}", models), ("GET", "/v1/config", config)]
