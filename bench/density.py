"""``python -m bench --density``: many small models on one server under a memory budget.

N distinct MLPs (50-500 KB of weights each, different weights; written once into a cached
repository, bench/.models/density/) are listed in one config.json and served by one ovfast with
``--memory_budget`` that holds a fraction of them and ``--cache_dir``. Phases, in order:

1. start: the time from spawning the server to ready with N catalog entries (nothing loads), and its
   RSS then; the server's fixed overhead is its RSS once the inference runtime is initialised and the
   transport warmed (one model loaded, served by ``--clients`` clients for 2 s, unloaded)
2. cold: one client, each request for a model never asked for before: the client-side latency of a
   request that has to load its model (cold request), and the server-side load times it logs
3. hot: the most popular models that fit, loaded first, then ``--clients`` clients on them only
4. zipf: ``--clients`` clients for ``--seconds``, each request's model drawn from a Zipf
   distribution over all N (exponent ``--zipf``): loads and evictions per second, failed requests
Throughout, the server's RSS and its ``ovfast_memory_used_bytes`` are sampled every 0.25 s.

It prints a table, writes results.json, and plots RSS against the budget (density.png, with
matplotlib; else density.csv and the text table only). It asserts nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

from bench.native_load import NativeLoad, model_infer_request
from bench.servers import ServerProcess, free_ports, openvino_libs
from bench.stats import percentile

BENCH_DIR = Path(__file__).resolve().parent
IN, OUT = 64, 8
PICKS_PER_SECOND = 20_000  # models drawn ahead for a timed phase (the clients wrap around them)
REPO_VERSION = 2  # bump when the models' recipe changes: the cache is rebuilt


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("density (--density)")
    g.add_argument("--density", action="store_true", help="run the many-models-under-a-budget benchmark")
    g.add_argument("--models", type=int, default=10_000, help="models in the catalog (default 10,000)")
    g.add_argument("--budget", default="256MiB", help="--memory_budget of the server (default 256MiB)")
    g.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    g.add_argument("--seconds", type=float, default=60.0, help="length of the Zipf phase (default 60 s)")
    g.add_argument("--zipf", type=float, default=1.1, help="Zipf exponent of the model popularity (default 1.1)")
    g.add_argument("--cold-requests", type=int, default=200, help="requests of the cold phase (default 200)")
    g.add_argument("--hot-seconds", type=float, default=10.0, help="length of the hot phase (default 10 s)")


def log(msg: str) -> None:
    print(f"[density] {msg}", file=sys.stderr, flush=True)


# -- the repository ------------------------------------------------------------------------------
SIZE_CLASSES = 16


def hidden_of(i: int) -> int:
    """Hidden width of model i: 50-500 KB of f32 weights ((IN + OUT) * hidden * 4 bytes), in
    SIZE_CLASSES widths. NOTE: few widths on purpose: OpenVINO's CPU plugin keeps ~150 KB of kernels
    per distinct shape after the model is unloaded (measured), so 10,000 distinct widths would
    measure that cache, not residency."""
    lo, hi = 50_000 // ((IN + OUT) * 4), 500_000 // ((IN + OUT) * 4)
    return lo + (i * 7919 % SIZE_CLASSES) * (hi - lo) // (SIZE_CLASSES - 1)


def build_repository(root: Path, n: int) -> Path:
    """``root/m{i}/1/model.xml`` for i < n (only the missing ones are built) and a config.json of n."""
    import openvino as ov
    from openvino import opset13 as ops

    root.mkdir(parents=True, exist_ok=True)
    info = root / "info.json"
    if not info.exists() or json.loads(info.read_text()).get("version") != REPO_VERSION:
        for old in root.glob("m*/1/model.*"):
            old.unlink()
        info.write_text(json.dumps({"version": REPO_VERSION}))
    t0, built = time.monotonic(), 0
    for i in range(n):
        xml = root / f"m{i}" / "1" / "model.xml"
        if xml.exists() and xml.with_suffix(".bin").exists():
            continue
        rng = np.random.default_rng(i)
        h = hidden_of(i)
        x = ops.parameter([1, IN], ov.Type.f32, name="x")
        x.output(0).set_names({"x"})
        w1 = rng.standard_normal((IN, h), dtype=np.float32) / np.float32(8.0)
        w2 = rng.standard_normal((h, OUT), dtype=np.float32) / np.float32(np.sqrt(h))
        y = ops.matmul(ops.relu(ops.matmul(x, ops.constant(w1), False, False)), ops.constant(w2), False, False)
        y.output(0).set_names({"y"})
        xml.parent.mkdir(parents=True, exist_ok=True)
        tmp = xml.with_name("tmp.xml")
        ov.save_model(ov.Model([ops.result(y)], [x], f"m{i}"), str(tmp), compress_to_fp16=False)
        os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))
        os.replace(tmp, xml)
        built += 1
        if built % 1000 == 0:
            log(f"built {built} models ({time.monotonic() - t0:.0f} s)")
    if built:
        log(f"built {built} models in {time.monotonic() - t0:.1f} s")
    cfg = root / f"config-{n}.json"
    cfg.write_text(json.dumps({"model_config_list": [
        {"config": {"name": f"m{i}", "base_path": str(root / f"m{i}")}} for i in range(n)]}))
    return cfg


# -- measuring ------------------------------------------------------------------------------------
def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# The families the bench reads. NOTE: only these are exposed: the default set has series per catalog
# model (the OVMS per-name request counters), so one scrape of 10,000 models cost the server ~1 s of
# CPU, four times a second, on the cores it serves from.
SCRAPED = ("ovfast_memory_used_bytes", "ovfast_memory_budget_bytes", "ovfast_memory_unaccounted_bytes",
           "ovfast_model_loads", "ovfast_model_unloads",
           "ovfast_models_loaded", "ovfast_model_load_failures")


def scrape(http_url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{http_url}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("ovfast_memory", "ovfast_model_loads", "ovfast_model_unloads", "ovfast_models_loaded",
                            "ovfast_model_load_failures")):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def served_totals(http_url: str) -> tuple[int, int]:
    """(requests served, their summed server-side ns) over every loaded version (Triton statistics: from
    a request's arrival to its response, counted natively)."""
    with urllib.request.urlopen(f"http://{http_url}/v2/models/stats", timeout=60) as r:
        stats = json.loads(r.read())["model_stats"]
    ok = [m["inference_stats"]["success"] for m in stats]
    return sum(x["count"] for x in ok), sum(x["ns"] for x in ok)


class Sampler(threading.Thread):
    """RSS and used bytes every 0.25 s until stopped: [(t, rss, used, phase)]."""

    def __init__(self, pid: int, http_url: str, t0: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.http_url, self.t0 = pid, http_url, t0
        self.samples: list[tuple[float, int, float, str]] = []
        self.phase = "start"
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.25):
            try:
                used = scrape(self.http_url).get("ovfast_memory_used_bytes", 0.0)
                self.samples.append((time.monotonic() - self.t0, rss_bytes(self.pid), used, self.phase))
            except (OSError, ValueError):
                pass

    def stop(self) -> None:
        self._done.set()
        self.join()


async def _requests(url: str, pick, clients: int, seconds: float | None, count: int | None) -> dict:
    """``clients`` closed-loop clients; ``pick()`` names each request's model. Stops after ``seconds``
    or ``count`` requests in all. Returns latencies (µs), failures and their first messages."""
    import tritonclient.grpc.aio as grpcclient

    client = grpcclient.InferenceServerClient(url)
    x = np.linspace(-1, 1, IN, dtype=np.float32).reshape(1, IN)
    inp = grpcclient.InferInput("x", [1, IN], "FP32")
    inp.set_data_from_numpy(x)
    lat: list[float] = []
    failures: list[str] = []
    sent = [0]
    deadline = time.monotonic() + seconds if seconds else None

    async def worker() -> None:
        while (deadline is None or time.monotonic() < deadline) and (count is None or sent[0] < count):
            sent[0] += 1
            name = pick()
            t = time.perf_counter_ns()
            try:
                await client.infer(name, [inp])
            except Exception as exc:  # noqa: BLE001 - counted: the bench reports failed requests
                failures.append(f"{name}: {exc}")
                continue
            lat.append((time.perf_counter_ns() - t) / 1e3)

    t0 = time.monotonic()
    try:
        await asyncio.gather(*(worker() for _ in range(clients)))
    finally:
        await client.close()
    return {"lat_us": lat, "failed": len(failures), "failures": failures[:5], "elapsed_s": time.monotonic() - t0}


def _drive(loadgen: NativeLoad, url: str, names: list[str], clients: int, seconds: float) -> dict:
    """Requests for ``names`` in turn from ``clients`` closed-loop clients: for ``seconds`` (wrapping
    around), or each once when ``seconds`` is 0. The grpc++ load generator when it could be built (the
    Python client costs more CPU per request than these models, and on a small machine its own
    scheduling would be the tail it reports), else tritonclient's asyncio client."""
    if loadgen.exe is not None:
        index: dict[str, int] = {}
        for name in names:
            index.setdefault(name, len(index))
        x = np.linspace(-1, 1, IN, dtype=np.float32).reshape(1, IN)
        requests = [model_infer_request(name, {"x": x}) for name in index]
        return loadgen.run(url, requests, [index[name] for name in names], clients, seconds)
    turn = iter(range(1 << 62))
    return asyncio.run(_requests(url, lambda: names[next(turn) % len(names)], clients, seconds or None,
                                 None if seconds else len(names)))


def _fixed_overhead(server: ServerProcess, loadgen: NativeLoad, grpc_url: str, http_url: str, model: str,
                    clients: int) -> int:
    """The server's own fixed memory: its RSS with the inference runtime initialised (the device plugin's
    code and thread pools, which the first load brings in whatever the model) and the transport warmed by
    ``clients`` clients, then no model loaded. One model is loaded, served for 2 s and unloaded through the
    repository API (its own memory is what the budget counts), then loaded again for the later phases."""
    def repository(action: str) -> None:
        req = urllib.request.Request(f"http://{http_url}/v2/repository/models/{model}/{action}", data=b"{}",
                                     method="POST")
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()

    _drive(loadgen, grpc_url, [model], clients, 2.0)
    repository("unload")
    time.sleep(1.0)
    rss = rss_bytes(server.proc.pid)
    repository("load")  # an explicitly unloaded model loads on request again only once loaded explicitly
    return rss


def _summary(r: dict) -> dict:
    lat = r["lat_us"]
    return {"requests": len(lat) + r["failed"], "failed": r["failed"], "p50_us": percentile(lat, 50),
            "p99_us": percentile(lat, 99), "per_sec": len(lat) / r["elapsed_s"] if r["elapsed_s"] else 0.0,
            "failures": r["failures"]}


def _server_load_times(log_text: str, since: int) -> list[float]:
    """Load times (s) from the server's "Loaded model ...; load time: X s" lines after offset ``since``."""
    out = []
    for line in log_text[since:].splitlines():
        if "Loaded model m" in line and "load time:" in line:
            out.append(float(line.rsplit("load time:", 1)[1].split()[0]))
    return out


# -- the run --------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict:
    from ovfast.config.budget import parse_memory_budget

    n = args.models
    budget = parse_memory_budget(args.budget)
    out = (args.out or (BENCH_DIR / "results" / "density")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    repo = args.model_cache / "density"
    cfg = build_repository(repo, n)
    cache_dir = out / "ov-cache"
    grpc_port, rest_port = free_ports(2)
    cmd = [sys.executable, "-m", "ovfast", "--config_path", str(cfg), "--port", str(grpc_port),
           "--rest_port", str(rest_port), "--grpc_bind_address", "127.0.0.1", "--rest_bind_address", "127.0.0.1",
           "--memory_budget", str(budget), "--cache_dir", str(cache_dir), "--metrics_enable",
           "--metrics_list", ",".join(SCRAPED),
           "--file_system_poll_wait_seconds", "0", "--log_level", "INFO"]
    ld = os.pathsep.join(p for p in (openvino_libs(), os.environ.get("LD_LIBRARY_PATH", "")) if p)
    results: dict = {"command": " ".join([sys.executable, "-m", "bench", *sys.argv[1:]]), "models": n,
                     "budget_bytes": budget, "clients": args.clients, "zipf_exponent": args.zipf, "server_cmd": cmd,
                     "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    t0 = time.monotonic()
    server = ServerProcess(cmd, out / "logs", f"http://127.0.0.1:{rest_port}/v2/health/ready", env={"LD_LIBRARY_PATH": ld})
    grpc_url, http_url = f"127.0.0.1:{grpc_port}", f"127.0.0.1:{rest_port}"
    try:
        server.wait_ready(600)
        results["start_s"] = time.monotonic() - t0
        time.sleep(1.0)
        results["ready_rss_bytes"] = rss_bytes(server.proc.pid)
        log(f"ready with {n} models in {results['start_s']:.1f} s; RSS {results['ready_rss_bytes'] / 2**20:.0f} MiB")
        rng = np.random.default_rng(12345)
        order = rng.permutation(n)  # popularity rank -> model
        loadgen = NativeLoad()
        results["load_generator"] = ("grpc++ (bench/native_load.cc)" if loadgen.exe else
                                     f"tritonclient.grpc.aio (the grpc++ one is unavailable: {loadgen.unavailable})")
        log(f"load generator: {results['load_generator']}")
        picks = max(1, int(PICKS_PER_SECOND * max(args.hot_seconds, args.seconds)))
        overhead = _fixed_overhead(server, loadgen, grpc_url, http_url, f"m{order[n // 2]}", args.clients)
        results["overhead_rss_bytes"] = overhead
        log(f"fixed overhead (runtime and transport warm, no model loaded): RSS {overhead / 2**20:.0f} MiB")
        sampler = Sampler(server.proc.pid, http_url, t0)
        sampler.start()

        # cold: each request for a model not asked for yet (the least popular ranks)
        sampler.phase = "cold"
        cold_names = [f"m{order[n - 1 - i]}" for i in range(min(args.cold_requests, n))]
        mark = len(server.log())
        cold = _summary(_drive(loadgen, grpc_url, cold_names, 1, 0))
        loads = _server_load_times(server.log(), mark)
        cold["server_load_p50_ms"] = (percentile(loads, 50) or 0) * 1e3
        cold["server_load_p99_ms"] = (percentile(loads, 99) or 0) * 1e3
        results["cold"] = cold

        # hot: as many popular models as fit, loaded first
        sampler.phase = "hot"
        m = scrape(http_url)
        loaded = max(1.0, m.get("ovfast_models_loaded", 1))
        # what a loaded model costs the budget: its measured size, or the RSS growth per model when larger
        # (residency makes room against the process's RSS growth too)
        per_model = max(m.get("ovfast_memory_used_bytes", 0), rss_bytes(server.proc.pid) - overhead) / loaded
        hot_n = max(1, min(n, int(budget * 0.8 / max(per_model, 1))))
        hot_names = [f"m{order[i]}" for i in range(hot_n)]
        _drive(loadgen, grpc_url, hot_names, 1, 0)
        hot_picks = [hot_names[i] for i in np.random.default_rng(1).integers(hot_n, size=picks)]
        loads_before = scrape(http_url).get("ovfast_model_loads", 0)
        served_before = served_totals(http_url)
        results["hot"] = {**_summary(_drive(loadgen, grpc_url, hot_picks, args.clients, args.hot_seconds)),
                          "models": hot_n, "loads": scrape(http_url).get("ovfast_model_loads", 0) - loads_before}
        served_after = served_totals(http_url)
        n_ok = served_after[0] - served_before[0]
        results["hot"]["server_mean_us"] = (served_after[1] - served_before[1]) / n_ok / 1e3 if n_ok > 0 else 0.0

        # zipf over the whole catalog
        sampler.phase = "zipf"
        before = scrape(http_url)
        ranks = np.random.default_rng(7).zipf(args.zipf, size=picks * 2)
        zipf_picks = [f"m{order[r - 1]}" for r in ranks[ranks <= n][:picks]]
        z = _summary(_drive(loadgen, grpc_url, zipf_picks, args.clients, args.seconds))
        after = scrape(http_url)
        secs = args.seconds
        z["loads_per_sec"] = (after.get("ovfast_model_loads", 0) - before.get("ovfast_model_loads", 0)) / secs
        key = 'ovfast_model_unloads{reason="budget"}'
        z["evictions_per_sec"] = (after.get(key, 0) - before.get(key, 0)) / secs
        z["load_failures"] = after.get("ovfast_model_load_failures", 0)
        results["zipf"] = z
        sampler.stop()
        results["samples"] = sampler.samples
        max_rss = max((s[1] for s in sampler.samples), default=0)
        results["max_rss_bytes"] = max_rss
        results["rss_within_budget_plus_overhead"] = max_rss <= budget + overhead
        results["final_metrics"] = after
    finally:
        server.stop()
    return results


def table(r: dict) -> str:
    mib = 2 ** 20
    rows = [
        ("models in the catalog", f"{r['models']:,}"),
        ("load generator", r.get("load_generator", "tritonclient.grpc.aio")),
        ("start to ready", f"{r['start_s']:.1f} s"),
        ("memory budget", f"{r['budget_bytes'] / mib:.0f} MiB"),
        ("RSS at ready", f"{r['ready_rss_bytes'] / mib:.0f} MiB"),
        ("server overhead (RSS, runtime and transport warm)", f"{r['overhead_rss_bytes'] / mib:.0f} MiB"),
        ("max RSS", f"{r['max_rss_bytes'] / mib:.0f} MiB "
                    f"({'within' if r['rss_within_budget_plus_overhead'] else 'ABOVE'} budget + overhead)"),
        ("cold request p50 / p99 (client)", f"{r['cold']['p50_us'] / 1e3:.1f} / {r['cold']['p99_us'] / 1e3:.1f} ms"),
        ("cold load p50 / p99 (server)", f"{r['cold']['server_load_p50_ms']:.1f} / {r['cold']['server_load_p99_ms']:.1f} ms"),
        (f"hot p50 / p99 (c={r['clients']}, {r['hot']['models']} models)",
         f"{r['hot']['p50_us'] / 1e3:.2f} / {r['hot']['p99_us'] / 1e3:.2f} ms ({r['hot']['per_sec']:.0f}/s, "
         f"{r['hot']['loads']:.0f} loads)"),
        ("hot server-side mean (arrival to response)", f"{r['hot'].get('server_mean_us', 0) / 1e3:.2f} ms"),
        (f"zipf({r['zipf_exponent']}) p50 / p99 (c={r['clients']})",
         f"{r['zipf']['p50_us'] / 1e3:.2f} / {r['zipf']['p99_us'] / 1e3:.2f} ms ({r['zipf']['per_sec']:.0f}/s)"),
        ("zipf loads / evictions per second", f"{r['zipf']['loads_per_sec']:.1f} / {r['zipf']['evictions_per_sec']:.1f}"),
        ("failed requests (cold, hot, zipf)", f"{r['cold']['failed']}, {r['hot']['failed']}, {r['zipf']['failed']}"),
    ]
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)


def plot(r: dict, out: Path) -> str | None:
    """RSS and measured model memory over time against budget + overhead; None, or why not."""
    samples = r.get("samples") or []
    with open(out / "density.csv", "w") as f:
        f.write("t_s,rss_bytes,used_bytes,phase\n")
        for t, rss, used, phase in samples:
            f.write(f"{t:.2f},{rss},{int(used)},{phase}\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (density.csv has the samples)"
    mib = 2 ** 20
    t = [s[0] for s in samples]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot(t, [s[1] / mib for s in samples], label="server RSS")
    ax.plot(t, [s[2] / mib for s in samples], label="measured model memory (ovfast_memory_used_bytes)")
    ax.axhline(r["budget_bytes"] / mib, color="gray", linestyle="--", label="budget")
    ax.axhline((r["budget_bytes"] + r["overhead_rss_bytes"]) / mib, color="red", linestyle=":",
               label="budget + overhead")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("MiB")
    ax.set_title(f"{r['models']:,} models, budget {r['budget_bytes'] / mib:.0f} MiB, {r['clients']} clients")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "density.png", dpi=110)
    plt.close(fig)
    return None


def main(args: argparse.Namespace) -> int:
    out = (args.out or (BENCH_DIR / "results" / "density")).resolve()
    r = run(args)
    print(table(r), flush=True)
    why = plot(r, out)
    r["plot"] = why or str(out / "density.png")
    (out / "results.json").write_text(json.dumps({k: v for k, v in r.items() if k != "samples"}, indent=1))
    log(f"wrote {out / 'results.json'}" + (f"; no plot: {why}" if why else f" and {out / 'density.png'}"))
    return 0
