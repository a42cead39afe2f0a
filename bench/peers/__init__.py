"""Peers (shared/peers.md): the servers users would pick instead, serving the same IR in the same run.

Each peer gets its own virtualenv under ``bench/.venvs/<peer>`` (created once with ``python -m venv``
and the peer's pip requirements, then reused), a small model class from this directory that runs the
IR with openvino (``ovpool.py``), and free loopback ports. ``start()`` returns a context manager that
stops the peer's process group on exit.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.servers import ServerError, ServerProcess, free_ports

HERE = Path(__file__).resolve().parent
OPENVINO_PIN = "openvino==2026.4.1"

REQUIREMENTS = {
    "mlserver": ["mlserver==1.7.1", "uvloop<0.22", OPENVINO_PIN],
    "kserve": ["kserve==0.21.0", OPENVINO_PIN],
    "pytriton": ["nvidia-pytriton==0.7.0", OPENVINO_PIN],
}
# MLServer and KServe's Python server do not implement Triton's ModelConfig RPC: only the loadgen drives them
PERF_ANALYZER_OK = {"mlserver": False, "kserve": False, "pytriton": True}
READY_TIMEOUT_S = 240.0
INSTALL_TIMEOUT_S = 1800.0


class PeerUnavailable(Exception):
    pass


# peers that have no server-side batching of their own (skipped by the batching mode)
NO_BATCHING = {"kserve": "KServe's Python ModelServer has no server-side request batching (batching in KServe "
                         "is the separate Go agent sidecar of a Kubernetes deployment); nothing to compare"}


@dataclass(frozen=True)
class Batching:
    """Server-side batching asked of a peer: up to ``max_batch_size`` rows, waiting at most ``queue_delay_us``."""
    max_batch_size: int
    queue_delay_us: int


@dataclass
class Peer:
    name: str
    grpc_url: str
    http_url: str
    perf_analyzer_ok: bool
    process: ServerProcess
    metrics_url: str | None = None  # host:port of a Prometheus /metrics endpoint, where the peer has one


def ensure_venv(peer: str, venvs: Path, logdir: Path) -> Path:
    """``venvs/<peer>/bin/python`` with the peer's requirements installed (reused when they match)."""
    if peer not in REQUIREMENTS:
        raise PeerUnavailable(f"unknown peer {peer!r}; known: {', '.join(REQUIREMENTS)}")
    venv = venvs / peer
    py = venv / "bin" / "python"
    stamp = venv / "bench-requirements.json"
    reqs = REQUIREMENTS[peer]
    if py.exists() and stamp.exists() and json.loads(stamp.read_text()) == reqs:
        return py
    logdir.mkdir(parents=True, exist_ok=True)
    with open(logdir / "install.log", "wb") as log:
        steps = [[sys.executable, "-m", "venv", "--clear", str(venv)],
                 [str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"],
                 [str(py), "-m", "pip", "install", "-q", *reqs]]
        for cmd in steps:
            log.write((" ".join(cmd) + "\n").encode())
            log.flush()
            try:
                r = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                raise PeerUnavailable(f"installing {peer} timed out; see {logdir / 'install.log'}") from None
            if r.returncode != 0:
                raise PeerUnavailable(f"installing {peer} failed ({' '.join(cmd[3:])}); see {logdir / 'install.log'}")
    stamp.write_text(json.dumps(reqs))
    return py


def _env_with_path(extra: dict | None = None) -> dict:
    env = {"PYTHONPATH": str(HERE)}
    env.update(extra or {})
    return env


def _start_mlserver(py: Path, model, hint: str, logdir: Path, batching: Batching | None) -> Peer:
    http, grpc, metrics = free_ports(3)
    root = logdir / "repo"
    mdir = root / model.name
    mdir.mkdir(parents=True, exist_ok=True)
    (root / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": http, "grpc_port": grpc, "metrics_port": metrics,
        "parallel_workers": 0, "debug": False}))
    settings = {"name": model.name, "implementation": "mlserver_model.OVModel",
                "parameters": {"uri": str(model.xml), "extra": {"hint": hint}}}
    if batching is not None:
        if batching.queue_delay_us <= 0:
            raise PeerUnavailable("MLServer turns adaptive batching off when max_batch_time is 0 "
                                  "(--queue-delay-us 0); nothing to compare")
        # adaptive batching: requests are concatenated along the first dimension (the mlp's dynamic
        # batch) into one predict() call; max_batch_time is in seconds
        settings["max_batch_size"] = batching.max_batch_size
        settings["max_batch_time"] = batching.queue_delay_us / 1e6
    (mdir / "model-settings.json").write_text(json.dumps(settings))
    cmd = [str(py.parent / "mlserver"), "start", str(root)]
    proc = ServerProcess(cmd, logdir, f"http://127.0.0.1:{http}/v2/models/{model.name}/ready",
                         env=_env_with_path(), cwd=root)
    return Peer("mlserver", f"127.0.0.1:{grpc}", f"127.0.0.1:{http}", False, proc, f"127.0.0.1:{metrics}")


def _start_kserve(py: Path, model, hint: str, logdir: Path, batching: Batching | None) -> Peer:
    if batching is not None:
        raise PeerUnavailable(NO_BATCHING["kserve"])
    http, grpc = free_ports(2)
    cmd = [str(py), str(HERE / "kserve_server.py"), model.name, str(model.xml), hint, str(http), str(grpc)]
    proc = ServerProcess(cmd, logdir, f"http://127.0.0.1:{http}/v2/models/{model.name}/ready", env=_env_with_path())
    return Peer("kserve", f"127.0.0.1:{grpc}", f"127.0.0.1:{http}", False, proc)


def _start_pytriton(py: Path, model, hint: str, logdir: Path, batching: Batching | None) -> Peer:
    http, grpc, metrics = free_ports(3)
    # PyTriton's Python stub links the system libpython; point the loader at this interpreter's LIBDIR
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    ld = os.pathsep.join(p for p in (libdir, os.environ.get("LD_LIBRARY_PATH", "")) if p)
    cmd = [str(py), str(HERE / "pytriton_server.py"), model.name, str(model.xml), hint, str(http), str(grpc),
           str(metrics)]
    if batching is not None:  # otherwise the script's own defaults (8, 500 us)
        cmd += [str(batching.max_batch_size), str(batching.queue_delay_us)]
    proc = ServerProcess(cmd, logdir, f"http://127.0.0.1:{http}/v2/models/{model.name}/ready",
                         env=_env_with_path({"LD_LIBRARY_PATH": ld}))
    return Peer("pytriton", f"127.0.0.1:{grpc}", f"127.0.0.1:{http}", True, proc)


_STARTERS = {"mlserver": _start_mlserver, "kserve": _start_kserve, "pytriton": _start_pytriton}


@contextmanager
def start(peer: str, model, hint: str, venvs: Path, logdir: Path, batching: Batching | None = None):
    """Install (once) and start ``peer`` serving ``model``; yields a :class:`Peer`, stops it on exit.

    With ``batching``, the peer runs its own server-side batching with that size and window (MLServer's
    adaptive batching, Triton's dynamic batcher in PyTriton); a peer without one raises PeerUnavailable
    before anything is installed."""
    if batching is not None and peer in NO_BATCHING:
        raise PeerUnavailable(NO_BATCHING[peer])
    if model.datatype != "FP32":
        raise PeerUnavailable(f"the peer model classes handle FP32 inputs only (model input is {model.datatype})")
    venvs, logdir = Path(venvs).resolve(), Path(logdir).resolve()
    py = ensure_venv(peer, venvs, logdir)
    p = _STARTERS[peer](py, model, hint, logdir, batching)
    try:
        try:
            p.process.wait_ready(READY_TIMEOUT_S)
        except ServerError as exc:
            raise PeerUnavailable(f"{peer} did not become ready: {str(exc)[-1500:]}") from None
        yield p
    finally:
        p.process.stop()
