"""ModelRegistry: name -> {version -> ModelHandle}. The only writer of model state.

Contracts:
- Every method runs on the server's event loop; blocking loads/unloads go to the default
  executor. A model's versions are changed only under that model's ``lock``.
- A version is replaced by loading the new handle first, swapping it into ``versions`` (one
  dict assignment on the loop), then unloading the old one; the old handle's drain() lets
  requests in flight finish on it.
- The default version is the highest AVAILABLE one (with residency: the highest one that is
  AVAILABLE or parked to load on demand; when that one is parked, there is no default until it loads).
- Residency (repository/residency.py) decides what is loaded when a memory budget, idle unloading
  or explicit model control is on; it changes state only through load_parked(), park() and
  set_parked() (repository/residency_writes.py, mixed in here). Without it, nothing is ever parked and behaviour is as described above.
- What a reload plan (config/diff.py) decides is what happens: a model whose settings changed gets a
  new ``generation`` and every version built for an older one is reloaded; a change of the version
  selection alone loads and retires versions but reloads none of those that stay.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Awaitable, Callable

from ovfast import _native
from ovfast.config.diff import ReloadPlan
from ovfast.config.schema import Dim, ModelConfig
from ovfast.errors import (
    MODEL_NAME_MISSING, MODEL_VERSION_MISSING, MODEL_VERSION_NOT_LOADED_ANYMORE, MODEL_VERSION_NOT_LOADED_YET,
    PIPELINE_NOT_LOADED_ANYMORE, PIPELINE_NOT_LOADED_YET, FailedPreconditionError, NotFoundError, UnavailableError,
)
from ovfast.repository.layout import find_model_file, read_mapping, version_stamp
from ovfast.repository.residency_writes import ResidencyWrites, density_options
from ovfast.repository.reshape import fixed_shape, needs_reshape
from ovfast.repository.served import ServedModel, version_number
from ovfast.repository.storage import Storage
from ovfast.runtime.completions import CompletionDispatcher
from ovfast.runtime.model import LoadOptions, ModelHandle, VersionState, load_options

if TYPE_CHECKING:  # pragma: no cover
    from ovfast.repository.residency import Residency

log = logging.getLogger("ovfast.registry")

WAIT_FOR_LOADED_S = 10.0  # OVMS DEFAULT_WAIT_FOR_MODEL_LOADED_TIMEOUT_MS
WAIT_FOR_PIPELINE_S = 0.5  # OVMS WAIT_FOR_LOADED_DEFAULT_TIMEOUT_MICROSECONDS (a pipeline being validated)
WAIT_STEP_S = 0.05
PIPELINE_VERSION = 1  # pipelines are unversioned: served, listed and counted as version 1
RESHAPE_ERROR = "Model could not be reshaped with requested shape"


def _load_reason(old: ModelHandle | None) -> str:
    if old is None:
        return "new version"
    if old.state == VersionState.END:
        return "version selected again"
    if old.state != VersionState.AVAILABLE:
        return "retrying a failed load"
    return "the model's configuration changed"


class ModelRegistry(ResidencyWrites):
    def __init__(self, completions: CompletionDispatcher, core: _native.Core) -> None:
        self.models: dict[str, ServedModel] = {}
        self.completions = completions
        self.core = core
        # What the native gRPC front-end serves without Python: kept in step with every model's
        # versions by _refresh().
        self.routes = _native.RouteTable()
        self._background: set[asyncio.Task] = set()
        self.residency: Residency | None = None  # set by the server when residency is on
        # Where loads run (None: the loop's default executor). Residency gives it one thread of its own,
        # so that every measured load starts from the same thread's allocator state.
        self.load_executor: concurrent.futures.Executor | None = None
        # Models with a version that holds memory (AVAILABLE or UNLOADING): what residency walks.
        self.resident: set[ServedModel] = set()
        # where version folders are listed and read from: local, or object storage through a cache
        self.storage = Storage()
        self.on_change: Callable[[ServedModel], None] | None = None  # after _refresh (pipelines revalidate)
        # Before a request waits for a pipeline: loads the models of it that residency unloaded
        # (repository/pipelines.py PipelineManager.load_models).
        self.load_pipeline: Callable[[ServedModel], Awaitable[None]] | None = None

    def _refresh(self, served: ServedModel) -> None:
        """After any change of a model's versions or settings: its default version, and its routes
        for the native gRPC front-end (the AVAILABLE versions; none for shape/batch "auto", whose
        requests may need a reshape first). A version leaves the routes here before it drains."""
        served.refresh_default()
        cfg = served.config
        versions = [(v, h.servable) for v, h in served.versions.items()
                    if h.state == VersionState.AVAILABLE and h.servable is not None]
        default = served.default.version if served.default is not None else 0
        if any(h.servable is not None for h in served.versions.values()):
            self.resident.add(served)
        else:
            self.resident.discard(served)
        if versions:
            self.routes.publish(served.name, bool(cfg.auto_shape_inputs) or cfg.auto_batch, default, versions)
            served.routed = True
        elif served.routed:
            # NOTE: no entry rather than an empty one: the native side forwards an unrouted name to
            # Python either way, and each publish copies the table (10,000 empty entries made start-up
            # quadratic).
            self.routes.remove(served.name)
            served.routed = False
        if self.on_change is not None:
            self.on_change(served)

    # -- lookups (hot path: dict gets only) -------------------------------------------------
    def get_model(self, name: str) -> ServedModel:
        m = self.models.get(name)
        if m is None:
            raise NotFoundError(MODEL_NAME_MISSING)
        return m

    def resolve(self, name: str, version: str | int | None = None) -> ModelHandle:
        """The handle serving (name, version); version ''/0/None = default. Raises NotFound/InvalidArgument,
        or Unavailable while the version is still loading."""
        m = self.models.get(name)
        if m is None:
            raise NotFoundError(MODEL_NAME_MISSING)
        if m.is_pipeline:
            return self._resolve_pipeline(m, version)
        if not version:
            h = m.default
            if h is None:
                # loading, failed and retried, or just loaded (a load turns its handle AVAILABLE on its
                # executor thread, before the loop makes it the default)
                if any(x.state <= VersionState.AVAILABLE for x in m.versions.values()):
                    raise UnavailableError(MODEL_VERSION_NOT_LOADED_YET)
                if m.versions and all(x.state == VersionState.END for x in m.versions.values()):
                    raise NotFoundError(MODEL_VERSION_NOT_LOADED_ANYMORE)
                # a base path that cannot be read (e.g. a bucket): say why
                raise NotFoundError(f"{MODEL_VERSION_MISSING} - {m.scan_error}" if m.scan_error
                                    else MODEL_VERSION_MISSING)
            return h
        if isinstance(version, str):
            version = version_number(version)
        h = m.versions.get(version)
        if h is None:
            raise NotFoundError(MODEL_VERSION_MISSING)
        if h.state != VersionState.AVAILABLE:
            if h.state > VersionState.AVAILABLE:
                raise NotFoundError(MODEL_VERSION_NOT_LOADED_ANYMORE)
            raise UnavailableError(MODEL_VERSION_NOT_LOADED_YET)
        return h

    @staticmethod
    def _resolve_pipeline(m: ServedModel, version: str | int | None) -> ModelHandle:
        """resolve() for a pipeline: its one version, or OVMS's pipeline errors (spec/ovms.md 3.7)."""
        h = m.versions.get(PIPELINE_VERSION)
        if version and (version_number(version) if isinstance(version, str) else int(version)) != PIPELINE_VERSION:
            raise NotFoundError(MODEL_VERSION_MISSING)
        if m.retired or (h is not None and h.state > VersionState.AVAILABLE):
            raise NotFoundError(PIPELINE_NOT_LOADED_ANYMORE)
        if h is None or h.state != VersionState.AVAILABLE or h.servable is None:
            raise UnavailableError(PIPELINE_NOT_LOADED_YET)  # validating, invalid, or its models to load
        return h

    async def resolve_wait(self, name: str, version: str | int | None = None) -> ModelHandle:
        """resolve(), but a version still loading is waited for (up to 10 s, as OVMS) instead of failing,
        and with residency a parked version is loaded first. The handle comes back pinned
        (``pins`` + 1: residency does not unload it); the caller unpins it once it has submitted."""
        h = await self._resolve_wait(name, version)
        h.pins += 1
        return h

    async def _resolve_wait(self, name: str, version: str | int | None) -> ModelHandle:
        m = self.models.get(name)
        if m is not None and m.is_pipeline:
            if self.load_pipeline is not None:
                await self.load_pipeline(m)
        elif self.residency is not None:
            h = await self.residency.acquire(name, version)
            if h is not None:
                return h
        try:
            return self.resolve(name, version)
        except UnavailableError:
            log.debug("Waiting for model %s version %s to load", name, version or "(default)")
        deadline = time.monotonic() + (WAIT_FOR_PIPELINE_S if m is not None and m.is_pipeline else WAIT_FOR_LOADED_S)
        while True:
            await asyncio.sleep(WAIT_STEP_S)
            try:
                return self.resolve(name, version)
            except UnavailableError:
                m = self.models.get(name)
                failed = m is not None and not m.loading() and m.default is None
                if failed or time.monotonic() >= deadline:
                    raise

    def lookup_version(self, name: str, version: str | int | None) -> tuple[ServedModel, ModelHandle | None]:
        """Like resolve() but returns non-AVAILABLE handles too (status APIs)."""
        m = self.get_model(name)
        if not version:
            return m, m.default or m.top()
        h = m.versions.get(version_number(version) if isinstance(version, str) else int(version))
        if h is None:
            raise NotFoundError(MODEL_VERSION_MISSING)
        return m, h

    def status(self) -> dict[str, list[ModelHandle]]:
        """Every model's version handles, highest version first (GET /v1/config, TFS GetModelStatus)."""
        return {n: [m.versions[v] for v in sorted(m.versions, reverse=True)] for n, m in sorted(self.models.items())}

    # -- applying configs -------------------------------------------------------------------
    async def apply(self, plan: ReloadPlan) -> bool:
        """Carries out a reload plan (see config/diff.py), then re-scans the versions of every model.
        Returns True if any version was loaded or unloaded."""
        for line in plan.describe():
            log.info("Config reload: %s", line)
        changed = False
        for name in plan.removed:
            served = self.models.get(name)
            if served is not None:
                served.retired = True
                async with served.lock:
                    changed |= await self._retire(served, list(served.versions))
        for cfg in plan.added:
            served = self.models.get(cfg.name)
            if served is None:
                self.models[cfg.name] = ServedModel(cfg)
            else:  # a retired model comes back (its versions, all END, are loaded again)
                served.config = cfg
                served.retired = False
        for cfg, change in plan.changed:
            served = self.models[cfg.name]
            served.config = cfg
            if change.reload_versions:
                served.generation += 1
            self._refresh(served)
        changed |= await self.sync_all()
        return changed

    async def sync_all(self) -> bool:
        changed = False
        for served in list(self.models.values()):
            if not served.retired and not served.is_pipeline:  # pipelines: repository/pipelines.py
                changed |= await self.sync_versions(served)
        return changed

    async def sync_versions(self, served: ServedModel) -> bool:
        """Makes the served versions match the version folders and the policy, and reloads the versions
        built for an older generation of the config. Returns True if anything was loaded or unloaded."""
        async with served.lock:
            return await self._sync_locked(served)

    async def _sync_locked(self, served: ServedModel) -> bool:
        cfg = served.config
        try:
            available = await self.storage.list_versions(cfg.base_path)
        except (FileNotFoundError, OSError) as exc:
            msg = f"Model {cfg.name}: {exc}"
            if served.scan_error != msg:
                log.error("%s; keeping the versions already served", msg)
                served.scan_error = msg
            return False
        served.scan_error = None
        wanted = set(cfg.model_version_policy.select(available))
        base_options = load_options(cfg)
        changed = False
        loop = asyncio.get_running_loop()
        for v in sorted(wanted):
            old = served.versions.get(v)
            if self.residency is not None and not self.residency.eager(served):
                if old is None or (old.state == VersionState.END and not old.parked):
                    served.versions[v] = self._parked_handle(served, v, self.residency.initial_reason(served))
                    continue
                if old.parked or (old.state < VersionState.AVAILABLE and old.error_code != "OK"):
                    continue  # parked, or failed: residency loads it when a request (or a load call) asks
            elif old is not None and old.parked:
                continue  # unloaded by residency (idle, explicit): loads again when asked, not here
            try:
                vdir = await self.storage.version_dir(cfg.base_path, v)
                path = str(find_model_file(vdir))
                mapping = read_mapping(vdir)
            except (OSError, ValueError) as exc:
                if served.folder_errors.get(v) != str(exc):  # logged when it changes, not every cycle
                    served.folder_errors[v] = str(exc)
                    log.error("Model %s version %d: %s", cfg.name, v, exc)
                if old is None or old.state == VersionState.END:
                    h = ModelHandle(cfg.name, v, "", base_options, self.completions, self.core)
                    h.set_state(VersionState.LOADING, "UNKNOWN", str(exc))
                    served.versions[v] = h
                continue
            served.folder_errors.pop(v, None)
            options = dataclasses.replace(base_options, mapping_inputs=mapping.inputs, mapping_outputs=mapping.outputs)
            if (old is not None and old.state == VersionState.AVAILABLE and old.generation == served.generation
                    and (old.options.mapping_inputs, old.options.mapping_outputs) == (mapping.inputs, mapping.outputs)):
                continue
            if old is not None and old.state < VersionState.AVAILABLE and old.error_code == "OK":
                continue  # being loaded right now (should not happen under the lock)
            if v in served.retries and not served.retry_due(v, (path, options, version_stamp(vdir))):
                continue  # failed before with these settings and files: backing off
            new = self._new_handle(served, v, path, options)
            replacing = old is not None and old.state == VersionState.AVAILABLE
            log.info("Model %s version %d: loading from %s (%s)", cfg.name, v, path, _load_reason(old))
            if not replacing:
                served.versions[v] = new  # requests for it wait while it loads
            try:
                await loop.run_in_executor(self.load_executor, new.load)
            except Exception:  # noqa: BLE001 - logged and recorded on the handle by load()
                r = served.load_failed(v, (path, options, version_stamp(vdir)))
                log.info("Model %s version %d: load attempt %d failed%s; next attempt in %g s", cfg.name, v,
                         r.attempts, "; the previous configuration keeps serving" if replacing else "", r.delay_s)
                self._refresh(served)
                continue
            served.retries.pop(v, None)
            changed = True
            served.versions[v] = new
            self._refresh(served)
            if replacing:
                await self._unload(served, old)
        retire = [v for v, h in served.versions.items() if v not in wanted and h.state != VersionState.END]
        for v in retire:
            why = "its folder is gone" if v not in available else "the version policy no longer selects it"
            log.info("Model %s version %d: retiring because %s", cfg.name, v, why)
        changed |= await self._retire(served, retire)
        self._refresh(served)
        return changed

    def _new_handle(self, served: ServedModel, version: int, path: str, options: LoadOptions) -> ModelHandle:
        cfg = served.config
        if self.residency is not None and self.residency.budget:
            options = density_options(options, path)
        h = ModelHandle(cfg.name, version, path, options, self.completions, self.core)
        h.auto_reshape = bool(cfg.auto_shape_inputs) or cfg.auto_batch
        h.generation = served.generation
        return h

    async def _retire(self, served: ServedModel, versions: list[int]) -> bool:
        changed = False
        for v in versions:
            h = served.versions[v]
            h.parked = ""  # retired: no longer in the catalog, so nothing loads it on demand
            if h.state == VersionState.END:
                continue
            if h.state != VersionState.AVAILABLE:  # never loaded: nothing to unload
                h.set_state(VersionState.END)
                continue
            await self._unload(served, h)
            changed = True
        self._refresh(served)
        self.storage.release(served.config.base_path, versions)  # cached copies of remote versions
        return changed

    async def _unload(self, served: ServedModel, h: ModelHandle) -> None:
        """Marks ``h`` UNLOADING at once (new requests stop picking it), then drains and frees it."""
        h.set_state(VersionState.UNLOADING)
        self._refresh(served)
        await asyncio.get_running_loop().run_in_executor(None, h.unload)

    # -- "auto" shape / batch ---------------------------------------------------------------
    async def fit_shapes(self, h: ModelHandle, shapes: dict[str, list[int]]) -> ModelHandle:
        """For a model with shape/batch "auto": the handle to run a request with these input shapes on,
        reloading the version with them first if needed (OVMS semantics). Concurrent callers are
        serialized on the model's lock, so a shape is compiled once."""
        served = self.models.get(h.name)
        if served is None or not needs_reshape(h, served.config, shapes):
            return h
        async with served.lock:
            cur = served.versions.get(h.version)
            if cur is None or cur.state != VersionState.AVAILABLE:
                return self.resolve(h.name, h.version)
            cfg = served.config
            if not needs_reshape(cur, cfg, shapes):
                return cur
            base = load_options(cfg)
            new_shapes = dict(base.shapes)
            batch = base.batch_size
            if cfg.auto_shape_inputs:
                for i, spec in enumerate(cur.inputs):
                    if spec.name in cfg.auto_shape_inputs or ("" in cfg.auto_shape_inputs and i == 0):
                        new_shapes[spec.name] = fixed_shape(shapes.get(spec.name, spec.shape))
            else:
                first = next((shapes[s.name] for s in cur.inputs if shapes.get(s.name)), None)
                if first:
                    batch = Dim(int(first[0]), int(first[0]))
            opts = dataclasses.replace(base, shapes=tuple(new_shapes.items()), batch_size=batch,
                                       mapping_inputs=cur.options.mapping_inputs,
                                       mapping_outputs=cur.options.mapping_outputs)
            log.info("Model %s version %d: reloading for the request's shape %s (shape/batch_size auto)",
                     h.name, h.version, {k: str(fixed_shape(v)) for k, v in shapes.items()})
            new = ModelHandle(cur.name, cur.version, cur.path, opts, self.completions, self.core)
            new.generation = cur.generation
            new.auto_reshape = True
            try:
                await asyncio.get_running_loop().run_in_executor(self.load_executor, new.load)
            except Exception as exc:  # noqa: BLE001 - the previous compiled model keeps serving
                raise FailedPreconditionError(f"{RESHAPE_ERROR} - {exc}") from None
            served.versions[cur.version] = new
            self._refresh(served)
            # The old compiled model finishes its in-flight requests in the background.
            cur.set_state(VersionState.UNLOADING)
            task = asyncio.get_running_loop().create_task(self._drain_later(cur))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return new

    @staticmethod
    async def _drain_later(h: ModelHandle) -> None:
        await asyncio.get_running_loop().run_in_executor(None, h.unload)

    def flush_batches(self) -> None:
        """Shutdown: every dynamic batcher starts what it holds without waiting out its queue delay."""
        for served in self.models.values():
            for h in served.versions.values():
                h.flush()

    # -- one model at a time (ModelMesh's loadModel / unloadModel: no re-scan of the others) ----------
    async def add(self, cfg: ModelConfig) -> ServedModel:
        """Puts one model in the catalog and scans its versions (with residency: parks them)."""
        log.info("Model %s: added (base_path %s)", cfg.name, cfg.base_path)
        served = self.models.get(cfg.name)
        if served is None:
            served = self.models[cfg.name] = ServedModel(cfg)
        else:  # retired, not dropped yet
            served.config, served.retired = cfg, False
        await self.sync_versions(served)
        return served

    async def remove(self, name: str) -> None:
        """Retires one model (its versions unloaded, requests in flight finish first) and drops it from the
        catalog: a later request for it is NOT_FOUND, as for a model never loaded."""
        served = self.models.get(name)
        if served is None:
            return
        served.retired = True
        async with served.lock:
            await self._retire(served, list(served.versions))
        if served.retired and all(h.servable is None for h in served.versions.values()):
            del self.models[name]

    async def unload_all(self) -> None:
        for served in self.models.values():
            async with served.lock:
                await self._retire(served, list(served.versions))
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
