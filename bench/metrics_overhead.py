"""What does --metrics_enable cost? Two ovfast servers, same model, same run, A/B alternated.

Starts a bare ``ovfast`` (the built-in demo model ``dummy``: FP32 [1,10] + 1, the fastest model
there is, so per-request overhead is as visible as it gets) twice: once plain, once with
``--metrics_enable``. Then drives them in turn with ``perf_analyzer`` over KServe gRPC at a
fixed concurrency, swapping the order every round, and prints each measurement, the medians and
the throughput ratio (metrics / plain). Finally scrapes the metrics server to show it counted.

    python bench/metrics_overhead.py --rounds 3

Needs ``perf_analyzer`` on PATH (tritonclient's; its CUDA runtime library directory is added to
LD_LIBRARY_PATH automatically when found). Only loopback ports are used.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

THROUGHPUT_RE = re.compile(r"Concurrency:\s*\d+,\s*throughput:\s*([0-9.]+)\s*infer/sec")
_PYLIB = f"python{sys.version_info.major}.{sys.version_info.minor}"
CUDA_RT_CANDIDATES = [Path(prefix, "lib", _PYLIB, "site-packages", "nvidia", "cuda_runtime", "lib")
                      for prefix in (sys.prefix, sys.base_prefix)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, label: str, python: str, extra: list[str], workdir: Path) -> None:
        self.label = label
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.log = open(workdir / f"{label}.log", "wb")
        args = [python, "-m", "ovfast", "--port", str(self.grpc_port), "--rest_port", str(self.rest_port),
                "--grpc_bind_address", "127.0.0.1", "--rest_bind_address", "127.0.0.1",
                "--log_level", "WARNING", *extra]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label}: ovfast exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.rest_port}/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.label}: not ready after {timeout} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def perf_analyzer(port: int, concurrency: int, interval_ms: int, stability: int, fallback_stability: int,
                  env: dict) -> tuple[float, int]:
    """Throughput (infer/s) and the -s it was measured with. On a busy machine perf_analyzer may not
    stabilize within -s; then the measurement is repeated once with the looser ``fallback_stability``."""
    for s in (stability, fallback_stability):
        cmd = ["perf_analyzer", "-m", "dummy", "-u", f"127.0.0.1:{port}", "-i", "grpc",
               "--concurrency-range", str(concurrency), "-p", str(interval_ms), "-s", str(s)]
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        m = THROUGHPUT_RE.search(res.stdout)
        if res.returncode == 0 and m:
            return float(m.group(1)), s
        if "Failed to obtain stable measurement" not in res.stdout + res.stderr:
            break
    raise RuntimeError(f"perf_analyzer failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="A/B rounds (each measures both servers once)")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--interval-ms", type=int, default=3000, help="perf_analyzer -p")
    p.add_argument("--stability", type=int, default=20, help="perf_analyzer -s (percent)")
    p.add_argument("--fallback-stability", type=int, default=50,
                   help="-s used for one retry when perf_analyzer cannot stabilize (shared machines)")
    p.add_argument("--python", default=sys.executable, help="interpreter that has ovfast installed")
    args = p.parse_args()
    if shutil.which("perf_analyzer") is None:
        print("perf_analyzer is not on PATH", file=sys.stderr)
        return 2
    env = dict(os.environ)
    for cuda_rt in CUDA_RT_CANDIDATES:
        if cuda_rt.is_dir():
            env["LD_LIBRARY_PATH"] = os.pathsep.join(x for x in (str(cuda_rt), env.get("LD_LIBRARY_PATH")) if x)
            break

    workdir = Path(tempfile.mkdtemp(prefix="ovfast-metrics-bench-"))
    plain = Server("plain", args.python, [], workdir)
    metered = Server("metrics", args.python, ["--metrics_enable"], workdir)
    results: dict[str, list[float]] = {"plain": [], "metrics": []}
    try:
        plain.wait_ready()
        metered.wait_ready()
        for rnd in range(args.rounds):
            order = (plain, metered) if rnd % 2 == 0 else (metered, plain)
            for srv in order:
                tput, used = perf_analyzer(srv.grpc_port, args.concurrency, args.interval_ms, args.stability,
                                           args.fallback_stability, env)
                results[srv.label].append(tput)
                note = "" if used == args.stability else f"  (not stable at -s {args.stability}; -s {used})"
                print(f"round {rnd + 1} {srv.label:8s} {tput:10.1f} infer/s{note}", flush=True)
        with urllib.request.urlopen(f"http://127.0.0.1:{metered.rest_port}/metrics", timeout=10) as r:
            text = r.read().decode()
    finally:
        plain.stop()
        metered.stop()
    counted = re.search(r'ovms_requests_success\{api="KServe",interface="gRPC",method="ModelInfer",'
                        r'name="dummy",version="1"\} (\d+)', text)
    med_plain = statistics.median(results["plain"])
    med_metrics = statistics.median(results["metrics"])
    print(f"median plain   {med_plain:10.1f} infer/s")
    print(f"median metrics {med_metrics:10.1f} infer/s")
    print(f"ratio metrics/plain = {med_metrics / med_plain:.3f}  "
          f"(concurrency {args.concurrency}, {args.rounds} rounds, perf_analyzer -p {args.interval_ms} "
          f"-s {args.stability})")
    print(f"metrics server counted {counted.group(1) if counted else '?'} successful gRPC ModelInfer requests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
