"""Silero VAD v6 (the ``silero-vad`` wheel, MIT) served as a stateful model, and what the stateful tests and
``bench/stateful.py`` compare the server with.

The wheel's ``silero_vad_openvino_16k.onnx`` carries its LSTM state as an input/output pair (``state`` [2,1,128]
in, ``stateN`` out). OpenVINO's MakeStateful pass turns that pair into a ReadValue/Assign variable, so the
state lives in the infer request (in-process) or in the server's sequence (served): the model left has one
input, ``input`` f32 [1,576] (64 samples of context + 512 new ones at 16 kHz), and one output, ``output``
[1,1], the speech probability of the window. Speech is synthesised here (voiced syllables: a few harmonics of
a gliding pitch under a syllable envelope, with pauses and noise); nothing is downloaded.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import openvino as ov
from openvino import passes

SAMPLE_RATE = 16000
WINDOW = 512   # new samples per request at 16 kHz
CONTEXT = 64   # samples of the previous window the model sees again
INPUT, OUTPUT = "input", "output"


def silero_onnx() -> Path:
    """The ONNX file inside the installed wheel (found without importing the package, which needs torch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the silero-vad package is not installed (pip install silero-vad==6.2.3)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad_openvino_16k.onnx"
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


def stateful_vad_model() -> ov.Model:
    model = ov.Core().read_model(silero_onnx())
    manager = passes.Manager()
    manager.register_pass(passes.MakeStateful({"state": "stateN"}))
    manager.run_passes(model)
    return model


def build_stateful_vad(base: Path, version: int = 1) -> Path:
    """Writes the stateful IR to ``base/<version>/model.xml``; returns ``base``."""
    out = base / str(version)
    out.mkdir(parents=True, exist_ok=True)
    ov.save_model(stateful_vad_model(), out / "model.xml", compress_to_fp16=False)  # the weights as they are
    return base


def build_stateless_vad(base: Path, version: int = 1) -> Path:
    """The same network with its state as a plain input/output pair (what MakeStateful starts from)."""
    out = base / str(version)
    out.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.Core().read_model(silero_onnx()), out / "model.xml", compress_to_fp16=False)
    return base


def speech(seconds: float, seed: int) -> np.ndarray:
    """A speech-like f32 waveform in [-1, 1]: syllables of a few harmonics with a gliding pitch, pauses, noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros(n, np.float64)
    pos = int(rng.uniform(0.1, 0.4) * SAMPLE_RATE)
    while pos < n:
        length = int(rng.uniform(0.12, 0.3) * SAMPLE_RATE)
        seg = slice(pos, min(pos + length, n))
        ts = t[seg] - t[pos]
        f0 = rng.uniform(100, 220) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(2, 5) * ts))
        phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
        voice = sum(np.sin(k * phase) / k for k in range(1, 8))
        envelope = np.sin(np.pi * np.arange(seg.stop - seg.start) / length) ** 2
        out[seg] += 0.4 * envelope * voice
        pos += length + int(rng.uniform(0.02, 0.12 if rng.random() < 0.8 else 0.6) * SAMPLE_RATE)
    out += 0.01 * rng.standard_normal(n)
    return np.clip(out, -1, 1).astype(np.float32)


def windows(audio: np.ndarray) -> list[np.ndarray]:
    """The model's inputs for ``audio``, window by window: [1, 576] = the previous 64 samples + 512 new ones."""
    context = np.zeros(CONTEXT, np.float32)
    out = []
    for start in range(0, len(audio) - WINDOW + 1, WINDOW):
        x = np.concatenate([context, audio[start:start + WINDOW]])[None, :]
        out.append(np.ascontiguousarray(x, np.float32))
        context = x[0, -CONTEXT:]
    return out


def compile_vad(model_xml: Path | None = None, config: dict | None = None) -> ov.CompiledModel:
    """The stateful model compiled in-process with the settings the server uses by default (LATENCY hint)."""
    model = ov.Core().read_model(model_xml) if model_xml else stateful_vad_model()
    return ov.Core().compile_model(model, "CPU", config or {"PERFORMANCE_HINT": "LATENCY"})


def reference(compiled: ov.CompiledModel, wins: list[np.ndarray]) -> np.ndarray:
    """The in-process stateful loop: one infer request, its state carried from window to window by OpenVINO.
    Returns the probabilities, one per window."""
    request = compiled.create_infer_request()
    request.reset_state()
    probs = np.empty(len(wins), np.float32)
    for i, w in enumerate(wins):
        probs[i] = request.infer({INPUT: w})[OUTPUT].reshape(-1)[0]
    return probs


def reference_by_hand(wins: list[np.ndarray]) -> np.ndarray:
    """The stateless network with the state carried by hand (state in, stateN out)."""
    compiled = ov.Core().compile_model(ov.Core().read_model(silero_onnx()), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    state = np.zeros((2, 1, 128), np.float32)
    probs = np.empty(len(wins), np.float32)
    for i, w in enumerate(wins):
        res = request.infer({"input": w, "state": state})
        probs[i] = res["output"].reshape(-1)[0]
        state = np.array(res["stateN"], copy=True)
    return probs


def stateful_config(root: Path, extra_models: tuple[dict, ...] = ()) -> Path:
    """A config.json serving the stateful VAD as ``vad`` (4 infer requests, 100 sequences at most) and as
    ``vad_small`` (2 sequences at most), plus ``extra_models`` entries; written under ``root``."""
    import json

    base = build_stateful_vad(root / "vad")
    models = [{"config": {"name": "vad", "base_path": str(base), "stateful": True, "nireq": 4,
                          "max_sequence_number": 100}},
              {"config": {"name": "vad_small", "base_path": str(base), "stateful": True, "max_sequence_number": 2}}]
    models += [{"config": m} for m in extra_models]
    path = root / "config.json"
    path.write_text(json.dumps({"model_config_list": models}, indent=2))
    return path
