"""ModelMesh's model-runtime SPI over the catalog and residency (spec/modelmesh.md §3).

ModelMesh decides which models a pod holds; here each decision becomes a catalog/residency operation:

- loadModel: the model (``modelId`` as its name, version 1 or its numbered folders) is added to the catalog
  (``registry.add``) and loaded now by residency (``Residency.load_model``), which compiles one model at a
  time and measures its memory natively around the load; the answer carries that measured size. Before
  anything is fetched or compiled, the load is admitted against the capacity (= the memory budget): what
  loaded models measured, plus what the loads under way were predicted at, plus this one's prediction must
  fit, else RESOURCE_EXHAUSTED. The check and the reservation happen in one step on the event loop, so
  concurrent loads (``maxLoadingConcurrency`` > 1) cannot both take the last free bytes.
- ovfast never unloads on its own under ModelMesh (residency runs with ``evict=False``, no idle unload):
  ModelMesh owns eviction and would otherwise see NOT_FOUND for a model it believes loaded.
- unloadModel: returns when the model's memory is released (requests in flight finish first). A load under
  way for the id is cancelled at its next step (after the download, before and after the compile) and then
  unloaded, so the model is never left loaded after the unload returns. Unknown ids are fine.
- Loading an id already loaded (or loading) answers like the first load. A load that arrives while the id
  is being unloaded waits for the unload, then loads again.
- predictModelSize answers at once (no remote call): the size measured the last time this id was loaded,
  else the model files' size (ModelMesh's ``disk_size_bytes``, or the local files) times the largest
  measured/file ratio of similar loads, else ``defaultModelSizeInBytes``.
- runtimeStatus: STARTING until the server has started; when ModelMesh asks while models are loaded or
  loading (it restarted and lost its state), every one of them is unloaded first, answering STARTING until
  that purge is done; then READY with the settings of config/modelmesh.py.

Every method runs on the server's event loop.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ovfast.api.modelmesh.source import (
    ModelKey, build_layout, files_size, parse_model_key, source_of,
)
from ovfast.config.modelmesh import UNIT, ModelMeshConfig
from ovfast.config.schema import ModelConfig
from ovfast.errors import (
    CancelledError, FailedPreconditionError, InsufficientMemoryError, InvalidArgumentError, NotFoundError,
)
from ovfast.repository.registry import ModelRegistry
from ovfast.repository.residency import Residency
from ovfast.repository.storage_access import is_remote, read_storage_config
from ovfast.runtime.model import VersionState

log = logging.getLogger("ovfast.modelmesh")

MAX_ID_BYTES = 1024


@dataclass(eq=False)
class _Model:
    """One modelId ModelMesh asked for: loading, loaded, or on its way out."""

    model_id: str
    source: str  # local path or URI
    predicted: int  # bytes reserved while it loads
    links: Path  # its folder of links (source.build_layout)
    task: asyncio.Task | None = None  # the load
    unload: asyncio.Task | None = None
    cancelled: bool = False  # unloadModel came: the load stops at its next step
    loaded: bool = False
    size: int = 0  # measured bytes once loaded


class ModelMeshRuntime:
    """The state behind mmesh.ModelRuntime (module docstring)."""

    def __init__(self, registry: ModelRegistry, residency: Residency, config: ModelMeshConfig) -> None:
        self.registry = registry
        self.residency = residency
        self.config = config
        self.models: dict[str, _Model] = {}
        self.started = False  # set by the server once it serves
        self._purge: asyncio.Task | None = None
        self._links_root: Path | None = None

    # -- accounting ---------------------------------------------------------------------------
    def reserved(self) -> int:
        """Predicted bytes of the loads under way (a cancelled one too, until it is undone: its compile may
        still be holding memory)."""
        return sum(m.predicted for m in self.models.values() if not m.loaded)

    def predict(self, model_id: str, source: str, key: ModelKey) -> int:
        measured = self.residency.measured(model_id)
        if measured:
            return measured
        files = key.disk_size or (0 if is_remote(source) else files_size(source))
        if files:
            return max(UNIT, self.residency.predict_files(files, conservative=True))
        return self.config.default_model_size

    def _admit(self, model_id: str, predicted: int) -> None:
        """Refuses (RESOURCE_EXHAUSTED) a load that cannot fit; nothing is unloaded to make room."""
        capacity = self.config.capacity_bytes
        if predicted > capacity:
            raise InsufficientMemoryError(f"Cannot load model {model_id}: it needs about {predicted} bytes, more "
                                          f"than the whole capacity of {capacity} bytes")
        used, pending = self.residency.used(), self.reserved()
        if used + pending + predicted > capacity:
            loaded = sum(1 for m in self.models.values() if m.loaded)
            raise InsufficientMemoryError(
                f"Cannot load model {model_id}: it needs about {predicted} bytes; {used} bytes are used by {loaded} "
                f"loaded model(s) and {pending} reserved by loads under way, of a capacity of {capacity} bytes")

    # -- loadModel ----------------------------------------------------------------------------
    async def load(self, model_id: str, model_path: str, model_key: str) -> int:
        """Loads the model; returns its measured size in bytes. Raises INVALID_ARGUMENT / FAILED_PRECONDITION
        when nothing was attempted, RESOURCE_EXHAUSTED when it does not fit, CANCELLED when unloadModel came
        first, and what the load raised otherwise."""
        if not model_id or len(model_id.encode()) > MAX_ID_BYTES or "\0" in model_id:
            raise InvalidArgumentError(f"modelId must be 1 to {MAX_ID_BYTES} bytes without NUL")
        if not self.started or self.purging:
            raise FailedPreconditionError("the runtime is starting: wait for runtimeStatus READY")
        while (m := self.models.get(model_id)) is not None:
            if not m.cancelled:
                assert m.task is not None
                return await asyncio.shield(m.task)  # the same load, however many ask
            assert m.unload is not None
            await asyncio.gather(asyncio.shield(m.unload), return_exceptions=True)
        key = parse_model_key(model_key)
        source = source_of(model_path, key, read_storage_config(self.registry.storage.config_dir))
        predicted = self.predict(model_id, source, key)
        self._admit(model_id, predicted)
        m = _Model(model_id, source, predicted, self._links_for(model_id))
        self.models[model_id] = m  # reserved from here on (no await since the check)
        m.task = asyncio.get_running_loop().create_task(self._load(m, key))
        log.info("ModelMesh: loading model %s from %s (format %s, predicted %d bytes)", model_id, source,
                 key.format or "found from its files", predicted)
        return await asyncio.shield(m.task)

    async def _load(self, m: _Model, key: ModelKey) -> int:
        try:
            try:
                local = await self.registry.storage.fetch_model(m.source, key.storage_key)
            except OSError as exc:  # StorageError: unreachable, missing, denied
                raise FailedPreconditionError(f"modelPath {m.source}: {exc}") from None
            self._check(m)
            base = await asyncio.get_running_loop().run_in_executor(None, build_layout, local, key.format, m.links)
            self._check(m)
            await self.registry.add(ModelConfig(name=m.model_id, base_path=base))
            await self.residency.load_model(m.model_id, wait_s=None)
            self._check(m)
        except BaseException as exc:
            if isinstance(exc, CancelledError):
                log.info("ModelMesh: loading model %s stopped: unloadModel came", m.model_id)
            await self._discard(m)
            raise
        served = self.registry.models[m.model_id]
        m.size = sum(h.size_bytes for h in served.versions.values() if h.state == VersionState.AVAILABLE)
        m.size = m.size or m.predicted  # not measurable here: keep the prediction
        m.loaded = True
        log.info("ModelMesh: model %s loaded, %d bytes measured", m.model_id, m.size)
        return m.size

    @staticmethod
    def _check(m: _Model) -> None:
        if m.cancelled:
            raise CancelledError(f"Loading model {m.model_id} was cancelled by unloadModel")

    # -- unloadModel --------------------------------------------------------------------------
    async def unload(self, model_id: str) -> None:
        """Returns once the model holds no memory; a load under way is stopped and undone first."""
        m = self.models.get(model_id)
        if m is None:
            if model_id in self.registry.models:  # left over from a failed load
                await self._drop_catalog(model_id)
            return
        m.cancelled = True
        if m.unload is None:
            m.unload = asyncio.get_running_loop().create_task(self._unload(m))
        await asyncio.shield(m.unload)

    async def _unload(self, m: _Model) -> None:
        if m.task is not None:
            await asyncio.gather(m.task, return_exceptions=True)
        await self._discard(m)
        log.info("ModelMesh: model %s unloaded", m.model_id)

    async def _discard(self, m: _Model) -> None:
        """Undoes whatever of a load happened: catalog entry, loaded versions, links, cached download.
        Idempotent."""
        await self._drop_catalog(m.model_id)
        shutil.rmtree(m.links, ignore_errors=True)
        if self.models.get(m.model_id) is m:
            del self.models[m.model_id]
        if is_remote(m.source) and not any(o.source == m.source for o in self.models.values()):
            self.registry.storage.release_model(m.source)

    async def _drop_catalog(self, model_id: str) -> None:
        served = self.registry.models.get(model_id)
        if served is not None and not served.retired:
            await self.residency.unload_model(model_id)  # waits for requests in flight, frees memory
        await self.registry.remove(model_id)
        self.residency.forget(model_id)

    # -- sizes --------------------------------------------------------------------------------
    def predict_size(self, model_id: str, model_path: str, model_key: str) -> int:
        key = parse_model_key(model_key)
        try:
            source = source_of(model_path, key, read_storage_config(self.registry.storage.config_dir))
        except FailedPreconditionError:
            return self.config.default_model_size
        return self.predict(model_id, source, key)

    async def size(self, model_id: str) -> int:
        m = self.models.get(model_id)
        if m is None or m.cancelled:
            raise NotFoundError(f"Model {model_id} is not loaded")
        if not m.loaded:
            assert m.task is not None
            return await asyncio.shield(m.task)
        return m.size

    # -- runtimeStatus ------------------------------------------------------------------------
    @property
    def purging(self) -> bool:
        return self._purge is not None and not self._purge.done()

    def ready(self) -> bool:
        """Whether runtimeStatus may say READY; starts the purge when models are held (ModelMesh restarted)."""
        if not self.started:
            return False
        if self.models and not self.purging:
            log.info("ModelMesh: runtimeStatus with %d model(s) loaded or loading: purging them first",
                     len(self.models))
            self._purge = asyncio.get_running_loop().create_task(self._purge_all())
        return not self.purging and not self.models

    async def _purge_all(self) -> None:
        await asyncio.gather(*(self.unload(i) for i in list(self.models)), return_exceptions=True)

    async def stop(self) -> None:
        if self._purge is not None:
            await asyncio.gather(self._purge, return_exceptions=True)
        tasks = [t for m in self.models.values() for t in (m.task, m.unload) if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._links_root is not None:
            shutil.rmtree(self._links_root, ignore_errors=True)

    def _links_for(self, model_id: str) -> Path:
        if self._links_root is None:
            self._links_root = Path(tempfile.mkdtemp(prefix="ovfast-modelmesh-"))
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model_id)[:64]
        return self._links_root / f"{safe}-{hashlib.sha1(model_id.encode()).hexdigest()[:12]}"
