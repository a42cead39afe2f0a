"""The registry's writes that residency (repository/residency.py) decides: a catalog entry that is not
loaded (parked), loading a parked version on demand, unloading (parking) one, and answering metadata
for a parked version without loading it. ``ModelRegistry`` (repository/registry.py) takes these in, so
the registry stays the only writer of model state; the same contracts hold (event loop only, a model's
versions changed under its ``lock``).

A parked version under a remote base path (s3:// gs:// az://) is not even downloaded until it loads:
``load_parked`` fetches it through the registry's ``Storage`` cache first, and ``fetch_signature``
downloads it (without loading) for a metadata call.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ovfast import _native
from ovfast.config.schema import ModelConfig
from ovfast.errors import MODEL_VERSION_MISSING, NotFoundError, UnavailableError, one_line
from ovfast.repository.layout import find_model_file, read_mapping, version_stamp
from ovfast.repository.served import ServedModel, version_number
from ovfast.repository.storage import Storage, is_remote
from ovfast.runtime.completions import CompletionDispatcher
from ovfast.runtime.model import PARK_EXPLICIT, LoadOptions, ModelHandle, VersionState, load_options

if TYPE_CHECKING:  # pragma: no cover
    from ovfast.repository.residency import Residency

log = logging.getLogger("ovfast.registry")


# Under a memory budget, a model whose files hold at most this many bytes runs each inference on one
# thread unless its plugin_config says how many (INFERENCE_NUM_THREADS, NUM_STREAMS). Measured with
# bench --density on this 2-core box (150 hot MLPs of 50-500 KB, 8 clients): the server's CPU per
# request fell from ~410 to ~220 us and throughput rose ~40%: splitting a run of tens of microseconds
# across threads cost more in TBB workers' wake-ups and spinning than it saved.
SMALL_MODEL_BYTES = 1 << 20
_THREAD_KEYS = ("INFERENCE_NUM_THREADS", "NUM_STREAMS", "CPU_THREADS_NUM")


def density_options(options: LoadOptions, model_path: str) -> LoadOptions:
    """``options`` for a version loaded under a memory budget: one inference thread for a small CPU model."""
    plugin = dict(options.plugin_config)
    if options.device.upper() != "CPU" or any(k in plugin for k in _THREAD_KEYS):
        return options
    try:
        size = sum(p.stat().st_size for p in Path(model_path).parent.iterdir() if p.is_file())
    except OSError:
        return options
    if size > SMALL_MODEL_BYTES:
        return options
    plugin["INFERENCE_NUM_THREADS"] = 1
    return dataclasses.replace(options, plugin_config=tuple(sorted(plugin.items())))


def _named(m: ServedModel, version: str | int | None) -> ModelHandle | None:
    """The version a metadata call names (''/0/None: the highest one AVAILABLE or loadable)."""
    if not version:
        return m.top()
    return m.versions.get(version_number(version) if isinstance(version, str) else int(version))


class ResidencyWrites:
    """Mixed into ModelRegistry, which provides what is declared here."""

    if TYPE_CHECKING:  # pragma: no cover
        models: dict[str, ServedModel]
        storage: Storage
        completions: CompletionDispatcher
        core: _native.Core
        load_executor: concurrent.futures.Executor | None
        residency: Residency | None

        def _refresh(self, served: ServedModel) -> None: ...
        def _new_handle(self, served: ServedModel, version: int, path: str, options: LoadOptions) -> ModelHandle: ...
        async def _unload(self, served: ServedModel, h: ModelHandle) -> None: ...
        def resolve(self, name: str, version: str | int | None = None) -> ModelHandle: ...

    @staticmethod
    def version_source(cfg: ModelConfig, version: int, vdir: str | None = None) -> tuple[str, LoadOptions, tuple]:
        """(model file, load options with the folder's mapping, the folder's stamp) of a version whose files
        are in ``vdir`` (default: its folder under a local base path). Raises OSError / ValueError when
        the folder cannot be loaded."""
        vdir = vdir or f"{cfg.base_path}/{version}"
        path = str(find_model_file(vdir))
        mapping = read_mapping(vdir)
        options = dataclasses.replace(load_options(cfg), mapping_inputs=mapping.inputs,
                                      mapping_outputs=mapping.outputs)
        return path, options, version_stamp(vdir)

    def _parked_handle(self, served: ServedModel, version: int, reason: str) -> ModelHandle:
        """A catalog entry for a version residency has not loaded (END, ``parked`` = reason). Set without
        a STATUS CHANGE line: a catalog of 10,000 models would log 10,000 of them at start."""
        h = ModelHandle(served.name, version, "", load_options(served.config), self.completions, self.core)
        h.state = VersionState.END
        h.parked = reason
        return h

    async def load_parked(self, served: ServedModel, version: int) -> ModelHandle:
        """Loads a parked (or failed) version now. Returns its AVAILABLE handle; raises what the load
        raised (recorded on the handle and in the model's back-off, as a failed load in sync is)."""
        async with served.lock:
            old = served.versions.get(version)
            if old is None or served.retired:
                raise NotFoundError(MODEL_VERSION_MISSING)
            if old.state == VersionState.AVAILABLE:
                return old
            cfg = served.config
            try:
                vdir = await self.storage.version_dir(cfg.base_path, version)  # downloaded first if remote
                path, options, stamp = self.version_source(cfg, version, vdir)
            except (OSError, ValueError) as exc:
                old.set_state(VersionState.LOADING, "UNKNOWN", str(exc))
                old.parked = ""
                served.load_failed(version, ("", None, None))
                self._refresh(served)
                raise UnavailableError(f"Model {cfg.name} version {version}: {exc}") from None
            new = self._new_handle(served, version, path, options)
            new.inputs, new.outputs = old.inputs, old.outputs
            log.info("Model %s version %d: loading from %s (%s)", cfg.name, version, path,
                     old.parked or "retrying a failed load")
            served.versions[version] = new
            try:
                await asyncio.get_running_loop().run_in_executor(self.load_executor, new.load)
            except Exception:
                served.load_failed(version, (path, options, stamp))
                self._refresh(served)
                raise
            served.retries.pop(version, None)
            self._refresh(served)
            return new

    async def park(self, served: ServedModel, version: int, reason: str, wait_idle: bool = False) -> bool:
        """Unloads a version and parks it with ``reason``. Refuses (returns False) a version that is not
        AVAILABLE or has requests in flight, queued or about to be submitted, unless ``wait_idle``
        (an explicit unload), which lets them finish first. A version that is not loaded is just
        parked (True)."""
        async with served.lock:
            h = served.versions.get(version)
            if h is None:
                return False
            if h.state == VersionState.AVAILABLE:
                if h.busy() and not wait_idle:
                    return False
                h.parked = reason
                await self._unload(served, h)
                self._refresh(served)
                return True
            if h.state == VersionState.UNLOADING or (h.state < VersionState.AVAILABLE and h.error_code == "OK"):
                return False  # on its way somewhere already
            if h.state == VersionState.END and not h.parked:
                return False  # retired
            h.state = VersionState.END  # failed or parked: nothing to unload
            h.parked = reason
            self._refresh(served)
            return True

    def set_parked(self, served: ServedModel, version: int, reason: str) -> None:
        """Changes why a parked version is parked (an explicit load makes it loadable on demand again)."""
        h = served.versions.get(version)
        if h is not None and h.parked:
            h.parked = reason
            if reason != PARK_EXPLICIT:
                served.retries.pop(version, None)
            self._refresh(served)

    def describe(self, name: str, version: str | int | None) -> ModelHandle:
        """The handle whose signature answers metadata for (name, version): resolve()'s, or a version
        parked by residency, whose signature is read from the model without loading it (once)."""
        try:
            return self.resolve(name, version)
        except (UnavailableError, NotFoundError):
            m = self.models.get(name)
            if self.residency is None or m is None or m.retired:
                raise
            h = _named(m, version)
            if m.is_pipeline and h is not None and h.available and h.inputs:
                return h  # its models to load on its next request: its signature is known
            if h is None or not h.parked:
                raise
        if not h.inputs:
            base = m.config.base_path
            vdir = self.storage.cached_version_dir(base, h.version) if is_remote(base) else None
            if is_remote(base) and vdir is None:
                raise UnavailableError(f"Model {name} version {h.version} is in object storage and not downloaded yet: "
                                       f"its signature is known once a request or a metadata call fetched it")
            try:
                path, options, _ = self.version_source(m.config, h.version, vdir)
                reader = self._new_handle(m, h.version, path, options)
                reader.read_signature()
            except Exception as exc:  # noqa: BLE001 - the model cannot be read: as a failed load would say
                raise UnavailableError(f"Model {name} version {h.version} cannot be read: {one_line(str(exc))}") from None
            h.inputs, h.outputs = reader.inputs, reader.outputs
        return h

    async def fetch_signature(self, name: str, version: str | int | None) -> None:
        """For a parked version under a remote base path whose signature is not known yet: downloads its
        files into the cache (without loading it), so describe() can read them. Errors are left to
        describe() to report."""
        m = self.models.get(name)
        if m is None or self.residency is None or not is_remote(m.config.base_path):
            return
        h = _named(m, version)
        if h is None or not h.parked or h.inputs:
            return
        try:
            await self.storage.version_dir(m.config.base_path, h.version)
        except OSError:
            pass
