"""What every config.json parser shares: the error it raises and the JSON value checks."""
from __future__ import annotations

from typing import Any, TypeGuard


class ConfigError(ValueError):
    """The configuration cannot be used; the message says why."""


def is_int(v: Any) -> TypeGuard[int]:
    """A JSON integer (``true`` / ``false`` are not)."""
    return isinstance(v, int) and not isinstance(v, bool)


def json_array(doc: dict, key: str) -> list:
    """``doc[key]`` as a list (absent: empty). Raises ConfigError when it is not an array."""
    v = doc.get(key, [])
    if not isinstance(v, list):
        raise ConfigError(f"'{key}' must be an array")
    return v
