"""``python -m bench --soak --minutes 30``: mixed hostile and good traffic against one ovfast server.

Every API carries good requests whose answers are checked value by value (KServe gRPC and REST, TF
Serving gRPC and REST, on several models), while other threads send bad requests (wrong sizes,
unknown models, malformed protobuf and JSON, 20 MB of empty ``inputs`` entries past the decoding
limits, oversized and gzip-compressed messages), hold slow REST connections that trickle their
request out, and rewrite config.json every few seconds (a model comes and goes; the served ones are
rewritten unchanged). The server's RSS and open descriptors are sampled throughout.

It reports good requests lost (every good request that did not come back right: must be 0) and the
RSS growth from the end of the warm-up to the end of the run (must be under 5 %), prints a summary,
writes ``soak.json`` to --out, and exits 1 when either bound is missed. Not run by CI.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import numpy as np
import openvino as ov
from openvino import opset13 as ops

from bench.servers import ServerProcess, free_ports

MB = 1 << 20
STABLE = {"add1": 1.0, "add2": 2.0, "add3": 3.0}  # name -> addend; input b f32 [1,10] -> output a = b + addend
COMING_AND_GOING = "flux"
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
PREDICT = "/tensorflow.serving.PredictionService/Predict"


def build_models(root: Path) -> dict[str, Path]:
    paths = {}
    for name, addend in {**STABLE, COMING_AND_GOING: 9.0}.items():
        b = ops.parameter([1, 10], ov.Type.f32, name="b")
        b.output(0).get_tensor().set_names({"b"})
        a = ops.add(b, ops.constant(np.float32(addend)))
        a.output(0).get_tensor().set_names({"a"})
        d = root / name / "1"
        d.mkdir(parents=True, exist_ok=True)
        ov.save_model(ov.Model([ops.result(a)], [b], name), d / "model.xml")
        paths[name] = root / name
    return paths


class Tally:
    """Thread-safe counters: good requests by API, losses with a few samples, bad-request outcomes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.good: Counter = Counter()
        self.lost: Counter = Counter()
        self.lost_samples: list[str] = []
        self.bad: Counter = Counter()
        self.unexpected: list[str] = []

    def ok(self, api: str) -> None:
        with self.lock:
            self.good[api] += 1

    def loss(self, api: str, why: str) -> None:
        with self.lock:
            self.lost[api] += 1
            if len(self.lost_samples) < 20:
                self.lost_samples.append(f"{api}: {why[:300]}")

    def bad_answer(self, kind: str, expected: bool, what: str) -> None:
        with self.lock:
            self.bad[f"{kind}: {'as expected' if expected else 'UNEXPECTED'}"] += 1
            if not expected and len(self.unexpected) < 20:
                self.unexpected.append(f"{kind}: {what[:300]}")


class Soak:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.tally = Tally()
        self.stop = threading.Event()
        self.samples: list[tuple[float, float, int]] = []  # (t, rss MB, open fds)
        self.rewrites = 0
        self.slow_outcomes: Counter = Counter()
        self.paths = build_models(workdir / "models")
        self.config = workdir / "config.json"
        self.write_config(with_flux=True)
        grpc_port, rest_port = free_ports(2)
        self.grpc_url, self.http_host, self.http_port = f"127.0.0.1:{grpc_port}", "127.0.0.1", rest_port
        cmd = [sys.executable, "-m", "ovfast", "--config_path", str(self.config), "--port", str(grpc_port),
               "--rest_port", str(rest_port), "--grpc_bind_address", "127.0.0.1", "--rest_bind_address",
               "127.0.0.1", "--file_system_poll_wait_seconds", "1", "--log_level", "WARNING"]
        self.server = ServerProcess(cmd, workdir / "server", f"http://127.0.0.1:{rest_port}/v2/health/ready")
        self.server.wait_ready(180)
        self.pid = self.server.proc.pid

    # -- config rewrites --------------------------------------------------------------------------
    def write_config(self, with_flux: bool) -> None:
        names = [*STABLE, *([COMING_AND_GOING] if with_flux else [])]
        cfg = {"model_config_list": [{"config": {"name": n, "base_path": str(self.paths[n])}} for n in names]}
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(json.dumps(cfg, indent=2))
        os.replace(tmp, self.config)

    def rewriter(self) -> None:
        flux = True
        while not self.stop.wait(self.args.rewrite_s):
            flux = not flux
            self.write_config(with_flux=flux)
            self.rewrites += 1

    # -- good traffic: every answer is checked ------------------------------------------------------
    def good_kserve_grpc(self) -> None:
        import tritonclient.grpc as grpcclient

        client = grpcclient.InferenceServerClient(self.grpc_url)
        compressed = 0
        while not self.stop.is_set():
            name, addend = random.choice(list(STABLE.items()))
            x = np.random.rand(1, 10).astype(np.float32)
            inp = grpcclient.InferInput("b", [1, 10], "FP32")
            inp.set_data_from_numpy(x)
            compressed += 1
            algo = "gzip" if compressed % 5 == 0 else None  # one in five gzip-compressed
            try:
                out = client.infer(name, [inp], client_timeout=60, compression_algorithm=algo).as_numpy("a")
                if np.allclose(out, x + addend):
                    self.tally.ok("kserve-grpc")
                else:
                    self.tally.loss("kserve-grpc", f"{name}: wrong values {out}")
            except Exception as exc:  # noqa: BLE001 - every failure of a good request is a loss
                self.tally.loss("kserve-grpc", f"{name}: {exc}")

    def _rest(self, method: str, path: str, body: bytes | None, timeout: float = 60) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.http_host, self.http_port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def good_kserve_rest(self) -> None:
        while not self.stop.is_set():
            name, addend = random.choice(list(STABLE.items()))
            x = np.random.rand(10).astype(np.float32)
            body = json.dumps({"inputs": [{"name": "b", "shape": [1, 10], "datatype": "FP32",
                                           "data": x.tolist()}]}).encode()
            try:
                status, data = self._rest("POST", f"/v2/models/{name}/infer", body)
                out = np.array(json.loads(data)["outputs"][0]["data"], np.float32) if status == 200 else None
                if out is not None and np.allclose(out, x + addend):
                    self.tally.ok("kserve-rest")
                else:
                    self.tally.loss("kserve-rest", f"{name}: {status} {data[:200]!r}")
            except Exception as exc:  # noqa: BLE001
                self.tally.loss("kserve-rest", f"{name}: {exc}")

    def good_tfs_grpc(self) -> None:
        from ovmsclient import make_grpc_client

        client = make_grpc_client(self.grpc_url)
        while not self.stop.is_set():
            name, addend = random.choice(list(STABLE.items()))
            x = np.random.rand(1, 10).astype(np.float32)
            try:
                out = client.predict({"b": x}, name, timeout=60)
                if np.allclose(out, x + addend):
                    self.tally.ok("tfs-grpc")
                else:
                    self.tally.loss("tfs-grpc", f"{name}: wrong values")
            except Exception as exc:  # noqa: BLE001
                self.tally.loss("tfs-grpc", f"{name}: {exc!r}")

    def good_tfs_rest(self) -> None:
        while not self.stop.is_set():
            name, addend = random.choice(list(STABLE.items()))
            x = np.random.rand(1, 10).astype(np.float32)
            body = json.dumps({"instances": x.tolist()}).encode()
            try:
                status, data = self._rest("POST", f"/v1/models/{name}:predict", body)
                out = np.array(json.loads(data)["predictions"], np.float32) if status == 200 else None
                if out is not None and np.allclose(out, x + addend):
                    self.tally.ok("tfs-rest")
                else:
                    self.tally.loss("tfs-rest", f"{name}: {status} {data[:200]!r}")
            except Exception as exc:  # noqa: BLE001
                self.tally.loss("tfs-rest", f"{name}: {exc}")

    # -- bad traffic: every one must be answered with the right kind of error -------------------------
    def bad_requests(self) -> None:
        from ovfast._gen.kserve import grpc_predict_v2_pb2 as pb

        ch = grpc.insecure_channel(self.grpc_url, options=[("grpc.max_send_message_length", -1)])
        gz = grpc.insecure_channel(self.grpc_url, options=[("grpc.max_send_message_length", -1)],
                                   compression=grpc.Compression.Gzip)
        infer = ch.unary_unary(MODEL_INFER, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        infer_gz = gz.unary_unary(MODEL_INFER, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        predict = ch.unary_unary(PREDICT, request_serializer=lambda b: b, response_deserializer=lambda b: b)

        def kserve(model: str, raw: bytes) -> bytes:
            req = pb.ModelInferRequest(model_name=model)
            req.inputs.add(name="b", datatype="FP32", shape=[1, 10])
            req.raw_input_contents.append(raw)
            return req.SerializeToString()

        INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
        grpc_cases = [
            ("wrong size", infer, kserve("add1", b"\0" * 12), {INVALID}),
            ("unknown model", infer, kserve("nope", b"\0" * 40), {NOT_FOUND}),
            ("malformed protobuf", infer, b"\x0a\xff\xff\xff\x0f" + b"x" * 100, {INVALID}),
            ("20 MB of empty inputs", infer, b"\x0a\x04add1" + b"\x2a\x00" * (10 * MB), {INVALID}),
            ("20 MB of empty outputs", infer, b"\x0a\x04add1" + b"\x32\x00" * (10 * MB), {INVALID}),
            ("oversized 64 MB", infer, kserve("add2", bytes(64 * MB)), {INVALID}),
            ("gzip 256 MB wrong size", infer_gz, kserve("add3", bytes(256 * MB)), {INVALID}),
            ("tfs malformed", predict, b"\x12\x05\x0a\x01", {INVALID}),
        ]
        rest_cases = [
            ("rest bad json", "/v2/models/add1/infer", b'{"inputs": [', {400}),
            ("rest wrong shape", "/v2/models/add1/infer",
             json.dumps({"inputs": [{"name": "b", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}).encode(),
             {400}),
            ("rest unknown model", "/v2/models/nope/infer", b'{"inputs": []}', {404}),
            ("rest too many inputs", "/v2/models/add1/infer",
             json.dumps({"inputs": [{"name": "b", "shape": [1], "datatype": "FP32", "data": [1]}] * 5000}).encode(),
             {400}),
            ("tfs rest bad", "/v1/models/add1:predict", b'{"instances": [[1, 2]]}', {400}),
        ]
        i = 0
        while not self.stop.is_set():
            i += 1
            kind, call, payload, codes = grpc_cases[i % len(grpc_cases)]
            try:
                call(payload, timeout=120)
                self.tally.bad_answer(kind, False, "accepted")
            except grpc.RpcError as exc:
                self.tally.bad_answer(kind, exc.code() in codes, f"{exc.code()} {exc.details()}")
            kind, path, body, statuses = rest_cases[i % len(rest_cases)]
            try:
                status, data = self._rest("POST", path, body)
                self.tally.bad_answer(kind, status in statuses, f"{status} {data[:200]!r}")
            except Exception as exc:  # noqa: BLE001
                self.tally.bad_answer(kind, False, repr(exc))
            self.stop.wait(0.2)
        ch.close()
        gz.close()

    def slow_clients(self) -> None:
        """Connections that trickle a request out a byte at a time, a few at once, some abandoned."""
        body = json.dumps({"inputs": [{"name": "b", "shape": [1, 10], "datatype": "FP32", "data": [0] * 10}]})
        request = (f"POST /v2/models/add1/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n{body}").encode()

        def one(n: int) -> None:
            try:
                with socket.create_connection((self.http_host, self.http_port), timeout=60) as s:
                    cut = len(request) // 2 if n % 3 == 0 else len(request)  # one in three walks away
                    for b in request[:cut]:
                        if self.stop.is_set():
                            return
                        s.sendall(bytes([b]))
                        time.sleep(0.02)
                    if cut < len(request):
                        self.slow_outcomes["abandoned mid-request"] += 1
                        return
                    reply = s.recv(64)
                    self.slow_outcomes[reply.split(b"\r\n", 1)[0].decode(errors="replace") or "closed"] += 1
            except OSError as exc:
                self.slow_outcomes[type(exc).__name__] += 1

        n = 0
        while not self.stop.is_set():
            threads = [threading.Thread(target=one, args=(n + k,), daemon=True) for k in range(4)]
            n += 4
            for t in threads:
                t.start()
            for t in threads:
                t.join()

    # -- sampling ------------------------------------------------------------------------------------
    def sampler(self, t0: float) -> None:
        while True:
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    rss = next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))
                fds = len(os.listdir(f"/proc/{self.pid}/fd"))
            except (OSError, StopIteration):
                return
            self.samples.append((time.monotonic() - t0, rss, fds))
            if self.stop.wait(self.args.sample_s):
                return

    def run(self) -> dict:
        seconds = self.args.minutes * 60
        t0 = time.monotonic()
        workers = [self.good_kserve_grpc, self.good_kserve_grpc, self.good_kserve_rest, self.good_tfs_grpc,
                   self.good_tfs_rest, self.bad_requests, self.slow_clients, self.rewriter]
        threads = [threading.Thread(target=w, daemon=True, name=w.__name__) for w in workers]
        threads.append(threading.Thread(target=self.sampler, args=(t0,), daemon=True))
        for t in threads:
            t.start()
        while time.monotonic() - t0 < seconds and self.server.proc.poll() is None:
            time.sleep(min(30, seconds))
            done = time.monotonic() - t0
            print(f"[{done / 60:5.1f} min] good {sum(self.tally.good.values())}, lost {sum(self.tally.lost.values())}, "
                  f"bad {sum(self.tally.bad.values())}, rss {self.samples[-1][1] if self.samples else 0:.0f} MB, "
                  f"fds {self.samples[-1][2] if self.samples else 0}", flush=True)
        self.stop.set()
        for t in threads:
            t.join(timeout=150)
        crashed = self.server.proc.poll() is not None
        self.server.stop()
        return self.summary(seconds, crashed)

    def summary(self, seconds: float, crashed: bool) -> dict:
        warm = self.args.warmup_minutes * 60
        window = max(60.0, seconds * 0.1)
        after_warm = [s[1] for s in self.samples if warm <= s[0] < warm + window]
        last = [s[1] for s in self.samples if s[0] >= seconds - window]
        base = statistics.median(after_warm) if after_warm else float("nan")
        end = statistics.median(last) if last else float("nan")
        growth = (end - base) / base * 100 if after_warm and last else float("nan")
        lost = sum(self.tally.lost.values())
        return {
            "minutes": self.args.minutes, "warmup_minutes": self.args.warmup_minutes, "server_crashed": crashed,
            "good_requests": dict(self.tally.good), "good_total": sum(self.tally.good.values()),
            "lost": dict(self.tally.lost), "lost_total": lost, "lost_samples": self.tally.lost_samples,
            "bad_requests": dict(self.tally.bad), "unexpected_bad_answers": self.tally.unexpected,
            "slow_clients": dict(self.slow_outcomes), "config_rewrites": self.rewrites,
            "rss_mb": {"after_warmup_median": base, "final_median": end, "growth_percent": growth,
                       "min": min(s[1] for s in self.samples), "max": max(s[1] for s in self.samples)},
            "fds": {"min": min(s[2] for s in self.samples), "max": max(s[2] for s in self.samples),
                    "final": self.samples[-1][2]},
            "samples": self.samples,
            "passed": not crashed and lost == 0 and growth < 5.0,
        }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench --soak", description=__doc__.split("\n")[0])
    p.add_argument("--soak", action="store_true", help="(selects this mode)")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--warmup-minutes", type=float, default=None, help="default: a tenth of the run, at most 3")
    p.add_argument("--rewrite-s", type=float, default=3.0, help="config.json rewrite period")
    p.add_argument("--sample-s", type=float, default=5.0, help="RSS / descriptor sampling period")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "soak")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.warmup_minutes is None:
        args.warmup_minutes = min(3.0, args.minutes / 10)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    soak = Soak(args, args.out)
    print(f"soak: {args.minutes} min against pid {soak.pid} (gRPC {soak.grpc_url}, REST {soak.http_port})", flush=True)
    result = soak.run()
    (args.out / "soak.json").write_text(json.dumps(result, indent=1))
    shown = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(shown, indent=1))
    print(f"soak {'PASSED' if result['passed'] else 'FAILED'}: {result['good_total']} good requests, "
          f"{result['lost_total']} lost; RSS {result['rss_mb']['after_warmup_median']:.0f} -> "
          f"{result['rss_mb']['final_median']:.0f} MB ({result['rss_mb']['growth_percent']:+.2f} %) after warm-up; "
          f"descriptors {result['fds']['min']}..{result['fds']['max']}", flush=True)
    return 0 if result["passed"] else 1
