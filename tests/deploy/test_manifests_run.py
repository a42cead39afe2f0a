"""The flags the manifests pass, run for real: ovfast started with the args the Helm chart renders (the
ConfigMap's config.json written where the Deployment mounts it, a TLS Secret's files where the flags
point) and with the KServe runtime's args (the model where KServe's storage initializer puts it). The
probes' paths answer, metrics are served, and clients infer over each protocol the manifests advertise.
Ports and bind addresses are the tests' own (start_server overrides them); everything else is as rendered.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

import k8s_schemas as K
import models as M
from conftest import start_server
from test_helm_chart import container, render

X = np.arange(10, dtype=np.float32).reshape(1, 10)


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read().decode()


def _post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _probe_paths(c: dict) -> list[str]:
    return [c[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe")]


def _infer_grpc(client: grpcclient.InferenceServerClient) -> np.ndarray:
    x = grpcclient.InferInput(M.ADD_INPUT, [1, 10], "FP32")
    x.set_data_from_numpy(X)
    return client.infer("add", [x]).as_numpy(M.ADD_OUTPUT)


@pytest.fixture(scope="module")
def add_model(tmp_path_factory) -> Path:
    return M.build_add(tmp_path_factory.mktemp("deploy-models") / "add")


def test_helm_chart_args_serve_with_grpc_tls(add_model, tmp_path):
    values = {"config": {"model_config_list": [{"config": {"name": "add", "base_path": str(add_model)}}]},
              "tls": {"grpc": {"enabled": True, "secretName": "ovfast-grpc-tls"}},
              "compiledModelCache": {"enabled": True}}
    objs = {d["kind"]: d for d in render(values)}
    c = container(objs)
    root = tmp_path / "pod"

    def local(path: str) -> Path:  # a path in the container -> the same path under this test's root
        return root / path.lstrip("/")

    # the volumes, as the kubelet would lay them out
    for mount in c["volumeMounts"]:
        local(mount["mountPath"]).mkdir(parents=True, exist_ok=True)
    (local("/etc/ovfast/config") / "config.json").write_text(objs["ConfigMap"]["data"]["config.json"])
    tls = local("/etc/ovfast/tls/grpc")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=ovfast",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", "tls.key", "-out", "tls.crt"],
                   cwd=tls, check=True, capture_output=True)
    args = [a.replace("=/", f"={root}/", 1) if "=/" in a else a for a in c["args"]]

    srv = start_server(args, tmp_path / "srv")
    try:
        for path in _probe_paths(c):
            assert _get(f"http://{srv.http_url}{path}")[0] == 200
        status, text = _get(f"http://{srv.http_url}/metrics")
        assert status == 200 and "ovms_requests_success" in text
        with grpcclient.InferenceServerClient(srv.grpc_url, ssl=True, root_certificates=str(tls / "tls.crt")) as g:
            np.testing.assert_array_equal(_infer_grpc(g), X + 1)
        assert any((local("/var/cache/ovfast")).iterdir())  # the compiled-model cache is where it is mounted
    finally:
        assert srv.stop() == 0


def test_kserve_runtime_args_serve_v1_v2_and_grpc_v2(add_model, tmp_path):
    (runtime,) = K.load_documents((K.ROOT / "deploy/kserve/clusterservingruntime.yaml").read_text())
    (c,) = runtime["spec"]["containers"]
    args = [a.replace("{{.Name}}", "add").replace("=/mnt/models", f"={add_model}") for a in c["args"]]
    srv = start_server(args, tmp_path / "srv")
    try:
        for path in _probe_paths(c):
            assert _get(f"http://{srv.http_url}{path}")[0] == 200
        assert _get(f"http://{srv.http_url}{runtime['spec']['annotations']['prometheus.kserve.io/path']}")[0] == 200
        # v1: TF-Serving REST
        out = _post_json(f"http://{srv.http_url}/v1/models/add:predict", {"instances": X.tolist()})
        np.testing.assert_array_equal(np.array(out["predictions"], np.float32), X + 1)
        # v2: KServe v2 REST
        h = httpclient.InferenceServerClient(srv.http_url)
        x = httpclient.InferInput(M.ADD_INPUT, [1, 10], "FP32")
        x.set_data_from_numpy(X)
        np.testing.assert_array_equal(h.infer("add", [x]).as_numpy(M.ADD_OUTPUT), X + 1)
        # grpc-v2
        with grpcclient.InferenceServerClient(srv.grpc_url) as g:
            np.testing.assert_array_equal(_infer_grpc(g), X + 1)
    finally:
        assert srv.stop() == 0
