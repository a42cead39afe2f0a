"""A tiny TensorFlow Lite model built with flatbuffers (the `tflite` package's generated schema
builders): input ``x`` FP32 [1,4] -> output ``y`` = x + [1,2,3,4]. Nothing is downloaded."""
from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
import tflite

ADDEND = np.array([[1.0, 2.0, 3.0, 4.0]], np.float32)


def _int_vector(b: flatbuffers.Builder, start, values) -> int:
    start(b, len(values))
    for v in reversed(values):
        b.PrependInt32(v)
    return b.EndVector()


def _tensor(b: flatbuffers.Builder, name: str, shape, buffer: int) -> int:
    name_off = b.CreateString(name)
    shape_off = _int_vector(b, tflite.TensorStartShapeVector, list(shape))
    tflite.TensorStart(b)
    tflite.TensorAddShape(b, shape_off)
    tflite.TensorAddType(b, tflite.TensorType.FLOAT32)
    tflite.TensorAddBuffer(b, buffer)
    tflite.TensorAddName(b, name_off)
    return tflite.TensorEnd(b)


def tflite_add_bytes() -> bytes:
    b = flatbuffers.Builder(1024)
    # buffers: 0 = empty (TFLite convention), 1 = the constant
    data = b.CreateByteVector(ADDEND.tobytes())
    tflite.BufferStart(b)
    tflite.BufferAddData(b, data)
    const_buf = tflite.BufferEnd(b)
    tflite.BufferStart(b)
    empty_buf = tflite.BufferEnd(b)
    tflite.ModelStartBuffersVector(b, 2)
    b.PrependUOffsetTRelative(const_buf)
    b.PrependUOffsetTRelative(empty_buf)
    buffers = b.EndVector()

    tensors = [_tensor(b, "x", (1, 4), 0), _tensor(b, "c", (1, 4), 1), _tensor(b, "y", (1, 4), 0)]
    tflite.SubGraphStartTensorsVector(b, len(tensors))
    for t in reversed(tensors):
        b.PrependUOffsetTRelative(t)
    tensors_vec = b.EndVector()

    tflite.AddOptionsStart(b)
    add_opts = tflite.AddOptionsEnd(b)
    op_inputs = _int_vector(b, tflite.OperatorStartInputsVector, [0, 1])
    op_outputs = _int_vector(b, tflite.OperatorStartOutputsVector, [2])
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, 0)
    tflite.OperatorAddInputs(b, op_inputs)
    tflite.OperatorAddOutputs(b, op_outputs)
    tflite.OperatorAddBuiltinOptionsType(b, tflite.BuiltinOptions.AddOptions)
    tflite.OperatorAddBuiltinOptions(b, add_opts)
    op = tflite.OperatorEnd(b)
    tflite.SubGraphStartOperatorsVector(b, 1)
    b.PrependUOffsetTRelative(op)
    ops_vec = b.EndVector()

    sg_inputs = _int_vector(b, tflite.SubGraphStartInputsVector, [0])
    sg_outputs = _int_vector(b, tflite.SubGraphStartOutputsVector, [2])
    sg_name = b.CreateString("main")
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tensors_vec)
    tflite.SubGraphAddInputs(b, sg_inputs)
    tflite.SubGraphAddOutputs(b, sg_outputs)
    tflite.SubGraphAddOperators(b, ops_vec)
    tflite.SubGraphAddName(b, sg_name)
    subgraph = tflite.SubGraphEnd(b)
    tflite.ModelStartSubgraphsVector(b, 1)
    b.PrependUOffsetTRelative(subgraph)
    subgraphs = b.EndVector()

    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(b, tflite.BuiltinOperator.ADD)
    tflite.OperatorCodeAddBuiltinCode(b, tflite.BuiltinOperator.ADD)
    tflite.OperatorCodeAddVersion(b, 1)
    opcode = tflite.OperatorCodeEnd(b)
    tflite.ModelStartOperatorCodesVector(b, 1)
    b.PrependUOffsetTRelative(opcode)
    opcodes = b.EndVector()

    desc = b.CreateString("ovfast test add")
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, opcodes)
    tflite.ModelAddSubgraphs(b, subgraphs)
    tflite.ModelAddDescription(b, desc)
    tflite.ModelAddBuffers(b, buffers)
    model = tflite.ModelEnd(b)
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


def build_tflite_add(base: Path, version: int = 1) -> Path:
    target = Path(base) / str(version)
    target.mkdir(parents=True, exist_ok=True)
    (target / "model.tflite").write_bytes(tflite_add_bytes())
    return Path(base)
