"""diff(old, new) -> the plan the registry carries out: which changes reload versions, which only
re-select them; "auto" is part of what a version is loaded with."""
from __future__ import annotations

import pytest

from ovfast.config.diff import diff
from ovfast.config.load import model_config_from_dict


def cfg(**kw):
    return model_config_from_dict({"name": "m", "base_path": "/models/m", **kw})


def only_change(old, new):
    plan = diff((old,), (new,))
    ((model, change),) = plan.changed
    assert model is new and not plan.added and not plan.removed
    return change


@pytest.mark.parametrize("old,new", [
    ({}, {"shape": "auto"}),
    ({"shape": "(1,10)"}, {"shape": "auto"}),
    ({"shape": "auto"}, {"shape": "(1,10)"}),
    ({"shape": {"b": "auto"}}, {"shape": "auto"}),  # the named input vs the only input
    ({"batch_size": 4}, {"batch_size": "auto"}),
    ({"batch_size": "auto"}, {}),
    # with allow_cache the compile options of "auto" and of the model's own shape are the same: only the
    # config tells them apart
    ({"allow_cache": True}, {"allow_cache": True, "shape": {"b": "auto"}}),
])
def test_switching_auto_reloads_the_versions(old, new):
    change = only_change(cfg(**old), cfg(**new))
    assert change.reload_versions
    assert any(r.startswith(("shape changed", "batch_size changed")) for r in change.reasons)


def test_reason_shows_typed_values_as_config_text():
    change = only_change(cfg(batch_size=4), cfg(batch_size="1:8"))
    assert change.reasons == ("batch_size changed from 4 to 1:8",)
    change = only_change(cfg(shape={"b": "(1,-1)"}), cfg(shape={"b": "(2,1:5)"}))
    assert change.reasons == ("shape changed from {b: (1,-1)} to {b: (2,1:5)}",)


def test_selection_only_change_reselects_without_reload():
    change = only_change(cfg(), cfg(model_version_policy={"all": {}}))
    assert not change.reload_versions
    plan = diff((cfg(),), (cfg(model_version_policy={"all": {}}),))
    assert plan.describe() == ["Model m: re-selecting versions because model_version_policy changed from "
                               "Latest(num_versions=1) to All()"]


def test_selection_and_settings_change_together_reload():
    change = only_change(cfg(), cfg(model_version_policy={"all": {}}, nireq=2))
    assert change.reload_versions
    assert len(change.reasons) == 2


def test_same_settings_written_differently_change_nothing():
    assert diff((cfg(shape="(1, 10)", batch_size=None),), (cfg(shape=[1, 10]),)).empty
    assert diff((cfg(batch_size="4"),), (cfg(batch_size=4),)).empty
