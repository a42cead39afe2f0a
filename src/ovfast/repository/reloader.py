"""Online config changes: the config-file watcher and POST /v1/config/reload.

One reload cycle (OVMS ``ModelManager`` watcher semantics):
1. if the server was started with a config file and its MD5 changed: parse it; a file that is
   not valid JSON or fails the schema changes nothing (error logged and returned); otherwise
   diff it against the running config and apply the plan (config/diff.py);
2. re-scan every model's version folders: new versions are loaded, removed ones retired, and
   failed loads retried.
Cycles never overlap (one lock), whether started by the watcher or by the API.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ovfast.config.diff import diff
from ovfast.config.load import (
    READ_RETRIES, READ_RETRY_DELAY_S, ConfigError, parse_config_text, read_config_bytes,
)
from ovfast.config.schema import ModelConfig, RepositoryConfig
from ovfast.errors import REQUESTED_MODEL_TYPE_CHANGE
from ovfast.repository.pipelines import PipelineManager
from ovfast.repository.registry import ModelRegistry
from ovfast.runtime.periodic import Periodic

log = logging.getLogger("ovfast.reload")


@dataclass(frozen=True)
class ReloadResult:
    changed: bool
    error: str | None = None  # the config file could not be (fully) applied; why


class ConfigReloader:
    def __init__(self, registry: ModelRegistry, config_path: str | None,
                 initial: RepositoryConfig | None, models: tuple[ModelConfig, ...], echo: bool = False) -> None:
        self.registry = registry
        self.echo = echo  # --echo: every model from the file is served in echo mode
        self.config_path = config_path
        self.models: tuple[ModelConfig, ...] = ()
        self._pending = models
        self.digest = initial.digest if initial is not None else ""
        self.error: str | None = self._entry_errors(initial) if initial is not None else None
        self._lock = asyncio.Lock()
        # DAG pipelines and custom node libraries: applied after the models, revalidated every cycle
        self.pipelines = PipelineManager(registry)
        self._pending_dag = (initial.pipelines, initial.libraries) if initial is not None else ((), ())
        self._watcher = Periodic(self.cycle, log, "Config watcher cycle")
        # called with each config file that parsed (its server-wide settings, e.g. request_limits)
        self.on_file: Callable[[RepositoryConfig], None] | None = None

    @staticmethod
    def _entry_errors(repo: RepositoryConfig) -> str | None:
        if not repo.errors:
            return None
        return "Configuration entries skipped: " + " | ".join(repo.errors)

    async def start(self) -> None:
        """Loads the models of the start-up config."""
        async with self._lock:
            plan = diff((), self._pending)
            self.models = self._pending
            await self.registry.apply(plan)
            await self.pipelines.apply(*self._pending_dag)

    def watch(self, poll_seconds: int) -> None:
        self._watcher.start(poll_seconds)

    async def stop(self) -> None:
        await self._watcher.stop()

    async def cycle(self) -> ReloadResult:
        async with self._lock:
            applied = False
            changed = False
            if self.config_path:
                applied, changed = await self._reload_file()
            if not applied:
                changed |= await self.registry.sync_all()
            await self.pipelines.revalidate()
            return ReloadResult(changed, self.error)

    async def _reload_file(self) -> tuple[bool, bool]:
        """(config applied?, anything loaded/unloaded?)"""
        assert self.config_path is not None
        config_dir = Path(self.config_path).resolve().parent
        for attempt in range(READ_RETRIES):
            try:
                data = read_config_bytes(self.config_path)
            except ConfigError as exc:
                if self.error != str(exc):
                    log.error("Config reload: %s; keeping the running configuration", exc)
                self.error = str(exc)
                return False, False
            digest = hashlib.md5(data).hexdigest()
            if digest == self.digest:
                return False, False
            try:
                repo = parse_config_text(data, config_dir)
                break
            except ConfigError as exc:
                if attempt < READ_RETRIES - 1:  # maybe caught mid-write: read again shortly (OVMS)
                    await asyncio.sleep(READ_RETRY_DELAY_S)
                    continue
                self.digest = digest
                self.error = f"Reloading config file failed: {exc}"
                log.error("%s; keeping the running configuration", self.error)
                return False, False
        self.digest = digest
        if self.on_file is not None:
            self.on_file(repo)
        for e in repo.errors:
            log.error("Config reload: configuration entry skipped: %s", e)
        new = [replace(m, echo=True) for m in repo.models] if self.echo else list(repo.models)
        new_names = {m.name for m in new}
        running = {m.name: m for m in self.models}
        for name in repo.invalid_names:
            if name in running and name not in new_names:
                log.warning("Config reload: model %s keeps its running configuration until its entry is fixed", name)
                new.append(running[name])
                new_names.add(name)
        refused = []
        for i, m in enumerate(new):
            old = running.get(m.name)
            if old is not None and old.stateful != m.stateful:
                # OVMS: a loaded model keeps its type; the entry is not applied
                log.error("Config reload: model %s: %s; keeping its running configuration",
                          m.name, REQUESTED_MODEL_TYPE_CHANGE)
                refused.append(f"model '{m.name}': {REQUESTED_MODEL_TYPE_CHANGE}")
                new[i] = old
        plan = diff(self.models, tuple(new))
        self.models = tuple(new)
        self.error = self._entry_errors(repo)
        if refused:
            self.error = "; ".join(([self.error] if self.error else []) + refused)
        if plan.empty:
            log.info("Config reload: the file changed but no model's configuration did")
        changed = await self.registry.apply(plan)
        await self.pipelines.apply(repo.pipelines, repo.libraries)
        return True, changed
