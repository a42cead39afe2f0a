"""Residency settings: ``--memory_budget`` / ``"memory_budget"`` (bytes with a unit, or a percentage
of the machine's memory), ``--idle_unload_seconds`` and ``--model_control_mode``, parsed once."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

# Decimal units as SI and Kubernetes write them, binary ones as IEC ("Gi" as Kubernetes, "GiB").
_UNITS = {"": 1, "B": 1,
          "K": 10**3, "KB": 10**3, "M": 10**6, "MB": 10**6, "G": 10**9, "GB": 10**9, "T": 10**12, "TB": 10**12,
          "KI": 2**10, "KIB": 2**10, "MI": 2**20, "MIB": 2**20, "GI": 2**30, "GIB": 2**30, "TI": 2**40, "TIB": 2**40}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_PERCENT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
CONTROL_MODES = ("none", "explicit")


@dataclass(frozen=True)
class ResidencyConfig:
    """What residency does. Default: nothing (every selected version is loaded at start and stays)."""

    memory_budget: int = 0  # bytes; 0 = no budget
    idle_unload_seconds: float = 0.0  # 0 = never
    explicit: bool = False  # --model_control_mode explicit: serve only what was loaded explicitly
    load_models: tuple[str, ...] = ()  # --load_model: loaded at start in explicit mode ("*" = all)
    # False under ModelMesh, which owns eviction: a load that does not fit is refused, nothing is unloaded
    evict: bool = True

    @property
    def active(self) -> bool:
        return bool(self.memory_budget or self.idle_unload_seconds or self.explicit)


def total_memory() -> int:
    """The memory this process may use: the machine's RAM, or the cgroup's limit when lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = open(path).read().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < total:
            total = int(text)
        break
    return total


def parse_size(value: object, what: str) -> int:
    """A size as flags and config.json spell it: bytes (an int or ASCII digits), or a number with a unit
    (``"512MiB"``, ``"2Gi"``, ``"1.5GB"``) -> bytes (>= 0). ValueError naming ``what`` otherwise."""
    m = _SIZE_RE.match(value) if isinstance(value, str) and value.isascii() else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if m is None or m.group(2).upper() not in _UNITS:
        raise ValueError(f"{what} must be bytes, or a size with a unit such as 512MiB or 2GB, got {value!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def parse_memory_budget(value: object) -> int:
    """``"6GiB"``, ``"512Mi"``, ``"2GB"``, ``"60%"`` or a number of bytes -> bytes (> 0).

    Raises ValueError naming what was wrong."""
    if isinstance(value, bool):
        raise ValueError(f"memory_budget must be bytes with a unit (e.g. 6GiB) or a percentage of RAM (e.g. 60%), "
                         f"got {value!r}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (m := _PERCENT_RE.match(value)):
        pct = float(m.group(1))
        if not 0 < pct <= 100:
            raise ValueError(f"memory_budget percentage must be in (0, 100], got {value!r}")
        size = int(total_memory() * pct / 100)
    elif isinstance(value, str) and (m := _SIZE_RE.match(value)) and m.group(2).upper() in _UNITS:
        size = parse_size(value, "memory_budget")
    else:
        raise ValueError(f"memory_budget must be bytes with a unit (e.g. 6GiB, 512MiB, 2GB) or a percentage of "
                         f"RAM (e.g. 60%), got {value!r}")
    if size <= 0:
        raise ValueError(f"memory_budget must be more than 0 bytes, got {value!r}")
    return size


def parse_idle_unload_seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"idle_unload_seconds must be a number of seconds >= 0 (0 = never), got {value!r}")
    return float(value)
