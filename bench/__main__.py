"""``python -m bench --model {resnet50,tiny,mlp,effnet}``: ovfast against its yardsticks, in one run.

Order of a run (each step on the same machine, same model, same compile settings):
  1. build the model (cached) and start ovfast on it; read nireq/streams from its log
  2. in-process OpenVINO: AsyncInferQueue throughput with the server's hint/streams/nireq, and
     single-request sync latency with the LATENCY hint (the limit); the async reading is taken
     again after step 3, and ratios use the better of the two
  3. at each concurrency in turn: perf_analyzer against ovfast over gRPC and REST, against
     ``ovfast --echo`` (no inference: the server floor) over gRPC and REST, and against the two
     gRPC transport floors (bench/floors/: grpc.aio and grpc++ endpoints replaying ovfast's
     canned answers); with --peers, the Python load generator against ovfast
  4. with --peers: each peer (MLServer, KServe
     Python server, PyTriton) installed in its own virtualenv under bench/.venvs/
It prints a table and ratios, and writes results.json and results.png to --out. It asserts nothing.

``--batching N`` runs the dynamic batching comparison instead (see bench/batching.py): in-process
batch-1 and batch-N, then ovfast plain and ovfast with ``--max_batch_size N`` under batch-1 requests;
with ``--peers``, the batched ovfast and the peers that batch (PyTriton, MLServer) through the loadgen.

``--stateful`` runs the stateful-model comparison instead (see bench/stateful.py): Silero VAD streamed window
by window, one sequence per client, at ``--concurrency`` (default there 1,8,32) against the in-process
stateful loop.

``--ocr`` runs the OCR pipeline comparison instead (see bench/ocr.py): PP-OCRv4 served as one DAG pipeline
request against a client doing the same steps model by model, and against the graph run in-process
(``--concurrency`` default there 1,2,4,8).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import batching, density, floors, inprocess, loadgen, ocr, perf, report, stateful
from bench.models import MLP_DIMS, MODEL_NAMES, MlpDims, ModelUnavailable, get_model
from bench.servers import start_ovfast

BENCH_DIR = Path(__file__).resolve().parent


def machine_info() -> dict:
    cpu = "unknown"
    flags: list[str] = []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].split()
    except OSError:
        pass
    try:
        loadavg = Path("/proc/loadavg").read_text().strip()
    except OSError:
        loadavg = "unknown"
    interesting = [f for f in flags if f.startswith(("avx512", "amx")) or f in ("avx2", "avx_vnni")]
    return {"nproc": os.cpu_count(), "cpu": cpu, "isa": interesting, "loadavg_start": loadavg,
            "python": platform.python_version(), "platform": platform.platform()}


def _parse_conc(text: str) -> list[int]:
    try:
        vals = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--concurrency wants integers like 1,2,4: {text!r}") from None
    if not vals or vals[0] < 1:
        raise argparse.ArgumentTypeError("--concurrency values must be >= 1")
    return vals


def _parse_dims(text: str) -> MlpDims:
    try:
        return MlpDims.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=MODEL_NAMES, help="the model (every run but --density and --stateful)")
    p.add_argument("--concurrency", type=_parse_conc, default=_parse_conc("1,2,4,8,16"),
                   help="comma-separated concurrency sweep (default 1,2,4,8,16)")
    p.add_argument("--peers", action="store_true", help="also run MLServer, KServe Python server, PyTriton")
    p.add_argument("--peer-list", default="mlserver,kserve,pytriton", help="which peers with --peers")
    p.add_argument("--out", type=Path, default=None, help="output directory (default bench/results/<model>)")
    p.add_argument("--hint", default=None, choices=["THROUGHPUT", "LATENCY", "CUMULATIVE_THROUGHPUT"],
                   help="PERFORMANCE_HINT given to the server and to the in-process async run (default "
                        "THROUGHPUT; with --batching: the unbatched server's, default the in-process batch-1 winner)")
    p.add_argument("--nireq", type=int, default=0, help="server nireq (0 = OpenVINO's optimal number)")
    g = p.add_argument_group("dynamic batching (--batching N)")
    g.add_argument("--batching", type=int, default=0, metavar="N",
                   help="compare ovfast with and without --max_batch_size N on batch-1 requests (needs a model "
                        "with a dynamic batch dimension: mlp)")
    g.add_argument("--queue-delay-us", type=int, default=500, help="--max_queue_delay_us of the batched server")
    g.add_argument("--preferred-batch-sizes", default="", help="--preferred_batch_sizes of the batched server")
    g.add_argument("--batch-hint", default=None, choices=["THROUGHPUT", "LATENCY", "CUMULATIVE_THROUGHPUT"],
                   help="PERFORMANCE_HINT of the batched server (default: the in-process batch-N winner)")
    g.add_argument("--batch-nireq", type=int, default=0,
                   help="nireq of the batched server (default 0: OpenVINO's optimal number for its hint)")
    s = p.add_argument_group("stateful models (--stateful)")
    s.add_argument("--stateful", action="store_true",
                   help="stream Silero VAD windows as sequences through ovfast against the in-process stateful loop "
                        "(concurrency default 1,8,32; --hint default LATENCY)")
    s.add_argument("--stateful-seconds", type=float, default=5.0, help="seconds per series")
    o = p.add_argument_group("OCR pipeline (--ocr)")
    o.add_argument("--ocr", action="store_true",
                   help="PP-OCRv4 served as one pipeline request vs a client calling the models step by step vs "
                        "the same graph in-process (bench/ocr.py)")
    o.add_argument("--ocr-seconds", type=float, default=5.0, help="seconds per point")
    o.add_argument("--ocr-repeats", type=int, default=2, help="rounds per concurrency (each series keeps its best)")
    p.add_argument("--mlp-dims", type=_parse_dims, default=MLP_DIMS, metavar="IN,HIDDEN,LAYERS[,OUT]",
                   help="size of the mlp model (default %(default)s)")
    p.add_argument("--batch", type=int, default=1, help="rows per request for the dynamic-batch mlp model")
    p.add_argument("--interval-ms", type=int, default=3000, help="perf_analyzer measurement window (-p)")
    p.add_argument("--stability", type=int, default=20, help="perf_analyzer -s (percent)")
    p.add_argument("--max-trials", type=int, default=5, help="perf_analyzer -r")
    p.add_argument("--count-window", type=int, default=0,
                   help="perf_analyzer windows of N requests (count_windows mode) instead of --interval-ms")
    p.add_argument("--inprocess-seconds", type=float, default=5.0)
    p.add_argument("--loadgen-seconds", type=float, default=5.0)
    p.add_argument("--no-rest", action="store_true", help="skip the REST series")
    p.add_argument("--no-echo", action="store_true", help="skip the --echo server floor")
    p.add_argument("--no-floors", action="store_true",
                   help="skip the gRPC transport floors (grpc.aio and grpc++ do-nothing endpoints)")
    p.add_argument("--model-cache", type=Path, default=BENCH_DIR / ".models")
    density.add_arguments(p)
    return p


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def perf_sweep(label: str, model, url: str, protocol: str, conc: list[int], workdir: Path,
               settings: perf.PerfSettings, model_version: str | None = None) -> list[dict]:
    shape = f"{model.input_name}:{','.join(map(str, model.input_shape))}" if model.name == "mlp" else None
    points = []
    for c in conc:
        p = perf.run_point(model.name, url, protocol, c, workdir, settings, shape=shape, model_version=model_version)
        log(f"{label} c={c}: " + (f"{p['infer_per_sec']:.1f} infer/s p50 {p['p50_us']:.0f} us"
                                   if "error" not in p else f"error: {p['error']}"))
        points.append(p)
    return points


def loadgen_sweep(label: str, url: str, model, conc: list[int], seconds: float) -> list[dict]:
    data = model.sample()
    points = []
    for c in conc:
        p = loadgen.run_point(url, model.name, model.input_name, data, model.datatype, c, seconds)
        log(f"{label} c={c}: " + (f"{p['infer_per_sec']:.1f} infer/s p50 {p['p50_us']:.0f} us"
                                   if "error" not in p else f"error: {p['error']}"))
        points.append(p)
    return points


def run_comparison(module, args: argparse.Namespace, out: Path) -> dict:
    """A one-model comparison with its own series (bench/stateful.py, bench/ocr.py): ``module.run`` fills it."""
    results: dict = {"machine": machine_info(), "concurrency": args.concurrency, "unavailable": {},
                     "command": " ".join([sys.executable, "-m", "bench", *sys.argv[1:]]),
                     "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    module.run(args, results, out / "logs", log)
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return results


def run(args: argparse.Namespace) -> dict:
    out = (args.out or (BENCH_DIR / "results" / args.model)).resolve()  # servers run with other cwds
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    conc = args.concurrency
    settings = perf.PerfSettings(args.interval_ms, args.stability, args.max_trials, count_window=args.count_window)
    results: dict = {"machine": machine_info(), "concurrency": conc, "series": {}, "unavailable": {},
                     "command": " ".join([sys.executable, "-m", "bench", *sys.argv[1:]]),
                     "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     "perf_settings": {"interval_ms": settings.interval_ms, "stability_pct": settings.stability_pct,
                                       "max_trials": settings.max_trials,
                                       "count_window": settings.count_window}}
    try:
        model = get_model(args.model, args.model_cache, batch=args.batch, mlp_dims=args.mlp_dims)
    except ModelUnavailable as exc:
        results["model"] = {"name": args.model}
        results["unavailable"][args.model] = str(exc)
        log(f"model {args.model}: not available ({exc})")
        return results
    results["model"] = {"name": model.name, "path": str(model.xml), "input": model.input_name,
                        "shape": list(model.input_shape), "datatype": model.datatype, **model.extra}
    if args.batching:
        try:
            batching.run(args, results, model, logs, settings, log, perf_sweep, loadgen_sweep)
        except batching.NotBatchable as exc:
            results["unavailable"][f"{args.model} batching"] = str(exc)
            log(f"batching: {exc}")
        return _finish(results)
    args.hint = args.hint or "THROUGHPUT"
    plugin_config = {"PERFORMANCE_HINT": args.hint}
    data = model.sample()

    log(f"starting ovfast on {model.name} ({plugin_config})" + ("" if args.no_echo else ", and ovfast --echo"))
    floor_list: dict = {}
    with ThreadPoolExecutor(3) as pool:  # both start at once; the echo server idles until its turn
        # the grpc++ floor compiles (first use only) while the servers load; leaving the pool waits
        # for it, so no compile runs while anything is measured
        f_exe = None if args.no_floors else pool.submit(floors.build_grpcpp, BENCH_DIR / ".cache",
                                                        logs / "floor_grpcpp" / "build.log")
        f_srv = pool.submit(start_ovfast, model.name, model.base_path, logs / "ovfast", plugin_config,
                            nireq=args.nireq)
        f_echo = None if args.no_echo else pool.submit(start_ovfast, model.name, model.base_path, logs / "echo",
                                                       plugin_config, echo=True)
        try:
            srv = f_srv.result()
        except BaseException:
            if f_echo is not None and f_echo.exception() is None:
                f_echo.result().stop()
            raise
        try:
            echo = f_echo.result() if f_echo is not None else None
        except BaseException:
            srv.stop()
            raise
    try:
        st = srv.settings(model.name)
        results["server_settings"] = {"PERFORMANCE_HINT": args.hint, **st}
        log(f"server: {st.get('log_line')}")
        nireq, streams = st.get("nireq", 1), st.get("streams", 1)
        log("in-process async throughput")
        a_cfg = {"PERFORMANCE_HINT": args.hint, "NUM_STREAMS": str(streams)}
        results["inprocess"] = {
            "async": inprocess.async_throughput(str(model.xml), model.input_name, data, a_cfg, nireq,
                                                args.inprocess_seconds)}
        if f_exe is not None:
            floor_list, why_not = floors.start_all(srv.grpc_url, model, f_exe, out, logs, log)
            results["unavailable"].update(why_not)
        log("in-process sync latency")
        results["inprocess"]["sync"] = inprocess.sync_latency(str(model.xml), model.input_name, data,
                                                              args.inprocess_seconds)
        # every series at one concurrency, then the next: on a shared machine, load drifts over
        # minutes, and interleaving keeps the series of one column comparable
        plan = [("ovfast grpc", srv.grpc_url, "grpc", None)]
        if not args.no_rest:
            plan.append(("ovfast rest", srv.http_url, "http", None))
        if echo is not None:
            plan.append(("echo grpc", echo.grpc_url, "grpc", None))
            if not args.no_rest:
                plan.append(("echo rest", echo.http_url, "http", None))
        for label, floor in floor_list.items():
            plan.append((label, floor.grpc_url, "grpc", floor.model_version))
        for label, *_ in plan:
            results["series"][label] = []
        if args.peers:
            results["series"]["ovfast grpc (loadgen)"] = []
        for c in conc:
            for label, url, protocol, version in plan:
                workdir = logs / floors.PERF_DIRS.get(label, "perf_" + label.split()[0])
                results["series"][label] += perf_sweep(label, model, url, protocol, [c], workdir, settings, version)
            if args.peers:
                results["series"]["ovfast grpc (loadgen)"] += loadgen_sweep("ovfast grpc (loadgen)", srv.grpc_url,
                                                                            model, [c], args.loadgen_seconds)
        # the limit again, after the sweep: on a shared machine the load moves; both readings are kept
        log("in-process async throughput (after the sweep)")
        results["inprocess"]["async_after"] = inprocess.async_throughput(
            str(model.xml), model.input_name, data, a_cfg, nireq, args.inprocess_seconds)
    finally:
        srv.stop()
        if echo is not None:
            echo.stop()
        for floor in floor_list.values():
            floor.stop()

    if args.peers:
        from bench import peers

        for name in [p.strip() for p in args.peer_list.split(",") if p.strip()]:
            try:
                log(f"peer {name}: preparing venv and starting")
                with peers.start(name, model, args.hint, BENCH_DIR / ".venvs", logs / f"peer_{name}") as peer:
                    results["series"][f"peer {name} (loadgen)"] = loadgen_sweep(
                        f"peer {name} (loadgen)", peer.grpc_url, model, conc, args.loadgen_seconds)
                    if peer.perf_analyzer_ok:
                        results["series"][f"peer {name} grpc"] = perf_sweep(
                            f"peer {name} grpc", model, peer.grpc_url, "grpc", conc, logs / f"perf_{name}", settings)
            except peers.PeerUnavailable as exc:
                results["unavailable"][f"peer {name}"] = str(exc)
                log(f"peer {name}: not available ({exc})")

    return _finish(results)


def _finish(results: dict) -> dict:
    results["ratios"] = (batching.compute_ratios(results) if "batching" in results
                         else report.compute_ratios(results))
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        results["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().strip()
    except OSError:
        pass
    return results


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    if "--soak" in given:  # the soak run has its own options (bench/soak.py)
        from bench import soak
        return soak.main(given)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.density:
        return density.main(args)
    for flag, module, default_conc in (("stateful", stateful, [1, 8, 32]), ("ocr", ocr, [1, 2, 4, 8])):
        if not getattr(args, flag):
            continue
        if args.batching:
            parser.error(f"--{flag} and --batching are separate comparisons")
        if "--concurrency" not in (sys.argv[1:] if argv is None else argv):
            args.concurrency = default_conc
        out = (args.out or (BENCH_DIR / "results" / flag)).resolve()
        out.mkdir(parents=True, exist_ok=True)
        results = run_comparison(module, args, out)
        print(module.table(results), flush=True)
        report.write_json(results, out / "results.json")
        log(f"wrote {out / 'results.json'}")
        return 0
    if not args.model:
        parser.error("--model is required (or --density, --stateful, --ocr)")
    if args.batching < 0 or args.batching == 1:
        parser.error("--batching wants a max_batch_size >= 2")
    if args.batching and args.batch != 1:
        parser.error("--batching compares batch-1 requests; leave --batch at 1")
    out = (args.out or (BENCH_DIR / "results" / args.model)).resolve()
    results = run(args)
    out.mkdir(parents=True, exist_ok=True)
    if "series" in results and results["series"]:
        print(report.table(results), flush=True)
        why = report.plot(results, out / "results.png")
        if why:
            log(f"no plot: {why}")
            results["plot"] = why
        else:
            results["plot"] = str(out / "results.png")
    else:
        for k, v in results["unavailable"].items():
            print(f"{k}: not available ({v})", flush=True)
    report.write_json(results, out / "results.json")
    log(f"wrote {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
