"""Driving a KServe v2 server with Triton's ``perf_analyzer`` and reading its CSV report."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import tritonclient

UNSTABLE = "Failed to obtain stable measurement"
EMPTY_WINDOW = "No valid requests recorded"


class PerfAnalyzerMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class PerfSettings:
    interval_ms: int = 3000
    stability_pct: int = 20
    max_trials: int = 5
    timeout_s: float = 300.0
    count_window: int = 0  # > 0: windows of this many requests (count_windows mode) instead of time windows


def _cuda_runtime_lib() -> str | None:
    """``<site-packages>/nvidia/cuda_runtime/lib`` (perf_analyzer links libcudart even on CPU)."""
    try:
        import nvidia.cuda_runtime as cr  # type: ignore[import-not-found]
    except ImportError:
        sp = Path(tritonclient.__file__).resolve().parent.parent
        cand = sp / "nvidia" / "cuda_runtime" / "lib"
        return str(cand) if cand.is_dir() else None
    for base in list(getattr(cr, "__path__", [])):
        lib = Path(base) / "lib"
        if lib.is_dir():
            return str(lib)
    return None


def perf_analyzer_path() -> str:
    exe = shutil.which("perf_analyzer")
    if exe is None:
        cand = Path(tritonclient.__file__).resolve().parent / "bin" / "perf_analyzer"
        if cand.exists():
            exe = str(cand)
    if exe is None:
        raise PerfAnalyzerMissing('perf_analyzer not found: pip install "tritonclient[all]==2.51.0" '
                                  "nvidia-cuda-runtime-cu12; apt-get install -y libb64-0d")
    return exe


def _env() -> dict:
    env = dict(os.environ)
    lib = _cuda_runtime_lib()
    if lib:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (lib, env.get("LD_LIBRARY_PATH", "")) if p)
    return env


def parse_csv(path: Path) -> dict:
    """The first row of perf_analyzer's ``-f`` CSV: throughput and latency percentiles (µs)."""
    with open(path, newline="") as f:
        row = next(csv.DictReader(f))

    def num(key):
        v = row.get(key)
        return float(v) if v not in (None, "") else None

    return {
        "concurrency": int(row["Concurrency"]),
        "infer_per_sec": num("Inferences/Second"),
        "p50_us": num("p50 latency"),
        "p90_us": num("p90 latency"),
        "p99_us": num("p99 latency"),
        "raw": dict(row),
    }


def run_point(model: str, url: str, protocol: str, concurrency: int, workdir: Path, settings: PerfSettings,
              shape: str | None = None, model_version: str | None = None) -> dict:
    """One concurrency level. Retries once without the stability requirement when the machine is too
    noisy for ``stability_pct``; such points are marked ``stable: false``. ``model_version`` (``-x``)
    names the version whose server statistics perf_analyzer reads; without it, perf_analyzer looks
    for the version whose queue count grew, which a server replaying canned answers never shows."""
    workdir.mkdir(parents=True, exist_ok=True)
    out_csv = workdir / f"{protocol}_c{concurrency}.csv"
    log = workdir / f"{protocol}_c{concurrency}.log"
    base = [perf_analyzer_path(), "-m", model, "-u", url, "-i", protocol,
            "--concurrency-range", f"{concurrency}:{concurrency}", "-p", str(settings.interval_ms),
            "--input-data", "random", "-f", str(out_csv)]
    if shape:
        base += ["--shape", shape]
    if model_version:
        base += ["-x", model_version]
    if settings.count_window > 0:
        base += ["--measurement-mode", "count_windows", "--measurement-request-count", str(settings.count_window)]
    # 1: as asked; 2: no stability requirement (noisy machine); 3: also a window twice as long (a window
    # with no completed request is an error for perf_analyzer)
    attempts = [(settings.stability_pct, settings.max_trials, True, []), (1000, 3, False, []),
                (1000, 3, False, ["-p", str(2 * settings.interval_ms)])]
    text = ""
    for stab, trials, stable, extra in attempts:
        out_csv.unlink(missing_ok=True)
        cmd = base + ["-s", str(stab), "-r", str(trials)] + extra
        if extra:
            cmd = [a for i, a in enumerate(cmd) if not (a == "-p" or (i > 0 and cmd[i - 1] == "-p"))] + extra
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=settings.timeout_s)
            text = r.stdout + r.stderr
            rc = r.returncode
        except subprocess.TimeoutExpired as exc:
            text, rc = f"timeout after {settings.timeout_s} s: {exc}", -1
        log.write_text(" ".join(cmd) + "\n" + text)
        if rc == 0 and out_csv.exists():
            res = parse_csv(out_csv)
            res["stable"] = stable
            res["command"] = " ".join(cmd)
            return res
        if UNSTABLE not in text and EMPTY_WINDOW not in text:
            break
    return {"concurrency": concurrency, "error": text.strip().splitlines()[-1] if text.strip() else "failed",
            "command": " ".join(base)}
