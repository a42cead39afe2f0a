"""A pipeline against the signatures of what it runs (spec/ovms.md §6.3): every connection to an input the
model or library has, every input connected, precision and shape equal across each connection (after
demultiplexing drops a first dimension and gathering adds one), and the pipeline's own signature derived
from its nodes. Pure: the signatures are given (models' from the registry, libraries' from their
getInputsInfo/getOutputsInfo).
"""
from __future__ import annotations

from dataclasses import dataclass

from ovfast.config.dag import (
    AMBIGUOUS_INPUT, ENTRY, MISSING_MODEL_INPUT, MISSING_MODEL_OUTPUT, NOT_ALL_INPUTS, NOT_ENOUGH_DIMS, UNCONNECTED,
    WRONG_DEMUX_SIZE, NodeConfig, PipelineConfig, PipelineError, _fail, demux_levels, produced_levels,
    topological_order,
)

# A tensor's metadata: (datatype, shape); shape None = any rank, -1 = any size.
Meta = tuple[str, tuple[int, ...] | None]


@dataclass(frozen=True)
class Signature:
    """What a node declares: input name -> Meta, output name -> Meta."""

    inputs: dict[str, Meta]
    outputs: dict[str, Meta]


@dataclass(frozen=True)
class CheckedPipeline:
    """A pipeline that passed every check: its nodes in execution order, their demultiplexing levels, and
    its signature ({name: Meta}, in the config's order)."""

    config: PipelineConfig
    order: tuple[NodeConfig, ...]
    levels: dict[str, tuple[str, ...]]
    inputs: dict[str, Meta]
    outputs: dict[str, Meta]


def _compatible(a: tuple[int, ...] | None, b: tuple[int, ...] | None) -> bool:
    if a is None or b is None:
        return True
    return len(a) == len(b) and all(x == y or x == -1 or y == -1 for x, y in zip(a, b))


def _narrowest(a: tuple[int, ...] | None, b: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """What satisfies two compatible shapes: each dimension fixed where either fixes it."""
    if a is None or b is None:
        return b if a is None else a
    return tuple(x if x != -1 else y for x, y in zip(a, b))


def _text(shape: tuple[int, ...] | None) -> str:
    return "(any)" if shape is None else "(" + ",".join(str(d) for d in shape) + ")"


def _count(p: PipelineConfig, demux: str) -> int:
    """The sub-requests a demultiplexer makes (-1: as many as its outputs have rows)."""
    n = p.demultiply_count if demux == ENTRY else p.node(demux).demultiply_count  # type: ignore[union-attr]
    return n if n is not None and n > 0 else -1


def _split(p: PipelineConfig, source: str, item: str, meta: Meta) -> Meta:
    """What one sub-request of a demultiplexing ``source`` carries of its output ``item``."""
    dtype, shape = meta
    if shape is None:
        return dtype, None
    if len(shape) < 2:
        raise _fail(NOT_ENOUGH_DIMS, f"node: {source} output: {item} shape: {_text(shape)}")
    n = _count(p, source)
    if n > 0 and shape[0] not in (-1, n):
        raise _fail(WRONG_DEMUX_SIZE, f"node: {source} output: {item} shape: {_text(shape)}; demultiply_count: {n}")
    return dtype, shape[1:]


def check(p: PipelineConfig, signatures: dict[str, Signature]) -> CheckedPipeline:
    """Runs every check of a pipeline; ``signatures``: node name -> its model's or library's signature.
    Raises PipelineError with OVMS's message for the first problem found."""
    order = topological_order(p)
    levels = demux_levels(p, order)
    pipeline_inputs: dict[str, Meta] = {}

    def source_meta(source: str, alias: str) -> Meta | None:
        """What one execution of ``source`` produces under ``alias`` (None: a request input, not known yet)."""
        if source == ENTRY:
            return None
        node = p.node(source)
        assert node is not None
        meta = signatures[source].outputs[node.item(alias)]  # type: ignore[index]
        return _split(p, source, alias, meta) if node.demultiply_count is not None else meta

    for n in order:
        sig = signatures[n.name]
        for item, _alias in n.outputs:
            if item not in sig.outputs:
                raise _fail(MISSING_MODEL_OUTPUT, f"node: {n.name} output: {item}")
        for c in n.inputs:
            if c.input not in sig.inputs:
                raise _fail(MISSING_MODEL_INPUT, f"node: {n.name} input: {c.input}")
        missing = set(sig.inputs) - {c.input for c in n.inputs}
        if missing:
            raise _fail(NOT_ALL_INPUTS, f"node: {n.name} inputs: {', '.join(sorted(missing))}")
        for c in n.inputs:
            want_dtype, want_shape = sig.inputs[c.input]
            got = source_meta(c.source, c.item)
            if n.gather_from is not None and want_shape is not None:
                # the consumer sees the shards stacked: its input without the gathered first dimension
                want_shape = want_shape[1:] if want_shape else want_shape
            if got is None:  # a request input: its metadata is what this node needs
                need: Meta = (want_dtype, want_shape)
                if p.demultiply_count is not None and want_shape is not None:
                    need = (want_dtype, (_count(p, ENTRY), *want_shape))
                prev = pipeline_inputs.setdefault(c.item, need)
                if prev[0] != need[0] or not _compatible(prev[1], need[1]):
                    raise _fail(AMBIGUOUS_INPUT, f"input: {c.item} {prev[0]} {_text(prev[1])} and "
                                                 f"{need[0]} {_text(need[1])}")
                pipeline_inputs[c.item] = (need[0], _narrowest(prev[1], need[1]))
                continue
            got_dtype, got_shape = got
            where = f"{c.source}:{c.item} {got_dtype} {_text(got_shape)} -> {n.name}:{c.input} " \
                    f"{want_dtype} {_text(want_shape)}"
            if got_dtype != want_dtype:
                raise PipelineError(f"Precision mismatch between connected nodes - {where}")
            if not _compatible(got_shape, want_shape):
                raise PipelineError(f"Shape mismatch between connected nodes - {where}")
    unused = [i for i in p.inputs if i not in pipeline_inputs and not any(src == ENTRY and item == i
                                                                          for _, src, item in p.outputs)]
    if unused:
        raise _fail(UNCONNECTED, f"request input(s) {', '.join(unused)} feed no node")
    outputs: dict[str, Meta] = {}
    for name, src, alias in p.outputs:
        meta = source_meta(src, alias)
        if meta is None:
            meta = pipeline_inputs.get(alias) or ("BYTES", None)
            if p.demultiply_count is not None and meta[1] is not None:
                meta = (meta[0], meta[1][1:])
        dtype, shape = meta
        if shape is not None:
            shape = tuple(_count(p, d) for d in produced_levels(p, levels, src)) + shape
        outputs[name] = (dtype, shape)
    inputs = {i: pipeline_inputs.get(i, ("BYTES", None)) for i in p.inputs}
    return CheckedPipeline(config=p, order=tuple(order), levels=levels, inputs=inputs, outputs=outputs)
