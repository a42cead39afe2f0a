"""--memory_budget / "memory_budget", --idle_unload_seconds and the groups' config key, parsed once."""
from __future__ import annotations

import json

import pytest

from ovfast.config.budget import parse_idle_unload_seconds, parse_memory_budget, total_memory
from ovfast.config.diff import diff
from ovfast.config.load import ConfigError, parse_config_text


@pytest.mark.parametrize("text,expected", [
    ("6GiB", 6 << 30), ("512MiB", 512 << 20), ("512Mi", 512 << 20), ("2GB", 2 * 10**9), ("1.5G", 1_500_000_000),
    ("100", 100), (" 64 KiB ", 64 << 10), ("3kb", 3000), (4096, 4096),
])
def test_sizes(text, expected):
    assert parse_memory_budget(text) == expected


def test_percent_of_the_machine():
    assert parse_memory_budget("50%") == total_memory() // 2 or abs(parse_memory_budget("50%") - total_memory() / 2) < 2
    assert 0 < parse_memory_budget("0.5%") < parse_memory_budget("100%") == total_memory()


@pytest.mark.parametrize("bad", ["", "GiB", "-1GiB", "6 parsecs", "0", "0%", "101%", True, 1.5, None, "1e9"])
def test_bad_budgets_name_the_value(bad):
    with pytest.raises(ValueError, match="memory_budget"):
        parse_memory_budget(bad)


def test_idle_seconds():
    assert parse_idle_unload_seconds(0) == 0.0 and parse_idle_unload_seconds(2.5) == 2.5
    for bad in (-1, "5", True, None):
        with pytest.raises(ValueError, match="idle_unload_seconds"):
            parse_idle_unload_seconds(bad)


def _config(**top) -> str:
    return json.dumps({"model_config_list": [
        {"config": {"name": "a", "base_path": "/m/a", "group_name": "g"}},
        {"config": {"name": "p", "base_path": "/m/p", "group_name": "permanent"}},
        {"config": {"name": "c", "base_path": "/m/c"}}], **top})


def test_config_json_keys():
    repo = parse_config_text(_config(memory_budget="1GiB", idle_unload_seconds=30))
    assert repo.memory_budget == 1 << 30 and repo.idle_unload_seconds == 30.0
    assert [m.group_name for m in repo.models] == ["g", "permanent", None]
    with pytest.raises(ConfigError, match="memory_budget"):
        parse_config_text(_config(memory_budget="lots"))
    bad = json.loads(_config())
    bad["model_config_list"][0]["config"]["group_name"] = ""
    assert "group_name" in parse_config_text(json.dumps(bad)).errors[0]


def test_a_group_change_reloads_no_version():
    old = parse_config_text(_config()).models
    new = list(old)
    new[2] = parse_config_text(_config()).models[2].__class__(**{**new[2].__dict__, "group_name": "g"})
    plan = diff(old, tuple(new))
    (cfg, change), = plan.changed
    assert cfg.name == "c" and not change.reload_versions and "group_name" in change.reasons[0]
