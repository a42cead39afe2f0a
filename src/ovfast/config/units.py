"""Sizes as flags and config.json spell them: plain bytes, or a number with a unit."""
from __future__ import annotations

import re

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40,
          "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)")


def parse_bytes(text: str | int, what: str) -> int:
    """``"2GiB"`` -> 2147483648; ``"500MB"``, ``"1.5G"``, ``"1048576"`` and ints too (ASCII digits only).
    ValueError naming ``what`` otherwise."""
    if isinstance(text, bool):
        raise ValueError(f"{what} must be a size such as 512MiB or 2GiB, got {text!r}")
    if isinstance(text, int):
        value = text
    else:
        m = _SIZE.fullmatch(str(text).strip()) if str(text).isascii() else None
        unit = _UNITS.get(m.group(2).upper()) if m else None
        if unit is None:
            raise ValueError(f"{what} must be a size such as 512MiB or 2GiB, got {text!r}")
        value = int(float(m.group(1)) * unit)
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {text!r}")
    return value
