"""Request decoding limits (issue 14 point 2): how many inputs, outputs, shape dimensions and parameters
one inference request may declare. The native codecs (codec/limits.hpp) and the REST parser check them
before allocating anything per entry; a request over one is INVALID_ARGUMENT / 400.

Set in config.json's top-level ``"request_limits"`` object or by the flags of the same names; a flag
given on the command line wins over the file. The file's values are applied again when config.json is
reloaded. Names and defaults live here only. Pure: no I/O, no native calls.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MAX_LIMIT = 2**31 - 1

# config.json key and CLI flag (one name) -> (`_native.set_decode_limits` keyword, default, what it bounds).
# The defaults sit far above real models (the widest have tens of inputs and ranks under 10).
LIMITS: dict[str, tuple[str, int, str]] = {
    "max_request_inputs": ("max_inputs", 4096, "most inputs one inference request may carry"),
    "max_request_outputs": ("max_outputs", 4096, "most outputs one inference request may ask for"),
    "max_tensor_dims": ("max_dims", 64, "most dimensions in one tensor shape of a request"),
    "max_request_parameters": ("max_parameters", 1024,
                               "most parameters in one KServe request, its inputs and outputs together"),
}


def check_limit(name: str, value: Any) -> int:
    """``value`` as a limit named ``name``; ValueError unless it is an integer from 1 to MAX_LIMIT."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise ValueError(f"{name} must be from 1 to {MAX_LIMIT} (an integer), not {value!r}")
    return value


def parse_request_limits(value: Any) -> dict[str, int]:
    """config.json's ``"request_limits"`` object -> {name: limit} for the names it sets. ValueError for
    anything else than an object of known names with integer values in range."""
    if not isinstance(value, dict):
        raise ValueError("'request_limits' must be an object, e.g. {\"max_request_inputs\": 64}")
    unknown = sorted(set(value) - set(LIMITS))
    if unknown:
        raise ValueError(f"'request_limits': unknown key(s) {unknown}; allowed: {sorted(LIMITS)}")
    return {name: check_limit(f"request_limits.{name}", v) for name, v in value.items()}


def effective_limits(from_file: Iterable[tuple[str, int]] | None, from_flags: Mapping[str, int]) -> dict[str, int]:
    """The limits to apply, as `_native.set_decode_limits` keywords: a flag given on the command line
    over the file's value (RepositoryConfig.request_limits) over the default."""
    file = dict(from_file or ())
    return {keyword: from_flags.get(name, file.get(name, default)) for name, (keyword, default, _) in LIMITS.items()}
