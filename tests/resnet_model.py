"""A ResNet-50-shaped IR (bottleneck blocks 3-4-6-3, ~25 M random weights) built with opset ops:
big enough that compiling it takes a noticeable time (model-cache and load-while-serving tests).
Input ``data`` FP32 [1,3,224,224] -> output ``prob`` FP32 [1,1000]."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
from openvino import opset13 as ops


def _conv(x, rng, cin: int, cout: int, k: int, stride: int = 1, relu: bool = True):
    w = (rng.standard_normal((cout, cin, k, k), dtype=np.float32) * np.float32(np.sqrt(2.0 / (cin * k * k))))
    pad = k // 2
    y = ops.convolution(x, ops.constant(w), [stride, stride], [pad, pad], [pad, pad], [1, 1])
    y = ops.add(y, ops.constant(np.zeros((1, cout, 1, 1), np.float32)))
    return ops.relu(y) if relu else y


def build_resnet50(base: Path, version: int = 1, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    data = ops.parameter([1, 3, 224, 224], ov.Type.f32, name="data")
    data.output(0).get_tensor().set_names({"data"})
    x = _conv(data, rng, 3, 64, 7, 2)
    x = ops.max_pool(x, [2, 2], [1, 1], [0, 0], [0, 0], [3, 3], "floor", "explicit").output(0)
    cin = 64
    for stage, (blocks, width) in enumerate(((3, 64), (4, 128), (6, 256), (3, 512))):
        for b in range(blocks):
            stride = 2 if b == 0 and stage > 0 else 1
            cout = width * 4
            y = _conv(x, rng, cin, width, 1)
            y = _conv(y, rng, width, width, 3, stride)
            y = _conv(y, rng, width, cout, 1, relu=False)
            short = _conv(x, rng, cin, cout, 1, stride, relu=False) if (b == 0) else x
            x = ops.relu(ops.add(y, short))
            cin = cout
    x = ops.reduce_mean(x, ops.constant(np.array([2, 3], np.int64)), False)
    fc = rng.standard_normal((cin, 1000), dtype=np.float32) * np.float32(0.01)
    logits = ops.matmul(x, ops.constant(fc), False, False)
    prob = ops.softmax(logits, 1)
    prob.output(0).get_tensor().set_names({"prob"})
    target = Path(base) / str(version)
    target.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.Model([ops.result(prob)], [data], "resnet50_like"), target / "model.xml", compress_to_fp16=False)
    return Path(base)


if __name__ == "__main__":
    import sys

    print(build_resnet50(Path(sys.argv[1])))
