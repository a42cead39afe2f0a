"""Tiny models built in-session with the openvino Python API (nothing is downloaded).

Every builder writes ``<dir>/<version>/model.xml`` (+ ``model.bin``), or ``model.onnx``
for :func:`build_onnx_add`, and returns the model's base path (``<dir>``).

Notes on OpenVINO CPU behaviour that shaped these models (checked with openvino 2026.4.1):

- Every element type in :data:`DTYPES` compiles on CPU as an identity model.
- The CPU plugin computes i64/u64 in 32 bits and f64 in f32 inside any real op
  (Convert/Reshape/Concat all truncate 2**40 to 1). Only a bare Parameter->Result
  passes 64-bit values through, but then input and output share one tensor name
  after an IR save/read. The identity models therefore use ``Convert`` (x -> y) and
  :data:`DTYPES` holds test values that survive 32-bit internal precision.
- bf16 compiles and round-trips bit-exactly through Convert on CPU.
- ``ov.Type.string`` compiles for Parameter->Reshape->Result (Convert on strings does not).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import openvino as ov

try:
    from openvino import opset13 as ops
except ImportError:  # older layout
    from openvino.runtime import opset13 as ops  # type: ignore[no-redef]


class DType(NamedTuple):
    kserve: str  # KServe datatype string
    ov_type: ov.Type
    np_dtype: type  # numpy dtype used on the wire (BF16: float32 via tritonclient helpers)
    values: tuple  # six test values, exact in the CPU plugin's internal precision


DTYPES: dict[str, DType] = {
    "f32": DType("FP32", ov.Type.f32, np.float32, (1.5, -2.25, 0.0, 3.0e5, -1.0e-3, 7.0)),
    "f16": DType("FP16", ov.Type.f16, np.float16, (1.5, -2.25, 0.0, 65504.0, -0.5, 7.0)),
    # f64 goes through f32 inside the CPU plugin: values exactly representable in f32
    "f64": DType("FP64", ov.Type.f64, np.float64, (1.5, -2.25, 0.0, 3.0e5, -0.125, 7.0)),
    "i8": DType("INT8", ov.Type.i8, np.int8, (-128, 127, 0, -1, 5, 100)),
    "i16": DType("INT16", ov.Type.i16, np.int16, (-32768, 32767, 0, -1, 5, 1000)),
    "i32": DType("INT32", ov.Type.i32, np.int32, (-(2**31), 2**31 - 1, 0, -1, 5, 16777217)),
    # i64/u64 go through 32 bits inside the CPU plugin
    "i64": DType("INT64", ov.Type.i64, np.int64, (-(2**31), 2**31 - 1, 0, -1, 5, 123456789)),
    "u8": DType("UINT8", ov.Type.u8, np.uint8, (0, 255, 1, 128, 5, 100)),
    "u16": DType("UINT16", ov.Type.u16, np.uint16, (0, 65535, 1, 32768, 5, 1000)),
    "u32": DType("UINT32", ov.Type.u32, np.uint32, (0, 2**32 - 1, 1, 2**31 + 5, 5, 16777217)),
    "u64": DType("UINT64", ov.Type.u64, np.uint64, (0, 2**31 - 1, 1, 2**20, 5, 123456789)),
    "boolean": DType("BOOL", ov.Type.boolean, np.bool_, (True, False, False, True, True, False)),
    # bf16: exactly representable values; sent as raw 2-byte words
    "bf16": DType("BF16", ov.Type.bf16, np.float32, (1.0, -4.5, 0.25, 100.0, 0.0, -2.0)),
}

ADD_INPUT, ADD_OUTPUT = "b", "a"


def _name(node, name: str):
    node.output(0).get_tensor().set_names({name})
    return node


def _save(model: ov.Model, base: Path, version: int = 1, fname: str = "model.xml") -> Path:
    target = Path(base) / str(version)
    target.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, target / fname, compress_to_fp16=False)
    return Path(base)


def build_add(base: Path, version: int = 1, addend: float = 1.0, shape=(1, 10)) -> Path:
    """OVMS "dummy": input ``b`` FP32 [1,10] -> output ``a`` = b + addend."""
    b = _name(ops.parameter(list(shape), ov.Type.f32, name=ADD_INPUT), ADD_INPUT)
    a = _name(ops.add(b, ops.constant(np.float32(addend))), ADD_OUTPUT)
    return _save(ov.Model([ops.result(a)], [b], "add"), base, version)


def build_identity(base: Path, key: str) -> Path:
    """``identity_<key>``: input ``x`` [1,6] of that type -> output ``y`` = x."""
    t = DTYPES[key].ov_type
    x = _name(ops.parameter([1, 6], t, name="x"), "x")
    y = _name(ops.convert(x, t), "y")
    return _save(ov.Model([ops.result(y)], [x], f"identity_{key}"), base)


def build_two_io(base: Path) -> Path:
    """Inputs ``x``, ``y`` FP32 [1,4] -> outputs ``sum`` = x+y, ``prod`` = x*y (in that order)."""
    x = _name(ops.parameter([1, 4], ov.Type.f32, name="x"), "x")
    y = _name(ops.parameter([1, 4], ov.Type.f32, name="y"), "y")
    s = _name(ops.add(x, y), "sum")
    p = _name(ops.multiply(x, y), "prod")
    return _save(ov.Model([ops.result(s), ops.result(p)], [x, y], "two_io"), base)


def build_dynamic(base: Path) -> Path:
    """Input ``x`` FP32 [-1,-1] -> output ``y`` = x * 2."""
    x = _name(ops.parameter(ov.PartialShape([-1, -1]), ov.Type.f32, name="x"), "x")
    y = _name(ops.multiply(x, ops.constant(np.float32(2.0))), "y")
    return _save(ov.Model([ops.result(y)], [x], "dynamic"), base)


def build_rows(base: Path, width: int | None = None) -> Path:
    """Row-wise model for dynamic batching: input ``x`` FP32 [-1,W] (W = ``width``, or -1)
    -> outputs ``y`` = 2x + 1 [-1,W] and ``s`` = sum of each row [-1]. Every output row
    depends only on its own input row, so a batched answer can be checked row by row."""
    x = _name(ops.parameter(ov.PartialShape([-1, width if width else -1]), ov.Type.f32, name="x"), "x")
    y = _name(ops.add(ops.multiply(x, ops.constant(np.float32(2.0))), ops.constant(np.float32(1.0))), "y")
    s = _name(ops.reduce_sum(x, ops.constant(np.array([1], np.int64)), False), "s")
    return _save(ov.Model([ops.result(y), ops.result(s)], [x], "rows"), base)


def build_string(base: Path) -> Path:
    """Input ``s`` string [-1] -> output ``out`` = the same strings."""
    s = _name(ops.parameter(ov.PartialShape([-1]), ov.Type.string, name="s"), "s")
    out = _name(ops.reshape(s, ops.constant(np.array([-1], np.int64)), False), "out")
    return _save(ov.Model([ops.result(out)], [s], "string"), base)


SLOW_WIDTH = 1024
SLOW_ROWS = 128


def build_slow(base: Path, depth: int = 30, rows: int = SLOW_ROWS) -> Path:
    """Input ``x`` FP32 [1,1024] -> output ``y`` = x + 1, computed slowly.

    ``x`` is tiled to [rows,1024] (128 by default) and multiplied ``depth`` times by one shared
    identity weight [1024,1024] (stored once), then reduced back with a mean over the rows,
    so one inference costs depth * rows * 1024 * 1024 * 2 FLOPs (~8 GFLOP for 30 x 128)
    while the result stays equal to x + 1 (up to CPU inference precision).
    """
    x = _name(ops.parameter([1, SLOW_WIDTH], ov.Type.f32, name="x"), "x")
    h = ops.tile(x, ops.constant(np.array([rows, 1], np.int64)))
    w = ops.constant(np.eye(SLOW_WIDTH, dtype=np.float32))
    for _ in range(depth):
        h = ops.matmul(h, w, False, False)
    m = ops.reduce_mean(h, ops.constant(np.array([0], np.int64)), True)
    y = _name(ops.add(m, ops.constant(np.float32(1.0))), "y")
    return _save(ov.Model([ops.result(y)], [x], "slow"), base)


PROBE_DEPTHS = (8, 32)
# rows of the lasting models: wide enough that a second of work is ~100-200 matmuls, not thousands (each
# MatMul node is compiled on its own: a chain of 2,000 took the server past 240 s to load on a loaded CI box)
LASTING_ROWS = 2048


def slow_depth(run_s: float) -> int:
    """The :func:`build_slow` depth whose one inference takes ``run_s`` seconds or more on this machine.

    Measured, not assumed: two probe models are compiled on CPU as the server compiles them (default
    precision: bf16 where the CPU has AMX, f32 elsewhere, ~13x apart), and the process CPU time of
    their fastest runs gives the cost of one matmul without the fixed part. CPU time, not wall time:
    on a loaded machine wall time swells (10x seen here) while the work does not, and a depth chosen
    from a swollen time would run far shorter once the machine is quiet. That cost spread over every
    core is the least wall time a matmul can take, so the depth errs long."""
    import os
    import tempfile
    import time

    cpu = []
    x = np.zeros((1, SLOW_WIDTH), np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        for depth in PROBE_DEPTHS:
            base = build_slow(Path(tmp) / f"probe{depth}", depth=depth, rows=LASTING_ROWS)
            req = ov.Core().compile_model(str(base / "1" / "model.xml"), "CPU").create_infer_request()
            req.infer({0: x})  # first run: one-off kernel preparation
            best = float("inf")
            for _ in range(3):
                t0 = time.process_time()
                req.infer({0: x})
                best = min(best, time.process_time() - t0)
            cpu.append(best)
    per_matmul = max((cpu[1] - cpu[0]) / (PROBE_DEPTHS[1] - PROBE_DEPTHS[0]), cpu[1] / PROBE_DEPTHS[1] / 4, 1e-6)
    wall_per_matmul = per_matmul / (os.cpu_count() or 1)
    return max(PROBE_DEPTHS[0], min(5_000, int(run_s / wall_per_matmul) + 1))


def build_slow_lasting(base: Path, run_s: float) -> Path:
    """:func:`build_slow` with the depth that makes one inference last ``run_s`` seconds or more here."""
    return build_slow(base, depth=slow_depth(run_s), rows=LASTING_ROWS)


# --- ONNX, hand-encoded (no `onnx` package needed) -----------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _f_varint(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _f_bytes(field: int, value: bytes | str) -> bytes:
    if isinstance(value, str):
        value = value.encode()
    return _varint((field << 3) | 2) + _varint(len(value)) + value


def _onnx_value_info(name: str, elem_type: int, dims) -> bytes:
    shape = b"".join(_f_bytes(1, _f_varint(1, d)) for d in dims)  # Dimension.dim_value
    tensor_type = _f_varint(1, elem_type) + _f_bytes(2, shape)  # TypeProto.Tensor
    type_proto = _f_bytes(1, tensor_type)  # TypeProto.tensor_type
    return _f_bytes(1, name) + _f_bytes(2, type_proto)


def build_onnx_add(base: Path, version: int = 1) -> Path:
    """ONNX model: input ``b`` FP32 [1,10] -> output ``a`` = b + 1, as ``<base>/<v>/model.onnx``."""
    FLOAT = 1
    ones = np.ones((1, 10), np.float32)
    initializer = (
        b"".join(_f_varint(1, d) for d in ones.shape)  # dims
        + _f_varint(2, FLOAT)  # data_type
        + _f_bytes(8, "one")  # name
        + _f_bytes(9, ones.tobytes())  # raw_data
    )
    node = _f_bytes(1, "b") + _f_bytes(1, "one") + _f_bytes(2, "a") + _f_bytes(3, "add0") + _f_bytes(4, "Add")
    graph = (
        _f_bytes(1, node)
        + _f_bytes(2, "onnx_add")
        + _f_bytes(5, initializer)
        + _f_bytes(11, _onnx_value_info("b", FLOAT, (1, 10)))
        + _f_bytes(12, _onnx_value_info("a", FLOAT, (1, 10)))
    )
    opset = _f_bytes(1, "") + _f_varint(2, 13)
    model = _f_varint(1, 8) + _f_bytes(2, "ovfast-tests") + _f_bytes(7, graph) + _f_bytes(8, opset)
    target = Path(base) / str(version)
    target.mkdir(parents=True, exist_ok=True)
    (target / "model.onnx").write_bytes(model)
    return Path(base)


# --- helpers for tests ----------------------------------------------------------------------


def dtype_values(key: str, offset: int = 0) -> np.ndarray:
    """Test input [1,6] for ``identity_<key>``; ``offset`` rotates values so requests differ."""
    d = DTYPES[key]
    vals = list(d.values)
    k = offset % len(vals)
    vals = vals[k:] + vals[:k]
    return np.array([vals], dtype=d.np_dtype)


def bf16_bits(arr: np.ndarray) -> np.ndarray:
    """The bf16 words (uint16) of float32 values (truncation; test values are exact)."""
    return (np.ascontiguousarray(arr, np.float32).view(np.uint32) >> 16).astype(np.uint16)


def compile_check(base: Path) -> ov.CompiledModel:
    """Compile the highest version under ``base`` on CPU (used to validate builders)."""
    versions = sorted((int(p.name) for p in Path(base).iterdir() if p.name.isdigit()))
    vdir = Path(base) / str(versions[-1])
    f = vdir / "model.xml"
    if not f.exists():
        f = vdir / "model.onnx"
    return ov.Core().compile_model(str(f), "CPU")


__all__ = [
    "DTYPES",
    "DType",
    "bf16_bits",
    "build_add",
    "build_dynamic",
    "build_identity",
    "build_onnx_add",
    "build_slow",
    "build_string",
    "build_two_io",
    "compile_check",
    "dtype_values",
]
