"""diff(old, new) -> ReloadPlan: which models a reload adds, removes or reloads, and why (pure).

OVMS semantics: any change of a model's settings reloads all its versions (a switch between a
fixed shape or batch size and "auto" too: it is a change of ``shape`` / ``batch_size``), except a
change of the version policy alone, which only changes which versions are served (no reload of
the versions that stay). The registry carries the plan out as it is (registry.apply).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ovfast.config.schema import BatchingConfig, Dim, ModelConfig, ShapeSpec

# Fields whose change only re-selects versions (or, group_name, changes what residency loads and
# unloads together); everything else reloads every version.
_SELECTION_ONLY = frozenset({"model_version_policy", "group_name"})


@dataclass(frozen=True)
class ModelChange:
    name: str
    reasons: tuple[str, ...]
    reload_versions: bool  # False: only the version selection changed


@dataclass(frozen=True)
class ReloadPlan:
    added: tuple[ModelConfig, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[tuple[ModelConfig, ModelChange], ...] = ()
    unchanged: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def describe(self) -> list[str]:
        """One log line per model that the plan touches."""
        lines = [f"Model {m.name}: added (base_path {m.base_path})" for m in self.added]
        lines += [f"Model {n}: removed from the config; its versions will be retired" for n in self.removed]
        for _, ch in self.changed:
            what = "reloading all versions" if ch.reload_versions else "re-selecting versions"
            lines.append(f"Model {ch.name}: {what} because " + "; ".join(ch.reasons))
        return lines


def _show(v: object) -> str:
    if isinstance(v, (Dim, ShapeSpec)):
        return str(v)
    if isinstance(v, BatchingConfig):
        return "{" + ", ".join(f"{k}: {list(x) if isinstance(x, tuple) else x}" for k, x in asdict(v).items()) + "}"
    if isinstance(v, tuple) and all(isinstance(x, tuple) and len(x) == 2 for x in v):
        return "{" + ", ".join(f"{k or '<only input>'}: {val}" for k, val in v) + "}" if v else "{}"
    return repr(v)


def model_changes(old: ModelConfig, new: ModelConfig) -> ModelChange | None:
    """Reasons why ``old`` cannot serve as ``new``; None when they are equal."""
    reasons = []
    reload = False
    for f in fields(ModelConfig):
        a, b = getattr(old, f.name), getattr(new, f.name)
        if a != b:
            reasons.append(f"{f.name} changed from {_show(a)} to {_show(b)}")
            reload |= f.name not in _SELECTION_ONLY
    if not reasons:
        return None
    return ModelChange(new.name, tuple(reasons), reload)


def diff(old: tuple[ModelConfig, ...] | list[ModelConfig], new: tuple[ModelConfig, ...] | list[ModelConfig]) -> ReloadPlan:
    """The plan that turns the running model set ``old`` into ``new`` (both keyed by name)."""
    old_by = {m.name: m for m in old}
    new_by = {m.name: m for m in new}
    added = tuple(m for n, m in new_by.items() if n not in old_by)
    removed = tuple(n for n in old_by if n not in new_by)
    changed = []
    unchanged = []
    for n, m in new_by.items():
        if n in old_by:
            ch = model_changes(old_by[n], m)
            if ch is None:
                unchanged.append(n)
            else:
                changed.append((m, ch))
    return ReloadPlan(added, removed, tuple(changed), tuple(unchanged))
