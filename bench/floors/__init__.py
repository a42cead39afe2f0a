"""The gRPC transport floors: KServe endpoints that do nothing but answer (see bench/README.md).

- ``floor grpc.aio``: ``python -m bench.floors.aio_floor`` (grpc.aio, uvloop when installed);
- ``floor grpc++``: ``grpcpp_floor.cc`` on grpc++'s callback API, compiled on first use into the
  bench cache directory (``bench/.cache/``, keyed by the source and the compile command).

Both replay the canned answers ovfast gave for the model (``canned.py``), so perf_analyzer drives
them exactly like ovfast, and bind 127.0.0.1 on an ephemeral port they print on stdout.
"""
from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.servers import ServerError, ServerProcess

FLOORS_DIR = Path(__file__).resolve().parent
SOURCE = FLOORS_DIR / "grpcpp_floor.cc"
_LISTENING_RE = re.compile(rb"listening on (\d+)")
# perf_analyzer's logs per floor, beside <out>/logs/perf_ovfast and perf_echo
PERF_DIRS = {"floor grpc.aio": "perf_floor_aio", "floor grpc++": "perf_floor_grpcpp"}


class FloorUnavailable(RuntimeError):
    pass


def _grpcpp_flags() -> list[str]:
    """Compile and link flags for grpc++: pkg-config's, else the libraries named by hand."""
    if shutil.which("pkg-config"):
        r = subprocess.run(["pkg-config", "--cflags", "--libs", "grpc++"], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            return shlex.split(r.stdout)
    return ["-lgrpc++", "-lgrpc", "-lgpr", "-lprotobuf", "-lpthread"]


def build_grpcpp(cache_dir: Path, log_path: Path, timeout: float = 900.0, source: Path = SOURCE) -> Path:
    """The executable of a grpc++ program (the grpc++ floor unless ``source`` names another), compiled
    once per source/command into ``cache_dir``."""
    flags = _grpcpp_flags()
    key = hashlib.sha256(source.read_bytes() + " ".join(flags).encode()).hexdigest()[:16]
    exe = cache_dir / f"{source.stem}-{key}"
    if exe.exists():
        return exe
    compiler = shutil.which("g++")
    if compiler is None:
        raise FloorUnavailable("g++ not found (apt-get install -y g++ libgrpc++-dev)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = exe.with_name(exe.name + ".tmp")
    cmd = [compiler, "-O2", "-std=c++17", str(source), "-o", str(tmp), *flags]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FloorUnavailable(f"compiling {source.name} took over {timeout:.0f} s") from None
    log_path.write_text(" ".join(cmd) + "\n" + r.stdout + r.stderr)
    if r.returncode != 0:
        lines = [ln for ln in r.stderr.splitlines() if "error" in ln] or r.stderr.splitlines() or ["no output"]
        raise FloorUnavailable(f"cannot compile {source.name} against grpc++ (is libgrpc++-dev installed?): "
                               f"{lines[0].strip()}; see {log_path}")
    tmp.replace(exe)  # atomic: a concurrent run sees the whole file or none
    return exe


@dataclass
class Floor:
    process: ServerProcess
    grpc_url: str
    model_version: str | None = None  # perf_analyzer's -x: the floor's statistics never move

    def stop(self) -> None:
        self.process.stop()


def _start(cmd: list[str], logdir: Path, timeout: float, cwd: Path | None = None) -> Floor:
    proc = ServerProcess(cmd, logdir, ready_url="", cwd=cwd)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = _LISTENING_RE.search(proc.out_path.read_bytes())
        if m:
            return Floor(proc, f"127.0.0.1:{int(m.group(1))}")
        if proc.proc.poll() is not None:
            raise ServerError(f"{cmd[:3]} exited with {proc.proc.returncode}:\n{proc.log()[-2000:]}")
        time.sleep(0.05)
    proc.stop()
    raise ServerError(f"{cmd[:3]} did not listen within {timeout} s:\n{proc.log()[-2000:]}")


def start_aio(canned_dir: Path, logdir: Path, timeout: float = 60.0) -> Floor:
    repo = FLOORS_DIR.parent.parent  # so that ``-m bench.floors.aio_floor`` resolves
    return _start([sys.executable, "-m", "bench.floors.aio_floor", str(canned_dir)], logdir, timeout, cwd=repo)


def start_grpcpp(exe: Path, canned_dir: Path, logdir: Path, timeout: float = 60.0) -> Floor:
    return _start([str(exe), str(canned_dir)], logdir, timeout)


def start_all(grpc_url: str, model, exe_future, out: Path, logs: Path, log) -> tuple[dict[str, Floor], dict]:
    """Capture ovfast's answers for ``model`` and start both floors on them.

    ``exe_future`` is the grpc++ floor's build (a Future of ``build_grpcpp``, started while ovfast
    loads). Returns ({series label: Floor}, {series label: why not available})."""
    from bench.floors import canned

    floors: dict[str, Floor] = {}
    unavailable: dict[str, str] = {}
    canned_dir = out / "canned"
    try:
        sizes = canned.capture(grpc_url, model, canned_dir)
        version = canned.model_version(canned_dir)
    except Exception as exc:  # an RPC ovfast refused: neither floor can stand in for it
        why = f"cannot capture ovfast's answers: {exc}"
        return {}, {"floor grpc.aio": why, "floor grpc++": why}
    log(f"floors: canned answers of {len(sizes)} RPCs in {canned_dir} "
        f"(ModelInfer {sizes.get(canned.SERVICE + 'ModelInfer')} bytes)")
    try:
        try:
            floors["floor grpc.aio"] = start_aio(canned_dir, logs / "floor_aio")
        except ServerError as exc:
            unavailable["floor grpc.aio"] = str(exc).splitlines()[0]
        try:
            exe = exe_future.result()
            floors["floor grpc++"] = start_grpcpp(exe, canned_dir, logs / "floor_grpcpp")
        except (FloorUnavailable, ServerError) as exc:
            unavailable["floor grpc++"] = str(exc).splitlines()[0]
    except BaseException:
        for floor in floors.values():
            floor.stop()
        raise
    for floor in floors.values():
        floor.model_version = version
    for label, why in unavailable.items():
        log(f"{label}: not available ({why})")
    return floors, unavailable
