"""Shared fixtures: in-session models and an ``ovfast`` server launcher.

Servers bind 127.0.0.1 on free ports picked by binding port 0, write their output to
files under a per-server tmp dir, and are stopped (SIGTERM, then SIGKILL) at teardown.
Everything is per-process, so the suite is xdist-safe.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import models as M  # noqa: E402

# A bound on waiting, never a speed claim: on this 2-core machine shared by several builds a tiny model's
# load was seen to take over 50 s, so a start (several loads) is given minutes before it counts as failed.
READY_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 30.0


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (all sockets held until all are picked)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def ovfast_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ovfast", *args]


class ServerStartError(RuntimeError):
    pass


class OvfastServer:
    """A running ``python -m ovfast`` process.

    Attributes
    ----------
    grpc_url, http_url : str
        ``"127.0.0.1:P"`` for the gRPC and REST ports.
    proc : subprocess.Popen
    """

    def __init__(self, args: list[str], workdir: Path, grpc_port: int, rest_port: int):
        self.grpc_port = grpc_port
        self.rest_port = rest_port
        self.grpc_url = f"127.0.0.1:{grpc_port}"
        self.http_url = f"127.0.0.1:{rest_port}"
        self.workdir = workdir
        self.args = args
        self._out_path = workdir / "stdout.log"
        self._err_path = workdir / "stderr.log"
        self._out = open(self._out_path, "wb")
        self._err = open(self._err_path, "wb")
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen(
            ovfast_cmd(*args), stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL, cwd=workdir, env=env
        )
        self.returncode: int | None = None

    # -- output -------------------------------------------------------------------------
    def stderr(self) -> str:
        return self._err_path.read_bytes().decode(errors="replace")

    def stdout(self) -> str:
        return self._out_path.read_bytes().decode(errors="replace")

    def log(self) -> str:
        return f"--- stdout ---\n{self.stdout()}\n--- stderr ---\n{self.stderr()}"

    def rss_mb(self) -> float:
        """The server process's resident memory (VmRSS), in MB."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    # -- lifecycle ----------------------------------------------------------------------
    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerStartError(
                    f"ovfast exited with code {self.proc.returncode} before becoming ready\n"
                    f"args: {self.args}\n{self.log()}"
                )
            if self.is_ready():
                return
            time.sleep(0.1)
        raise ServerStartError(f"ovfast not ready after {timeout} s\nargs: {self.args}\n{self.log()}")

    def terminate(self) -> None:
        """Send SIGTERM without waiting."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = STOP_TIMEOUT_S) -> int:
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._out.close()
            self._err.close()
        return self.returncode

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not exit in ``timeout``. Returns the exit code
        (None if it had to be killed)."""
        if self.returncode is not None:
            return self.returncode
        self.terminate()
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


def _server_args(grpc_port: int, rest_port: int, extra: list[str], log_level: str | None = "DEBUG") -> list[str]:
    args = [
        *extra,
        "--port",
        str(grpc_port),
        "--rest_port",
        str(rest_port),
        "--grpc_bind_address",
        "127.0.0.1",
        "--rest_bind_address",
        "127.0.0.1",
    ]
    if log_level:
        args += ["--log_level", log_level]
    return args


def start_server(extra_args: list[str], workdir: Path, *, wait: bool = True, attempts: int = 3) -> OvfastServer:
    """Start ovfast with ``extra_args`` plus port/bind/log flags; retry if a port was taken."""
    workdir.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for i in range(attempts):
        grpc_port, rest_port = free_ports(2)
        wd = workdir / f"try{i}"
        wd.mkdir(exist_ok=True)
        srv = OvfastServer(_server_args(grpc_port, rest_port, extra_args), wd, grpc_port, rest_port)
        if not wait:
            return srv
        try:
            srv.wait_ready()
            return srv
        except ServerStartError as e:
            srv.stop(5)
            last = e
            text = srv.stderr().lower() + srv.stdout().lower()
            if "address already in use" in text or "failed to bind" in text or "errno 98" in text or "cannot bind" in text:
                continue
            raise
    assert last is not None
    raise last


class ServerPool:
    def __init__(self, tmp_factory: pytest.TempPathFactory):
        self._tmp = tmp_factory
        self.servers: list[OvfastServer] = []

    def __call__(self, *extra_args: str, wait: bool = True) -> OvfastServer:
        srv = start_server(list(extra_args), self._tmp.mktemp("ovfast"), wait=wait)
        self.servers.append(srv)
        return srv

    def close(self) -> None:
        for s in self.servers:
            s.stop()


@pytest.fixture
def ovfast_server(tmp_path_factory):
    """Factory: ``ovfast_server("--config_path", p)`` -> ready :class:`OvfastServer`; stopped at teardown."""
    pool = ServerPool(tmp_path_factory)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def ovfast_server_session(tmp_path_factory):
    """Session-scoped variant of :func:`ovfast_server`."""
    pool = ServerPool(tmp_path_factory)
    yield pool
    pool.close()


# -- models ------------------------------------------------------------------------------


@dataclass
class ModelRepo:
    root: Path
    paths: dict[str, Path] = field(default_factory=dict)
    # names -> reason for models that could not be built on this OpenVINO/CPU
    unsupported: dict[str, str] = field(default_factory=dict)

    def config(self, names=None, extra: dict | None = None) -> dict:
        names = list(self.paths) if names is None else names
        entries = []
        for n in names:
            cfg = {"name": n, "base_path": str(self.paths[n])}
            if extra and n in extra:
                cfg.update(extra[n])
            entries.append({"config": cfg})
        return {"model_config_list": entries}

    def write_config(self, path: Path, names=None, extra: dict | None = None) -> Path:
        path.write_text(json.dumps(self.config(names, extra), indent=2))
        return path


IDENTITY_KEYS = list(M.DTYPES)


@pytest.fixture(scope="session")
def model_repo(tmp_path_factory) -> ModelRepo:
    root = tmp_path_factory.mktemp("models")
    repo = ModelRepo(root)
    repo.paths["add"] = M.build_add(root / "add")
    repo.paths["two_io"] = M.build_two_io(root / "two_io")
    repo.paths["dynamic"] = M.build_dynamic(root / "dynamic")
    # versions 1 (b+1) and 3 (b+3): the highest (3) is served
    M.build_add(root / "versioned", version=1, addend=1.0)
    repo.paths["versioned"] = M.build_add(root / "versioned", version=3, addend=3.0)
    for k in IDENTITY_KEYS:
        try:
            p = M.build_identity(root / f"identity_{k}", k)
            M.compile_check(p)
            repo.paths[f"identity_{k}"] = p
        except Exception as e:  # pragma: no cover - depends on OpenVINO build
            repo.unsupported[f"identity_{k}"] = f"OpenVINO CPU cannot compile identity_{k}: {e}"
    try:
        p = M.build_string(root / "string")
        M.compile_check(p)
        repo.paths["string"] = p
    except Exception as e:  # pragma: no cover
        repo.unsupported["string"] = f"OpenVINO CPU cannot compile a string model: {e}"
    return repo


@pytest.fixture(scope="session")
def onnx_model(tmp_path_factory) -> Path:
    p = M.build_onnx_add(tmp_path_factory.mktemp("onnx") / "add_onnx")
    M.compile_check(p)
    return p


@pytest.fixture(scope="session")
def slow_model(tmp_path_factory) -> Path:
    return M.build_slow(tmp_path_factory.mktemp("slow") / "slow")


@pytest.fixture(scope="session")
def main_server(model_repo, ovfast_server_session, tmp_path_factory) -> OvfastServer:
    """One server with every model of :func:`model_repo` that could be built (all but ``slow``)."""
    cfg = model_repo.write_config(tmp_path_factory.mktemp("cfg") / "config.json")
    return ovfast_server_session("--config_path", str(cfg), "--file_system_poll_wait_seconds", "0")


# -- clients -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def grpc_client(main_server):
    import tritonclient.grpc as grpcclient

    c = grpcclient.InferenceServerClient(main_server.grpc_url)
    yield c
    c.close()


@pytest.fixture(scope="session")
def http_client(main_server):
    import tritonclient.http as httpclient

    c = httpclient.InferenceServerClient(main_server.http_url)
    yield c
    c.close()


@pytest.fixture(scope="session")
def grpc_stub(main_server):
    """Raw ``GRPCInferenceServiceStub`` (tritonclient's generated code, wire-compatible with KServe)."""
    import grpc
    from tritonclient.grpc import service_pb2_grpc

    ch = grpc.insecure_channel(
        main_server.grpc_url,
        options=[("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)],
    )
    yield service_pb2_grpc.GRPCInferenceServiceStub(ch)
    ch.close()


@pytest.fixture(scope="session")
def grpc_channel(main_server):
    import grpc

    ch = grpc.insecure_channel(main_server.grpc_url)
    yield ch
    ch.close()
