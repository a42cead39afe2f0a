"""``plugin_config``: validated once, with OVMS's deprecated OpenVINO keys translated.

OpenVINO 2.0 no longer knows the 1.0 keys that OVMS configs still carry. OVMS translates
three of them while it parses the config (``json_parser.cpp``); ovfast does the same, plus
two equivalences that OVMS passes through unchanged (so OpenVINO refuses them there):

============================  ===============================  ==================================
deprecated key                value                            becomes
============================  ===============================  ==================================
CPU_/GPU_THROUGHPUT_STREAMS   CPU_THROUGHPUT_AUTO /            PERFORMANCE_HINT: THROUGHPUT
                              GPU_THROUGHPUT_AUTO
CPU_/GPU_THROUGHPUT_STREAMS   CPU_THROUGHPUT_NUMA (ovfast)     NUM_STREAMS: NUMA
CPU_/GPU_THROUGHPUT_STREAMS   a number (or its text)           NUM_STREAMS: that number
CPU_THREADS_NUM               a number (or its text)           INFERENCE_NUM_THREADS: that number
CPU_BIND_THREAD (ovfast)      YES / NO (or true / false)       ENABLE_CPU_PINNING: YES / NO
============================  ===============================  ==================================

A key given both ways (e.g. ``NUM_STREAMS`` and ``CPU_THROUGHPUT_STREAMS``) keeps the explicit
new key; the deprecated one is dropped with a note. Pure: notes are returned, the caller logs them;
bad values raise ValueError (config/load.py reports them as ConfigError).
"""
from __future__ import annotations

from typing import Any

STREAMS_KEYS = ("CPU_THROUGHPUT_STREAMS", "GPU_THROUGHPUT_STREAMS")
THROUGHPUT_AUTO = ("CPU_THROUGHPUT_AUTO", "GPU_THROUGHPUT_AUTO")
THROUGHPUT_NUMA = "CPU_THROUGHPUT_NUMA"
THREADS_KEY = "CPU_THREADS_NUM"
BIND_KEY = "CPU_BIND_THREAD"
DEPRECATED_KEYS = (*STREAMS_KEYS, THREADS_KEY, BIND_KEY)

PluginItems = tuple[tuple[str, Any], ...]


def _number_text(key: str, value: Any) -> str:
    """A stream/thread count as OpenVINO takes it: '4' (from 4, 4.0 or '4')."""
    if isinstance(value, bool):
        raise ValueError(f"plugin_config: {key} must be a number, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _yes_no(value: Any) -> str | None:
    if isinstance(value, bool):
        return "YES" if value else "NO"
    if isinstance(value, str) and value.strip().upper() in ("YES", "TRUE", "NO", "FALSE"):
        return "YES" if value.strip().upper() in ("YES", "TRUE") else "NO"
    return None


def translate_key(key: str, value: Any) -> tuple[str, Any] | None:
    """The OpenVINO 2.0 (key, value) for a deprecated key; None for a key that stays as it is."""
    if key in STREAMS_KEYS:
        if value in THROUGHPUT_AUTO:
            return "PERFORMANCE_HINT", "THROUGHPUT"
        if value == THROUGHPUT_NUMA:
            return "NUM_STREAMS", "NUMA"
        return "NUM_STREAMS", _number_text(key, value)
    if key == THREADS_KEY:
        return "INFERENCE_NUM_THREADS", _number_text(key, value)
    if key == BIND_KEY:
        pinning = _yes_no(value)
        return None if pinning is None else ("ENABLE_CPU_PINNING", pinning)
    return None


def parse_plugin_config(value: Any) -> tuple[PluginItems, tuple[str, ...]]:
    """A ``plugin_config`` object -> (sorted (key, value) pairs for OpenVINO, notes about translated keys).

    Raises ValueError when the object or a value has the wrong type.
    """
    if value is None:
        return (), ()
    if not isinstance(value, dict):
        raise ValueError(f"plugin_config: must be an object, got {value!r}")
    for k, v in value.items():
        if not isinstance(v, (str, bool, int, float)):
            raise ValueError(f"plugin_config: value of '{k}' must be a string, number or bool, got {v!r}")
    out = {k: v for k, v in value.items() if k not in DEPRECATED_KEYS}
    notes = []
    for k in sorted(set(value) & set(DEPRECATED_KEYS)):
        new = translate_key(k, value[k])
        if new is None:
            out[k] = value[k]  # no 2.0 equivalent: OpenVINO decides (and says why if it refuses)
            continue
        new_key, new_value = new
        if new_key in out:
            notes.append(f"deprecated key {k}: {value[k]!r} ignored, {new_key}: {out[new_key]!r} is given")
            continue
        out[new_key] = new_value
        notes.append(f"deprecated key {k}: {value[k]!r} translated to {new_key}: {new_value!r}")
    return tuple(sorted(out.items())), tuple(notes)
