"""Version policies: pure filters from available versions to served versions."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Latest:
    num_versions: int = 1

    def select(self, available: list[int]) -> list[int]:
        return sorted(available)[-self.num_versions:]


@dataclass(frozen=True)
class Specific:
    versions: tuple[int, ...]

    def select(self, available: list[int]) -> list[int]:
        return sorted(set(available) & set(self.versions))


@dataclass(frozen=True)
class All:
    def select(self, available: list[int]) -> list[int]:
        return sorted(available)


VersionPolicy = Latest | Specific | All


def policy_from_json(obj: dict | None) -> VersionPolicy:
    """Parses OVMS's ``model_version_policy`` object; raises ValueError with the OVMS-style reason."""
    if obj is None:
        return Latest(1)
    if not isinstance(obj, dict) or len(obj) != 1:
        raise ValueError("Model version policy must have exactly one of: all, latest, specific")
    (key, val), = obj.items()
    if not isinstance(val, dict):
        raise ValueError(f"Model version policy '{key}' must be an object")
    if key == "all":
        if val:
            raise ValueError("Model version policy 'all' takes no options")
        return All()
    if key == "latest":
        extra = set(val) - {"num_versions"}
        if extra:
            raise ValueError(f"Model version policy 'latest' has unsupported keys: {sorted(extra)}")
        n = val.get("num_versions", 1)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError("Model version policy 'latest.num_versions' must be an integer >= 1")
        return Latest(n)
    if key == "specific":
        extra = set(val) - {"versions"}
        if extra:
            raise ValueError(f"Model version policy 'specific' has unsupported keys: {sorted(extra)}")
        vs = val.get("versions")
        if not isinstance(vs, list) or not vs or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in vs):
            raise ValueError("Model version policy 'specific.versions' must be a non-empty list of integers >= 1")
        return Specific(tuple(sorted(set(vs))))
    raise ValueError(f"Unsupported model version policy key: {key}")
