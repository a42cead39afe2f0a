"""Under a memory budget a small CPU model runs each inference on one thread, unless its plugin_config
says how many; a larger model, another device, or a set thread count keep their settings."""
from __future__ import annotations

import dataclasses

from ovfast.repository.residency_writes import SMALL_MODEL_BYTES, density_options
from ovfast.runtime.model import LoadOptions


def _model(tmp_path, size: int) -> str:
    (tmp_path / "model.bin").write_bytes(b"\0" * size)
    (tmp_path / "model.xml").write_text("<net/>")
    return str(tmp_path / "model.xml")


def test_a_small_cpu_model_gets_one_inference_thread(tmp_path):
    opts = LoadOptions(plugin_config=(("PERFORMANCE_HINT", "LATENCY"),))
    out = density_options(opts, _model(tmp_path, 100_000))
    assert dict(out.plugin_config) == {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": 1}


def test_what_is_not_small_or_says_otherwise_keeps_its_settings(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "l").mkdir()
    small = _model(tmp_path / "s", 1000)
    large = _model(tmp_path / "l", SMALL_MODEL_BYTES + 1)
    base = LoadOptions(plugin_config=(("PERFORMANCE_HINT", "LATENCY"),))
    assert density_options(base, large) is base
    assert density_options(dataclasses.replace(base, device="GPU"), small).device == "GPU"
    assert "INFERENCE_NUM_THREADS" not in dict(density_options(dataclasses.replace(base, device="GPU"), small).plugin_config)
    streams = dataclasses.replace(base, plugin_config=(("NUM_STREAMS", "2"),))
    assert density_options(streams, small) is streams
    threads = dataclasses.replace(base, plugin_config=(("INFERENCE_NUM_THREADS", "2"),))
    assert density_options(threads, small) is threads
    assert density_options(base, str(tmp_path / "missing" / "model.xml")) is base
