"""KServe v2 REST tensor codec: JSON / binary-extension bodies <-> native tensor tuples.

Binary inputs are memoryview slices of the request body (no copy); JSON data is
converted once into a typed numpy buffer.
"""
from __future__ import annotations

import base64
import os

import numpy as np
import orjson

from ovfast import _native
from ovfast.api.types import JSON_KINDS_ACCEPTED, NUMPY_DTYPE
from ovfast.errors import InvalidArgumentError

HEADER = "Inference-Header-Content-Length"


# Deeper JSON nesting than any tensor rank is a client mistake (and would exhaust Python's stack).
MAX_NESTING = 64


def nested_too_deep(name: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"Invalid input content - data nested deeper than {MAX_NESTING} levels; input name: {name}")


def pack_element(out: bytearray, item: bytes) -> None:
    """Appends one BYTES element as the native core reads them: a 4-byte little-endian length, the bytes.
    Packed, not listed: the elements cost their size until a model that takes strings is given them."""
    out += len(item).to_bytes(4, "little")
    out += item


def _flatten_strings(data, out: bytearray, b64: bool, name: str, depth: int = 0) -> None:
    if isinstance(data, list):
        if depth >= MAX_NESTING:
            raise nested_too_deep(name)
        for d in data:
            _flatten_strings(d, out, b64, name, depth + 1)
    elif isinstance(data, str):
        if b64:
            try:
                pack_element(out, base64.b64decode(data, validate=True))
            except ValueError:
                raise InvalidArgumentError(f"Invalid base64 data for input {name}") from None
        else:
            pack_element(out, data.encode())
    else:
        raise InvalidArgumentError(f"Could not parse input content. BYTES data must be strings; input name: {name}")


def json_to_input(name: str, datatype: str, shape: list, data, params: dict):
    """JSON `data` (flat or nested) -> (name, datatype, shape, buffer); BYTES elements packed (pack_element)."""
    if datatype in ("BYTES", "STRING"):
        items = bytearray()
        _flatten_strings(data, items, params.get("content_type") == "base64", name)
        return (name, "BYTES", shape, items)
    np_type = NUMPY_DTYPE.get(datatype)
    if np_type is None:
        if datatype == "BF16":
            raise InvalidArgumentError(f"BF16 data cannot be sent as JSON; use the binary data extension; input name: {name}")
        raise InvalidArgumentError(f"Invalid input precision - unsupported datatype '{datatype}'; input name: {name}")
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError):
        raise InvalidArgumentError(f"Could not parse input content. Not valid ndarray detected; input name: {name}") from None
    kind = np.dtype(np_type).kind
    if arr.size and arr.dtype.kind not in JSON_KINDS_ACCEPTED[kind]:
        raise InvalidArgumentError(
            f"Could not parse input content. Values do not match datatype {datatype}; input name: {name}")
    if kind in "iu" and arr.size:
        info = np.iinfo(np_type)
        if int(arr.min()) < info.min or int(arr.max()) > info.max:
            raise InvalidArgumentError(
                f"Could not parse input content. Values out of range for {datatype}; input name: {name}")
    try:
        typed = np.ascontiguousarray(arr, dtype=np_type)
    except (OverflowError, ValueError):
        raise InvalidArgumentError(f"Could not parse input content. Values out of range for {datatype}; input name: {name}") from None
    check_float_range(arr, typed, datatype, name, "Could not parse input content.")
    return (name, datatype, shape, typed, True)


def check_float_range(values: np.ndarray, typed: np.ndarray, datatype: str, name: str, prefix: str) -> None:
    """JSON numbers beyond a float type's range (1e39 for FP32, 70000 for FP16) would silently become
    infinities: INVALID_ARGUMENT instead (as TF Serving: no lossy conversion)."""
    if typed.dtype.kind != "f" or not typed.size:
        return
    bad = ~np.isfinite(typed)
    if not bad.any():
        return
    with np.errstate(over="ignore", invalid="ignore"):
        became_infinite = np.isfinite(np.asarray(values, dtype=np.float64)[bad]).any()
    if became_infinite:
        raise InvalidArgumentError(f"{prefix} Values out of range for {datatype}; input name: {name}")


class NonFinite:
    """±inf and NaN in JSON responses as TF Serving writes them (``Infinity``, ``-Infinity``, ``NaN``,
    which Python's json, and so tritonclient, reads back); orjson would write ``null``. Float arrays
    with such values go through :meth:`values`, and :meth:`dumps` swaps the markers it placed for the
    bare tokens (the markers carry a random nonce, so no client string can collide with them)."""

    _TOKENS = (("NaN", b"NaN"), ("Infinity", b"Infinity"), ("-Infinity", b"-Infinity"))

    def __init__(self) -> None:
        self._nonce = os.urandom(8).hex()
        self.used = False

    def values(self, arr):
        """``arr`` unchanged when it is not a float array or all its values are finite; else a nested list
        with markers in place of the non-finite values."""
        if not isinstance(arr, (np.ndarray, np.generic)) or arr.dtype.kind != "f" or np.isfinite(arr).all():
            return arr
        self.used = True
        out = np.asarray(arr).astype(object)
        out[np.isnan(arr)] = f"{self._nonce}NaN"
        out[np.isposinf(arr)] = f"{self._nonce}Infinity"
        out[np.isneginf(arr)] = f"{self._nonce}-Infinity"
        return out.tolist()

    def dumps(self, doc, option: int = 0, default=None) -> bytes:
        text = orjson.dumps(doc, option=option | orjson.OPT_SERIALIZE_NUMPY, default=default)
        if self.used:
            for name, token in self._TOKENS:
                text = text.replace(b'"%s%s"' % (self._nonce.encode(), name.encode()), token)
        return text


INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def over_limit(what: str, limit: int, flag: str) -> InvalidArgumentError:
    # the native codecs' words (codec/limits.cpp), so every API refuses alike
    return InvalidArgumentError(f"Invalid request - more than {limit} {what} (the server's limit, {flag})")


def _check_counts(limits: dict, inputs: list, outputs, params: dict) -> None:
    """The server-wide request limits (config/request_limits.py), checked before any entry is converted."""
    if len(inputs) > limits["max_inputs"]:
        raise over_limit("inputs", limits["max_inputs"], "--max_request_inputs")
    if outputs is not None and len(outputs) > limits["max_outputs"]:
        raise over_limit("outputs", limits["max_outputs"], "--max_request_outputs")
    count = len(params) if isinstance(params, dict) else 0
    for entry in (*inputs, *(outputs or ())):
        p = entry.get("parameters") if isinstance(entry, dict) else None
        count += len(p) if isinstance(p, dict) else 0
    if count > limits["max_parameters"]:
        raise over_limit("parameters", limits["max_parameters"], "--max_request_parameters")


def parse_json(data) -> tuple[object, str | None]:
    """``(orjson.loads(data), None)``, or ``(None, why it is not JSON)``.

    NOTE: orjson's JSONDecodeError carries the whole document (``.doc``, as a str); an error raised
    while handling it would keep it as ``__context__`` for as long as that error lives. Only its
    message leaves this function."""
    try:
        return orjson.loads(data), None
    except orjson.JSONDecodeError as exc:
        return None, str(exc)


def _check_shape(name, shape, max_dims: int) -> list:
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise InvalidArgumentError(f"Invalid shape for input {name}: expected a list of integers")
    if len(shape) > max_dims:
        raise over_limit(f"dimensions in the shape of input {name}", max_dims, "--max_tensor_dims")
    if not all(INT64_MIN <= d <= INT64_MAX for d in shape):
        raise InvalidArgumentError(f"Invalid input shape - a dimension is out of the int64 range; input name: {name}")
    return shape


def parse_infer_body(body: bytes, header_length: str | None):
    """Returns (doc, inputs, requested output names|None, binary flags by output name, default binary)."""
    if header_length is not None:
        try:
            hlen = int(header_length)
        except ValueError:
            raise InvalidArgumentError(f"Invalid {HEADER} header: {header_length!r}") from None
        if hlen < 0 or hlen > len(body):
            raise InvalidArgumentError(
                f"Invalid {HEADER} header: {hlen} is outside the body length {len(body)}")
        header, binary = body[:hlen], memoryview(body)[hlen:]
    else:
        header, binary = body, memoryview(b"")
    doc, error = parse_json(header)
    if error is not None:
        raise InvalidArgumentError(f"Invalid JSON in request body: {error}")
    if not isinstance(doc, dict):
        raise InvalidArgumentError("Invalid request body: expected a JSON object")
    if not isinstance(doc.get("id", ""), str):
        raise InvalidArgumentError("Invalid request body: 'id' must be a string")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list):
        raise InvalidArgumentError("Invalid request body: 'inputs' must be an array")
    limits = _native.decode_limits()
    raw_outputs = doc.get("outputs")
    _check_counts(limits, raw_inputs, raw_outputs if isinstance(raw_outputs, list) else None, doc.get("parameters"))
    inputs = []
    offset = 0
    for i, inp in enumerate(raw_inputs):
        if not isinstance(inp, dict):
            raise InvalidArgumentError(f"Invalid request body: inputs[{i}] must be an object")
        name, datatype = inp.get("name"), inp.get("datatype")
        if not isinstance(name, str) or not isinstance(datatype, str):
            raise InvalidArgumentError(f"Invalid request body: inputs[{i}] needs string 'name' and 'datatype'")
        shape = _check_shape(name, inp.get("shape"), limits["max_dims"])
        params = inp.get("parameters") or {}
        if not isinstance(params, dict):
            raise InvalidArgumentError(f"Invalid parameters of input {name}")
        size = params.get("binary_data_size")
        if size is not None:
            if "data" in inp:
                raise InvalidArgumentError(
                    f"Request contains values both in binary data and in content value; input name: {name}")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise InvalidArgumentError(f"binary_data_size parameter is invalid and cannot be parsed; input name: {name}")
            if offset + size > len(binary):
                raise InvalidArgumentError(
                    f"Received buffer size is smaller than binary_data_size parameter indicates; input name: {name}")
            dt = "BYTES" if datatype == "STRING" else datatype
            inputs.append((name, dt, shape, binary[offset:offset + size]))
            offset += size
        elif "data" in inp:
            inputs.append(json_to_input(name, datatype, shape, inp["data"], params))
        else:
            raise InvalidArgumentError(f"Input {name} has neither 'data' nor binary_data_size")
    if offset != len(binary):
        raise InvalidArgumentError(
            f"Binary data size mismatch: inputs declare {offset} bytes of binary_data_size but the body carries "
            f"{len(binary)} bytes after the {HEADER} JSON header")
    req_params = doc.get("parameters") or {}
    if not isinstance(req_params, dict):
        raise InvalidArgumentError("Invalid request parameters: expected an object")
    default_binary = bool(req_params.get("binary_data_output", False))
    names, flags = None, {}
    if raw_outputs is not None:
        if not isinstance(raw_outputs, list):
            raise InvalidArgumentError("Invalid request body: 'outputs' must be an array")
        names = []
        for o in raw_outputs:
            if not isinstance(o, dict) or not isinstance(o.get("name"), str):
                raise InvalidArgumentError("Invalid request body: each output needs a string 'name'")
            names.append(o["name"])
            p = o.get("parameters") or {}
            if not isinstance(p, dict):
                raise InvalidArgumentError(f"Invalid parameters of output {o['name']}: expected an object")
            if "binary_data" in p:
                flags[o["name"]] = bool(p["binary_data"])
        if not names:
            names = None
    return doc, inputs, names, flags, default_binary


def sequence_parameters(params: dict) -> tuple | None:
    """Triton's sequence request parameters -> (sequence_id: int | str, start, end), or None when absent."""
    if not any(k in params for k in ("sequence_id", "sequence_start", "sequence_end")):
        return None
    seq_id = params.get("sequence_id", 0)
    if isinstance(seq_id, bool) or not isinstance(seq_id, (int, str)):
        raise InvalidArgumentError("Invalid sequence_id parameter - expected an integer or a string value")
    if isinstance(seq_id, int) and not 0 <= seq_id < 1 << 64:
        raise InvalidArgumentError("Invalid sequence_id parameter - a sequence id is an unsigned 64-bit integer")
    flags = []
    for key in ("sequence_start", "sequence_end"):
        v = params.get(key, False)
        if not isinstance(v, bool):
            raise InvalidArgumentError(f"Invalid {key} parameter - expected a bool value")
        flags.append(v)
    return seq_id, flags[0], flags[1]


def _json_data(datatype: str, data, nonfinite: NonFinite):
    if datatype == "BYTES":
        try:
            return [b.decode() for b in data], None
        except UnicodeDecodeError:
            return [base64.b64encode(b).decode() for b in data], {"content_type": "base64"}
    if datatype == "FP16":
        data = data.astype(np.float32)
    elif datatype == "BF16":
        data = (data.astype(np.uint32) << 16).view(np.float32)
    return nonfinite.values(data.reshape(-1)), None


def _raw_bytes(datatype: str, data) -> bytes | memoryview:
    if datatype == "BYTES":
        return b"".join(len(b).to_bytes(4, "little") + b for b in data)
    return memoryview(np.ascontiguousarray(data)).cast("B")


def encode_infer_response(model_name: str, version: str, req_id, outs: list, flags: dict,
                          default_binary: bool, parameters: dict | None = None) -> tuple[bytes, int | None]:
    """Returns (body, json_header_length or None when there is no binary part). ``parameters``: the
    response parameters (e.g. a sequence's id), if any."""
    outputs, blobs = [], []
    nonfinite = NonFinite()
    for name, datatype, shape, data in outs:
        entry = {"name": name, "datatype": datatype, "shape": shape}
        if flags.get(name, default_binary):
            raw = _raw_bytes(datatype, data)
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            values, params = _json_data(datatype, data, nonfinite)
            if params:
                entry["parameters"] = params
            entry["data"] = values
        outputs.append(entry)
    resp: dict[str, object] = {"model_name": model_name, "model_version": version}
    if req_id is not None:
        resp["id"] = req_id
    if parameters:
        resp["parameters"] = parameters
    resp["outputs"] = outputs
    try:
        header = nonfinite.dumps(resp)
    except TypeError:  # dtypes orjson cannot serialize natively (float16 never comes here: widened above)
        for o in outputs:
            if "data" in o and hasattr(o["data"], "tolist"):
                o["data"] = o["data"].tolist()
        header = nonfinite.dumps(resp)
    if not blobs:
        return header, None
    return b"".join([header, *blobs]), len(header)
