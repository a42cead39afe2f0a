"""Triton's model-configuration extension: the ModelConfig ovfast reports for a served version.

Built once here in Triton's JSON form; REST sends it as is (``GET /v2/models/{m}/config``) and
gRPC parses it into ``inference.ModelConfig`` (the ``ModelConfig`` RPC).
"""
from __future__ import annotations

from ovfast.api.types import TRITON_NAME
from ovfast.runtime.model import ModelHandle, TensorSpec

# What a client must send, from the sent side of a configured layout ("NHWC:NCHW" -> NHWC).
_FORMATS = {"NHWC": "FORMAT_NHWC", "NCHW": "FORMAT_NCHW"}


def input_format(h: ModelHandle, index: int) -> str:
    """FORMAT_NHWC / FORMAT_NCHW when the input's configured layout says what clients send, else FORMAT_NONE.

    Layout keys name the (public) input, or "" for the only input (``"layout": "NHWC:NCHW"``)."""
    name = h.inputs[index].name
    layouts = dict(h.options.layouts)
    text = layouts.get(name)
    if text is None and len(h.inputs) == 1:
        text = layouts.get("")
    if not text:
        return "FORMAT_NONE"
    sent = "".join(c for c in text.split(":")[0] if c.isalpha()).upper()
    return _FORMATS.get(sent, "FORMAT_NONE")


def model_config(h: ModelHandle) -> dict:
    """The version's ModelConfig as Triton's JSON (what perf_analyzer and the image clients read)."""

    def io(t: TensorSpec) -> dict:
        return {"name": t.name, "data_type": TRITON_NAME[t.datatype], "dims": list(t.shape)}

    inputs = [{**io(t), "format": input_format(h, i)} for i, t in enumerate(h.inputs)]
    # max_batch_size stays 0: the dims keep the batch dimension (as perf_analyzer expects)
    body = {"name": h.name, "platform": "openvino", "backend": "openvino", "max_batch_size": 0,
            "input": inputs, "output": [io(t) for t in h.outputs]}
    if h.options.max_batch_size:
        body["dynamic_batching"] = {"preferred_batch_size": list(h.options.preferred_batch_sizes),
                                    "max_queue_delay_microseconds": h.options.max_queue_delay_us}
    # ovfast's own: the version's measured memory (read + compile + infer requests), 0 when not loaded
    body["parameters"] = {"size_bytes": {"string_value": str(h.held_bytes)}}
    if h.stateful:
        # a sequence model to Triton's clients (perf_analyzer then sends sequence ids itself)
        body["sequence_batching"] = {}
    return body
