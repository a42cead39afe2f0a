"""config.json (OVMS format) -> ModelConfigs. One entry point: ``load_config_file``."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ovfast.config.schema import ModelConfig

log = logging.getLogger("ovfast.config")

MODEL_KEYS = {
    "name", "base_path", "batch_size", "shape", "layout", "model_version_policy", "nireq",
    "target_device", "plugin_config", "allow_cache", "stateful", "idle_sequence_cleanup",
    "max_sequence_number", "low_latency_transformation", "custom_loader_options", "graph_path", "subconfig",
    "color_format",
}
TOP_KEYS = {"model_config_list", "pipeline_config_list", "custom_node_library_config_list",
            "custom_loader_config_list", "mediapipe_config_list", "monitoring"}


class ConfigError(ValueError):
    """The config file cannot be used; the message says why."""


def _shape_items(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (("", value),)
    if isinstance(value, list):
        return (("", "(" + ",".join(str(int(v)) for v in value) + ")"),)
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            if isinstance(v, list):
                v = "(" + ",".join(str(int(x)) for x in v) + ")"
            out.append((str(k), str(v)))
        return tuple(out)
    raise ConfigError(f"shape must be a string, list or object, got {type(value).__name__}")


def model_config_from_json(entry: dict, config_dir: Path | None) -> ModelConfig:
    if not isinstance(entry, dict) or set(entry) != {"config"} or not isinstance(entry["config"], dict):
        raise ConfigError("each model_config_list element must be {\"config\": {...}}")
    c = entry["config"]
    unknown = set(c) - MODEL_KEYS
    if unknown:
        log.warning("Model config %s: ignoring unknown keys %s", c.get("name"), sorted(unknown))
    name = c.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError("model config requires a non-empty string 'name'")
    base = c.get("base_path")
    if not isinstance(base, str) or not base:
        raise ConfigError(f"model {name}: 'base_path' must be a non-empty string")
    if ".." in Path(base).parts:
        raise ConfigError(f"model {name}: path escape with '..' is forbidden in base_path: {base}")
    if "://" not in base and not os.path.isabs(base) and config_dir is not None:
        base = str(config_dir / base)
    plugin = c.get("plugin_config", {}) or {}
    if not isinstance(plugin, dict):
        raise ConfigError(f"model {name}: plugin_config must be an object")
    batch = c.get("batch_size", "")
    color_format = c.get("color_format")
    if color_format is not None and (not isinstance(color_format, str) or color_format.upper() not in ("BGR", "RGB")):
        raise ConfigError(f"model {name}: color_format must be \"BGR\" or \"RGB\"")
    nireq = c.get("nireq", 0)
    if not isinstance(nireq, int) or isinstance(nireq, bool) or nireq < 0 or nireq > 100000:
        raise ConfigError(f"model {name}: nireq must be an integer in 0..100000")
    return ModelConfig(
        name=name,
        base_path=base,
        target_device=str(c.get("target_device", "CPU")),
        plugin_config=tuple(sorted(plugin.items())),
        nireq=nireq,
        batch_size="" if batch in (None, "", 0) else str(batch),
        shape=_shape_items(c.get("shape")),
        layout=c.get("layout"),
        model_version_policy=c.get("model_version_policy"),
        allow_cache=bool(c.get("allow_cache", False)),
        color_format=color_format,
    )


def parse_config_text(text: str, config_dir: Path | None) -> tuple[list[ModelConfig], list[str], dict]:
    """Returns (models, per-entry errors, raw document). Raises ConfigError for a file that is unusable as a whole."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"The file is not valid json - Error: {exc.msg}. Offset: {exc.pos}") from exc
    if not isinstance(doc, dict) or "model_config_list" not in doc:
        raise ConfigError("The config file must be an object with a 'model_config_list' array")
    unknown = set(doc) - TOP_KEYS
    if unknown:
        log.warning("Config file: ignoring unknown top-level keys %s", sorted(unknown))
    entries = doc["model_config_list"]
    if not isinstance(entries, list):
        raise ConfigError("'model_config_list' must be an array")
    models, errors, seen = [], [], set()
    for i, entry in enumerate(entries):
        try:
            m = model_config_from_json(entry, config_dir)
        except ConfigError as exc:
            errors.append(f"model_config_list[{i}]: {exc}")
            continue
        if m.name in seen:
            errors.append(f"model_config_list[{i}]: model name {m.name} is already used")
            continue
        seen.add(m.name)
        models.append(m)
    return models, errors, doc


def load_config_file(path: str) -> tuple[list[ModelConfig], list[str], dict]:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"Config file not found or cannot open: {path} ({exc.strerror})") from exc
    return parse_config_text(text, p.resolve().parent)
