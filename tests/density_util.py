"""Helpers for the residency tests (test_density*.py, test_repository*.py): a catalog of distinct
MLPs, requests over each API, and reading what the server says it holds."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from ovmsclient import make_grpc_client, make_http_client

import density_models as D
from lifecycle_util import write_config

X = np.linspace(-1.0, 1.0, D.IN, dtype=np.float32).reshape(1, D.IN)


def build_catalog(root: Path, names: list[str], hidden: int = 256, extra: dict | None = None,
                  **top) -> tuple[Path, dict[str, int]]:
    """One MLP per name (seed = its index) under ``root/models``; config.json listing them (``extra``:
    name -> more config keys; ``top``: top-level keys). Returns (config path, name -> seed)."""
    seeds = {n: i + 1 for i, n in enumerate(names)}
    entries = []
    for n, seed in seeds.items():
        D.build_mlp(root / "models" / n, seed, hidden)
        entries.append({"name": n, "base_path": f"models/{n}", **((extra or {}).get(n, {}))})
    return write_config(root / "config.json", entries, **top), seeds


def infer(srv, api: str, name: str, version: str = "") -> np.ndarray:
    """One request for ``name`` over ``api`` (kserve-grpc, kserve-rest, tfs-grpc, tfs-rest); returns y."""
    if api.startswith("kserve"):
        mod = grpcclient if api == "kserve-grpc" else httpclient
        client = mod.InferenceServerClient(srv.grpc_url if api == "kserve-grpc" else srv.http_url)
        inp = mod.InferInput("x", list(X.shape), "FP32")
        inp.set_data_from_numpy(X)
        return client.infer(name, [inp], model_version=version).as_numpy("y")
    client = make_grpc_client(srv.grpc_url) if api == "tfs-grpc" else make_http_client(srv.http_url)
    return np.asarray(client.predict({"x": X}, name, int(version or 0)))


def check(y: np.ndarray, seed: int, hidden: int = 256) -> None:
    # bf16 on this CPU (AMX): ~1e-2 relative error; models of other seeds differ by far more
    np.testing.assert_allclose(y, D.expected(X, seed, hidden), rtol=2e-2, atol=2e-2)


def post(srv, path: str, doc: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://{srv.http_url}{path}", data=json.dumps(doc or {}).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def index(srv) -> dict[str, dict]:
    """REST repository index: name -> its (one) version's entry."""
    code, doc = post(srv, "/v2/repository/index")
    assert code == 200, doc
    return {m["name"]: m for m in doc}


def ready(srv) -> set[str]:
    return {n for n, m in index(srv).items() if m["state"] == "READY"}


def metrics(srv) -> dict[str, float]:
    """Every sample as ``name`` or ``name{label=value,...}`` (counters under their name as sent)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://{srv.http_url}/metrics", timeout=30) as r:
        text = r.read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            name = s.name.removesuffix("_total")  # the parser names counters X_total; ovfast sends X
            key = name + ("{" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) + "}" if s.labels else "")
            out[key] = s.value
    return out
