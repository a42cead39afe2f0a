"""A grpc++ closed-loop load generator for KServe ModelInfer (``native_load.cc``), for benches whose
Python client would cost more CPU than the server's work and so measure itself (many small models).

Python prepares the requests (serialized ``ModelInferRequest`` bytes, one per distinct request) and
the order they are sent in; the C++ client sends them from N threads over one channel and returns
per-request latencies. Compiled on first use into ``bench/.cache`` like the grpc++ floor.
"""
from __future__ import annotations

import json
import struct
import subprocess
import tempfile
from pathlib import Path

from bench.floors import FloorUnavailable, build_grpcpp

BENCH_DIR = Path(__file__).resolve().parent
SOURCE = BENCH_DIR / "native_load.cc"


class NativeLoad:
    """The compiled load generator; ``unavailable`` says why not when it could not be built."""

    def __init__(self, cache_dir: Path = BENCH_DIR / ".cache") -> None:
        self.exe: Path | None = None
        self.unavailable = ""
        try:
            self.exe = build_grpcpp(cache_dir, cache_dir / "native_load.log", source=SOURCE)
        except FloorUnavailable as exc:
            self.unavailable = str(exc)

    def run(self, target: str, requests: list[bytes], order: list[int], clients: int, seconds: float) -> dict:
        """Sends ``requests[order[k]]`` in turn from ``clients`` threads: for ``seconds`` (wrapping around
        ``order``), or ``order`` once when ``seconds`` is 0. Returns {"lat_us", "failed", "failures",
        "elapsed_s"} like the Python clients of the benches."""
        assert self.exe is not None, self.unavailable
        with tempfile.TemporaryDirectory(prefix="native-load-") as tmp:
            t = Path(tmp)
            (t / "requests").write_bytes(b"".join(struct.pack("<I", len(r)) + r for r in requests))
            (t / "order").write_bytes(struct.pack(f"<{len(order)}I", *order))
            timeout = seconds + 120 if seconds > 0 else 120 + 2.0 * len(order)
            r = subprocess.run([str(self.exe), target, str(t / "requests"), str(t / "order"), str(clients),
                                str(seconds), str(t / "out.json")], capture_output=True, text=True, timeout=timeout)
            if r.returncode != 0:
                raise RuntimeError(f"native load generator failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
            return json.loads((t / "out.json").read_text())


def model_infer_request(model: str, inputs: dict[str, "object"]) -> bytes:
    """A serialized KServe ModelInferRequest for ``model`` with numpy ``inputs`` sent as raw contents."""
    from tritonclient.grpc import service_pb2
    from tritonclient.utils import np_to_triton_dtype

    req = service_pb2.ModelInferRequest(model_name=model)
    for name, arr in inputs.items():
        t = req.inputs.add(name=name, datatype=np_to_triton_dtype(arr.dtype))
        t.shape.extend(arr.shape)
        req.raw_input_contents.append(arr.tobytes())
    return req.SerializeToString()
