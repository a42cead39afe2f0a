"""config.json (OVMS format) and single-model CLI flags -> frozen, validated configs.

Strict: unknown keys are refused (OVMS's schema has ``additionalProperties: false``); the only
extra keys are ovfast's documented extensions (docs/config.md). A problem with the file as a
whole raises :class:`ConfigError`; a problem with one model entry skips that entry and is
reported in ``RepositoryConfig.errors`` so the other models are still served.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from ovfast.config.budget import parse_idle_unload_seconds, parse_memory_budget
from ovfast.config.dag import dag_entries
from ovfast.config.request_limits import parse_request_limits
from ovfast.config.plugin import parse_plugin_config
from ovfast.config.values import ConfigError, is_int, json_array
from ovfast.config.schema import (
    ANY_DIM, AUTO, BatchingConfig, BatchSetting, Dim, MetricsConfig, ModelConfig, MonitoringConfig, RepositoryConfig,
    ShapeSetting, ShapeSpec,
)
from ovfast.errors import (
    INVALID_MAX_SEQUENCE_NUMBER, INVALID_NON_STATEFUL_MODEL_PARAMETER, REQUESTED_DYNAMIC_PARAMETERS_ON_STATEFUL_MODEL,
)
from ovfast.repository.version_policy import Latest, policy_from_json

log = logging.getLogger("ovfast.config")

OVMS_MODEL_KEYS = frozenset({
    "name", "base_path", "batch_size", "shape", "layout", "model_version_policy", "nireq",
    "target_device", "plugin_config", "allow_cache", "stateful", "idle_sequence_cleanup",
    "max_sequence_number", "low_latency_transformation", "custom_loader_options", "graph_path", "subconfig",
    "group_name",
})
# ovfast's own per-model keys; each one is documented in docs/config.md.
EXTENSION_MODEL_KEYS = frozenset({"color_format", "dynamic_batching", "max_queue_size"})
BATCHING_KEYS = ("max_batch_size", "max_queue_delay_us", "preferred_batch_sizes")
MAX_BATCH_SIZE = 1 << 20
MAX_QUEUE_DELAY_US = 3_600_000_000  # one hour
MAX_QUEUE_SIZE = 1 << 30
UNSUPPORTED_MODEL_KEYS = {
    "custom_loader_options": "custom model loaders (deprecated in OVMS) are not supported by ovfast",
    "graph_path": "MediaPipe graphs are not supported by ovfast",
    "subconfig": "MediaPipe graphs are not supported by ovfast",
}
# OVMS's keys of stateful models (spec/ovms.md §5): allowed only with "stateful": true.
STATEFUL_KEYS = ("idle_sequence_cleanup", "max_sequence_number", "low_latency_transformation")
MAX_SEQUENCE_NUMBER = (1 << 32) - 1  # uint32, as OVMS
TOP_KEYS = frozenset({"model_config_list", "pipeline_config_list", "custom_node_library_config_list",
                      "custom_loader_config_list", "mediapipe_config_list", "monitoring",
                      "memory_budget", "idle_unload_seconds", "request_limits"})  # the last three: ovfast's
REMOTE_SCHEMES = ("s3://", "gs://", "az://", "azfs://")
MAX_NIREQ = 100000
READ_RETRIES = 3  # OVMS MAX_CONFIG_JSON_READ_RETRY_COUNT
READ_RETRY_DELAY_S = 0.01

_DIM_RE = re.compile(r"^(-1|\d+|\d+:\d+)$")
_LAYOUT_SIDE_RE = re.compile(r"^((\.\.\.)|[A-Z?])+$|^\[[A-Za-z?.,\s]+\]$")
COLOR_FORMATS = frozenset({"RGB", "BGR"})  # what the native image decoder produces


# -- value parsers (pure; raise ConfigError) ------------------------------------------------


def parse_dim(text: str, what: str, context: str = "") -> Dim:
    """One dimension: ``N`` (> 0), ``-1`` (any) or ``min:max`` (0 < min <= max)."""
    where = f" in '{context}'" if context else ""
    if not _DIM_RE.match(text):
        raise ConfigError(f"{what}: bad dimension '{text}'{where} (use N, -1 or min:max)")
    if ":" in text:
        lo, hi = (int(x) for x in text.split(":"))
        if lo <= 0 or hi <= 0 or lo > hi:
            raise ConfigError(f"{what}: bad range '{text}'{where} (need 0 < min <= max)")
        return Dim(lo, hi)
    n = int(text)
    if n == -1:
        return ANY_DIM
    if n == 0:
        raise ConfigError(f"{what}: dimension 0{where} (use a positive size or -1)")
    return Dim(n, n)


def parse_dims(text: str, what: str) -> ShapeSpec:
    """'(1, 3,224,224)' / '[1,3,-1,1:8]' -> ShapeSpec."""
    s = text.replace(" ", "")
    if len(s) < 2 or s[0] not in "([" or s[-1] not in ")]" or (s[0] == "(") != (s[-1] == ")"):
        raise ConfigError(f"{what}: '{text}' is not a shape; expected 'auto' or a tuple such as (1,3,224,224)")
    body = s[1:-1]
    return ShapeSpec(tuple(parse_dim(d, what, text) for d in (body.split(",") if body else [])))


def parse_shape(value: Any) -> tuple[tuple[str, ShapeSetting], ...]:
    """OVMS ``shape``: "auto" | "(1,3,224,224)" | [1,3,224,224] | {"input": "(..)" | "auto" | [..]}."""
    def one(v: Any, what: str) -> ShapeSetting:
        if isinstance(v, list):
            if not all(is_int(x) for x in v):
                raise ConfigError(f"{what}: a shape array must hold integers, got {v!r}")
            v = "(" + ",".join(str(x) for x in v) + ")"
        if not isinstance(v, str):
            raise ConfigError(f"{what}: must be 'auto', a tuple string or an integer array, got {v!r}")
        return AUTO if v.strip() == AUTO else parse_dims(v, what)

    if value is None or value == "" or value == {}:
        return ()
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            if not k:
                raise ConfigError("shape: input names must not be empty")
            out.append((k, one(v, f"shape of input '{k}'")))
        return tuple(out)
    return (("", one(value, "shape")),)


def parse_batch_size(value: Any) -> BatchSetting:
    """OVMS ``batch_size``: N | "N" | "auto" | "-1" | "lo:hi" -> Dim | AUTO | None (the model's own)."""
    if value is None:
        return None
    if is_int(value):
        if value < -1:
            raise ConfigError(f"batch_size: {value} is not allowed (use N > 0, -1, 'auto' or 'min:max')")
        value = str(value)
    if not isinstance(value, str):
        raise ConfigError(f"batch_size: must be a number or a string, got {value!r}")
    s = value.strip()
    if s in ("", "0"):
        return None
    if s == AUTO:
        return AUTO
    if not _DIM_RE.match(s):
        raise ConfigError(f"batch_size: '{value}' is not valid (use N, -1, 'auto' or 'min:max')")
    return parse_dim(s, "batch_size")


def parse_floats(text: str | None, what: str) -> tuple[float, ...]:
    """CLI ``--mean`` / ``--scale``: "127.5" or "[123.7,116.3,103.5]" -> floats (() when not given)."""
    if text is None or not text.strip():
        return ()
    try:
        values = tuple(float(x) for x in text.strip().strip("[]").split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"{what} must be a number or a list of numbers such as [123.7,116.3,103.5], "
                          f"got '{text}'") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"{what} must be finite numbers, got '{text}'")
    if what == "scale" and 0.0 in values:
        raise ConfigError(f"scale values divide the input and must not be 0, got '{text}'")
    return values


def _parse_layout_text(text: Any, what: str) -> str:
    if not isinstance(text, str) or not text:
        raise ConfigError(f"{what}: must be a non-empty string such as 'NHWC:NCHW', got {text!r}")
    sides = text.split(":")
    if len(sides) > 2 or not all(_LAYOUT_SIDE_RE.match(s) for s in sides):
        raise ConfigError(f"{what}: '{text}' is not a layout (use e.g. 'NCHW', 'N...', or '<sent>:<model>' "
                          "such as 'NHWC:NCHW')")
    if len(sides) == 2 and "..." not in text and "[" not in text and sorted(sides[0]) != sorted(sides[1]):
        raise ConfigError(f"{what}: '{text}' maps between layouts of different dimensions")
    return text


def parse_layout(value: Any) -> tuple[tuple[str, str], ...]:
    """OVMS ``layout``: "NHWC:NCHW" (the only input) or {"name": "NHWC:NCHW", ...} (inputs or outputs)."""
    if value is None or value == "" or value == {}:
        return ()
    if isinstance(value, dict):
        return tuple((k, _parse_layout_text(v, f"layout of '{k}'")) for k, v in value.items())
    return (("", _parse_layout_text(value, "layout")),)


def parse_base_path(base: Any, config_dir: Path | None) -> str:
    if not isinstance(base, str) or not base:
        raise ConfigError("'base_path' must be a non-empty string")
    if base.startswith("azure://"):
        raise ConfigError(f"base_path '{base}': azure:// is not a supported scheme (use az:// or azfs://)")
    if ".." in Path(base.split("://", 1)[-1]).parts:
        raise ConfigError(f"base_path '{base}': path escape with '..' is forbidden")
    if base.startswith(REMOTE_SCHEMES):
        return base
    if "://" in base:
        raise ConfigError(f"base_path '{base}': unsupported scheme (local paths, s3://, gs://, az://, azfs://)")
    if not os.path.isabs(base):
        base = str((config_dir or Path.cwd()) / base)
    return os.path.normpath(base)


def _bool(c: dict, key: str, default: bool) -> bool:
    v = c.get(key, default)
    if not isinstance(v, bool):
        raise ConfigError(f"'{key}' must be true or false, got {v!r}")
    return v


def _color_format(v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or v.upper() not in COLOR_FORMATS:
        raise ConfigError(f"color_format: {v!r} is not valid (one of {sorted(COLOR_FORMATS)})")
    return v.upper()


def parse_dynamic_batching(value: Any) -> BatchingConfig | None:
    """``{"max_batch_size": N, "max_queue_delay_us": T, "preferred_batch_sizes": [..]}`` -> BatchingConfig.

    Only the values are checked here; whether the model can batch is :func:`check_batching`'s job.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"dynamic_batching: must be an object such as "
                          f"{{\"max_batch_size\": 8, \"max_queue_delay_us\": 500}}, got {value!r}")
    unknown = set(value) - set(BATCHING_KEYS)
    if unknown:
        raise ConfigError(f"dynamic_batching: unknown key(s) {sorted(unknown)}; allowed: {list(BATCHING_KEYS)}")
    size = value.get("max_batch_size")
    if not is_int(size) or not 1 <= size <= MAX_BATCH_SIZE:
        raise ConfigError(f"dynamic_batching.max_batch_size is required and must be an integer in "
                          f"1..{MAX_BATCH_SIZE}, got {size!r}")
    delay = value.get("max_queue_delay_us", 0)
    if not is_int(delay) or not 0 <= delay <= MAX_QUEUE_DELAY_US:
        raise ConfigError(f"dynamic_batching.max_queue_delay_us must be an integer in 0..{MAX_QUEUE_DELAY_US} "
                          f"(microseconds), got {delay!r}")
    preferred = value.get("preferred_batch_sizes", [])
    if not isinstance(preferred, list) or not all(is_int(x) for x in preferred):
        raise ConfigError(f"dynamic_batching.preferred_batch_sizes must be an array of integers, got {preferred!r}")
    out_of_range = [x for x in preferred if not 1 <= x <= size]
    if out_of_range:
        raise ConfigError(f"dynamic_batching.preferred_batch_sizes: {out_of_range} not in 1..max_batch_size ({size})")
    if len(set(preferred)) != len(preferred):
        raise ConfigError(f"dynamic_batching.preferred_batch_sizes: {preferred} has repeated sizes")
    return BatchingConfig(size, delay, tuple(sorted(preferred)))


def _batch_dim_problem(dim: Dim, what: str, max_batch: int) -> str | None:
    """Why the batch dimension ``dim`` cannot hold ``max_batch`` rows; None if it can."""
    if dim.max == -1:
        return None
    if not dim.fixed:
        if dim.max < max_batch:
            return f"{what} allows at most {dim.max} rows, fewer than max_batch_size {max_batch}"
        return None
    return (f"{what} fixes the batch dimension at {dim.min}; batching needs one that can vary "
            f"(-1, or a range such as \"1:{max_batch}\")")


def check_batching(b: BatchingConfig, batch_size: BatchSetting, shape: tuple[tuple[str, ShapeSetting], ...]) -> None:
    """Refuses ``dynamic_batching`` on settings whose batch dimension (dim 0 of every input) cannot vary
    up to ``max_batch_size``. What the settings leave open (the model's own shapes) is checked at load."""
    n = b.max_batch_size
    if batch_size == AUTO or any(v == AUTO for _, v in shape):
        which = "batch_size" if batch_size == AUTO else "shape"
        raise ConfigError(f"dynamic_batching cannot be combined with {which} \"auto\" (which reloads the model "
                          f"for each new request shape); use -1 or a range such as \"1:{n}\"")
    problem = _batch_dim_problem(batch_size, f"batch_size \"{batch_size}\"", n) if isinstance(batch_size, Dim) else None
    for name, spec in shape:
        if problem:
            break
        assert isinstance(spec, ShapeSpec)
        label = f"shape {spec}" if not name else f"shape {spec} of input '{name}'"
        problem = _batch_dim_problem(spec.dims[0], label, n) if spec.dims else f"{label} has no batch dimension"
    if problem:
        raise ConfigError(f"dynamic_batching: {problem}")


def model_config_from_dict(c: Any, config_dir: Path | None = None) -> ModelConfig:
    """Validates one model's settings (the object inside ``{"config": ...}``)."""
    if not isinstance(c, dict):
        raise ConfigError(f"model config must be an object, got {c!r}")
    unknown = set(c) - OVMS_MODEL_KEYS - EXTENSION_MODEL_KEYS
    if unknown:
        raise ConfigError(f"unknown key(s) {sorted(unknown)}; allowed: {sorted(OVMS_MODEL_KEYS | EXTENSION_MODEL_KEYS)}")
    for key, why in UNSUPPORTED_MODEL_KEYS.items():
        if key in c:
            raise ConfigError(f"'{key}': {why}")
    name = c.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("'name' is required and must be a non-empty string")
    if "/" in name or ":" in name:
        raise ConfigError(f"name '{name}' must not contain '/' or ':'")
    base = parse_base_path(c.get("base_path"), config_dir)
    nireq = c.get("nireq", 0)
    if not is_int(nireq) or nireq < 0:
        raise ConfigError(f"'nireq' must be an integer >= 0, got {nireq!r}")
    if nireq > MAX_NIREQ:
        raise ConfigError(f"Nireq parameter too high: {nireq} (max {MAX_NIREQ})")
    max_queue_size = c.get("max_queue_size", 0)
    if not is_int(max_queue_size) or not 0 <= max_queue_size <= MAX_QUEUE_SIZE:
        raise ConfigError(f"'max_queue_size' must be an integer from 0 (no bound) to {MAX_QUEUE_SIZE}, "
                          f"got {max_queue_size!r}")
    device = c.get("target_device", "CPU")
    if not isinstance(device, str) or not device.strip():
        raise ConfigError(f"'target_device' must be a non-empty string, got {device!r}")
    try:
        policy = policy_from_json(c["model_version_policy"]) if "model_version_policy" in c else Latest(1)
    except ValueError as exc:
        raise ConfigError(f"model_version_policy: {exc}") from None
    shape = parse_shape(c.get("shape"))
    batch = parse_batch_size(c.get("batch_size"))
    stateful = parse_stateful(c, shape, batch)
    if shape and batch is not None:
        log.warning("Model %s: both shape and batch size have been defined. Batch size parameter will be ignored",
                    name)
        batch = None
    batching = parse_dynamic_batching(c.get("dynamic_batching"))
    if batching is not None:
        check_batching(batching, batch, shape)
        if stateful["stateful"]:
            raise ConfigError("'dynamic_batching' cannot be used with a stateful model: the requests of a sequence "
                              "run one at a time on the state it left")
    try:
        plugin, notes = parse_plugin_config(c.get("plugin_config"))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    for note in notes:  # once per parse of the config: at start-up and when the file changes
        log.warning("Model %s: plugin_config %s", name, note)
    group = c.get("group_name")
    if group is not None and (not isinstance(group, str) or not group.strip()):
        raise ConfigError(f"'group_name' must be a non-empty string, got {group!r}")
    return ModelConfig(
        group_name=group.strip() if group else None, name=name, base_path=base, target_device=device.strip(),
        plugin_config=plugin, nireq=nireq, max_queue_size=max_queue_size, batch_size=batch,
        shape=shape, layout=parse_layout(c.get("layout")), model_version_policy=policy,
        allow_cache=_bool(c, "allow_cache", False), color_format=_color_format(c.get("color_format")), dynamic_batching=batching,
        **stateful,
    )


def parse_stateful(c: dict, shape, batch) -> dict:
    """The stateful-model keys as ModelConfig fields, with OVMS's refusals (spec/ovms.md §1.1, §5)."""
    stateful = _bool(c, "stateful", False)
    if not stateful:
        given = [k for k in STATEFUL_KEYS if k in c]
        if given:
            raise ConfigError(f"{INVALID_NON_STATEFUL_MODEL_PARAMETER}: {', '.join(given)}")
        return {"stateful": False}
    if batch == AUTO or any(v == AUTO for _, v in shape):
        raise ConfigError(REQUESTED_DYNAMIC_PARAMETERS_ON_STATEFUL_MODEL)
    n = c.get("max_sequence_number", 500)
    if not is_int(n) or n < 0:
        raise ConfigError(f"'max_sequence_number' must be an integer >= 0, got {n!r}")
    if n > MAX_SEQUENCE_NUMBER:
        raise ConfigError(f"{INVALID_MAX_SEQUENCE_NUMBER}: {n} (max {MAX_SEQUENCE_NUMBER})")
    return {"stateful": True, "max_sequence_number": n,
            "idle_sequence_cleanup": _bool(c, "idle_sequence_cleanup", True),
            "low_latency_transformation": _bool(c, "low_latency_transformation", False)}


def parse_monitoring(value: Any) -> MonitoringConfig:
    """``{"metrics": {"enable": bool, "metrics_list": [str, ...]}}``; metric names are checked by the metrics code."""
    if not isinstance(value, dict) or set(value) - {"metrics"}:
        raise ConfigError(f"monitoring: must be {{\"metrics\": {{...}}}}, got {value!r}")
    m = value.get("metrics")
    if m is None:
        return MonitoringConfig()
    if not isinstance(m, dict):
        raise ConfigError("monitoring.metrics: must be an object")
    unknown = set(m) - {"enable", "metrics_list", "endpoint_path"}
    if unknown:
        raise ConfigError(f"monitoring.metrics: unknown key(s) {sorted(unknown)}")
    if not isinstance(m.get("enable"), bool):
        raise ConfigError("monitoring.metrics.enable is required and must be true or false")
    lst = m.get("metrics_list", [])
    if not isinstance(lst, list) or not all(isinstance(x, str) and x for x in lst):
        raise ConfigError("monitoring.metrics.metrics_list must be an array of metric names")
    return MonitoringConfig(MetricsConfig(m["enable"], tuple(lst)))


def parse_config_text(text: str | bytes, config_dir: Path | None = None) -> RepositoryConfig:
    """Parses a config.json. Raises ConfigError when the file as a whole is unusable."""
    raw = text.encode() if isinstance(text, str) else text
    digest = hashlib.md5(raw).hexdigest()
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" Offset: {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ConfigError(f"The file is not valid json - Error: {getattr(exc, 'msg', exc)}.{where}") from None
    if not isinstance(doc, dict):
        raise ConfigError("The config file must be a JSON object with a 'model_config_list' array")
    unknown = set(doc) - TOP_KEYS
    if unknown:
        raise ConfigError(f"Config file: unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(TOP_KEYS)}")
    if "model_config_list" not in doc:
        raise ConfigError("Config file: 'model_config_list' is required")
    entries = json_array(doc, "model_config_list")
    for key in ("custom_loader_config_list", "mediapipe_config_list"):
        if json_array(doc, key):
            raise ConfigError(f"'{key}' is not supported by ovfast")
    monitoring = parse_monitoring(doc["monitoring"]) if "monitoring" in doc else None
    try:
        budget = parse_memory_budget(doc["memory_budget"]) if "memory_budget" in doc else None
        idle = parse_idle_unload_seconds(doc["idle_unload_seconds"]) if "idle_unload_seconds" in doc else None
        limits = tuple(parse_request_limits(doc["request_limits"]).items()) if "request_limits" in doc else None
    except ValueError as exc:
        raise ConfigError(f"Config file: {exc}") from None

    models: list[ModelConfig] = []
    errors: list[str] = []
    invalid: list[str] = []
    names: set[str] = set()
    for i, entry in enumerate(entries):
        label = f"model_config_list[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"config"}:
            errors.append(f"{label}: each element must be {{\"config\": {{...}}}}")
            continue
        c = entry["config"]
        if isinstance(c, dict) and isinstance(c.get("name"), str):
            label += f" (model '{c['name']}')"
        try:
            m = model_config_from_dict(c, config_dir)
        except ConfigError as exc:
            errors.append(f"{label}: {exc}")
            if isinstance(c, dict) and isinstance(c.get("name"), str):
                invalid.append(c["name"])
            continue
        if m.name in names:
            errors.append(f"{label}: name '{m.name}' is already used by another model or pipeline")
            continue
        names.add(m.name)
        models.append(m)
    pipelines, libraries, dag_errors = dag_entries(doc, models, config_dir)
    return RepositoryConfig(models=tuple(models), errors=tuple(dag_errors + errors), invalid_names=tuple(invalid),
                            monitoring=monitoring, digest=digest, memory_budget=budget, idle_unload_seconds=idle,
                            request_limits=limits, pipelines=pipelines, libraries=libraries)


def read_config_bytes(path: str | os.PathLike) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"Config file not found or cannot open: {path} ({exc.strerror})") from None


def load_config_file(path: str | os.PathLike) -> RepositoryConfig:
    """Reads and parses ``path``; a file caught mid-write is re-read (OVMS: 3 tries, 10 ms apart)."""
    p = Path(path)
    for attempt in range(READ_RETRIES):
        try:
            return parse_config_text(read_config_bytes(p), p.resolve().parent)
        except ConfigError:
            if attempt == READ_RETRIES - 1:
                raise
            time.sleep(READ_RETRY_DELAY_S)
    raise AssertionError("unreachable")
