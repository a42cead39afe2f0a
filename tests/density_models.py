"""Small distinct MLPs for the residency tests and the density bench, built with the openvino API.

Each model: input ``x`` FP32 [1, IN] -> MatMul (IN x hidden) -> ReLU -> MatMul (hidden x OUT) ->
output ``y`` FP32 [1, OUT]. The weights come from ``seed``, so every model answers differently
(a test can tell which one ran); ``hidden`` sets the size (about IN * hidden * 4 bytes of weights).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
from openvino import opset13 as ops

IN, OUT = 64, 8


def mlp_weights(seed: int, hidden: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((IN, hidden), dtype=np.float32) / np.float32(np.sqrt(IN))
    w2 = rng.standard_normal((hidden, OUT), dtype=np.float32) / np.float32(np.sqrt(hidden))
    return w1, w2


def expected(x: np.ndarray, seed: int, hidden: int) -> np.ndarray:
    """What the model built with ``seed`` / ``hidden`` answers for ``x`` (numpy reference)."""
    w1, w2 = mlp_weights(seed, hidden)
    return np.maximum(x @ w1, 0) @ w2


def build_mlp(base: Path, seed: int, hidden: int = 256, version: int = 1, batch: int = 1) -> Path:
    """Writes ``<base>/<version>/model.xml`` (+ .bin) and returns ``base``. ``batch`` -1: any number
    of rows (for dynamic batching)."""
    w1, w2 = mlp_weights(seed, hidden)
    x = ops.parameter(ov.PartialShape([batch, IN]), ov.Type.f32, name="x")
    x.output(0).set_names({"x"})
    h = ops.relu(ops.matmul(x, ops.constant(w1), False, False))
    y = ops.matmul(h, ops.constant(w2), False, False)
    y.output(0).set_names({"y"})
    target = Path(base) / str(version)
    target.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.Model([ops.result(y)], [x], f"mlp{seed}"), target / "model.xml", compress_to_fp16=False)
    return Path(base)
