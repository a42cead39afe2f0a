"""The stateful-model comparison: ``python -m bench --stateful [--concurrency 1,8,32]``.

One run, one model: Silero VAD v6 made stateful (tests/stateful_model.py builds it from the silero-vad
wheel), speech windows of 512 samples (32 ms at 16 kHz) streamed in order, each client one sequence:

  1. in-process OpenVINO, before the server starts: the stateful loop — one infer request, its state carried
     by OpenVINO from window to window, ``infer()`` per window (what an application embedding the model
     does) — windows/s and the per-window latency;
  2. ovfast with ``--stateful`` on the same IR and the same compile settings (LATENCY hint by default);
  3. at each concurrency C, C clients at once, each streaming its own sequence over gRPC (KServe
     ModelInfer with Triton's sequence parameters, the request bytes built before the clock starts):
     start, the windows of a synthesised utterance, end, and again, for ``--stateful-seconds``;
     windows/s in all and per-window latency percentiles;
  4. the in-process loop again (load drifts on a shared machine; the better reading is the baseline).

The first window answers of every concurrency are checked against the in-process loop (exact).
Ratios: throughput at the best concurrency / in-process, and the c=1 p50 beside the in-process p50.
It asserts nothing.
"""
from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import grpc
import numpy as np

from bench.servers import start_ovfast
from bench.stats import percentile, run_threads

REPO_ROOT = Path(__file__).resolve().parents[1]
INFER = "/inference.GRPCInferenceService/ModelInfer"
NAME = "vad"


def _model_module():
    """tests/stateful_model.py: the model builder, the speech synthesis and the in-process loop."""
    spec = importlib.util.spec_from_file_location("ovfast_tests_stateful_model", REPO_ROOT / "tests" / "stateful_model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def inprocess_loop(S, xml: Path, wins: list[np.ndarray], seconds: float, config: dict) -> dict:
    """The stateful loop in this process: windows/s and per-window latency (µs)."""
    compiled = S.compile_vad(xml, config)
    request = compiled.create_infer_request()
    lat: list[int] = []
    end = time.perf_counter() + seconds
    t0 = time.perf_counter()
    while time.perf_counter() < end:
        request.reset_state()
        for w in wins:
            s = time.perf_counter_ns()
            request.infer({S.INPUT: w})
            lat.append(time.perf_counter_ns() - s)
    elapsed = time.perf_counter() - t0
    us = [v / 1000 for v in lat]
    return {"windows_per_sec": len(lat) / elapsed, "p50_us": percentile(us, 50), "p99_us": percentile(us, 99),
            "windows": len(lat), "threads": int(compiled.get_property("INFERENCE_NUM_THREADS"))}


def _requests(S, wins: list[np.ndarray], seq_id: int) -> list[bytes]:
    """One sequence's ModelInfer requests, serialized: start on the first window, end on the last."""
    from tritonclient.grpc import service_pb2

    out = []
    for i, w in enumerate(wins):
        req = service_pb2.ModelInferRequest(model_name=NAME)
        t = req.inputs.add(name=S.INPUT, datatype="FP32", shape=list(w.shape))
        del t  # the data goes in raw_input_contents
        req.raw_input_contents.append(w.tobytes())
        req.parameters["sequence_id"].int64_param = seq_id
        req.parameters["sequence_start"].bool_param = i == 0
        req.parameters["sequence_end"].bool_param = i == len(wins) - 1
        out.append(req.SerializeToString())
    return out


def _first_answers(S, url: str, wins: list[np.ndarray], seq_id: int) -> np.ndarray:
    from tritonclient.grpc import service_pb2

    with grpc.insecure_channel(url) as ch:
        call = ch.unary_unary(INFER, request_serializer=None, response_deserializer=None)
        probs = []
        for raw in _requests(S, wins, seq_id):
            resp = service_pb2.ModelInferResponse.FromString(call(raw, timeout=60))
            probs.append(np.frombuffer(resp.raw_output_contents[0], np.float32)[0])
    return np.array(probs, np.float32)


def serve_sweep(S, url: str, wins: list[np.ndarray], conc: int, seconds: float) -> dict:
    """``conc`` clients, each streaming its own sequence for ``seconds``: windows/s and latency (µs)."""
    lat: list[list[int]] = [[] for _ in range(conc)]
    errors: list[str] = []

    def client(k: int, ready, deadline) -> None:
        reqs = _requests(S, wins, 10_000 + k)
        with grpc.insecure_channel(url) as ch:
            call = ch.unary_unary(INFER, request_serializer=None, response_deserializer=None)
            call(reqs[0], timeout=60)  # warm the channel with a whole sequence
            for r in reqs[1:]:
                call(r, timeout=60)
            ready()
            mine = lat[k]
            while time.perf_counter() < deadline():
                for r in reqs:
                    s = time.perf_counter_ns()
                    try:
                        call(r, timeout=60)
                    except grpc.RpcError as exc:
                        errors.append(f"{exc.code()}: {exc.details()}")
                        return
                    mine.append(time.perf_counter_ns() - s)

    elapsed = run_threads(conc, client, seconds)
    us = [v / 1000 for per in lat for v in per]
    return {"concurrency": conc, "windows_per_sec": len(us) / elapsed, "p50_us": percentile(us, 50),
            "p99_us": percentile(us, 99), "windows": len(us), "errors": errors[:3]}


def run(args, results: dict, logs: Path, log) -> None:
    """Fills ``results`` (see the module docstring)."""
    S = _model_module()
    base = args.model_cache / "silero_vad_stateful"
    if not (base / "1" / "model.xml").is_file():
        S.build_stateful_vad(base)
    xml = base / "1" / "model.xml"
    hint = args.hint or "LATENCY"
    config = {"PERFORMANCE_HINT": hint}
    wins = S.windows(S.speech(2.0, seed=7))
    reference = S.reference(S.compile_vad(xml, config), wins)
    st: dict = {"model": "silero_vad_openvino_16k (stateful)", "window_samples": S.WINDOW, "hint": hint,
                "windows_per_utterance": len(wins), "series": [], "checks": {}}
    results["stateful"] = st
    log("in-process stateful loop")
    st["inprocess"] = inprocess_loop(S, xml, wins, args.stateful_seconds, config)
    log(f"in-process: {st['inprocess']['windows_per_sec']:.0f} windows/s, p50 {st['inprocess']['p50_us']:.0f} us")
    srv = start_ovfast(NAME, base, logs / "ovfast_stateful", config, nireq=args.nireq or None,
                       extra_args=["--stateful"])
    try:
        st["server"] = srv.settings(NAME)
        for c in args.concurrency:
            got = _first_answers(S, srv.grpc_url, wins, 99_000 + c)
            st["checks"][str(c)] = float(np.max(np.abs(got - reference)))
            point = serve_sweep(S, srv.grpc_url, wins, c, args.stateful_seconds)
            log(f"ovfast grpc c={c}: {point['windows_per_sec']:.0f} windows/s, p50 {point['p50_us']:.0f} us, "
                f"p99 {point['p99_us']:.0f} us; max |served - in-process| {st['checks'][str(c)]}")
            st["series"].append(point)
    finally:
        srv.stop()
    log("in-process stateful loop (after the sweep)")
    st["inprocess_after"] = inprocess_loop(S, xml, wins, args.stateful_seconds, config)
    base_rate = max(st["inprocess"]["windows_per_sec"], st["inprocess_after"]["windows_per_sec"])
    best = max(st["series"], key=lambda p: p["windows_per_sec"])
    c1 = next((p for p in st["series"] if p["concurrency"] == 1), None)
    results["ratios"] = {
        "best_vs_inprocess": best["windows_per_sec"] / base_rate,
        "best_concurrency": best["concurrency"],
        "c1_p50_us": c1["p50_us"] if c1 else None,
        "inprocess_p50_us": min(st["inprocess"]["p50_us"], st["inprocess_after"]["p50_us"]),
    }


def table(results: dict) -> str:
    st = results["stateful"]
    lines = [f"Stateful: {st['model']}, {st['window_samples']}-sample windows, hint {st['hint']}, "
             f"server nireq {st.get('server', {}).get('nireq')}",
             f"{'series':<28}{'windows/s':>12}{'p50 us':>10}{'p99 us':>10}{'max|diff|':>11}"]
    for key in ("inprocess", "inprocess_after"):
        p = st[key]
        lines.append(f"{'in-process loop' + (' (after)' if key.endswith('after') else ''):<28}"
                     f"{p['windows_per_sec']:>12.0f}{p['p50_us']:>10.0f}{p['p99_us']:>10.0f}{'':>11}")
    for p in st["series"]:
        lines.append(f"{'ovfast grpc c=' + str(p['concurrency']):<28}{p['windows_per_sec']:>12.0f}"
                     f"{p['p50_us']:>10.0f}{p['p99_us']:>10.0f}{st['checks'][str(p['concurrency'])]:>11.1e}")
    r = results["ratios"]
    lines.append(f"best (c={r['best_concurrency']}) / in-process: {r['best_vs_inprocess']:.2f}x; "
                 f"c=1 p50 {r['c1_p50_us']:.0f} us vs in-process p50 {r['inprocess_p50_us']:.0f} us")
    return "\n".join(lines)
