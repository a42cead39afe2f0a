"""The built-in demo model served by a bare `ovfast`: OVMS's "dummy" (input b FP32 [1,10] -> output a = b + 1)."""
from __future__ import annotations

import os
from pathlib import Path

DEMO_NAME = "dummy"


def demo_model_dir() -> Path:
    root = Path(os.environ.get("OVFAST_CACHE", Path.home() / ".cache" / "ovfast"))
    return root / "models" / DEMO_NAME


def ensure_demo_model() -> Path:
    """Builds the demo IR once (with the openvino Python API) and returns its base path."""
    base = demo_model_dir()
    xml = base / "1" / "model.xml"
    if not (xml.exists() and xml.with_suffix(".bin").exists()):
        import numpy as np
        import openvino as ov
        from openvino import opset13 as ops

        b = ops.parameter([1, 10], ov.Type.f32, name="b")
        b.output(0).set_names({"b"})
        a = ops.add(b, ops.constant(np.ones((1, 10), np.float32)))
        a.output(0).set_names({"a"})
        model = ov.Model([a], [b], DEMO_NAME)
        xml.parent.mkdir(parents=True, exist_ok=True)
        tmp = xml.with_name(f"model.{os.getpid()}.xml")
        ov.save_model(model, str(tmp), compress_to_fp16=False)
        os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))
        os.replace(tmp, xml)
    return base
