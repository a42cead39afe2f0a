"""A server process's memory as the kernel counts it (/proc/<pid>/status), and protobuf framing for
requests built by hand (tests of bounded decoding and memory release, issue 14)."""
from __future__ import annotations

import time


def status_mb(pid: int, key: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of ``pid``, in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no {key} for pid {pid}")


def settled_rss_mb(pid: int, below: float, within_s: float = 10.0) -> float:
    """VmRSS once it is under ``below`` MB, or after ``within_s`` seconds: a call is answered before
    the server has finished releasing it, so a reading right after the answer can be early."""
    deadline = time.monotonic() + within_s
    rss = status_mb(pid, "VmRSS")
    while rss >= below and time.monotonic() < deadline:
        time.sleep(0.1)
        rss = status_mb(pid, "VmRSS")
    return rss


def reset_peak(pid: int) -> None:
    """Starts a new VmHWM window (Linux ``clear_refs`` 5)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def varint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def add_model_server(pool, root, extra: dict | None = None):
    """A server (from an ``ovfast_server`` pool fixture) of the ``add`` model, built under ``root``, and
    the ``extra`` models ({name: base path}) already built."""
    import json

    import models as M

    M.build_add(root / "add")
    models = {"add": root / "add", **(extra or {})}
    cfg = {"model_config_list": [{"config": {"name": n, "base_path": str(p)}} for n, p in models.items()]}
    (root / "config.json").write_text(json.dumps(cfg))
    return pool("--config_path", str(root / "config.json"))
