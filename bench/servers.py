"""Start and stop the servers under test (ovfast, and the peers' processes) on loopback ports."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import openvino

_LOADED_RE = re.compile(r"Loaded model (\S+); version: (\d+); No of InferRequests: (\d+); streams: (\d+)")


class ServerError(RuntimeError):
    pass


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (all held until all are picked)."""
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


def openvino_libs() -> str:
    return str(Path(openvino.__file__).resolve().parent / "libs")


class ServerProcess:
    """A child server process whose output goes to ``<logdir>/{stdout,stderr}.log``, in a process group of
    its own (stop() signals the group). ``own_session``: also in a session of its own, which on Linux with
    ``kernel.sched_autogroup_enabled`` means a scheduling group of its own: on a busy machine the kernel then
    shares the CPU between the server and the bench as between two users. ``own_session=False`` keeps it in
    the bench's session, so a server and its client compete for one share (bench/ocr.py)."""

    def __init__(self, cmd: list[str], logdir: Path, ready_url: str, env: dict | None = None,
                 cwd: Path | None = None, own_session: bool = True) -> None:
        self.cmd = cmd
        self.ready_url = ready_url
        logdir.mkdir(parents=True, exist_ok=True)
        self.out_path, self.err_path = logdir / "stdout.log", logdir / "stderr.log"
        self._out, self._err = open(self.out_path, "wb"), open(self.err_path, "wb")
        full_env = dict(os.environ)
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.update(env or {})
        group = {"start_new_session": True} if own_session else {"process_group": 0}
        self.proc = subprocess.Popen(cmd, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL,
                                     cwd=cwd or logdir, env=full_env, **group)

    def log(self) -> str:
        return (self.out_path.read_bytes().decode(errors="replace") + "\n"
                + self.err_path.read_bytes().decode(errors="replace"))

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"{self.cmd[:4]} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise ServerError(f"not ready after {timeout} s: {self.cmd[:4]}\n{self.log()[-3000:]}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the process group we started; SIGKILL it if it does not exit in ``timeout``."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._out.close()
        self._err.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


@dataclass
class OvfastServer:
    process: ServerProcess
    grpc_url: str
    http_url: str

    def settings(self, model_name: str) -> dict:
        """nireq/streams from the "Loaded model ..." log line (empty in echo mode, which compiles nothing)."""
        for m in _LOADED_RE.finditer(self.process.log()):
            if m.group(1) == model_name:
                return {"nireq": int(m.group(3)), "streams": int(m.group(4)), "log_line": m.group(0)}
        return {}

    def stop(self) -> None:
        self.process.stop()


def start_ovfast(model_name: str, model_path: Path | None, logdir: Path, plugin_config: dict, *,
                 nireq: int | None = None, echo: bool = False, python: str | None = None,
                 timeout: float = 180.0, extra_args: Sequence[str] = (),
                 config_path: Path | None = None, own_session: bool = True) -> OvfastServer:
    """``python -m ovfast`` serving one model on free loopback ports (gRPC + REST); ``extra_args`` are
    appended to its command line (e.g. ``--metrics_enable``, the dynamic batching flags). With
    ``config_path`` it serves that config.json instead (model_path and plugin_config unused) and is ready
    when ``model_name`` (a model or a pipeline of it) is. ``own_session``: see ServerProcess."""
    import json

    last: Exception | None = None
    for attempt in range(3):
        grpc_port, rest_port = free_ports(2)
        source = (["--config_path", str(config_path)] if config_path is not None else
                  ["--model_name", model_name, "--model_path", str(model_path), "--plugin_config", json.dumps(plugin_config)])
        cmd = [python or sys.executable, "-m", "ovfast", *source,
               "--port", str(grpc_port), "--rest_port", str(rest_port),
               "--grpc_bind_address", "127.0.0.1", "--rest_bind_address", "127.0.0.1", "--log_level", "INFO"]
        if nireq:
            cmd += ["--nireq", str(nireq)]
        if echo:
            cmd.append("--echo")
        cmd += list(extra_args)
        # the extension's RUNPATH is relative to its own site-packages; a venv that sees openvino only
        # through --system-site-packages needs the wheel's libs on the loader path
        ld = os.pathsep.join(p for p in (openvino_libs(), os.environ.get("LD_LIBRARY_PATH", "")) if p)
        proc = ServerProcess(cmd, logdir / f"try{attempt}", f"http://127.0.0.1:{rest_port}/v2/models/{model_name}/ready",
                             env={"LD_LIBRARY_PATH": ld}, own_session=own_session)
        try:
            proc.wait_ready(timeout)
        except ServerError as exc:
            proc.stop()
            last = exc
            if "address already in use" in str(exc).lower():
                continue
            raise
        return OvfastServer(proc, f"127.0.0.1:{grpc_port}", f"127.0.0.1:{rest_port}")
    raise last  # type: ignore[misc]
