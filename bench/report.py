"""Turning a run's results into a table, ratios, JSON and a plot."""
from __future__ import annotations

import json
from pathlib import Path


def _fmt_rate(v) -> str:
    return "-" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.1f}")


def _fmt_us(v) -> str:
    if v is None:
        return "-"
    if v >= 1e6:
        return f"{v / 1e6:.2f} s"
    if v >= 1e5:
        return f"{v / 1000:.0f} ms"
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} us"


def _best(points: list[dict]) -> dict | None:
    ok = [p for p in points if p.get("infer_per_sec")]
    return max(ok, key=lambda p: p["infer_per_sec"]) if ok else None


def _at(points: list[dict], c: int) -> dict | None:
    for p in points:
        if p.get("concurrency") == c and p.get("infer_per_sec"):
            return p
    return None


def ratio(a, b) -> float | None:
    return None if not a or not b else a / b


def compute_ratios(results: dict) -> dict:
    """Best-throughput ratios (each series' best over the sweep) and c=1 p50 ratios."""
    series = results["series"]
    inproc = results.get("inprocess", {})
    # the limit: the better of the in-process readings taken before and after the sweep
    limit = max(((inproc.get(k) or {}).get("infer_per_sec") or 0 for k in ("async", "async_after")), default=0) or None
    sync_p50 = (inproc.get("sync") or {}).get("p50_us")
    out: dict = {}
    for key in ("ovfast grpc", "ovfast rest"):
        best = _best(series.get(key, []))
        if best:
            out[f"{key} / in-process (best throughput)"] = ratio(best["infer_per_sec"], limit)
        one = _at(series.get(key, []), 1)
        if one and sync_p50:
            out[f"{key} p50 @c=1 / in-process sync p50"] = ratio(one["p50_us"], sync_p50)
    for key, floor in (("ovfast grpc", "echo grpc"), ("ovfast rest", "echo rest")):
        a, b = _best(series.get(key, [])), _best(series.get(floor, []))
        if a and b:
            out[f"{key} / {floor} floor (best throughput)"] = ratio(a["infer_per_sec"], b["infer_per_sec"])
    out.update(_floor_ratios(series))
    # peers are compared through the same Python load generator
    peers: dict[str, dict] = {}
    for k, v in series.items():
        best = _best(v) if k.startswith("peer ") and k.endswith("(loadgen)") else None
        if best:
            peers[k] = best
    ours = _best(series.get("ovfast grpc (loadgen)", []))
    if peers and ours:
        best_key = max(peers, key=lambda k: peers[k]["infer_per_sec"])
        out[f"ovfast / best peer [{best_key}] (loadgen, best throughput)"] = ratio(
            ours["infer_per_sec"], peers[best_key]["infer_per_sec"])
    return out


def _floor_ratios(series: dict) -> dict:
    """ovfast's gRPC against the do-nothing gRPC endpoints (bench/floors/): best throughput against
    best throughput, throughput at c=8, and the latency a lone client pays over the grpc++ floor."""
    out: dict = {}
    ours = series.get("ovfast grpc", [])
    for floor in ("floor grpc++", "floor grpc.aio"):
        a, b = _best(ours), _best(series.get(floor, []))
        if a and b:
            out[f"ovfast grpc / {floor} (best throughput)"] = ratio(a["infer_per_sec"], b["infer_per_sec"])
    for floor in ("floor grpc++", "floor grpc.aio"):
        a, b = _at(ours, 8), _at(series.get(floor, []), 8)
        if a and b:
            out[f"ovfast grpc c=8 / {floor} c=8"] = ratio(a["infer_per_sec"], b["infer_per_sec"])
    a, b = _at(ours, 1), _at(series.get("floor grpc++", []), 1)
    if a and b and a.get("p50_us") is not None and b.get("p50_us") is not None:
        out["ovfast grpc p50 - floor grpc++ p50 @c=1 (us)"] = a["p50_us"] - b["p50_us"]
    return out


def table(results: dict) -> str:
    conc = results["concurrency"]
    lines = []
    inproc = results.get("inprocess", {})
    extra = []
    if "batching" in results:
        from bench import batching

        extra = batching.extra_rows(results)
    width = max([34] + [len(n) + 1 for n in results["series"]] + [len(n) + 1 for n, _ in extra])
    head = f"{'series':<{width}}" + "".join(f"{'c=' + str(c):>26}" for c in conc)
    lines.append(f"model {results['model']['name']}  ({results['machine']['cpu']}, nproc {results['machine']['nproc']}, "
                 f"loadavg at start {results['machine']['loadavg_start']})")
    if "batching" in results:
        from bench import batching

        lines += batching.header_lines(results, _fmt_rate, _fmt_us)
    else:
        st = results.get("server_settings", {})
        lines.append(f"server: hint {st.get('PERFORMANCE_HINT')}, nireq {st.get('nireq')}, streams {st.get('streams')}")
        a, s = inproc.get("async"), inproc.get("sync")
        if a:
            lines.append(f"in-process async (AsyncInferQueue, nireq {a['nireq']}, streams {a['compiled_streams']}, "
                         f"{a['config'].get('PERFORMANCE_HINT')}): {_fmt_rate(a['infer_per_sec'])} infer/s, "
                         f"p50 {_fmt_us(a['p50_us'])}, p99 {_fmt_us(a['p99_us'])}  [precision {a['inference_precision']}]")
        a2 = inproc.get("async_after")
        if a2:
            lines.append(f"in-process async again after the sweep: {_fmt_rate(a2['infer_per_sec'])} infer/s, "
                         f"p50 {_fmt_us(a2['p50_us'])}, p99 {_fmt_us(a2['p99_us'])}  (ratios use the better of the two)")
        if s:
            lines.append(f"in-process sync (LATENCY hint, 1 request): {_fmt_rate(s['infer_per_sec'])} infer/s, "
                         f"p50 {_fmt_us(s['p50_us'])}, p99 {_fmt_us(s['p99_us'])}")
    lines.append("cells: infer/s | p50 | p99   (* = perf_analyzer could not stabilise; single 3-window reading)")
    lines.append(head)
    for name, points in results["series"].items():
        row = f"{name:<{width}}"
        for c in conc:
            p = next((q for q in points if q.get("concurrency") == c), None)
            if p is None:
                cell = "-"
            elif "error" in p:
                cell = "error"
            else:
                mark = "*" if p.get("stable") is False else ""
                cell = f"{_fmt_rate(p['infer_per_sec'])}{mark}|{_fmt_us(p['p50_us'])}|{_fmt_us(p['p99_us'])}"
            row += f"{cell:>26}"
        lines.append(row)
    for name, cells in extra:
        lines.append(f"{name:<{width}}" + "".join(f"{cells.get(c, '-'):>26}" for c in conc))
    for name, why in results.get("unavailable", {}).items():
        lines.append(f"{name}: not available ({why})")
    lines.append("ratios:")
    for k, v in results.get("ratios", {}).items():
        lines.append(f"  {k:<70} {'-' if v is None else (f'{v:.0f}' if k.endswith('(us)') else f'{v:.2f}')}")
    return "\n".join(lines)


def write_json(results: dict, path: Path) -> None:
    path.write_text(json.dumps(results, indent=2, default=str))


def plot(results: dict, path: Path) -> str | None:
    """Throughput and p50/p99 latency against concurrency; returns why not if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed (pip install '.[bench]')"
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    for i, (name, points) in enumerate(results["series"].items()):
        pts = sorted((p for p in points if p.get("infer_per_sec")), key=lambda p: p["concurrency"])
        if not pts:
            continue
        cs = [p["concurrency"] for p in pts]
        color = f"C{i % 10}"
        ax1.plot(cs, [p["infer_per_sec"] for p in pts], "o-", color=color, label=name)
        ax2.plot(cs, [p["p50_us"] / 1000 for p in pts], "o-", color=color, label=f"{name} p50")
        ax2.plot(cs, [p["p99_us"] / 1000 for p in pts], "x--", color=color, alpha=0.6)
    inproc = results.get("inprocess") or {}
    limits = [inproc[k]["infer_per_sec"] for k in ("async", "async_after") if inproc.get(k)]
    if limits:
        ax1.axhline(max(limits), color="k", ls=":", label="in-process async (limit)")
    if "batching" in results:
        from bench import batching

        base, _ = batching._best_rows(results, "b1")
        if base:
            ax1.axhline(base, color="k", ls=":", label="in-process batch-1 (best hint)")
    s = (results.get("inprocess") or {}).get("sync")
    if s:
        ax2.axhline(s["p50_us"] / 1000, color="k", ls=":", label="in-process sync p50")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrency")
        ax.grid(True, alpha=0.3)
    ax1.set_ylabel("inferences / s")
    ax2.set_ylabel("latency (ms); solid p50, dashed p99")
    ax2.set_yscale("log")
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=7)
    fig.suptitle(f"ovfast bench: {results['model']['name']} ({results['machine']['cpu']}, {results['machine']['nproc']} cpu)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
