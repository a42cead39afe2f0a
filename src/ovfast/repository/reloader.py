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
from dataclasses import dataclass, replace
from pathlib import Path

from ovfast.config.diff import diff
from ovfast.config.load import (
    READ_RETRIES, READ_RETRY_DELAY_S, ConfigError, parse_config_text, read_config_bytes,
)
from ovfast.config.schema import ModelConfig, RepositoryConfig
from ovfast.repository.registry import ModelRegistry

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
        self._task: asyncio.Task | None = None

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

    def watch(self, poll_seconds: int) -> None:
        if poll_seconds > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch(poll_seconds))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _watch(self, poll_seconds: int) -> None:
        while True:
            await asyncio.sleep(poll_seconds)
            try:
                await self.cycle()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the watcher must outlive any one bad cycle
                log.exception("Config watcher cycle failed")

    async def cycle(self) -> ReloadResult:
        async with self._lock:
            applied = False
            changed = False
            if self.config_path:
                applied, changed = await self._reload_file()
            if not applied:
                changed |= await self.registry.sync_all()
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
        plan = diff(self.models, tuple(new))
        self.models = tuple(new)
        self.error = self._entry_errors(repo)
        if plan.empty:
            log.info("Config reload: the file changed but no model's configuration did")
        changed = await self.registry.apply(plan)
        return True, changed
