"""ServedModel: one catalog model's versions and their bookkeeping (back-off of failed loads), as the
registry (repository/registry.py, their only writer) keeps them."""
from __future__ import annotations

import asyncio
import dataclasses
import time

from ovfast.config.schema import ModelConfig
from ovfast.errors import MODEL_VERSION_INVALID_FORMAT, InvalidArgumentError
from ovfast.runtime.model import ModelHandle, VersionState

# A version whose load failed is retried 1 s, 2 s, 4 s ... later (doubling, at most 60 s apart);
# a change of what it is loaded from (config, model file) retries at once.
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 60.0


@dataclasses.dataclass(frozen=True)
class LoadRetry:
    """Back-off of a version whose load failed: attempts made in a row from ``source`` (path, options
    and the folder's files) and the time.monotonic() before which it is not tried again."""

    source: tuple
    attempts: int
    delay_s: float
    next_at: float


def version_number(text: str) -> int:
    """A version as an API spells it: ASCII decimal digits only ("+2", " 2" and "\u0662" are not version 2)."""
    if not (text.isascii() and text.isdigit()):
        raise InvalidArgumentError(MODEL_VERSION_INVALID_FORMAT)
    return int(text)


class ServedModel:
    is_pipeline = False  # repository/pipelines.py ServedPipeline: built there, not by the version sync

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.name = config.name
        self.versions: dict[int, ModelHandle] = {}
        self.default: ModelHandle | None = None
        self.retired = False  # removed from the config; versions stay listed as END
        self.lock = asyncio.Lock()
        self.scan_error: str | None = None
        # Moves on when a reload plan changes this model's settings; versions built for an older
        # generation are reloaded by the next sync.
        self.generation = 0
        self.retries: dict[int, LoadRetry] = {}  # version -> back-off after failed loads
        self.folder_errors: dict[int, str] = {}  # version -> why its folder cannot be loaded (last logged)
        self.routed = False  # has an entry in the native route table (registry._refresh)

    def retry_due(self, version: int, source: tuple) -> bool:
        r = self.retries.get(version)
        return r is None or r.source != source or time.monotonic() >= r.next_at

    def load_failed(self, version: int, source: tuple) -> LoadRetry:
        r = self.retries.get(version)
        attempts = r.attempts + 1 if r is not None and r.source == source else 1
        delay = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (attempts - 1))
        self.retries[version] = r = LoadRetry(source, attempts, delay, time.monotonic() + delay)
        return r

    def refresh_default(self) -> None:
        top = self.top()
        self.default = top if top is not None and top.state == VersionState.AVAILABLE else None

    def top(self) -> ModelHandle | None:
        """The highest version that is AVAILABLE or parked to load on demand (None: none is)."""
        servable = [v for v, h in self.versions.items() if h.state == VersionState.AVAILABLE or h.loadable]
        return self.versions[max(servable)] if servable else None

    def available_versions(self) -> list[int]:
        return sorted(v for v, h in self.versions.items() if h.state == VersionState.AVAILABLE)

    def loading(self) -> bool:
        """Some version is on its way to AVAILABLE (not failed)."""
        return any(h.state < VersionState.AVAILABLE and h.error_code == "OK" for h in self.versions.values())
