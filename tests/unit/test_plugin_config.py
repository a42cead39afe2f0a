"""plugin_config: OVMS's deprecated OpenVINO keys are translated once, where the config is validated."""
from __future__ import annotations

import json
import logging

import pytest

from ovfast.cli import build_parser, config_from_args
from ovfast.config.load import ConfigError, model_config_from_dict, parse_config_text
from ovfast.config.plugin import parse_plugin_config


@pytest.mark.parametrize("given, expected", [
    # OVMS's own table (json_parser.cpp)
    ({"CPU_THROUGHPUT_STREAMS": "CPU_THROUGHPUT_AUTO"}, {"PERFORMANCE_HINT": "THROUGHPUT"}),
    ({"GPU_THROUGHPUT_STREAMS": "GPU_THROUGHPUT_AUTO"}, {"PERFORMANCE_HINT": "THROUGHPUT"}),
    ({"CPU_THROUGHPUT_STREAMS": "2"}, {"NUM_STREAMS": "2"}),
    ({"CPU_THROUGHPUT_STREAMS": 3}, {"NUM_STREAMS": "3"}),
    ({"GPU_THROUGHPUT_STREAMS": 2.0}, {"NUM_STREAMS": "2"}),
    ({"CPU_THREADS_NUM": "4"}, {"INFERENCE_NUM_THREADS": "4"}),
    # ovfast: OpenVINO's 2.0 equivalents that OVMS passes through unchanged
    ({"CPU_THREADS_NUM": 4}, {"INFERENCE_NUM_THREADS": "4"}),
    ({"CPU_THROUGHPUT_STREAMS": "CPU_THROUGHPUT_NUMA"}, {"NUM_STREAMS": "NUMA"}),
    ({"CPU_BIND_THREAD": "YES"}, {"ENABLE_CPU_PINNING": "YES"}),
    ({"CPU_BIND_THREAD": False}, {"ENABLE_CPU_PINNING": "NO"}),
    # no 2.0 equivalent: left for OpenVINO to judge
    ({"CPU_BIND_THREAD": "HYBRID_AWARE"}, {"CPU_BIND_THREAD": "HYBRID_AWARE"}),
    # current keys are untouched
    ({"NUM_STREAMS": "1", "PERFORMANCE_HINT": "LATENCY"}, {"NUM_STREAMS": "1", "PERFORMANCE_HINT": "LATENCY"}),
])
def test_translation_table(given, expected):
    items, notes = parse_plugin_config(given)
    assert dict(items) == expected
    translated = [k for k in given if k not in expected]
    assert len(notes) == len(translated)
    for key in translated:
        assert any(key in n for n in notes)


def test_explicit_new_key_wins_over_deprecated_one():
    items, notes = parse_plugin_config({"CPU_THROUGHPUT_STREAMS": "4", "NUM_STREAMS": "1"})
    assert dict(items) == {"NUM_STREAMS": "1"}
    assert len(notes) == 1 and "ignored" in notes[0] and "CPU_THROUGHPUT_STREAMS" in notes[0]


@pytest.mark.parametrize("bad", ["x", [1], {"A": [1]}, {"A": {"B": 1}}, {"CPU_THREADS_NUM": True}])
def test_bad_plugin_config_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="plugin_config"):
        model_config_from_dict({"name": "m", "base_path": "/m", "plugin_config": bad})


def test_config_json_translates_and_logs_once(caplog):
    doc = {"model_config_list": [{"config": {"name": "m", "base_path": "/m",
                                             "plugin_config": {"CPU_THROUGHPUT_STREAMS": "CPU_THROUGHPUT_AUTO",
                                                               "CPU_THREADS_NUM": "2"}}}]}
    with caplog.at_level(logging.WARNING, logger="ovfast.config"):
        repo = parse_config_text(json.dumps(doc))
    assert repo.models[0].plugin_config_dict == {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_NUM_THREADS": "2"}
    lines = [r.getMessage() for r in caplog.records if "plugin_config" in r.getMessage()]
    assert len(lines) == 2, lines
    assert all(line.startswith("Model m:") for line in lines)


def test_cli_plugin_config_is_translated_too(tmp_path):
    args = build_parser().parse_args([
        "--model_name", "m", "--model_path", str(tmp_path), "--port", "9001",
        "--plugin_config", '{"CPU_THROUGHPUT_STREAMS": 1, "CPU_THREADS_NUM": "1"}'])
    cfg = config_from_args(args)
    assert cfg.models[0].plugin_config_dict == {"NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": "1"}
