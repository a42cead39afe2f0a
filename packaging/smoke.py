"""Smoke test of a running ovfast (a repaired wheel in a bare Debian root, or the container image),
driven from outside by real clients: tritonclient (KServe gRPC), plain HTTP (KServe REST, /metrics),
ovmsclient (TFS Predict over gRPC).

    python packaging/smoke.py models DIR [--dummy PATH]   writes DIR/config.json: "dummy" (b FP32 [1,10] ->
                                                         a = b + 1; PATH = a prebuilt copy, e.g. the demo
                                                         model) and "img" (u8 image in, pixels out); base
                                                         paths relative to DIR, so DIR may be mounted anywhere
    python packaging/smoke.py check --grpc HOST:PORT --rest HOST:PORT [--images]
    python packaging/smoke.py ports                      prints two free loopback ports (gRPC, REST)

`check` waits for readiness, then checks health, a KServe gRPC and a REST inference, a TFS predict and
the metrics (with --metrics_enable), and with --images a JPEG and a PNG decoded by the server's libjpeg
and libpng. Needs the test dependencies (pip install ".[test]"). Prints each check; exits 1 on a failure.
"""
from __future__ import annotations

import argparse
import io
import json
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

DUMMY_IN = np.arange(10, dtype=np.float32).reshape(1, 10)


def write_models(root: Path, dummy: str | None) -> Path:
    import openvino as ov
    from openvino import opset13 as ops

    root.mkdir(parents=True, exist_ok=True)
    if dummy is None:
        b = ops.parameter([1, 10], ov.Type.f32, name="b")
        b.output(0).set_names({"b"})
        a = ops.add(b, ops.constant(np.ones((1, 10), np.float32)))
        a.output(0).set_names({"a"})
        (root / "dummy" / "1").mkdir(parents=True, exist_ok=True)
        ov.save_model(ov.Model([a], [b], "dummy"), str(root / "dummy" / "1" / "model.xml"))
        dummy = "dummy"
    # pixels in, pixels out: u8 NHWC of any size -> the same values as f32
    x = ops.parameter([1, -1, -1, 3], ov.Type.u8, name="image")
    x.output(0).set_names({"image"})
    y = ops.convert(x, ov.Type.f32)
    y.output(0).set_names({"pixels"})
    (root / "img" / "1").mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.Model([y], [x], "img"), str(root / "img" / "1" / "model.xml"))
    config = {"model_config_list": [
        {"config": {"name": "dummy", "base_path": dummy}},
        {"config": {"name": "img", "base_path": "img", "color_format": "RGB"}},
    ]}
    path = root / "config.json"
    path.write_text(json.dumps(config))
    # any uid reads them (the image runs as a random user)
    for p in [root, *root.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return path


def http(url: str, body: dict | None = None, timeout: float = 10) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_ready(rest: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            status, _ = http(f"http://{rest}/v2/health/ready", timeout=2)
            if status == 200:
                return
            last = status
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"not ready after {timeout:.0f} s: {last}")


def check_health(grpc_addr: str, rest: str) -> None:
    import tritonclient.grpc as grpcclient

    assert http(f"http://{rest}/v2/health/live")[0] == 200
    client = grpcclient.InferenceServerClient(grpc_addr)
    try:
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("dummy")
    finally:
        client.close()


def check_kserve_grpc(grpc_addr: str, rest: str) -> None:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(grpc_addr)
    try:
        inp = grpcclient.InferInput("b", [1, 10], "FP32")
        inp.set_data_from_numpy(DUMMY_IN)
        out = client.infer("dummy", [inp]).as_numpy("a")
    finally:
        client.close()
    np.testing.assert_array_equal(out, DUMMY_IN + 1)


def check_kserve_rest(grpc_addr: str, rest: str) -> None:
    body = {"inputs": [{"name": "b", "shape": [1, 10], "datatype": "FP32", "data": DUMMY_IN.ravel().tolist()}]}
    status, raw = http(f"http://{rest}/v2/models/dummy/infer", body)
    assert status == 200, (status, raw[:300])
    out = json.loads(raw)["outputs"][0]
    assert out["name"] == "a" and out["shape"] == [1, 10], out
    np.testing.assert_array_equal(np.array(out["data"], np.float32).reshape(1, 10), DUMMY_IN + 1)


def check_tfs_predict(grpc_addr: str, rest: str) -> None:
    from ovmsclient import make_grpc_client

    out = make_grpc_client(grpc_addr).predict({"b": DUMMY_IN}, "dummy")
    np.testing.assert_array_equal(out, DUMMY_IN + 1)


def check_metrics(grpc_addr: str, rest: str) -> None:
    status, raw = http(f"http://{rest}/metrics")
    assert status == 200, status
    text = raw.decode()
    ok = [line for line in text.splitlines()
          if line.startswith("ovms_requests_success{") and 'name="dummy"' in line and not line.endswith(" 0")]
    assert ok, "no successful request of 'dummy' counted in ovms_requests_success:\n" + text[:2000]


def _image_rows(fmt: str) -> tuple[bytes, np.ndarray, int]:
    """A small RGB picture, encoded; the pixels it holds; how far a decode may stray (JPEG is lossy)."""
    from PIL import Image

    h, w = 16, 24
    yy, xx = np.mgrid[0:h, 0:w]
    pixels = np.stack([xx * 10, yy * 15, np.full((h, w), 128)], axis=-1).astype(np.uint8)
    if fmt == "JPEG":  # flat 8x8 blocks survive JPEG within a few levels
        pixels = np.zeros((h, w, 3), np.uint8) + np.array([200, 100, 50], np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue(), pixels, (4 if fmt == "JPEG" else 0)


def check_images(grpc_addr: str, rest: str) -> None:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(grpc_addr)
    try:
        for fmt in ("PNG", "JPEG"):
            data, pixels, tolerance = _image_rows(fmt)
            inp = grpcclient.InferInput("image", [1], "BYTES")
            inp.set_data_from_numpy(np.array([data], dtype=np.object_))
            out = client.infer("img", [inp]).as_numpy("pixels")
            assert out.shape == (1, *pixels.shape), (fmt, out.shape)
            err = np.abs(out[0] - pixels.astype(np.float32)).max()
            assert err <= tolerance, f"{fmt}: decoded pixels off by up to {err}"
    finally:
        client.close()


CHECKS = {"health": check_health, "kserve_grpc_infer": check_kserve_grpc, "kserve_rest_infer": check_kserve_rest,
          "tfs_grpc_predict": check_tfs_predict, "metrics": check_metrics}


def run_checks(grpc_addr: str, rest: str, images: bool, timeout: float) -> int:
    wait_ready(rest, timeout)
    checks = dict(CHECKS, **({"jpeg_png_decode": check_images} if images else {}))
    failed = 0
    for name, check in checks.items():
        try:
            check(grpc_addr, rest)
            print(f"smoke: {name}: ok", flush=True)
        except Exception as exc:  # report every check, then fail
            failed += 1
            print(f"smoke: {name}: FAILED: {type(exc).__name__}: {exc}", flush=True)
    print(f"smoke: {len(checks) - failed} of {len(checks)} checks ok", flush=True)
    return 1 if failed else 0


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("models")
    m.add_argument("dir", type=Path)
    m.add_argument("--dummy", default=None)
    c = sub.add_parser("check")
    c.add_argument("--grpc", required=True)
    c.add_argument("--rest", required=True)
    c.add_argument("--images", action="store_true")
    c.add_argument("--timeout", type=float, default=120)
    sub.add_parser("ports")
    args = p.parse_args(argv)
    if args.cmd == "ports":
        print(*free_ports(2))
        return 0
    if args.cmd == "models":
        print(write_models(args.dir, args.dummy))
        return 0
    return run_checks(args.grpc, args.rest, args.images, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
