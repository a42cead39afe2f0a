"""DAG pipelines in config.json (spec/ovms.md §1.2, §1.3, §6): ``pipeline_config_list`` and
``custom_node_library_config_list`` parsed into frozen configs, and a pipeline's structure checked with
OVMS's errors (names, references, cycles, unconnected nodes, demultiplexing and gathering). Checks that
need the models' and libraries' signatures live in :mod:`ovfast.config.dag_check`. Pure: no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ovfast.config.values import ConfigError, is_int, json_array
from ovfast.errors import REQUESTED_STATEFUL_PARAMETERS_ON_SUBSCRIBED_MODEL

ENTRY = "request"
EXIT = "response"
DL_MODEL = "DL model"
CUSTOM = "custom"
MAX_DEMULTIPLY = 10000

# OVMS's messages (src/status.cpp), one per validation failure.
NAME_OCCUPIED = "Pipeline has the same name as model"
ALREADY_EXISTS = "Pipeline definition with the same name already exists"
WRONG_KIND = "Unsupported node type"
MISSING_ENTRY_OR_EXIT = "Pipeline definition is missing request or response node"
NODE_NAME_DUPLICATE = "Pipeline definition has multiple nodes with the same name"
CYCLE = "Pipeline definition contains a cycle"
UNCONNECTED = "Pipeline definition has unconnected nodes"
MISSING_NODE = "Pipeline definition has reference to missing node"
MISSING_MODEL = "Pipeline definition has reference to missing model"
MISSING_DATA_SOURCE = "Pipeline definition has reference to missing data source"
MISSING_MODEL_OUTPUT = "Pipeline definition has reference to missing model output"
MISSING_MODEL_INPUT = "Pipeline definition has connection to non existing model input"
NOT_ALL_INPUTS = "Pipeline definition does not have connections for all inputs of underlying models"
MULTIPLE_SOURCES = "Pipeline definition has multiple connections to the same input of underlying model"
EXIT_AS_DEPENDENCY = "Pipeline definition has response node used as dependency node"
INVALID_LIBRARY = "Pipeline refers to incorrect library"
GATHER_MISSING_NODE = "Gather node refers to not existing node"
GATHER_NOT_DEMUX = "Gather node refers to node that isn't demultiplexer"
GATHER_FROM_ENTRY = "Gathering from entry node is not allowed"
WRONG_DEMUX_DIMS = "Wrong number of dimensions in a tensor to be sharded"
WRONG_DEMUX_SIZE = "Wrong dimension size. Should match demultiply count"
NOT_ENOUGH_DIMS = "Pipeline has not enough shape dimensions to demultiply"
LIFO = "Demultiplexer and gather nodes are not in LIFO order"
AMBIGUOUS_INPUT = "Multiple nodes connected to the same pipeline input require different tensor metadata"
MULTIPLE_DYNAMIC = "Only one dynamic demultiplexer is allowed in a pipeline"


class PipelineError(ValueError):
    """A pipeline definition that cannot be served; the message is OVMS's, with the detail after " - "."""


def _fail(message: str, detail: str = "") -> PipelineError:
    return PipelineError(f"{message} - {detail}" if detail else message)


@dataclass(frozen=True)
class NodeInput:
    input: str      # the node's input name
    source: str     # a node name, or "request"
    item: str       # the source's output alias, or the request input


@dataclass(frozen=True)
class NodeConfig:
    name: str
    kind: str                                   # DL_MODEL or CUSTOM
    model_name: str = ""
    version: int | None = None                  # None: the model's default version
    library_name: str = ""
    params: tuple[tuple[str, str], ...] = ()
    inputs: tuple[NodeInput, ...] = ()
    outputs: tuple[tuple[str, str], ...] = ()   # (data_item, alias)
    demultiply_count: int | None = None         # None: no split; 0 and -1: dynamic
    gather_from: str | None = None

    def item(self, alias: str) -> str | None:
        """The model / library output behind an alias, or None."""
        return next((item for item, a in self.outputs if a == alias), None)


@dataclass(frozen=True)
class PipelineConfig:
    name: str
    inputs: tuple[str, ...]
    nodes: tuple[NodeConfig, ...]
    outputs: tuple[tuple[str, str, str], ...]  # (response name, source node, source alias)
    demultiply_count: int | None = None        # demultiplexing at the entry

    def node(self, name: str) -> NodeConfig | None:
        return next((n for n in self.nodes if n.name == name), None)

    @property
    def models(self) -> frozenset[str]:
        return frozenset(n.model_name for n in self.nodes if n.kind == DL_MODEL)

    @property
    def libraries(self) -> frozenset[str]:
        return frozenset(n.library_name for n in self.nodes if n.kind == CUSTOM)


@dataclass(frozen=True)
class LibraryConfig:
    name: str
    base_path: str


def _keys(d: Any, what: str, required: set[str], allowed: set[str]) -> dict:
    if not isinstance(d, dict):
        raise ConfigError(f"{what} must be an object")
    missing = required - set(d)
    if missing:
        raise ConfigError(f"{what}: missing {sorted(missing)}")
    unknown = set(d) - allowed
    if unknown:
        raise ConfigError(f"{what}: unknown key(s) {sorted(unknown)}")
    return d


def _str(v: Any, what: str) -> str:
    if not isinstance(v, str) or not v:
        raise ConfigError(f"{what} must be a non-empty string")
    return v


def _demultiply(v: Any, what: str) -> int | None:
    if v is None:
        return None
    if not is_int(v) or not -1 <= v <= MAX_DEMULTIPLY:
        raise ConfigError(f"{what}: demultiply_count must be an integer from -1 to {MAX_DEMULTIPLY}")
    return v


def _connection(v: Any, what: str) -> tuple[str, str, str]:
    """{"<name>": {"node_name": ..., "data_item": ...}} -> (name, node, item)."""
    if not isinstance(v, dict) or len(v) != 1:
        raise ConfigError(f"{what}: each element must be {{\"<name>\": {{\"node_name\": ..., \"data_item\": ...}}}}")
    ((name, src),) = v.items()
    src = _keys(src, f"{what} '{name}'", {"node_name", "data_item"}, {"node_name", "data_item"})
    return _str(name, what), _str(src["node_name"], f"{what} node_name"), _str(src["data_item"], f"{what} data_item")


def parse_node(d: Any, what: str) -> NodeConfig:
    d = _keys(d, what, {"name", "type", "inputs", "outputs"},
              {"name", "type", "model_name", "version", "library_name", "params", "inputs", "outputs",
               "demultiply_count", "gather_from"})
    name = _str(d["name"], f"{what} name")
    what = f"{what} (node '{name}')"
    kind = d["type"]
    if kind == DL_MODEL and ("model_name" not in d or "library_name" in d):
        raise ConfigError(f"{what}: {WRONG_KIND} - a DL model node needs model_name and no library_name")
    if kind == CUSTOM and ("library_name" not in d or "model_name" in d):
        raise ConfigError(f"{what}: {WRONG_KIND} - a custom node needs library_name and no model_name")
    if kind not in (DL_MODEL, CUSTOM):
        raise ConfigError(f"{what}: {WRONG_KIND} - type must be \"{DL_MODEL}\" or \"{CUSTOM}\"")
    version = d.get("version")
    if version is not None and (kind != DL_MODEL or not is_int(version) or version < 1):
        raise ConfigError(f"{what}: version must be an integer >= 1 (DL model nodes only)")
    params = d.get("params", {})
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()) or \
            (params and kind != CUSTOM):
        raise ConfigError(f"{what}: params must be an object of strings (custom nodes only)")
    if not isinstance(d["inputs"], list) or not isinstance(d["outputs"], list):
        raise ConfigError(f"{what}: inputs and outputs must be arrays")
    inputs = tuple(NodeInput(*_connection(c, f"{what} inputs")) for c in d["inputs"])
    outputs = []
    for o in d["outputs"]:
        o = _keys(o, f"{what} outputs", {"data_item", "alias"}, {"data_item", "alias"})
        outputs.append((_str(o["data_item"], f"{what} data_item"), _str(o["alias"], f"{what} alias")))
    gather = d.get("gather_from")
    model = _str(d["model_name"], f"{what} model_name") if kind == DL_MODEL else ""
    library = _str(d["library_name"], f"{what} library_name") if kind == CUSTOM else ""
    return NodeConfig(name=name, kind=kind, model_name=model, version=version, library_name=library,
                      params=tuple(sorted(params.items())), inputs=inputs, outputs=tuple(outputs),
                      demultiply_count=_demultiply(d.get("demultiply_count"), what),
                      gather_from=None if gather is None else _str(gather, f"{what} gather_from"))


def parse_pipeline(d: Any, what: str = "pipeline") -> PipelineConfig:
    """One ``pipeline_config_list`` element. Raises ConfigError for what the schema refuses."""
    d = _keys(d, what, {"name", "nodes", "inputs", "outputs"},
              {"name", "nodes", "inputs", "outputs", "demultiply_count"})
    name = _str(d["name"], f"{what} name")
    what = f"{what} (pipeline '{name}')"
    if not isinstance(d["inputs"], list) or not all(isinstance(i, str) and i for i in d["inputs"]):
        raise ConfigError(f"{what}: inputs must be an array of names")
    if not isinstance(d["nodes"], list) or not isinstance(d["outputs"], list):
        raise ConfigError(f"{what}: nodes and outputs must be arrays")
    nodes = tuple(parse_node(n, f"{what} nodes[{i}]") for i, n in enumerate(d["nodes"]))
    outputs = tuple(_connection(c, f"{what} outputs") for c in d["outputs"])
    return PipelineConfig(name=name, inputs=tuple(d["inputs"]), nodes=nodes, outputs=outputs,
                          demultiply_count=_demultiply(d.get("demultiply_count"), what))


def parse_library(d: Any, config_dir: Path | None, what: str = "library") -> LibraryConfig:
    d = _keys(d, what, {"name", "base_path"}, {"name", "base_path"})
    path = Path(_str(d["base_path"], f"{what} base_path"))
    if not path.is_absolute() and config_dir is not None:
        path = config_dir / path
    return LibraryConfig(_str(d["name"], f"{what} name"), str(path))


# -- structure -----------------------------------------------------------------------------------

def topological_order(p: PipelineConfig) -> list[NodeConfig]:
    """The nodes, each after every node it reads from. Raises PipelineError (OVMS's checks, in its
    order: names, references, cycle, unconnected nodes)."""
    if not p.outputs:
        raise _fail(MISSING_ENTRY_OR_EXIT, "no outputs")
    names = [n.name for n in p.nodes]
    if len(set(names)) != len(names):
        raise _fail(NODE_NAME_DUPLICATE, next(n for n in names if names.count(n) > 1))
    for reserved in (ENTRY, EXIT):
        if reserved in names:
            raise _fail(NODE_NAME_DUPLICATE, f"'{reserved}' is the name of the pipeline's {reserved} node")
    by_name = {n.name: n for n in p.nodes}
    for n in p.nodes:
        for c in n.inputs:
            if c.source == EXIT:
                raise _fail(EXIT_AS_DEPENDENCY, f"node: {n.name}")
            if c.source != ENTRY and c.source not in by_name:
                raise _fail(MISSING_NODE, f"node: {n.name} refers to: {c.source}")
            if c.source == ENTRY and c.item not in p.inputs:
                raise _fail(MISSING_DATA_SOURCE, f"node: {n.name} reads request input: {c.item}")
            if c.source != ENTRY and by_name[c.source].item(c.item) is None:
                raise _fail(MISSING_DATA_SOURCE, f"node: {n.name} reads {c.source}:{c.item}, which has no such alias")
        seen = [c.input for c in n.inputs]
        if len(set(seen)) != len(seen):
            raise _fail(MULTIPLE_SOURCES, f"node: {n.name}")
    for alias, src, item in p.outputs:
        if src == ENTRY:
            if item not in p.inputs:
                raise _fail(MISSING_DATA_SOURCE, f"response output {alias} reads request input: {item}")
        elif src not in by_name:
            raise _fail(MISSING_NODE, f"response output {alias} refers to: {src}")
        elif by_name[src].item(item) is None:
            raise _fail(MISSING_DATA_SOURCE, f"response output {alias} reads {src}:{item}, which has no such alias")
    # Kahn's algorithm, keeping the config's order among nodes that are ready together.
    order: list[NodeConfig] = []
    placed = {ENTRY}
    left = list(p.nodes)
    while left:
        ready = [n for n in left if all(c.source in placed for c in n.inputs)]
        if not ready:
            raise _fail(CYCLE, ", ".join(n.name for n in left))
        for n in ready:
            order.append(n)
            placed.add(n.name)
            left.remove(n)
    # Every node reads something and leads to the response.
    needed = {src for _, src, _ in p.outputs}
    for n in reversed(order):
        if n.name in needed:
            needed.update(c.source for c in n.inputs)
    unconnected = [n.name for n in order if n.name not in needed or not n.inputs]
    if unconnected:
        raise _fail(UNCONNECTED, ", ".join(unconnected))
    return order


def demux_levels(p: PipelineConfig, order: list[NodeConfig]) -> dict[str, tuple[str, ...]]:
    """Node name (and ENTRY) -> the demultiplexers whose sub-requests it runs in (outermost first, after its
    own gather). The response gathers whatever is still split. Raises PipelineError for OVMS's
    demultiplexing and gathering rules."""
    by_name = {n.name: n for n in p.nodes}
    dynamic = [n.name for n in p.nodes if n.demultiply_count is not None and n.demultiply_count <= 0]
    if p.demultiply_count is not None and p.demultiply_count <= 0:
        dynamic.append(ENTRY)
    if len(dynamic) > 1:
        raise _fail(MULTIPLE_DYNAMIC, ", ".join(dynamic))
    levels: dict[str, tuple[str, ...]] = {ENTRY: ()}
    for n in order:
        got = {produced_levels(p, levels, c.source) for c in n.inputs}
        if len(got) > 1:
            raise _fail(LIFO, f"node: {n.name} reads from different demultiplexing levels")
        (lv,) = got
        if n.gather_from is not None:
            if n.gather_from == ENTRY:
                if p.demultiply_count is None:
                    raise _fail(GATHER_FROM_ENTRY, f"node: {n.name}")
            elif n.gather_from not in by_name:
                raise _fail(GATHER_MISSING_NODE, f"node: {n.name} gathers from: {n.gather_from}")
            elif by_name[n.gather_from].demultiply_count is None:
                raise _fail(GATHER_NOT_DEMUX, f"node: {n.name} gathers from: {n.gather_from}")
            if not lv or lv[-1] != n.gather_from:
                raise _fail(LIFO, f"node: {n.name} gathers from: {n.gather_from}, its innermost demultiplexer "
                                  f"is: {lv[-1] if lv else 'none'}")
            lv = lv[:-1]
        levels[n.name] = lv
    return levels


def produced_levels(p: PipelineConfig, levels: dict[str, tuple[str, ...]], source: str) -> tuple[str, ...]:
    """The demultiplexing levels of what ``source`` (a node, or ENTRY) produces: its own, plus itself when it
    splits."""
    node = p.node(source)
    splits = p.demultiply_count is not None if source == ENTRY else node is not None and node.demultiply_count is not None
    return levels[source] + ((source,) if splits else ())


def dag_entries(doc: dict, models: list, config_dir: Path | None) -> tuple[tuple, tuple, list[str]]:
    """(pipelines, custom node libraries, why the entries that are skipped are) of a config file: entries the
    schema refuses, names taken by a model or an earlier entry, and nodes on stateful models (OVMS)."""
    errors: list[str] = []
    libraries: dict[str, Any] = {}
    for i, entry in enumerate(json_array(doc, "custom_node_library_config_list")):
        label = f"custom_node_library_config_list[{i}]"
        try:
            lib = parse_library(entry, config_dir, label)
        except ConfigError as exc:
            errors.append(str(exc))
            continue
        if lib.name in libraries:
            errors.append(f"{label} (library '{lib.name}'): the name is already used by another library")
            continue
        libraries[lib.name] = lib
    stateful = {m.name for m in models if m.stateful}
    taken = {m.name for m in models}
    pipelines: dict[str, Any] = {}
    for i, entry in enumerate(json_array(doc, "pipeline_config_list")):
        label = f"pipeline_config_list[{i}]"
        try:
            p = parse_pipeline(entry, label)
        except ConfigError as exc:
            errors.append(str(exc))
            continue
        label += f" (pipeline '{p.name}')"
        used = sorted(stateful & p.models)
        if used:
            errors.append(f"{label}: {REQUESTED_STATEFUL_PARAMETERS_ON_SUBSCRIBED_MODEL}: model '{used[0]}'")
        elif p.name in taken:
            errors.append(f"{label}: {NAME_OCCUPIED}")
        elif p.name in pipelines:
            errors.append(f"{label}: {ALREADY_EXISTS}")
        else:
            pipelines[p.name] = p
    return tuple(pipelines.values()), tuple(libraries.values()), errors
