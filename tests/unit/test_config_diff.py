"""diff(old, new) -> ReloadPlan (pure)."""
from __future__ import annotations

from ovfast.config.diff import diff
from ovfast.config.load import model_config_from_dict


def cfg(name="m", **kw):
    return model_config_from_dict({"name": name, "base_path": f"/models/{name}", **kw})


def test_no_change():
    plan = diff((cfg("a"), cfg("b")), (cfg("b"), cfg("a")))
    assert plan.empty and set(plan.unchanged) == {"a", "b"}
    assert plan.describe() == []


def test_added_removed():
    plan = diff((cfg("a"), cfg("b")), (cfg("a"), cfg("c")))
    assert [m.name for m in plan.added] == ["c"]
    assert plan.removed == ("b",)
    assert plan.unchanged == ("a",)
    lines = plan.describe()
    assert any("Model c: added" in x for x in lines) and any("Model b: removed" in x for x in lines)


def test_changed_reasons():
    plan = diff((cfg("a", nireq=1),), (cfg("a", nireq=2, batch_size="auto"),))
    ((new, change),) = plan.changed
    assert new.nireq == 2
    assert change.reload_versions
    assert any(r.startswith("nireq changed from 1 to 2") for r in change.reasons)
    assert any(r.startswith("batch_size changed") for r in change.reasons)
    assert "reloading all versions" in plan.describe()[0]


def test_policy_only_change_does_not_reload_versions():
    plan = diff((cfg("a"),), (cfg("a", model_version_policy={"all": {}}),))
    ((_, change),) = plan.changed
    assert not change.reload_versions
    assert "model_version_policy" in change.reasons[0]


def test_shape_change_reason_shows_inputs():
    plan = diff((cfg("a", shape={"x": "(1,3)"}),), (cfg("a", shape={"x": "auto"}),))
    ((_, change),) = plan.changed
    assert change.reasons == ("shape changed from {x: (1,3)} to {x: auto}",)
