"""config.json ``dynamic_batching``: value checks, the settings that cannot batch, and reload detection (pure)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ovfast.config.diff import diff
from ovfast.config.load import ConfigError, model_config_from_dict, parse_config_text
from ovfast.config.schema import BatchingConfig


def entry(**extra) -> dict:
    return {"name": "m", "base_path": "/models/m", **extra}


def batching(value, **extra):
    return model_config_from_dict(entry(dynamic_batching=value, **extra)).dynamic_batching


def test_defaults_and_sorting():
    assert batching({"max_batch_size": 8}) == BatchingConfig(8, 0, ())
    got = batching({"max_batch_size": 8, "max_queue_delay_us": 500, "preferred_batch_sizes": [8, 2, 4]})
    assert got == BatchingConfig(8, 500, (2, 4, 8))
    assert model_config_from_dict(entry()).dynamic_batching is None
    assert batching(None) is None


@pytest.mark.parametrize("extra", [{"batch_size": -1}, {"batch_size": "1:8"}, {"batch_size": "2:16"},
                                   {"shape": "(-1,10)"}, {"shape": {"a": "(1:8,3)", "b": [-1, 2]}},
                                   {"shape": "(1:8)", "batch_size": 4}])
def test_settings_that_can_batch(extra):
    assert batching({"max_batch_size": 8}, **extra) == BatchingConfig(8)


@pytest.mark.parametrize("value,message", [
    ([8], "must be an object"),
    ("8", "must be an object"),
    ({}, r"max_batch_size is required and must be an integer in 1\.\.1048576, got None"),
    ({"max_batch_size": 0}, "max_batch_size is required and must be an integer in 1..1048576, got 0"),
    ({"max_batch_size": -3}, "got -3"),
    ({"max_batch_size": True}, "got True"),
    ({"max_batch_size": 8.0}, "got 8.0"),
    ({"max_batch_size": "8"}, "got '8'"),
    ({"max_batch_size": 1 << 21}, "max_batch_size"),
    ({"max_batch_size": 8, "max_queue_delay_us": -1}, r"max_queue_delay_us must be an integer in 0\.\.3600000000"),
    ({"max_batch_size": 8, "max_queue_delay_us": False}, "max_queue_delay_us .* got False"),
    ({"max_batch_size": 8, "max_queue_delay_us": 1.5}, "max_queue_delay_us .* got 1.5"),
    ({"max_batch_size": 8, "max_queue_delay_us": 3_600_000_001}, "max_queue_delay_us"),
    ({"max_batch_size": 8, "preferred_batch_sizes": 4}, "preferred_batch_sizes must be an array of integers"),
    ({"max_batch_size": 8, "preferred_batch_sizes": [4, True]}, "preferred_batch_sizes must be an array of integers"),
    ({"max_batch_size": 8, "preferred_batch_sizes": ["4"]}, "preferred_batch_sizes must be an array of integers"),
    ({"max_batch_size": 8, "preferred_batch_sizes": [4, 16, 0]}, r"\[16, 0\] not in 1\.\.max_batch_size \(8\)"),
    ({"max_batch_size": 8, "preferred_batch_sizes": [4, 2, 4]}, r"\[4, 2, 4\] has repeated sizes"),
    ({"max_batch_size": 8, "max_delay": 5},
     r"unknown key\(s\) \['max_delay'\]; allowed: \['max_batch_size', 'max_queue_delay_us', 'preferred_batch_sizes'\]"),
])
def test_invalid_values(value, message):
    with pytest.raises(ConfigError, match=message) as e:
        batching(value)
    assert str(e.value).startswith("dynamic_batching")


@pytest.mark.parametrize("extra,message", [
    ({"batch_size": 4}, r'batch_size "4" fixes the batch dimension at 4; batching needs one that can vary '
                        r'\(-1, or a range such as "1:8"\)'),
    ({"batch_size": "1"}, 'batch_size "1" fixes the batch dimension at 1'),
    ({"batch_size": "1:4"}, 'batch_size "1:4" allows at most 4 rows, fewer than max_batch_size 8'),
    ({"batch_size": "auto"}, 'cannot be combined with batch_size "auto"'),
    ({"shape": "auto"}, 'cannot be combined with shape "auto"'),
    ({"shape": {"a": "(-1,3)", "b": "auto"}}, 'cannot be combined with shape "auto"'),
    ({"shape": "(1,10)"}, "shape \\(1,10\\) fixes the batch dimension at 1"),
    ({"shape": [2, 10]}, "shape \\(2,10\\) fixes the batch dimension at 2"),
    ({"shape": {"a": "(-1,3)", "b": "(1:4,3)"}}, "shape \\(1:4,3\\) of input 'b' allows at most 4 rows"),
    ({"shape": "()"}, "shape \\(\\) has no batch dimension"),
    # shape wins over batch_size (OVMS ignores batch_size then), so the shape is what is checked
    ({"shape": "(1,10)", "batch_size": -1}, "shape \\(1,10\\) fixes the batch dimension"),
])
def test_settings_that_cannot_batch(extra, message):
    with pytest.raises(ConfigError, match=message) as e:
        batching({"max_batch_size": 8}, **extra)
    assert str(e.value).startswith("dynamic_batching")


def test_bad_entry_skips_only_that_model(tmp_path: Path):
    text = json.dumps({"model_config_list": [
        {"config": entry(name="ok", dynamic_batching={"max_batch_size": 4, "max_queue_delay_us": 100})},
        {"config": entry(name="fixed", batch_size="4", dynamic_batching={"max_batch_size": 4})},
        {"config": entry(name="typo", dynamic_batching={"max_batch": 4})},
    ]})
    repo = parse_config_text(text, tmp_path)
    assert [m.name for m in repo.models] == ["ok"]
    assert repo.models[0].dynamic_batching == BatchingConfig(4, 100, ())
    assert repo.invalid_names == ("fixed", "typo")
    assert repo.errors[0].startswith("model_config_list[1] (model 'fixed'): dynamic_batching: batch_size \"4\"")
    assert "unknown key(s) ['max_batch']" in repo.errors[1]


def test_change_of_batching_reloads_the_model():
    plain = model_config_from_dict(entry())
    on = model_config_from_dict(entry(dynamic_batching={"max_batch_size": 8}))
    slower = model_config_from_dict(entry(dynamic_batching={"max_batch_size": 8, "max_queue_delay_us": 900,
                                                            "preferred_batch_sizes": [4]}))
    for old, new in ((plain, on), (on, slower), (slower, plain)):
        plan = diff([old], [new])
        ((_, change),) = plan.changed
        assert change.reload_versions
        assert change.reasons[0].startswith("dynamic_batching changed from ")
    (line,) = diff([on], [slower]).describe()
    assert ("dynamic_batching changed from {max_batch_size: 8, max_queue_delay_us: 0, preferred_batch_sizes: []} "
            "to {max_batch_size: 8, max_queue_delay_us: 900, preferred_batch_sizes: [4]}") in line
    assert diff([on], [model_config_from_dict(entry(dynamic_batching={"max_batch_size": 8}))]).empty


def test_load_options_carry_batching():
    from ovfast.runtime.model import load_options

    opts = load_options(model_config_from_dict(entry(dynamic_batching={
        "max_batch_size": 8, "max_queue_delay_us": 250, "preferred_batch_sizes": [8, 4]})))
    assert (opts.max_batch_size, opts.max_queue_delay_us, opts.preferred_batch_sizes) == (8, 250, (4, 8))
    assert opts.describe_batching() == ("dynamic batching: max_batch_size 8, max_queue_delay_us 250, "
                                        "preferred_batch_sizes 4,8")
    plain = load_options(model_config_from_dict(entry()))
    assert plain.max_batch_size == 0 and plain.describe_batching() == ""
    assert plain != opts
