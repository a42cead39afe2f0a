"""The dynamic batching comparison: ``python -m bench --model mlp --batching 8 [--queue-delay-us T]``.

One run, one model (its batch dimension must be dynamic), batch-1 requests throughout:

  1. in-process OpenVINO, before any server starts: batch-1 throughput with the LATENCY and the
     THROUGHPUT hint (AsyncInferQueue, each with its OPTIMAL_NUMBER_OF_INFER_REQUESTS), batch-N
     throughput in rows/s the same way, and batch-1 sync latency. The baseline is the better hint;
     the ratio batch-N / batch-1 says how much batching can give on this model and machine.
  2. two ovfast servers on the same IR, both with ``--metrics_enable``: one plain, one with
     ``--max_batch_size N --max_queue_delay_us T``;
  3. at each concurrency, perf_analyzer (``--shape x:1,IN``) against the plain server, then the batched
     one (gRPC, and REST unless --no-rest); around every batched point the server's ``/metrics`` are read,
     and the growth of ``ovfast_batch_size`` / ``ovfast_batch_queue_delay_us`` gives the mean batch size
     and queue delay of that point;
  4. the in-process batch-1 and batch-N readings again (load drifts on a shared machine; the baseline
     is the better of the two readings, which makes the server ratios conservative).

With ``--peers``: at each concurrency the Python load generator (bench/loadgen.py) also drives the batched
server (``ovfast grpc batched (loadgen)``); after the in-process readings of step 4 each peer that has
server-side batching (PyTriton: Triton's dynamic batcher; MLServer: adaptive batching) is started with
the same max batch size and window and driven by the same generator at the same concurrencies with the
same 1-row requests (``peer NAME batched (loadgen)``). Before the sweeps, the batched server and every
peer get 16 distinct rows at once and each answer is compared with in-process OpenVINO (bench/answers.py).

Ratios: batched c=max / in-process batch-1 (the issue's >= 2.5x point), in-process batch-N / batch-1,
batched / unbatched at c=max, and the c=1 p50 of the batched server against the plain one (what
batching costs a lone client); with --peers, ovfast batched / the best batching peer at c=max (loadgen).
"""
from __future__ import annotations

import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import openvino as ov

from bench import answers, inprocess, perf
from bench.servers import OvfastServer, start_ovfast

HINTS = ("LATENCY", "THROUGHPUT")
PLAIN, BATCHED = "ovfast {proto}", "ovfast {proto} batched"
LOADGEN = "ovfast grpc batched (loadgen)"
PEER = "peer {name} batched (loadgen)"
# the histograms the batcher exports (with --metrics_enable)
_FAMILIES = {"ovfast_batch_size": "batch_size", "ovfast_batch_queue_delay_us": "queue_delay_us"}
_SAMPLE_RE = re.compile(r"^(ovfast_batch_size|ovfast_batch_queue_delay_us)_(sum|count)(\{[^}]*\})?\s+(\S+)")


class NotBatchable(Exception):
    """The model's batch dimension is static (the server would refuse dynamic batching)."""


def check_batchable(xml: Path) -> None:
    model = ov.Core().read_model(str(xml))
    for p in model.inputs:
        ps = p.get_partial_shape()
        if ps.rank.is_dynamic or len(ps) == 0 or ps[0].is_static:
            raise NotBatchable(f"input {p.get_any_name()} has shape {ps}; the batching mode needs a dynamic "
                               "first (batch) dimension, as the mlp model has")


# -- in-process ----------------------------------------------------------------------------------

def inprocess_readings(model, max_batch: int, seconds: float, log, with_sync: bool = True) -> dict:
    """Batch-1 and batch-``max_batch`` AsyncInferQueue throughput under each hint (+ batch-1 sync latency)."""
    xml, name = str(model.xml), model.input_name
    one = model.sample()
    many = np.random.default_rng(1).standard_normal((max_batch, *one.shape[1:])).astype(np.float32)
    out: dict = {"b1": {}, f"b{max_batch}": {}}
    for key, data in (("b1", one), (f"b{max_batch}", many)):
        for hint in HINTS:
            r = inprocess.async_throughput(xml, name, data, {"PERFORMANCE_HINT": hint}, 0, seconds)
            log(f"in-process {key} {hint} (nireq {r['nireq']}, streams {r['compiled_streams']}): "
                f"{r['rows_per_sec']:.1f} rows/s, p50 {r['p50_us']:.0f} us")
            out[key][hint] = r
    if with_sync:
        out["sync"] = inprocess.sync_latency(xml, name, one, seconds)
        log(f"in-process b1 sync (LATENCY): p50 {out['sync']['p50_us']:.0f} us")
    return out


def best_hint(readings: dict) -> str:
    return max(readings, key=lambda h: readings[h]["rows_per_sec"])


# -- /metrics --------------------------------------------------------------------------------------

def scrape(server: OvfastServer, model_name: str) -> dict | None:
    """Sum and count of the batcher's histograms for ``model_name`` (None if /metrics is unreachable)."""
    try:
        with urllib.request.urlopen(f"http://{server.http_url}/metrics", timeout=10) as r:
            text = r.read().decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return None
    out = {v: {"sum": 0.0, "count": 0.0} for v in _FAMILIES.values()}
    found = False
    for line in text.splitlines():
        m = _SAMPLE_RE.match(line)
        if not m:
            continue
        labels = m.group(3) or ""
        if labels and f'"{model_name}"' not in labels:
            continue
        try:
            val = float(m.group(4))
        except ValueError:
            continue
        out[_FAMILIES[m.group(1)]][m.group(2)] += val
        found = True
    return out if found else {}


def histogram_means(before: dict | None, after: dict | None) -> dict:
    """Mean batch size and queue delay of the requests between two scrapes (None where unknown)."""
    res: dict = {}
    for key in _FAMILIES.values():
        a, b = (after or {}).get(key), (before or {}).get(key) or {"sum": 0.0, "count": 0.0}
        if not a:
            res[f"{key}_mean"] = None
            continue
        n = a["count"] - b["count"]
        res[f"{key}_mean"] = (a["sum"] - b["sum"]) / n if n > 0 else None
        res[f"{key}_count"] = n
    return res


# -- the run ---------------------------------------------------------------------------------------

def _start_pair(model, logs: Path, plain_hint: str, plain_nireq: int, batch_hint: str, batch_nireq: int,
                batch_flags: list[str]) -> tuple[OvfastServer, OvfastServer]:
    with ThreadPoolExecutor(2) as pool:
        f_plain = pool.submit(start_ovfast, model.name, model.base_path, logs / "ovfast",
                              {"PERFORMANCE_HINT": plain_hint}, nireq=plain_nireq,
                              extra_args=["--metrics_enable"])
        f_batch = pool.submit(start_ovfast, model.name, model.base_path, logs / "ovfast_batched",
                              {"PERFORMANCE_HINT": batch_hint}, nireq=batch_nireq,
                              extra_args=["--metrics_enable", *batch_flags])
        servers, errors = [], []
        for f in (f_plain, f_batch):
            try:
                servers.append(f.result())
            except BaseException as exc:  # noqa: BLE001 - stop the other one, then re-raise
                errors.append(exc)
        if errors:
            for s in servers:
                s.stop()
            raise errors[0]
    return servers[0], servers[1]


def _triton_counts(url: str, model_name: str) -> dict | None:
    """Triton's statistics for the model (rows inferred, batches run), or None where the server has none."""
    try:
        import tritonclient.grpc as grpcclient

        client = grpcclient.InferenceServerClient(url)
        try:
            st = client.get_inference_statistics(model_name).model_stats
        finally:
            client.close()
        return {"rows": sum(m.inference_count for m in st), "batches": sum(m.execution_count for m in st)}
    except Exception:  # noqa: BLE001 - MLServer has no statistics RPC: then there is no figure
        return None


_ROWS_RE = re.compile(r"^bench_(batch_rows|batches)_total(\{[^}]*\})?\s+(\S+)")


def _mlserver_counts(metrics_url: str, model_name: str) -> dict | None:
    """Rows and predict() calls from the two counters our MLServer model class keeps (mlserver_model.py)."""
    try:
        with urllib.request.urlopen(f"http://{metrics_url}/metrics", timeout=10) as r:
            text = r.read().decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return None
    got = {"rows": 0.0, "batches": 0.0}
    for line in text.splitlines():
        m = _ROWS_RE.match(line)
        if m and (not m.group(2) or f'"{model_name}"' in m.group(2)):
            got["rows" if m.group(1) == "batch_rows" else "batches"] += float(m.group(3))
    return got


def _peer_counts(peer, model_name: str) -> dict | None:
    """Rows inferred and batches run so far, where the peer tells (Triton statistics, our MLServer histogram)."""
    if peer.metrics_url and peer.name == "mlserver":
        return _mlserver_counts(peer.metrics_url, model_name)
    return _triton_counts(peer.grpc_url, model_name) if peer.name == "pytriton" else None


def _peer_sweep(label: str, peer, model, conc: list[int], seconds: float, loadgen_sweep) -> list[dict]:
    """The loadgen at each concurrency, with each point's mean batch size where the peer reports one."""
    points = []
    for c in conc:
        s0 = _peer_counts(peer, model.name)
        point = loadgen_sweep(label, peer.grpc_url, model, [c], seconds)[0]
        s1 = _peer_counts(peer, model.name) if s0 is not None else None
        if s0 is not None and s1 is not None and s1["batches"] > s0["batches"]:
            point["batch_size_mean"] = (s1["rows"] - s0["rows"]) / (s1["batches"] - s0["batches"])
            point["batch_size_count"] = s1["batches"] - s0["batches"]
        points.append(point)
    return points


def run_peers(args, results: dict, model, logs: Path, hint: str, log, loadgen_sweep) -> None:
    """Each peer of --peer-list with its own server-side batching (N rows, the same window), same loadgen."""
    from bench import peers

    n, delay = args.batching, args.queue_delay_us
    checks = results["batching"].setdefault("answer_checks", {})
    venvs = Path(__file__).resolve().parent / ".venvs"
    rows = answers.sample_rows(model)
    expected = answers.reference(model.xml, model.input_name, rows)
    for name in [p.strip() for p in args.peer_list.split(",") if p.strip()]:
        label = PEER.format(name=name)
        try:
            log(f"peer {name}: preparing venv and starting with server-side batching {n} / {delay} us ({hint})")
            with peers.start(name, model, hint, venvs, logs / f"peer_{name}_batched",
                             batching=peers.Batching(n, delay)) as peer:
                check = checks[label] = answers.check(peer.grpc_url, model, rows, expected)
                if not check["ok"]:
                    results["unavailable"][label] = f"wrong answers, not measured: {check['detail']}"
                    log(f"{label}: wrong answers ({check['detail']})")
                    continue
                results["series"][label] = _peer_sweep(label, peer, model, args.concurrency,
                                                       args.loadgen_seconds, loadgen_sweep)
        except peers.PeerUnavailable as exc:
            results["unavailable"][label] = str(exc)
            log(f"peer {name}: not available ({exc})")


def run(args, results: dict, model, logs: Path, settings: perf.PerfSettings, log, perf_sweep,
        loadgen_sweep=None) -> None:
    """Fills ``results`` (series, inprocess, batching) for the batching mode (``loadgen_sweep``: for --peers)."""
    n = args.batching
    conc = args.concurrency
    check_batchable(model.xml)
    log(f"in-process readings (batch 1 and {n}, hints {', '.join(HINTS)})")
    before = inprocess_readings(model, n, args.inprocess_seconds, log)
    results["inprocess"] = {"before": before}

    plain_hint = args.hint or best_hint(before["b1"])
    batch_hint = args.batch_hint or best_hint(before[f"b{n}"])
    batch_nireq = args.batch_nireq  # 0: OpenVINO's optimum for the hint (measured best, see bench/README.md)
    batch_flags = ["--max_batch_size", str(n), "--max_queue_delay_us", str(args.queue_delay_us)]
    if args.preferred_batch_sizes:
        batch_flags += ["--preferred_batch_sizes", args.preferred_batch_sizes]
    log(f"starting ovfast ({plain_hint}, nireq {args.nireq or 'optimal'}) and ovfast {' '.join(batch_flags)} "
        f"({batch_hint}, nireq {batch_nireq or 'optimal'})")
    plain, batched = _start_pair(model, logs, plain_hint, args.nireq, batch_hint, batch_nireq, batch_flags)
    batching: dict = {"max_batch_size": n, "max_queue_delay_us": args.queue_delay_us,
                      "preferred_batch_sizes": args.preferred_batch_sizes or None, "flags": batch_flags}
    results["batching"] = batching
    try:
        st_plain, st_batch = plain.settings(model.name), batched.settings(model.name)
        results["server_settings"] = {"plain": {"PERFORMANCE_HINT": plain_hint, **st_plain},
                                      "batched": {"PERFORMANCE_HINT": batch_hint, **st_batch}}
        log(f"plain server: {st_plain.get('log_line')}")
        log(f"batched server: {st_batch.get('log_line')}")
        protos = ["grpc"] + ([] if args.no_rest else ["rest"])
        for proto in protos:
            results["series"][PLAIN.format(proto=proto)] = []
            results["series"][BATCHED.format(proto=proto)] = []
        with_loadgen = bool(args.peers and loadgen_sweep)
        if with_loadgen:
            results["series"][LOADGEN] = []
            rows = answers.sample_rows(model)
            check = answers.check(batched.grpc_url, model, rows,
                                  answers.reference(model.xml, model.input_name, rows))
            batching.setdefault("answer_checks", {})[LOADGEN] = check
            if not check["ok"]:
                log(f"{LOADGEN}: wrong answers ({check['detail']})")
        total_before = scrape(batched, model.name)
        for c in conc:  # interleaved: both servers at one concurrency, then the next
            for proto in protos:
                pa = "grpc" if proto == "grpc" else "http"
                for label, srv in ((PLAIN.format(proto=proto), plain), (BATCHED.format(proto=proto), batched)):
                    url = srv.grpc_url if proto == "grpc" else srv.http_url
                    m0 = scrape(batched, model.name) if srv is batched else None
                    point = perf_sweep(label, model, url, pa, [c], logs / ("perf_" + label.replace(" ", "_")),
                                       settings)[0]
                    if srv is batched:
                        point.update(histogram_means(m0, scrape(batched, model.name)))
                        if point.get("batch_size_mean") is not None:
                            log(f"{label} c={c}: mean batch {point['batch_size_mean']:.2f}, mean queue delay "
                                + (f"{point['queue_delay_us_mean']:.0f} us"
                                   if point.get("queue_delay_us_mean") is not None else "-"))
                    results["series"][label].append(point)
            if with_loadgen:  # the same server through the generator that drives the peers
                m0 = scrape(batched, model.name)
                point = loadgen_sweep(LOADGEN, batched.grpc_url, model, [c], args.loadgen_seconds)[0]
                point.update(histogram_means(m0, scrape(batched, model.name)))
                results["series"][LOADGEN].append(point)
        total_after = scrape(batched, model.name)
        batching["metrics"] = {"scraped": total_after is not None and bool(total_after),
                               "totals": total_after, **histogram_means(total_before, total_after)}
        if not batching["metrics"]["scraped"]:
            log("batched server: no ovfast_batch_size samples on /metrics")
    finally:
        plain.stop()
        batched.stop()
    log("in-process readings again (after the sweep)")
    results["inprocess"]["after"] = inprocess_readings(model, n, args.inprocess_seconds, log, with_sync=False)
    results["inprocess"]["sync"] = before["sync"]
    if args.peers and loadgen_sweep:
        # after the in-process readings, which bracket ovfast's sweep; the peers get the batched server's hint
        batching["peer_hint"] = batch_hint
        run_peers(args, results, model, logs, batch_hint, log, loadgen_sweep)


# -- report ----------------------------------------------------------------------------------------

def _best_rows(results: dict, key: str) -> tuple[float | None, str | None]:
    best, which = None, None
    for when in ("before", "after"):
        for hint, r in ((results.get("inprocess") or {}).get(when, {}).get(key) or {}).items():
            if best is None or r["rows_per_sec"] > best:
                best, which = r["rows_per_sec"], f"{hint}, {when} the sweep"
    return best, which


def _point(points: list[dict], c: int) -> dict | None:
    return next((p for p in points if p.get("concurrency") == c and p.get("infer_per_sec")), None)


def compute_ratios(results: dict) -> dict:
    n = results["batching"]["max_batch_size"]
    conc = results["concurrency"]
    cmax, cmin = max(conc), min(conc)
    b1, _ = _best_rows(results, "b1")
    bn, _ = _best_rows(results, f"b{n}")
    out: dict = {f"in-process batch-{n} / batch-1 (rows/s, best hint)": (bn / b1) if b1 and bn else None}
    for proto in ("grpc", "rest"):
        plain = results["series"].get(PLAIN.format(proto=proto))
        batched = results["series"].get(BATCHED.format(proto=proto))
        if batched is None or plain is None:
            continue
        hi_b, hi_p = _point(batched, cmax), _point(plain, cmax)
        if hi_b and b1:
            out[f"{proto} batched c={cmax} / in-process batch-1"] = hi_b["infer_per_sec"] / b1
        if hi_p and b1:
            out[f"{proto} unbatched c={cmax} / in-process batch-1"] = hi_p["infer_per_sec"] / b1
        if hi_b and hi_p:
            out[f"{proto} batched / unbatched at c={cmax}"] = hi_b["infer_per_sec"] / hi_p["infer_per_sec"]
        lo_b, lo_p = _point(batched, cmin), _point(plain, cmin)
        if lo_b and lo_p:
            out[f"{proto} batched p50 / unbatched p50 at c={cmin} (latency cost)"] = lo_b["p50_us"] / lo_p["p50_us"]
            out[f"{proto} batched p50 - unbatched p50 at c={cmin} (us)"] = lo_b["p50_us"] - lo_p["p50_us"]
    ours = _point(results["series"].get(LOADGEN) or [], cmax)
    peers = {k: _point(v, cmax) for k, v in results["series"].items() if k.startswith("peer ") and k.endswith(
        " batched (loadgen)")}
    peers = {k: v for k, v in peers.items() if v}
    if ours and peers:
        best = max(peers, key=lambda k: peers[k]["infer_per_sec"])
        out[f"ovfast batched / best batching peer [{best.split()[1]}] (loadgen) at c={cmax}"] = (
            ours["infer_per_sec"] / peers[best]["infer_per_sec"])
    return out


def header_lines(results: dict, fmt_rate, fmt_us) -> list[str]:
    b = results["batching"]
    n = b["max_batch_size"]
    lines = [f"dynamic batching: max_batch_size {n}, max_queue_delay_us {b['max_queue_delay_us']}"
             + (f", preferred_batch_sizes {b['preferred_batch_sizes']}" if b.get("preferred_batch_sizes") else "")
             + "; every request carries 1 row"]
    st = results.get("server_settings", {})
    for which in ("plain", "batched"):
        s = st.get(which, {})
        lines.append(f"server {which}: hint {s.get('PERFORMANCE_HINT')}, nireq {s.get('nireq')}, streams {s.get('streams')}")
    inproc = results.get("inprocess", {})
    for when in ("before", "after"):
        r = inproc.get(when)
        if not r:
            continue
        cells = []
        for key in ("b1", f"b{n}"):
            for hint, a in (r.get(key) or {}).items():
                cells.append(f"{key} {hint} (nireq {a['nireq']}, streams {a['compiled_streams']}) "
                             f"{fmt_rate(a['rows_per_sec'])} rows/s")
        lines.append(f"in-process {when} the sweep: " + "; ".join(cells))
    s = inproc.get("sync")
    if s:
        lines.append(f"in-process b1 sync (LATENCY hint, 1 request): {fmt_rate(s['infer_per_sec'])} infer/s, "
                     f"p50 {fmt_us(s['p50_us'])}, p99 {fmt_us(s['p99_us'])}")
    b1, w1 = _best_rows(results, "b1")
    bn, wn = _best_rows(results, f"b{n}")
    if b1:
        lines.append(f"baseline: in-process batch-1 {fmt_rate(b1)} infer/s ({w1}); batch-{n} "
                     f"{fmt_rate(bn)} rows/s ({wn})")
    m = b.get("metrics") or {}
    if m.get("scraped"):
        q = m.get("queue_delay_us_mean")
        lines.append(f"batched server /metrics over the whole sweep: mean batch size {m.get('batch_size_mean') or 0:.2f} "
                     f"({m.get('batch_size_count', 0):.0f} batches), mean queue delay "
                     + ("-" if q is None else f"{q:.0f} us"))
    elif "metrics" in b:
        lines.append("batched server /metrics: no ovfast_batch_size samples")
    if b.get("peer_hint"):
        lines.append(f"peers: their own server-side batching, max batch {n}, window {b['max_queue_delay_us']} us, "
                     f"hint {b['peer_hint']}; driven with ovfast's batched server by bench/loadgen.py (1-row requests)")
    for label, c in (b.get("answer_checks") or {}).items():
        lines.append(f"answers of {label.replace(' (loadgen)', '')}: {c['count']} distinct rows at once vs "
                     f"in-process: " + ("all right" if c["ok"] else f"{c['wrong']} wrong, {c['errors']} errors")
                     + ("" if c.get("max_rel_err") is None else f" (max error {c['max_rel_err']:.1e} of scale)"))
    return lines


def extra_rows(results: dict) -> list[tuple[str, dict]]:
    """Rows under the grid: per batched series, the mean batch size / queue delay of each point."""
    rows = []
    for name, points in results["series"].items():
        if name.endswith((" batched", " batched (loadgen)")):
            cells = {}
            for p in points:
                bs, q = p.get("batch_size_mean"), p.get("queue_delay_us_mean")
                if bs is not None:
                    cells[p["concurrency"]] = f"batch {bs:.2f}|q {'-' if q is None else f'{q:.0f} us'}"
            if cells or not name.endswith("(loadgen)"):  # a peer without statistics has no row
                rows.append((f"  {name}: mean batch|delay", cells))
    return rows
