"""Stateful models through their life in the server: the idle-sequence cleaner (one to two intervals of
``--sequence_cleaner_poll_wait_minutes``; ``idle_sequence_cleanup: false`` keeps a sequence), a config reload
that changes the model drops its sequences (OVMS), a change of ``stateful`` at reload is refused and the
model keeps serving its sequences, memory per sequence in the metrics, and the CLI refusals."""
from __future__ import annotations

import json
import subprocess
import time

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

import stateful_model as S
from conftest import free_ports, ovfast_cmd
from kserve_util import rest
from ovfast import errors as E

WINDOW = S.windows(S.speech(0.1, seed=5))[0]
STATE_BYTES = 2 * 1 * 128 * 4  # one f32 [2,1,128] variable per sequence


def infer(client, model: str, seq_id: int, start: bool = False, end: bool = False) -> None:
    inp = grpcclient.InferInput(S.INPUT, list(WINDOW.shape), "FP32")
    inp.set_data_from_numpy(WINDOW)
    client.infer(model, [inp], sequence_id=seq_id, sequence_start=start, sequence_end=end)


def alive(client, model: str, seq_id: int) -> bool:
    try:
        infer(client, model, seq_id)
        return True
    except InferenceServerException as exc:
        assert E.SEQUENCE_MISSING in str(exc), exc
        return False


def write(path, models: list[dict]) -> None:
    path.write_text(json.dumps({"model_config_list": [{"config": m} for m in models]}))


@pytest.fixture(scope="module")
def vad_base(tmp_path_factory):
    return S.build_stateful_vad(tmp_path_factory.mktemp("vad") / "vad")


def sequences(srv, model: str) -> int:
    """The live sequences of ``model`` (version 1) from /metrics: looking does not touch them."""
    prefix = f'ovfast_sequences{{name="{model}",version="1"}} '
    for line in rest(srv.http_url, "GET", "/metrics").body.decode().splitlines():
        if line.startswith(prefix):
            return int(float(line[len(prefix):]))
    raise AssertionError(f"no {prefix!r} series")


def test_idle_sequences_are_removed_after_one_to_two_intervals(ovfast_server, vad_base, tmp_path):
    config = tmp_path / "config.json"
    write(config, [{"name": "vad", "base_path": str(vad_base), "stateful": True},
                   {"name": "kept", "base_path": str(vad_base), "stateful": True, "idle_sequence_cleanup": False}])
    interval_s = 0.02 * 60
    srv = ovfast_server("--config_path", str(config), "--sequence_cleaner_poll_wait_minutes", "0.02",
                        "--metrics_enable")
    with grpcclient.InferenceServerClient(srv.grpc_url) as g:
        infer(g, "vad", 1, start=True)
        infer(g, "vad", 2, start=True)
        infer(g, "kept", 1, start=True)
        # sequence 2 keeps talking (never a gap of one interval) while sequence 1 is left alone
        deadline = time.monotonic() + 60
        while sequences(srv, "vad") == 2 and time.monotonic() < deadline:
            infer(g, "vad", 2)
        assert sequences(srv, "vad") == 1, "the idle sequence was never removed"
        assert alive(g, "vad", 2) and not alive(g, "vad", 1)
        time.sleep(3 * interval_s)  # three more passes
        assert sequences(srv, "vad") == 0  # idle since its last request: gone too
        assert alive(g, "kept", 1)  # idle_sequence_cleanup: false
    assert "Sequence cleaner: removed 1 idle sequence(s) of model vad version 1" in srv.stderr() + srv.stdout()


def test_reload_drops_the_sequences_of_a_changed_model_and_refuses_a_type_change(ovfast_server, vad_base, tmp_path):
    config = tmp_path / "config.json"
    a = {"name": "a", "base_path": str(vad_base), "stateful": True}
    b = {"name": "b", "base_path": str(vad_base), "stateful": True}
    write(config, [a, b])
    srv = ovfast_server("--config_path", str(config), "--metrics_enable")
    with grpcclient.InferenceServerClient(srv.grpc_url) as g:
        for model in ("a", "b"):
            infer(g, model, 10, start=True)
            infer(g, model, 11, start=True)
        metrics = rest(srv.http_url, "GET", "/metrics").body.decode()
        assert 'ovfast_sequences{name="a",version="1"} 2' in metrics
        assert f'ovfast_sequence_state_bytes{{name="a",version="1"}} {2 * STATE_BYTES}' in metrics
        infer(g, "a", 11, end=True)
        metrics = rest(srv.http_url, "GET", "/metrics").body.decode()
        assert f'ovfast_sequence_state_bytes{{name="a",version="1"}} {STATE_BYTES}' in metrics

        write(config, [{**a, "max_sequence_number": 10}, b])  # a changes: reloaded, its sequences dropped
        assert rest(srv.http_url, "POST", "/v1/config/reload").status == 201
        assert not alive(g, "a", 10)
        assert alive(g, "b", 10)

        write(config, [a, {**b, "stateful": False}])  # a type change is not applied
        r = rest(srv.http_url, "POST", "/v1/config/reload")
        assert r.status != 500, r.body
        assert alive(g, "b", 10)
    log = srv.stderr() + srv.stdout()
    assert f"model b: {E.REQUESTED_MODEL_TYPE_CHANGE}" in log


@pytest.mark.parametrize("flags, message", [
    (["--batch_size", "auto"], E.REQUESTED_DYNAMIC_PARAMETERS_ON_STATEFUL_MODEL),
    (["--shape", "auto"], E.REQUESTED_DYNAMIC_PARAMETERS_ON_STATEFUL_MODEL),
    (["--max_sequence_number", "4294967296"], E.INVALID_MAX_SEQUENCE_NUMBER),
])
def test_cli_refusals(vad_base, flags, message):
    grpc_port, rest_port = free_ports(2)
    res = subprocess.run(ovfast_cmd("--model_name", "vad", "--model_path", str(vad_base), "--stateful", *flags,
                                    "--port", str(grpc_port), "--rest_port", str(rest_port)),
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert res.returncode != 0 and message in res.stderr, res.stderr


def test_cli_stateful_flags_without_stateful_are_refused(vad_base):
    grpc_port, rest_port = free_ports(2)
    res = subprocess.run(ovfast_cmd("--model_name", "vad", "--model_path", str(vad_base),
                                    "--low_latency_transformation", "--port", str(grpc_port)),
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert res.returncode != 0 and E.INVALID_NON_STATEFUL_MODEL_PARAMETER in res.stderr, res.stderr


def test_low_latency_transformation_serves_the_same_model(ovfast_server, vad_base):
    srv = ovfast_server("--model_name", "vad", "--model_path", str(vad_base), "--stateful",
                        "--low_latency_transformation", "--idle_sequence_cleanup", "false",
                        "--max_sequence_number", "3")
    wins = S.windows(S.speech(0.3, seed=9))
    expected = S.reference(S.compile_vad(), wins)
    with grpcclient.InferenceServerClient(srv.grpc_url) as g:
        probs = []
        for i, w in enumerate(wins):
            inp = grpcclient.InferInput(S.INPUT, list(w.shape), "FP32")
            inp.set_data_from_numpy(w)
            res = g.infer("vad", [inp], sequence_id=9, sequence_start=i == 0)
            probs.append(res.as_numpy(S.OUTPUT).reshape(-1)[0])
    # the model has no TensorIterator/Loop for LowLatency2 to change: it is served as it is
    assert np.max(np.abs(np.array(probs, np.float32) - expected)) == 0.0
