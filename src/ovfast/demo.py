"""The built-in demo model served by a bare `ovfast`: OVMS's "dummy" (input b FP32 [1,10] -> output a = b + 1).

Where it lives: ``$OVFAST_CACHE/models/dummy`` (``$XDG_CACHE_HOME/ovfast`` or ``~/.cache/ovfast`` when
OVFAST_CACHE is unset). It is built there once; a directory that already holds it is only read, so a
prebuilt copy (the container image builds one at image build time) serves from a read-only file system
as any user. When that directory cannot be written (read-only, another user's, no home directory), the
model is built in a fresh temporary directory instead, and the log says so.
"""
from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from pathlib import Path

DEMO_NAME = "dummy"
log = logging.getLogger("ovfast.demo")


def _cache_root() -> Path | None:
    if os.environ.get("OVFAST_CACHE"):
        return Path(os.environ["OVFAST_CACHE"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "ovfast"
    try:
        return Path.home() / ".cache" / "ovfast"
    except (RuntimeError, KeyError):  # no HOME and a uid without a passwd entry (e.g. `--user 12345`)
        return None


def demo_model_dir() -> Path | None:
    """The demo model's base path in the cache, or None when there is no cache directory at all."""
    root = _cache_root()
    return root / "models" / DEMO_NAME if root is not None else None


def _built(base: Path) -> bool:
    xml = base / "1" / "model.xml"
    return xml.is_file() and xml.with_suffix(".bin").is_file()


def _build(base: Path) -> None:
    """Writes the IR under ``base/1``: to temporary names first, then renamed, so a concurrent reader
    (another server starting) never sees half a model."""
    import numpy as np
    import openvino as ov
    from openvino import opset13 as ops

    b = ops.parameter([1, 10], ov.Type.f32, name="b")
    b.output(0).set_names({"b"})
    a = ops.add(b, ops.constant(np.ones((1, 10), np.float32)))
    a.output(0).set_names({"a"})
    model = ov.Model([a], [b], DEMO_NAME)
    xml = base / "1" / "model.xml"
    xml.parent.mkdir(parents=True, exist_ok=True)
    tmp = xml.with_name(f"model.{os.getpid()}.xml")
    ov.save_model(model, str(tmp), compress_to_fp16=False)
    os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))
    os.replace(tmp, xml)


def ensure_demo_model() -> Path:
    """Returns the demo model's base path, building the IR (openvino Python API) where it is missing.

    Raises OSError with what to do when neither the cache nor a temporary directory can be written.
    """
    base = demo_model_dir()
    if base is not None and _built(base):
        return base
    reason = "no cache directory (no HOME; set OVFAST_CACHE)"
    if base is not None:
        try:
            _build(base)
            return base
        except OSError as exc:
            reason = f"{base} is not writable: {exc.strerror or exc}"
    try:
        scratch = tempfile.mkdtemp(prefix="ovfast-demo-")
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
        tmp = Path(scratch) / DEMO_NAME
        _build(tmp)
    except OSError as exc:
        raise OSError(
            f"cannot build the demo model: {reason}, and no temporary directory is writable ({exc}). "
            "Set OVFAST_CACHE to a writable directory (or one holding a prebuilt models/dummy), "
            "or serve a model with --model_name/--model_path") from None
    log.warning("Demo model cache: %s; built the demo model in %s instead (set OVFAST_CACHE to keep it)",
                reason, tmp)
    return tmp
