"""The OCR pipeline comparison: ``python -m bench --ocr [--concurrency 1,2,4,8] [--ocr-seconds 5]``.

One run, one image (three lines of text drawn with Pillow, u8 [1,192,640,3]), PP-OCRv4 from the
``rapidocr-onnxruntime`` wheel (tests/ocr_assets.py builds the IRs and the pipeline config), four ways:

  1. in-process: the same graph with OpenVINO in this process, no server — the detector, ovfast's text_boxes
     node library called through its C ABI (ctypes), the recogniser on each line, argmax and CTC decoding —
     on C threads with infer requests of their own, the models compiled with the server's plugin config;
  2. ``pipeline``: ovfast serving the OCR pipeline (det -> text_boxes demultiplexed -> rec -> argmax, gathered):
     one KServe gRPC request per image, by bench/loadgen.py (closed loop, C coroutines), the answer decoded
     into texts as the client steps decode theirs;
  2b. ``pipeline png``: the same, the image sent as a PNG (OVMS binary input) that the server decodes once at the
     pipeline's entry for the detector and the text_boxes node;
  3. ``client steps``: the same server, the same load generator, but the client does the steps itself, model by
     model: ModelInfer on ocr_det (the probability map comes back), the text_boxes library in the client, one
     ModelInfer on ocr_rec per line (all lines at once), argmax and decoding in the client.

Before measuring, the answers are checked: every way must read the three lines exactly. On a shared machine
the series take turns at each concurrency, ``--ocr-repeats`` rounds (pipeline and client steps swapping places
every round), each keeping its best round. The server runs in the bench's session: with the kernel's autogroup
scheduling a session of its own would be a scheduling group of its own, and on a busy machine the client
steps (busy in the server and in the client) would get up to twice the CPU share of the pipeline. Ratios:
pipeline / client steps at each concurrency (images/s), and the pipeline's best / the in-process best. Each point also
records the CPU time per image it cost the server and the bench's own process (client or in-process graph):
on a shared machine, a figure that load moves less than throughput. It asserts nothing.
"""
from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from bench import loadgen
from bench.servers import start_ovfast
from bench.stats import percentile, run_threads

REPO_ROOT = Path(__file__).resolve().parents[1]
NAME = "ocr"


def _assets():
    """tests/ocr_assets.py (and tests/custom_node_ctypes.py, which it imports)."""
    tests = str(REPO_ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import ocr_assets

    return ocr_assets


def _cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) of this process, or of process ``pid``."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def with_cpu(measure, server_pid: int):
    """``measure(c)`` plus the CPU ms per image it cost the server and this process (warm-up included)."""
    def run(c: int) -> dict:
        server0, self0 = _cpu_seconds(server_pid), _cpu_seconds()
        point = measure(c)
        server, own = _cpu_seconds(server_pid) - server0, _cpu_seconds() - self0
        if point.get("count"):
            point["server_cpu_ms_per_image"] = 1000 * server / point["count"]
            point["client_cpu_ms_per_image"] = 1000 * own / point["count"]
        return point
    return run


def write_config(A, cache: Path, plugin_config: dict, nireq: int) -> Path:
    repo = cache / "ocr"
    if not (repo / "ocr_rec" / "1" / "model.xml").is_file():
        A.build_ocr_models(repo)
    config = A.ocr_config({"ocr_det": repo / "ocr_det", "ocr_rec": repo / "ocr_rec"})
    for entry in config["model_config_list"]:
        entry["config"]["plugin_config"] = plugin_config
        if nireq:
            entry["config"]["nireq"] = nireq
    path = repo / "config.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def inprocess_point(ocr, image: np.ndarray, conc: int, seconds: float) -> dict:
    """``conc`` threads, each running the graph on its own infer requests for ``seconds``: images/s, latency."""
    lat: list[list[int]] = [[] for _ in range(conc)]

    def worker(k: int, ready, deadline) -> None:
        run = ocr.session()
        run(image)  # warm
        ready()
        while time.perf_counter() < deadline():
            s = time.perf_counter_ns()
            run(image)
            lat[k].append(time.perf_counter_ns() - s)

    elapsed = run_threads(conc, worker, seconds)
    us = [v / 1000 for per in lat for v in per]
    return {"concurrency": conc, "infer_per_sec": len(us) / elapsed, "p50_us": percentile(us, 50),
            "p99_us": percentile(us, 99), "count": len(us)}


def client_steps(A, image: np.ndarray, results: list | None = None):
    """``make_call`` for loadgen.run_calls: one image's OCR done by the client, model by model."""
    from ovfast.custom_nodes import library_path

    node = A.CustomNode(library_path("text_boxes"), A.TEXT_BOX_PARAMS)

    def make_call(client):
        import tritonclient.grpc.aio as grpcclient

        det_input = grpcclient.InferInput(A.DET_INPUT, list(image.shape), "UINT8")
        det_input.set_data_from_numpy(image)
        det_output = [grpcclient.InferRequestedOutput(A.DET_OUTPUT)]
        rec_output = [grpcclient.InferRequestedOutput(A.REC_OUTPUT)]

        async def recognise(line: np.ndarray) -> str:
            rec_input = grpcclient.InferInput(A.REC_INPUT, list(line.shape), "FP32")
            rec_input.set_data_from_numpy(line)
            answer = await client.infer("ocr_rec", [rec_input], outputs=rec_output)
            return A.ctc_decode(answer.as_numpy(A.REC_OUTPUT).argmax(-1))

        async def call() -> None:
            answer = await client.infer("ocr_det", [det_input], outputs=det_output)
            found = await asyncio.to_thread(node, image=image, probability_map=answer.as_numpy(A.DET_OUTPUT))
            texts = await asyncio.gather(*(recognise(line) for line in found["text_images"]))
            if results is not None:
                results.append(list(texts))

        return call

    return make_call


def png_of(image: np.ndarray) -> np.ndarray:
    """The u8 [1,H,W,3] image as a one-element BYTES array holding its PNG."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image[0]).save(buf, format="PNG")
    return np.array([buf.getvalue()], dtype=np.object_)


def pipeline_call(A, image: np.ndarray):
    """``make_call`` for loadgen.run_calls: one image through the pipeline, its answer decoded into texts as
    the client steps decode theirs."""
    def make_call(client):
        import tritonclient.grpc.aio as grpcclient

        inp = grpcclient.InferInput("image", list(image.shape), "UINT8")
        inp.set_data_from_numpy(image)

        async def call() -> None:
            answer = await client.infer(NAME, [inp])
            A.texts_of(answer.as_numpy("text_ids"))

        return call

    return make_call


def pipeline_texts(A, url: str, image: np.ndarray) -> list[str]:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    datatype = "BYTES" if image.dtype == np.object_ else "UINT8"
    inp = grpcclient.InferInput("image", list(image.shape), datatype)
    inp.set_data_from_numpy(image)
    return A.texts_of(client.infer(NAME, [inp]).as_numpy("text_ids"))


def run(args, results: dict, logs: Path, log) -> None:
    """Fills ``results`` (see the module docstring)."""
    A = _assets()
    hint = args.hint or "THROUGHPUT"
    plugin_config = {"PERFORMANCE_HINT": hint}
    config_path = write_config(A, args.model_cache, plugin_config, args.nireq)
    image = A.render_text()
    expected = list(A.LINES)
    st: dict = {"image": list(image.shape), "lines": expected, "hint": hint, "config": str(config_path),
                "server_session": "the bench's (one scheduling group for server and client)",
                "inprocess": [], "pipeline": [], "pipeline_png": [], "client_steps": [], "checks": {}}
    png = png_of(image)
    st["png_bytes"] = len(png[0])
    results["ocr"] = st

    ocr = A.InProcessOcr(config=plugin_config)
    st["checks"]["inprocess"] = ocr(image)[0]
    # NOTE: the server stays in the bench's session. In a session of its own it would be a scheduling group
    # of its own (autogroup): on a busy machine the client steps, busy in two groups (server and client),
    # would get up to twice the CPU share of the pipeline, busy in one.
    srv = start_ovfast(NAME, None, logs / "ovfast_ocr", {}, config_path=config_path, own_session=False)
    try:
        st["server"] = {m: srv.settings(m) for m in ("ocr_det", "ocr_rec")}
        st["checks"]["pipeline"] = pipeline_texts(A, srv.grpc_url, image)
        st["checks"]["pipeline_png"] = pipeline_texts(A, srv.grpc_url, png)
        got: list = []
        loadgen.run_calls(srv.grpc_url, client_steps(A, image, got), 1, 0.0, warmup=0.0)
        st["checks"]["client_steps"] = got[0] if got else None
        pid = srv.process.proc.pid
        series = {
            "inprocess": with_cpu(lambda c: inprocess_point(ocr, image, c, args.ocr_seconds), pid),
            "pipeline": with_cpu(lambda c: loadgen.run_calls(srv.grpc_url, pipeline_call(A, image), c,
                                                             args.ocr_seconds), pid),
            "pipeline_png": with_cpu(lambda c: loadgen.run_point(srv.grpc_url, NAME, "image", png, "BYTES", c,
                                                                 args.ocr_seconds), pid),
            "client_steps": with_cpu(lambda c: loadgen.run_calls(srv.grpc_url, client_steps(A, image), c,
                                                                 args.ocr_seconds), pid),
        }
        # The machine is shared: the series take turns at each concurrency, args.ocr_repeats rounds
        # (pipeline and client steps swap places every round), and each keeps its best round (all rounds are
        # in results.json).
        for c in args.concurrency:
            trials: dict[str, list] = {k: [] for k in series}
            for r in range(max(args.ocr_repeats, 1)):
                order = (["inprocess", "pipeline", "pipeline_png", "client_steps"] if r % 2 == 0 else
                         ["inprocess", "client_steps", "pipeline_png", "pipeline"])
                for key in order:
                    trials[key].append(series[key](c))
            for key, points in trials.items():
                point = max(points, key=lambda p: p.get("infer_per_sec", 0.0))
                point["trials"] = [round(p.get("infer_per_sec", 0.0), 2) for p in points]
                log(f"{key} c={c}: " + (f"{point['infer_per_sec']:.1f} images/s (rounds {point['trials']}), "
                                         f"p50 {point['p50_us'] / 1000:.1f} ms"
                                         if "error" not in point else f"error: {point['error']}"))
                st[key].append(point)
    finally:
        srv.stop()

    st["checks_ok"] = all(v == expected for v in st["checks"].values())
    best = {k: max((p.get("infer_per_sec", 0.0) for p in st[k]), default=0.0)
            for k in ("inprocess", "pipeline", "pipeline_png", "client_steps")}
    results["ratios"] = {
        "pipeline_vs_client_steps": {str(p["concurrency"]): p.get("infer_per_sec", 0.0) / max(s.get("infer_per_sec", 0.0), 1e-9)
                                     for p, s in zip(st["pipeline"], st["client_steps"])},
        "pipeline_best_vs_inprocess_best": best["pipeline"] / max(best["inprocess"], 1e-9),
        "pipeline_png_vs_pipeline": {str(p["concurrency"]): p.get("infer_per_sec", 0.0) / max(q.get("infer_per_sec", 0.0), 1e-9)
                                     for p, q in zip(st["pipeline_png"], st["pipeline"])},
        "best": best,
    }


def table(results: dict) -> str:
    st = results["ocr"]
    lines = [f"OCR pipeline (PP-OCRv4 det + text_boxes + rec + argmax), image {st['image']}, hint {st['hint']}; "
             f"answers right: {st['checks_ok']}",
             f"{'series':<24}{'images/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'cpu ms/img':>12}"]
    for key, label in (("inprocess", "in-process"), ("pipeline", "pipeline grpc"), ("pipeline_png", "pipeline png grpc"),
                       ("client_steps", "client steps grpc")):
        for p in st.get(key, []):
            name = f"{label} c={p['concurrency']}"
            if "error" in p:
                lines.append(f"{name:<24}error: {p['error']}")
                continue
            cpu = p.get("server_cpu_ms_per_image", 0.0) + p.get("client_cpu_ms_per_image", 0.0)
            lines.append(f"{name:<24}{p['infer_per_sec']:>10.1f}{p['p50_us'] / 1000:>9.1f}{p['p99_us'] / 1000:>9.1f}"
                         f"{cpu:>12.1f}")
    r = results["ratios"]
    per_c = ", ".join(f"c={c}: {v:.2f}x" for c, v in r["pipeline_vs_client_steps"].items())
    lines.append(f"pipeline / client steps: {per_c}")
    if r.get("pipeline_png_vs_pipeline"):
        png = ", ".join(f"c={c}: {v:.2f}x" for c, v in r["pipeline_png_vs_pipeline"].items())
        lines.append(f"pipeline png ({st.get('png_bytes', 0)} bytes) / pipeline raw u8: {png}")
    lines.append(f"pipeline best / in-process best: {r['pipeline_best_vs_inprocess_best']:.2f}x "
                 f"({r['best']['pipeline']:.1f} vs {r['best']['inprocess']:.1f} images/s)")
    return "\n".join(lines)
