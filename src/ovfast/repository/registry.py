"""ModelRegistry: name -> {version -> ModelHandle}. The only writer of model state."""
from __future__ import annotations

import asyncio
import logging

from ovfast import _native
from ovfast.config.schema import ModelConfig
from ovfast.errors import (
    MODEL_NAME_MISSING, MODEL_VERSION_INVALID_FORMAT, MODEL_VERSION_MISSING, MODEL_VERSION_NOT_LOADED_ANYMORE,
    MODEL_VERSION_NOT_LOADED_YET, InvalidArgumentError, NotFoundError, UnavailableError,
)
from ovfast.repository.layout import find_model_file, list_versions
from ovfast.repository.version_policy import policy_from_json
from ovfast.runtime.completions import CompletionDispatcher
from ovfast.runtime.model import LoadOptions, ModelHandle, VersionState

log = logging.getLogger("ovfast.registry")


class ServedModel:
    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.name = config.name
        self.versions: dict[int, ModelHandle] = {}
        self.default: ModelHandle | None = None

    def refresh_default(self) -> None:
        avail = [v for v, h in self.versions.items() if h.state == VersionState.AVAILABLE]
        self.default = self.versions[max(avail)] if avail else None

    def available_versions(self) -> list[int]:
        return sorted(v for v, h in self.versions.items() if h.state == VersionState.AVAILABLE)


def load_options(cfg: ModelConfig) -> LoadOptions:
    shapes = {k: v for k, v in cfg.shape if v != "auto"}
    return LoadOptions(device=cfg.target_device, plugin_config=cfg.plugin_config_dict, nireq=cfg.nireq,
                       shapes=shapes, batch_size="" if cfg.batch_size == "auto" else cfg.batch_size,
                       echo=cfg.echo, **image_options(cfg))


def image_options(cfg: ModelConfig) -> dict:
    """layout / color_format / mean / scale -> LoadOptions fields (ValueError on malformed values)."""
    layout = cfg.layout
    if layout is None:
        layouts = {}
    elif isinstance(layout, str):
        layouts = {"": layout}
    elif isinstance(layout, dict):
        layouts = {str(k): str(v) for k, v in layout.items()}
    else:
        raise ValueError(f"model {cfg.name}: layout must be a string or an object")
    return {"layouts": layouts, "color_format": (cfg.color_format or "").upper(),
            "mean": _floats(cfg.mean, "mean"), "scale": _floats(cfg.scale, "scale")}


def _floats(text: str | None, what: str) -> tuple[float, ...]:
    if not text:
        return ()
    try:
        return tuple(float(x) for x in text.strip().strip("[]").split(",") if x.strip())
    except ValueError:
        raise ValueError(f"{what} must be a number or a list of numbers such as [123.7,116.3,103.5]") from None


class ModelRegistry:
    def __init__(self, completions: CompletionDispatcher, core: _native.Core) -> None:
        self.models: dict[str, ServedModel] = {}
        self.completions = completions
        self.core = core

    # -- lookups (hot path: dict gets only) -------------------------------------------------
    def get_model(self, name: str) -> ServedModel:
        m = self.models.get(name)
        if m is None:
            raise NotFoundError(MODEL_NAME_MISSING)
        return m

    def resolve(self, name: str, version: str | int | None = None) -> ModelHandle:
        """The handle serving (name, version); version ''/0/None = default. Raises NotFound/InvalidArgument."""
        m = self.models.get(name)
        if m is None:
            raise NotFoundError(MODEL_NAME_MISSING)
        if not version:
            h = m.default
            if h is None:
                if any(x.state < VersionState.AVAILABLE for x in m.versions.values()):
                    raise UnavailableError(MODEL_VERSION_NOT_LOADED_YET)
                raise NotFoundError(MODEL_VERSION_MISSING)
            return h
        if isinstance(version, str):
            try:
                version = int(version)
            except ValueError:
                raise InvalidArgumentError(MODEL_VERSION_INVALID_FORMAT) from None
        h = m.versions.get(version)
        if h is None:
            raise NotFoundError(MODEL_VERSION_MISSING)
        if h.state != VersionState.AVAILABLE:
            if h.state > VersionState.AVAILABLE:
                raise NotFoundError(MODEL_VERSION_NOT_LOADED_ANYMORE)
            raise UnavailableError(MODEL_VERSION_NOT_LOADED_YET)
        return h

    def lookup_version(self, name: str, version: str | int | None) -> tuple[ServedModel, ModelHandle | None]:
        """Like resolve() but returns non-AVAILABLE handles too (status APIs)."""
        m = self.get_model(name)
        if not version:
            return m, m.default
        try:
            v = int(version)
        except ValueError:
            raise InvalidArgumentError(MODEL_VERSION_INVALID_FORMAT) from None
        h = m.versions.get(v)
        if h is None:
            raise NotFoundError(MODEL_VERSION_MISSING)
        return m, h

    # -- loading ---------------------------------------------------------------------------
    async def add_model(self, cfg: ModelConfig) -> ServedModel:
        served = ServedModel(cfg)
        self.models[cfg.name] = served
        await self.sync_versions(served)
        return served

    async def sync_versions(self, served: ServedModel) -> bool:
        """Loads versions the policy selects and retires the rest. Returns True if anything changed."""
        cfg = served.config
        try:
            available = list_versions(cfg.base_path)
            policy = policy_from_json(cfg.model_version_policy)
        except (FileNotFoundError, ValueError) as exc:
            log.error("Model %s: %s", cfg.name, exc)
            return False
        wanted = set(policy.select(available))
        changed = False
        loop = asyncio.get_running_loop()
        for v in sorted(wanted):
            h = served.versions.get(v)
            if h is not None and h.state == VersionState.AVAILABLE:
                continue
            try:
                path = str(find_model_file(f"{cfg.base_path}/{v}"))
            except FileNotFoundError as exc:
                log.error("Model %s version %d: %s", cfg.name, v, exc)
                continue
            h = ModelHandle(cfg.name, v, path, load_options(cfg), self.completions, self.core)
            served.versions[v] = h
            try:
                await loop.run_in_executor(None, h.load)
            except Exception:
                continue
            changed = True
            served.refresh_default()
        for v, h in list(served.versions.items()):
            if v not in wanted and h.state == VersionState.AVAILABLE:
                h.state = VersionState.UNLOADING
                served.refresh_default()
                await loop.run_in_executor(None, h.unload)
                changed = True
        served.refresh_default()
        return changed

    async def unload_all(self) -> None:
        loop = asyncio.get_running_loop()
        for served in self.models.values():
            for h in served.versions.values():
                if h.state == VersionState.AVAILABLE:
                    h.state = VersionState.UNLOADING
                    await loop.run_in_executor(None, h.unload)
            served.refresh_default()
