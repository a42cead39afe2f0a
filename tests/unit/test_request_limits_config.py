"""config/request_limits.py: config.json's "request_limits" section, validated, and merged with the flags."""
from __future__ import annotations

import json

import pytest

from ovfast.config.load import ConfigError, parse_config_text
from ovfast.config.request_limits import LIMITS, MAX_LIMIT, effective_limits, parse_request_limits

DEFAULTS = {keyword: default for keyword, default, _ in LIMITS.values()}


def config(**top) -> str:
    return json.dumps({"model_config_list": [], **top})


def test_absent_section_means_the_defaults():
    repo = parse_config_text(config())
    assert repo.request_limits is None
    assert effective_limits(repo.request_limits, {}) == DEFAULTS
    assert DEFAULTS == {"max_inputs": 4096, "max_outputs": 4096, "max_dims": 64, "max_parameters": 1024}


def test_the_file_sets_some_and_flags_win():
    repo = parse_config_text(config(request_limits={"max_request_inputs": 8, "max_tensor_dims": 4}))
    assert dict(repo.request_limits) == {"max_request_inputs": 8, "max_tensor_dims": 4}
    assert effective_limits(repo.request_limits, {}) == {**DEFAULTS, "max_inputs": 8, "max_dims": 4}
    assert effective_limits(repo.request_limits, {"max_request_inputs": 2, "max_request_parameters": 3}) == \
        {**DEFAULTS, "max_inputs": 2, "max_dims": 4, "max_parameters": 3}


@pytest.mark.parametrize(("value", "message"), [
    ([], "'request_limits' must be an object"),
    ({"max_inputs": 1}, "unknown key(s) ['max_inputs']"),
    ({"max_request_inputs": 0}, f"request_limits.max_request_inputs must be from 1 to {MAX_LIMIT}"),
    ({"max_request_outputs": MAX_LIMIT + 1}, "request_limits.max_request_outputs must be from 1"),
    ({"max_tensor_dims": 2.0}, "request_limits.max_tensor_dims must be from 1"),
    ({"max_request_parameters": False}, "request_limits.max_request_parameters must be from 1"),
    ({"max_request_inputs": "8"}, "request_limits.max_request_inputs must be from 1"),
])
def test_bad_sections_are_config_errors(value, message):
    with pytest.raises(ConfigError) as err:
        parse_config_text(config(request_limits=value))
    assert message in str(err.value)


def test_parse_returns_only_what_is_set():
    assert parse_request_limits({}) == {}
    assert parse_request_limits({"max_request_outputs": MAX_LIMIT}) == {"max_request_outputs": MAX_LIMIT}
