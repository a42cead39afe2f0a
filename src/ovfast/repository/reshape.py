"""Shape "auto" / batch_size "auto" (OVMS semantics): whether a request's input shapes need a version recompiled
first, and the fixed shape setting it is then recompiled with. Pure; the registry reloads (fit_shapes)."""
from __future__ import annotations

from ovfast.config.schema import ANY_DIM, Dim, ModelConfig, ShapeSpec
from ovfast.runtime.model import ModelHandle


def needs_reshape(h: ModelHandle, cfg: ModelConfig, shapes: dict[str, list[int]]) -> bool:
    """Whether a request with these input shapes needs ``h`` recompiled first (shape or batch_size "auto")."""
    auto_inputs = set(cfg.auto_shape_inputs)
    for i, spec in enumerate(h.inputs):
        got = shapes.get(spec.name)
        if got is None:
            continue
        if spec.name in auto_inputs or ("" in auto_inputs and i == 0):
            if len(got) != len(spec.shape) or any(e not in (-1, g) for e, g in zip(spec.shape, got)):
                return True
        elif cfg.auto_batch and spec.shape and got and len(got) == len(spec.shape):
            if spec.shape[0] not in (-1, got[0]):
                return True
    return False


def fixed_shape(shape: list[int] | tuple[int, ...]) -> ShapeSpec:
    """A request's (or a compiled model's, -1 = dynamic) shape as a shape setting."""
    return ShapeSpec(tuple(ANY_DIM if d == -1 else Dim(int(d), int(d)) for d in shape))
