"""Residency: which catalog versions are loaded right now (design.md, "Model lifecycle and residency").

The catalog is what the config lists (repository/registry.py keeps it); residency decides what of it
holds memory. It is on when a memory budget, idle unloading or explicit model control is set
(config/budget.py); without it nothing here runs and the registry loads every selected version.

- Lazy loads: a request for a parked version loads it; however many requests wait, one load runs
  (``_loads``, keyed by version). Loads run one at a time (``_slot``), so each one's native
  measurement (Servable.memory_bytes: process memory around read + compile + infer requests) is
  its own.
- Budget: before a load, a predicted size is reserved (the version's last measured size, else its
  files' size times what loads measured per file byte so far) and least recently used idle versions
  are unloaded until it fits. After the load the measured size replaces the prediction (and evicts
  more if it came out larger). Nothing busy is unloaded: in flight, queued, decoding (native
  counters, ModelHandle.busy) or pinned by a request that waited for its load.
- Recently used: the later of the native last-inference time (counted on every path, natively
  served gRPC too) and the last time a request reached a version through Python.
- Groups (OVMS idle-servable ``group_name``): the unit of loading and unloading is the group; the
  ``permanent`` group is loaded at start and never unloaded. A model without a group is its own.
- Failures: the registry's per-version back-off (1 s doubling to 60 s) applies; a request during
  the back-off fails at once with the load's error, so a storm of requests is not a storm of loads.

Every method runs on the server's event loop. State changes go through the registry (load_parked,
park, set_parked): it stays the only writer.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time

from ovfast import _native
from ovfast.config.budget import ResidencyConfig
from ovfast.config.schema import ModelConfig
from ovfast.errors import (
    MODEL_NAME_MISSING, InsufficientMemoryError, NotFoundError, UnavailableError, UnsupportedError, one_line,
)
from ovfast.repository.layout import list_versions
from ovfast.repository.registry import ModelRegistry, ServedModel, version_number
from ovfast.repository.residency_rss import RssGuard
from ovfast.repository.residency_sizes import SizeBook, files_size
from ovfast.repository.residency_stats import UNLOAD_REASONS, ResidencyStats
from ovfast.repository.residency_writes import density_options
from ovfast.runtime.model import (
    PARK_BUDGET, PARK_EXPLICIT, PARK_IDLE, PARK_LAZY, ModelHandle, VersionState,
)

log = logging.getLogger("ovfast.residency")

PERMANENT = "permanent"  # OVMS: the group that stays loaded
LOAD_WAIT_S = 30.0  # how long a request waits for the load it triggered (then UNAVAILABLE)
JUST_USED_MS = 1000.0  # the budget watch leaves versions used this recently alone
BUDGET_CHECK_S = 0.5  # under a budget: how often the process's memory growth is compared with it
# Measured on this project's 2-core box (MLPs, CPU): the first load after start costs ~3x a later one,
# the second and third ~1.4x and ~1.1x; from the fourth on they agree within 2%.
WARM_UP_LOADS = 3


def _group(served: ServedModel) -> str:
    return served.config.group_name or "\0" + served.name  # no group: a group of its own


class Residency:
    """Decides what is loaded; see the module docstring. ``registry.residency`` points here."""

    def __init__(self, registry: ModelRegistry, config: ResidencyConfig) -> None:
        self.registry = registry
        self.config = config
        self.budget = config.memory_budget
        self.stats = ResidencyStats()
        self._loads: dict[tuple[str, int], asyncio.Task] = {}
        self._slot = asyncio.Lock()
        self._reserved = 0  # predicted bytes of the load under way
        self._touched: dict[tuple[str, int], float] = {}  # wall ms a request last reached it via Python
        self._sizes = SizeBook()  # measured sizes and what they predict
        # allocator bytes in use at start less the measured sizes then loaded (None: not taken; budget mode only)
        self._baseline_heap: int | None = None
        self._selected: set[str] = set() if "*" in config.load_models else set(config.load_models)
        self._all_selected = "*" in config.load_models
        self._tasks: list[asyncio.Task] = []  # idle unloading, the budget watch
        self._rss = RssGuard(self.budget)  # RSS beyond the measured sizes (residency_rss.py)
        if self.budget:
            # NOTE: one loading thread: a thread's first allocations create its malloc arena, which a
            # load on a fresh executor thread would count as the model's size (~4 MB seen here).
            self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ovfast-load")
            registry.load_executor = self._executor

    # -- what the registry asks while syncing -------------------------------------------------
    def selected(self, name: str) -> bool:
        """Explicit mode: whether the model was loaded explicitly (always True otherwise)."""
        return not self.config.explicit or self._all_selected or name in self._selected

    def eager(self, served: ServedModel) -> bool:
        """Whether the registry loads this model's versions as it finds them (today's behaviour): yes
        without a budget, and for the permanent group; never for a model explicit mode does not serve."""
        if not self.selected(served.name):
            return False
        return not self.budget or served.config.group_name == PERMANENT

    def initial_reason(self, served: ServedModel) -> str:
        return PARK_LAZY if self.selected(served.name) else PARK_EXPLICIT

    # -- accounting --------------------------------------------------------------------------
    def used(self) -> int:
        """Measured bytes of every version holding memory (loaded, or unloading)."""
        return sum(h.size_bytes for m in self.registry.resident for h in m.versions.values() if h.servable is not None)

    def pressure(self, counted: int | None = None) -> int:
        """What counts against the budget: ``_counted`` plus what RSS holds beyond it (residency_rss.py).
        ``counted``: a ``_counted()`` the caller has just read (one walk of malloc's arenas, not two)."""
        return (self._counted() if counted is None else counted) + self._rss.slack

    def _counted(self) -> int:
        """The measured sizes of the loaded versions, or the growth since start of the allocator's bytes in
        use when larger (kernel caches, transport buffers). RSS beyond this is the guard's slack, counted
        only after a trim and within limits: counting raw RSS growth once unloaded every idle version and
        refused loads that fit (freed memory stays in RSS, yet the next load reuses it)."""
        measured = self.used()
        if self._baseline_heap is None:
            return measured
        return max(measured, _native.memory_sample()[1] - self._baseline_heap)

    def unaccounted(self) -> int:
        return self._rss.slack

    def loaded_count(self) -> int:
        return sum(1 for m in self.registry.resident for h in m.versions.values() if h.available)

    def predict(self, served: ServedModel, version: int) -> tuple[int, bool]:
        """(predicted bytes, whether it is exact): the version's last measured size, else its files' size
        times the median measured/file ratio of similar-sized loads (of all loads, of FIRST_RATIO)."""
        known = self._sizes.known(served.name, version)
        if known:
            return known, True
        if self._sizes.empty():  # nothing measured by residency yet: what is loaded (eagerly) says
            for m in self.registry.resident:
                for h in m.versions.values():
                    if h.size_bytes and h.servable is not None:
                        self._learn(m, h)
        return self.predict_files(files_size(served.config.base_path, version)), False

    def predict_files(self, files: int, conservative: bool = False) -> int:
        """Predicted bytes of a version whose model files hold ``files`` bytes (SizeBook.predict_files)."""
        return self._sizes.predict_files(files, conservative)

    def measured(self, name: str) -> int:
        """The last measured size of a model's versions together (0: never measured)."""
        return self._sizes.measured(name)

    def _learn(self, served: ServedModel, h: ModelHandle) -> None:
        self._sizes.learn(served.name, h.version, h.size_bytes, files_size(served.config.base_path, h.version))

    def last_used_ms(self, served: ServedModel, h: ModelHandle) -> float:
        s = h.servable
        native = s.statistics()["last_inference_ms"] if s is not None else 0
        return max(native, self._touched.get((served.name, h.version), 0.0))

    def _touch(self, served: ServedModel, version: int) -> None:
        self._touched[(served.name, version)] = time.time() * 1000.0

    # -- requests ----------------------------------------------------------------------------
    def _target(self, served: ServedModel, version: str | int | None) -> ModelHandle | None:
        if not version:
            top = served.top()
            if top is not None:
                return top
            # else the highest one loading, failed (backing off), or unloaded explicitly
            rest = [v for v, h in served.versions.items() if h.parked or h.state < VersionState.AVAILABLE]
            return served.versions[max(rest)] if rest else None
        return served.versions.get(version_number(version) if isinstance(version, str) else int(version))

    async def acquire(self, name: str, version: str | int | None) -> ModelHandle | None:
        """The AVAILABLE handle for a request, loading a parked version first (one load however
        many wait; at most LOAD_WAIT_S). None: not residency's to decide (the registry's own
        rules answer). Raises UNAVAILABLE for an explicitly unloaded version, a version backing
        off after a failed load, or a load that takes too long; RESOURCE_EXHAUSTED when it cannot
        fit in the budget."""
        served = self.registry.models.get(name)
        if served is None or served.retired:
            return None
        h = self._target(served, version)
        if h is None:
            return None
        if h.state == VersionState.AVAILABLE:
            self._touch(served, h.version)
            return h
        failed = h.state < VersionState.AVAILABLE and h.error_code != "OK"
        if h.parked == PARK_EXPLICIT or (not h.parked and not self.selected(name)):
            raise UnavailableError(f"Model {name} version {h.version} is not loaded: load it through the repository "
                                   f"API (POST /v2/repository/models/{name}/load)")
        if not h.parked and not (failed and not self.eager(served)):
            if (name, h.version) in self._loads:  # being loaded by residency: wait for that load
                out = await self._wait_load(served, h.version)
                self._touch(served, out.version)
                return out
            return None  # loading (or failed) under the registry's own rules
        if failed:
            r = served.retries.get(h.version)
            if r is not None and time.monotonic() < r.next_at:
                raise UnavailableError(
                    f"Model {name} version {h.version} failed to load ({h.error_message}); attempt {r.attempts} "
                    f"failed, next attempt in {r.next_at - time.monotonic():.1f} s")
        out = await self._wait_load(served, h.version)
        self._touch(served, out.version)
        return out

    async def _wait_load(self, served: ServedModel, version: int, wait_s: float | None = LOAD_WAIT_S) -> ModelHandle:
        key = (served.name, version)
        task = self._loads.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load_group(served, version))
            self._loads[key] = task
            task.add_done_callback(lambda t, k=key: (self._loads.pop(k, None), t.cancelled() or t.exception()))
        try:
            return await asyncio.wait_for(asyncio.shield(task), wait_s)
        except asyncio.TimeoutError:
            raise UnavailableError(f"Model {served.name} version {version} is still loading after {wait_s:g} s; "
                                   f"try again") from None

    # -- loading and unloading ---------------------------------------------------------------
    def _members(self, served: ServedModel, version: int) -> list[tuple[ServedModel, int]]:
        """What loads with (served, version): the other models of its group (their parked versions)."""
        out = [(served, version)]
        group = served.config.group_name
        if not group:
            return out
        for m in self.registry.models.values():
            if m is served or m.retired or m.config.group_name != group or not self.selected(m.name):
                continue
            out += [(m, v) for v, h in sorted(m.versions.items()) if h.loadable]
        return out

    async def _load_group(self, served: ServedModel, version: int) -> ModelHandle:
        async with self._slot:
            h = served.versions.get(version)
            if h is not None and h.state == VersionState.AVAILABLE:
                return h
            todo = [(m, v) for m, v in self._members(served, version)
                    if (x := m.versions.get(v)) is not None and x.state != VersionState.AVAILABLE]
            predicted = [self.predict(m, v) for m, v in todo]
            need = sum(p for p, _ in predicted)
            exact = all(e for _, e in predicted)
            what = f"model {served.name} version {version}" + (f" (group {served.config.group_name})"
                                                                if len(todo) > 1 else "")
            # NOTE: a guessed size only frees what it can: the measurement after the load decides.
            await self._make_room(need, _group(served), what, must=exact)
            loaded: list[tuple[ServedModel, ModelHandle]] = []
            for (m, v), (pred, _) in zip(todo, predicted):
                self._reserved += pred
                t0 = time.perf_counter()
                try:
                    h = await self.registry.load_parked(m, v)
                except Exception as exc:  # noqa: BLE001 - the registry logged and recorded it
                    self.stats.load_failures += 1
                    if m is served and v == version:
                        await self._unload_unit(loaded, PARK_LAZY)
                        if isinstance(exc, UnavailableError):
                            raise
                        raise UnavailableError(f"Model {m.name} version {v} could not be loaded: "
                                               f"{one_line(str(exc))}") from None
                    continue
                finally:
                    self._reserved -= pred
                self.stats.loads += 1
                self.stats.observe_load(time.perf_counter() - t0)
                self._learn(m, h)
                self._touch(m, v)
                loaded.append((m, h))
            if self._rss.trim_due() and self._rss.near(self._counted()):
                await self._rss.refresh(self._counted())
            if self.budget and self.pressure() > self.budget:  # measured more than predicted
                await self._make_room(0, _group(served), what, must=False)
                if self.used() > self.budget:
                    size = sum(h.size_bytes for _, h in loaded)
                    await self._unload_unit(loaded, PARK_LAZY)
                    raise InsufficientMemoryError(
                        f"Cannot load {what}: it measured {size} bytes; the memory budget is {self.budget} bytes "
                        f"and {self.used()} are used by {self.loaded_count()} loaded versions that are busy or "
                        f"permanent")
            return next(h for m, h in loaded if m is served and h.version == version)

    def _units(self, protect: str) -> list[tuple[float, str, list[tuple[ServedModel, ModelHandle]]]]:
        """Unloadable groups, least recently used first: (last used ms, group, members)."""
        groups: dict[str, list[tuple[ServedModel, ModelHandle]]] = {}
        for m in self.registry.resident:
            for h in m.versions.values():
                if h.state == VersionState.AVAILABLE:
                    groups.setdefault(_group(m), []).append((m, h))
        units = []
        for g, members in groups.items():
            if g == protect or g == PERMANENT or any(h.busy() for _, h in members):
                continue
            units.append((max(self.last_used_ms(m, h) for m, h in members), g, members))
        units.sort(key=lambda u: u[0])
        return units

    async def _make_room(self, need: int, protect: str, what: str, must: bool = True) -> None:
        """Unloads least recently used idle groups until ``need`` more bytes fit in the budget. ``must``:
        raise RESOURCE_EXHAUSTED when the measured sizes cannot make them fit (else, and whenever only
        memory beyond the measured sizes is over, stop when nothing more can be unloaded)."""
        if not self.budget:
            return
        if need > self.budget and (must or need > 2 * self.budget):
            raise InsufficientMemoryError(
                f"Cannot load {what}: it needs about {need} bytes, more than the whole memory budget of "
                f"{self.budget} bytes")
        while self.pressure() + self._reserved + need > self.budget:
            units = self._units(protect) if self.config.evict else []  # ModelMesh evicts, not us
            if units:
                log.info("Making room for %s: %d bytes measured, %d held beyond start-up, %d reserved, %d needed; "
                         "budget %d", what, self.used(), self.pressure(), self._reserved, need, self.budget)
                await self._unload_unit(units[0][2], PARK_BUDGET)
                continue
            if must and self.used() + self._reserved + need > self.budget:
                raise InsufficientMemoryError(
                    f"Cannot load {what}: it needs about {need} bytes; the memory budget is {self.budget} bytes and "
                    f"{self.used()} are used by {self.loaded_count()} loaded versions that are busy or permanent")
            log.warning("Memory budget exceeded: %d bytes measured (%d held by the process beyond start-up, RSS %d) "
                        "of %d; every loaded version is busy or permanent", self.used(), self.pressure(),
                        _native.resident_bytes(), self.budget)
            return

    async def _unload_unit(self, members: list[tuple[ServedModel, ModelHandle]], reason: str) -> int:
        done = 0
        for m, h in members:
            if await self.registry.park(m, h.version, reason):
                done += 1
                self.stats.unloads[UNLOAD_REASONS[reason]] += 1
                log.info("Model %s version %d: %s (%d bytes)", m.name, h.version, reason.split(":")[0], h.size_bytes)
        if done:
            await self._rss.refresh(self._counted(), unloaded=sum(h.size_bytes for _, h in members))
        return done

    # -- start / stop ------------------------------------------------------------------------
    async def warm_up(self, models: tuple[ModelConfig, ...]) -> None:
        """With a budget, before the catalog is loaded: loads one version of the first model that loads,
        WARM_UP_LOADS times, and drops it, so that one-off start-up memory (the device plugin, its thread pools, the
        kernels the catalog's operations compile to) is counted as the server's overhead rather than
        as the first loaded version's measured size."""
        if not self.budget:
            return
        await self._warm_up(models, asyncio.get_running_loop())

    async def _warm_up(self, models: tuple[ModelConfig, ...], loop: asyncio.AbstractEventLoop) -> None:
        for cfg in models:
            try:
                versions = cfg.model_version_policy.select(list_versions(cfg.base_path))
                path, options, _ = self.registry.version_source(cfg, max(versions))
                options = density_options(options, path)  # as the catalog's loads will be
            except (OSError, ValueError):
                continue
            log.info("Warming up with model %s (loaded and dropped %d times: one-off start-up memory is not "
                     "counted as a model's size)", cfg.name, WARM_UP_LOADS)
            try:
                for _ in range(WARM_UP_LOADS):
                    h = ModelHandle(cfg.name, max(versions), path, options, self.registry.completions,
                                    self.registry.core)
                    await loop.run_in_executor(self._executor, h.load)
                    await loop.run_in_executor(self._executor, h.unload)
            except Exception as exc:  # noqa: BLE001 - only a measurement aid; a request will report it
                log.debug("Warm-up with model %s failed: %s", cfg.name, exc)
                continue
            return

    def start(self) -> None:
        """After the catalog is in place (and the permanent group loaded): takes the baseline the
        budget counts growth from, and starts idle unloading and the budget watch."""
        if self.budget:
            self._rss.start()  # trims first
            self._baseline_heap = _native.memory_sample()[1] - self.used()
            log.info("Residency: allocator bytes in use without models %d (RSS %d); the budget counts what "
                     "grows from here", self._baseline_heap, _native.resident_bytes())
        if self._tasks:
            return  # started already
        loop = asyncio.get_running_loop()
        if self.config.idle_unload_seconds:
            self._tasks.append(loop.create_task(self._idle_loop()))
        if self.budget and self.config.evict:  # under ModelMesh, ovfast never unloads on its own
            self._tasks.append(loop.create_task(self._budget_loop()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._loads:
            await asyncio.gather(*self._loads.values(), return_exceptions=True)
        if self.budget:
            self._executor.shutdown(wait=False)

    async def _budget_loop(self) -> None:
        """The process's memory grows without loads too (serving buffers, thread stacks, allocator
        fragmentation): when its growth passes the budget, the least recently used idle versions are
        unloaded until it fits again. (Loads make room themselves, under the same slot.) Measured with
        bench --density: 8 clients on the loaded versions, no loads, grew RSS 6 MiB past the budget."""
        while True:
            await asyncio.sleep(BUDGET_CHECK_S)
            if self._slot.locked():
                continue
            # NOTE: one allocator reading per check (_counted walks malloc's arenas under their locks,
            # which the serving threads wait on), and RSS from statm
            counted = self._counted()
            rss_due = self._rss.trim_due() and self._rss.near(counted)
            if not rss_due and self.pressure(counted) <= self.budget:
                continue
            async with self._slot:
                if rss_due:
                    await self._rss.refresh(self._counted())
                while self.pressure() > self.budget:
                    # a version used in the last second may have a request on its way to it (acquired
                    # after its load, not yet submitted): unloading it would make that request load again
                    recent = time.time() * 1000.0 - JUST_USED_MS
                    units = [u for u in self._units(protect="") if u[0] < recent]
                    if not units:
                        break  # all busy, permanent or just used: the next load reports it
                    await self._unload_unit(units[0][2], PARK_BUDGET)

    async def _idle_loop(self) -> None:
        idle_ms = self.config.idle_unload_seconds * 1000.0
        period = min(1.0, max(0.05, self.config.idle_unload_seconds / 4))
        while True:
            await asyncio.sleep(period)
            now = time.time() * 1000.0
            for last, _, members in self._units(protect=""):
                if now - last < idle_ms:
                    break  # sorted: the rest were used more recently
                await self._unload_unit(members, PARK_IDLE)

    # -- the repository API (explicit load / unload) ------------------------------------------
    def _served(self, name: str) -> ServedModel:
        served = self.registry.models.get(name)
        if served is None or served.retired:
            raise NotFoundError(MODEL_NAME_MISSING)
        return served

    async def load_model(self, name: str, parameters: dict | None = None, wait_s: float | None = LOAD_WAIT_S) -> None:
        """RepositoryModelLoad (and ModelMesh's loadModel): the model is served from now on (explicit mode) and
        its versions are loaded now, under the budget like any load, each waited for up to ``wait_s`` (None:
        until done). Raises when a version cannot be loaded."""
        if parameters:
            raise UnsupportedError(f"Load parameters {sorted(parameters)} are not supported: a model's settings come "
                                   f"from config.json")
        served = self._served(name)
        self._selected.add(name)
        for v, h in list(served.versions.items()):
            if h.parked == PARK_EXPLICIT:
                self.registry.set_parked(served, v, PARK_LAZY)
            elif h.state < VersionState.AVAILABLE and h.error_code != "OK":
                served.retries.pop(v, None)  # an explicit load retries now
        await self.registry.sync_versions(served)  # new version folders, or eager loads without a budget
        wanted = [v for v, h in served.versions.items()
                  if h.loadable or (h.state < VersionState.AVAILABLE and h.error_code != "OK")]
        for v in sorted(wanted):
            await self._wait_load(served, v, wait_s)
        if served.default is None:
            h = max(served.versions.items())[1] if served.versions else None
            why = h.error_message if h is not None and h.error_code != "OK" else "no version is available"
            raise UnavailableError(f"failed to load '{name}': {why}")

    async def unload_model(self, name: str, parameters: dict | None = None) -> None:
        """RepositoryModelUnload: every version is unloaded (requests in flight finish first) and stays
        unloaded until a load; in explicit mode the model is no longer served."""
        served = self._served(name)
        unknown = set(parameters or ()) - {"unload_dependents"}
        if unknown:
            raise UnsupportedError(f"Unload parameters {sorted(unknown)} are not supported")
        self._selected.discard(name)
        for v in sorted(served.versions):
            key = (name, v)
            if key in self._loads:  # a load under way finishes first, then is unloaded
                await asyncio.gather(self._loads[key], return_exceptions=True)
            h = served.versions[v]
            was_loaded = h.state == VersionState.AVAILABLE
            if await self.registry.park(served, v, PARK_EXPLICIT, wait_idle=True) and was_loaded:
                self.stats.unloads["explicit"] += 1
        await asyncio.get_running_loop().run_in_executor(None, _native.release_free_memory)

    def forget(self, name: str) -> None:
        """A model left the catalog for good (ModelMesh's unloadModel): drop what was kept per version but
        its measured sizes (a load of the same model again is predicted exactly)."""
        self._selected.discard(name)
        for key in [k for k in self._touched if k[0] == name]:
            del self._touched[key]
