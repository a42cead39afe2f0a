"""Pipelines served like models: each valid ``pipeline_config_list`` entry becomes a catalog entry of the
registry with one version ("1") whose servable is a native pipeline (dag/dag_executor.hpp), published to
the route table so that its inferences run natively on every API; custom-node libraries are loaded here.

Contracts:
- Runs on the server's event loop; library loads, node initialization and drains go to the executor.
- A pipeline is (re)built from the models' AVAILABLE servables and its libraries' nodes whenever one of
  them is not what its graph was built on (config reload, a model version loaded, reloaded or retired,
  a library changed): :meth:`PipelineManager.revalidate` runs after every reload cycle. A graph that
  cannot be built leaves the pipeline LOADING with FAILED_PRECONDITION and the reason (OVMS:
  LOADING_PRECONDITION_FAILED), out of the routes. Requests in flight finish on the graph they started
  on: each holds it (and its models and nodes) natively until it completes.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from ovfast import _native
from ovfast.config.dag import CUSTOM, ENTRY, INVALID_LIBRARY, MISSING_MODEL, LibraryConfig, PipelineConfig, PipelineError
from ovfast.config.dag_check import CheckedPipeline, Meta, Signature, check
from ovfast.config.schema import ModelConfig
from ovfast.errors import REQUESTED_STATEFUL_PARAMETERS_ON_SUBSCRIBED_MODEL, OvfastError, one_line
from ovfast.repository.registry import PIPELINE_VERSION, ModelRegistry
from ovfast.repository.served import ServedModel
from ovfast.runtime.model import LoadOptions, ModelHandle, TensorSpec, VersionState

log = logging.getLogger("ovfast.pipelines")

AUTO_MODEL = "Models with shape or batch size \"auto\" cannot be used in pipelines"


class ServedPipeline(ServedModel):
    """A pipeline as a registry catalog entry: one version, built by the PipelineManager (never by the
    registry's version sync)."""

    is_pipeline = True

    def __init__(self, config: PipelineConfig, handle: ModelHandle) -> None:
        super().__init__(ModelConfig(name=config.name, base_path=""))
        self.pipeline = config
        self.versions[PIPELINE_VERSION] = handle
        self.built_on: tuple | None = None  # what the running graph was built from (dependencies' identity)
        # Models (name, version) residency unloaded (parked): the pipeline serves once its next request
        # has loaded them (PipelineManager.load_models); until then it has no graph and no native route.
        self.parked_models: tuple[tuple[str, int | None], ...] = ()


def _meta(t: TensorSpec) -> Meta:
    return t.datatype, None if t.dynamic_rank else tuple(t.shape)


def _spec(name: str, meta: Meta) -> TensorSpec:
    dtype, shape = meta
    return TensorSpec(name, dtype, tuple(shape) if shape is not None else (), shape is None)


class PipelineManager:
    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.configs: dict[str, PipelineConfig] = {}
        # library name -> (config, loaded library or None, why it is not loaded)
        self.libraries: dict[str, tuple[LibraryConfig, Any, str]] = {}
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        registry.on_change = self._model_changed
        registry.load_pipeline = self.load_models

    def _model_changed(self, served: ServedModel) -> None:
        """A model's versions changed (loaded, reloaded, retiring): the pipelines using it are rebuilt at
        once, so that a retiring version's drain is not kept busy by pipeline traffic."""
        if served.is_pipeline or not any(served.name in p.models for p in self.configs.values()):
            return
        task = asyncio.get_running_loop().create_task(self.revalidate())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- config ---------------------------------------------------------------------------------
    async def apply(self, pipelines: tuple[PipelineConfig, ...], libraries: tuple[LibraryConfig, ...]) -> None:
        """Makes the served pipelines and libraries those of a (new) config, then revalidates."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            wanted = {lib.name: lib for lib in libraries}
            for name in list(self.libraries):
                if wanted.get(name) != self.libraries[name][0]:
                    log.info("Custom node library %s: removed or changed", name)
                    del self.libraries[name]  # nodes built over it keep it loaded until their graphs go
            for name, lib in wanted.items():
                if name not in self.libraries:
                    try:
                        loaded = await loop.run_in_executor(None, _native.NodeLibrary, lib.base_path)
                        self.libraries[name] = (lib, loaded, "")
                        log.info("Custom node library %s loaded from %s", name, lib.base_path)
                    except OvfastError as exc:
                        self.libraries[name] = (lib, None, str(exc))
                        log.error("Custom node library %s: %s", name, exc)
            new = {p.name: p for p in pipelines}
            for name in list(self.configs):
                if name not in new:
                    await self._retire(name)
            for name, p in new.items():
                served = self.registry.models.get(name)
                if served is not None and not getattr(served, "is_pipeline", False):
                    continue  # a model has the name (config/load.py refuses such entries)
                if self.configs.get(name) != p:
                    self.configs[name] = p
                    if isinstance(served, ServedPipeline):
                        served.pipeline = p
                        served.built_on = None  # rebuilt below
            await self._revalidate_locked()

    async def load_models(self, served: ServedModel) -> None:
        """A request for a pipeline some of whose models residency unloaded: loads them as a direct
        request would (one load however many wait; its errors are the request's), then rebuilds the
        pipeline over them."""
        residency = self.registry.residency
        if not isinstance(served, ServedPipeline) or not served.parked_models or residency is None:
            return
        for name, version in served.parked_models:
            await residency.acquire(name, version)
        await self.revalidate()

    async def revalidate(self) -> None:
        """Rebuilds every pipeline whose models or libraries are no longer what its graph runs on."""
        async with self._lock:
            await self._revalidate_locked()

    async def _revalidate_locked(self) -> None:
        for name, p in self.configs.items():
            served = self.registry.models.get(name)
            if served is None:
                h = ModelHandle(name, PIPELINE_VERSION, "", LoadOptions(), self.registry.completions, self.registry.core)
                served = self.registry.models[name] = ServedPipeline(p, h)
            if not isinstance(served, ServedPipeline):
                continue
            served.retired = False
            key = self._dependencies(p)
            if key == served.built_on:
                continue
            served.built_on = key
            await self._build(served)

    def _dependencies(self, p: PipelineConfig) -> tuple:
        """What ``p`` would be built from now: each model node's servable and each custom node's library
        (and params); compared by identity (the objects are held, so no identity is reused meanwhile)."""
        key: list[Any] = []
        for n in p.nodes:
            if n.kind == CUSTOM:
                lib = self.libraries.get(n.library_name)
                key.append((n.name, lib[1] if lib else None, n.params))
                continue
            try:
                h = self.registry.resolve(n.model_name, n.version)
                key.append((n.name, h.servable))
            except OvfastError:
                key.append((n.name, None))
        return tuple(key)

    # -- building ---------------------------------------------------------------------------------
    async def _build(self, served: ServedPipeline) -> None:
        p = served.pipeline
        h = served.versions[PIPELINE_VERSION]
        if h.state != VersionState.AVAILABLE:
            h.set_state(VersionState.LOADING)
        try:
            servable, checked, parked = await self._make(p)
        except (PipelineError, OvfastError) as exc:
            message = one_line(str(exc))
            log.error("Validation of pipeline: %s definition failed. %s", p.name, message)
            self.registry.routes.remove(p.name)
            await self._drop(h)
            h.set_state(VersionState.LOADING, "FAILED_PRECONDITION", message)
            served.refresh_default()
            return
        old = h.servable
        h.inputs = tuple(_spec(k, v) for k, v in checked.inputs.items())
        h.outputs = tuple(_spec(k, v) for k, v in checked.outputs.items())
        h.servable = servable
        served.parked_models = parked
        if servable is None:  # its requests go through Python, whose resolve_wait loads the models first
            self.registry.routes.remove(p.name)
        else:
            self.registry.routes.publish(p.name, False, PIPELINE_VERSION, [(PIPELINE_VERSION, servable)])
        if h.state != VersionState.AVAILABLE:
            h.set_state(VersionState.AVAILABLE)
        served.refresh_default()
        if parked:
            log.info("Pipeline: %s serves once its next request has loaded model(s) %s, unloaded by residency",
                     p.name, ", ".join(name for name, _ in parked))
        else:
            log.info("Pipeline: %s state changed to: AVAILABLE after handling: ValidationPassedEvent", p.name)
        if old is not None:
            # requests in flight on the previous graph finish on it; it is dropped off the loop
            await asyncio.get_running_loop().run_in_executor(None, old.drain)

    async def _make(self, p: PipelineConfig) -> tuple[Any, CheckedPipeline, tuple[tuple[str, int | None], ...]]:
        """The native pipeline servable for ``p`` as the models and libraries are now, its checks, and the
        models residency has unloaded (then no servable: it is built once they are loaded again)."""
        loop = asyncio.get_running_loop()
        signatures: dict[str, Signature] = {}
        servables: dict[str, Any] = {}
        customs: dict[str, Any] = {}
        parked: list[tuple[str, int | None]] = []
        for n in p.nodes:
            if n.kind == CUSTOM:
                lib = self.libraries.get(n.library_name)
                if lib is None or lib[1] is None:
                    raise PipelineError(f"{INVALID_LIBRARY} - node: {n.name} library: {n.library_name}"
                                        + (f" ({lib[2]})" if lib else ""))
                node = await loop.run_in_executor(None, _native.CustomNode, lib[1], dict(n.params))
                customs[n.name] = node
                signatures[n.name] = Signature(
                    {name: (dt, tuple(dims)) for name, dt, dims in node.inputs},
                    {name: (dt, tuple(dims)) for name, dt, dims in node.outputs})
                continue
            try:
                h = self.registry.resolve(n.model_name, n.version)
            except OvfastError as exc:
                h = self._parked(n.model_name, n.version)
                if h is None:
                    raise PipelineError(f"{MISSING_MODEL} - node: {n.name} model: {n.model_name}"
                                        + (f" version: {n.version}" if n.version else "") + f" ({exc})") from None
                parked.append((n.model_name, n.version))
            if h.stateful:
                raise PipelineError(f"{REQUESTED_STATEFUL_PARAMETERS_ON_SUBSCRIBED_MODEL} - model: {n.model_name}")
            if h.auto_reshape:
                raise PipelineError(f"{AUTO_MODEL} - model: {n.model_name}")
            servables[n.name] = h.servable
            signatures[n.name] = Signature({t.name: _meta(t) for t in h.inputs}, {t.name: _meta(t) for t in h.outputs})
        checked = check(p, signatures)
        if parked:
            return None, checked, tuple(dict.fromkeys(parked))
        index = {ENTRY: 0} | {n.name: i + 1 for i, n in enumerate(checked.order)}

        def item(source: str, alias: str) -> str:
            node = p.node(source)
            return alias if node is None else node.item(alias)  # type: ignore[return-value]

        nodes: list[tuple] = [("request", None, None, [], p.demultiply_count, -1)]
        for n in checked.order:
            edges = [(index[c.source], item(c.source, c.item), c.input) for c in n.inputs]
            nodes.append((n.name, servables.get(n.name), customs.get(n.name), edges, n.demultiply_count,
                          index[n.gather_from] if n.gather_from is not None else -1))
        outputs = [(name, index[src], item(src, alias)) for name, src, alias in p.outputs]

        def info(metas: dict[str, Meta]) -> list[tuple]:
            return [(k, dt, list(shape) if shape is not None else None) for k, (dt, shape) in metas.items()]

        servable = _native.Servable.pipeline(p.name, nodes, outputs, info(checked.inputs), info(checked.outputs),
                                             self.registry.completions.queue)
        return servable, checked, ()

    def _parked(self, model: str, version: int | None) -> ModelHandle | None:
        """The version a model node runs when residency has unloaded it (to load on demand), with its
        signature; None when it is not such a version or its signature cannot be read."""
        if self.registry.residency is None:
            return None
        try:
            h = self.registry.describe(model, version)
        except OvfastError:
            return None
        return h if h.loadable and h.inputs else None

    # -- retiring ---------------------------------------------------------------------------------
    async def _retire(self, name: str) -> None:
        self.configs.pop(name, None)
        served = self.registry.models.get(name)
        if not isinstance(served, ServedPipeline):
            return
        log.info("Pipeline %s: removed from the configuration; retiring", name)
        served.retired = True
        served.built_on = None
        self.registry.routes.remove(name)
        h = served.versions[PIPELINE_VERSION]
        h.set_state(VersionState.UNLOADING)
        served.refresh_default()
        await self._drop(h)
        h.set_state(VersionState.END)

    @staticmethod
    async def _drop(h: ModelHandle) -> None:
        s, h.servable = h.servable, None
        if s is not None:
            await asyncio.get_running_loop().run_in_executor(None, s.drain)

    async def stop(self) -> None:
        """Shutdown: every pipeline stops serving and its graph is dropped (after its requests)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        async with self._lock:
            for name in list(self.configs):
                await self._retire(name)
