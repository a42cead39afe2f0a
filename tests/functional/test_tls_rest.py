"""Issue 14 point 7: REST over TLS (--rest_certificate_path / --rest_key_path) and mutual TLS
(--rest_ca_path); no plaintext fallback."""
from __future__ import annotations

import socket
import ssl
import subprocess
import time

import numpy as np
import pytest
import requests
import tritonclient.http as httpclient

from certs import make_certs
from conftest import ovfast_cmd

pytestmark = pytest.mark.timeout(180)
EX_USAGE = 64
INFER_BODY = {"inputs": [{"name": "b", "datatype": "FP32", "shape": [1, 10], "data": list(range(10))}]}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


def wait_https_ready(srv, verify, cert=None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            raise AssertionError(f"ovfast exited with {srv.proc.returncode}\n{srv.log()}")
        try:
            if requests.get(f"https://{srv.http_url}/v2/health/ready", verify=verify, cert=cert, timeout=2).ok:
                return
        except requests.exceptions.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not ready over TLS\n{srv.log()}")


@pytest.fixture(scope="module")
def tls_server(model_repo, ovfast_server_session, certs):
    srv = ovfast_server_session("--model_name", "add", "--model_path", str(model_repo.paths["add"]),
                                "--rest_certificate_path", str(certs.server_cert),
                                "--rest_key_path", str(certs.server_key), wait=False)
    wait_https_ready(srv, str(certs.ca_cert))
    return srv


@pytest.fixture(scope="module")
def mtls_server(model_repo, ovfast_server_session, certs):
    srv = ovfast_server_session("--model_name", "add", "--model_path", str(model_repo.paths["add"]),
                                "--rest_certificate_path", str(certs.server_cert),
                                "--rest_key_path", str(certs.server_key), "--rest_ca_path", str(certs.ca_cert),
                                wait=False)
    wait_https_ready(srv, str(certs.ca_cert), cert=(str(certs.client_cert), str(certs.client_key)))
    return srv


def test_requests_over_tls(tls_server, certs):
    r = requests.post(f"https://{tls_server.http_url}/v2/models/add/infer", json=INFER_BODY,
                      verify=str(certs.ca_cert), timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [float(i + 1) for i in range(10)]
    # TFS REST on the same port
    r = requests.post(f"https://{tls_server.http_url}/v1/models/add:predict",
                      json={"instances": [list(range(10))]}, verify=str(certs.ca_cert), timeout=30)
    assert r.status_code == 200, r.text


def test_tritonclient_http_over_tls(tls_server, certs):
    ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
    client = httpclient.InferenceServerClient(tls_server.http_url, ssl=True, ssl_context_factory=lambda: ctx)
    try:
        assert client.is_server_ready()
        inp = httpclient.InferInput("b", [1, 10], "FP32")
        inp.set_data_from_numpy(np.arange(10, dtype=np.float32).reshape(1, 10), binary_data=True)
        out = client.infer("add", [inp]).as_numpy("a")
        np.testing.assert_array_equal(out, np.arange(1, 11, dtype=np.float32).reshape(1, 10))
    finally:
        client.close()


def test_no_plaintext_on_a_tls_port(tls_server, certs):
    """A plaintext request to the TLS port gets no HTTP answer (the handshake fails), never served."""
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://{tls_server.http_url}/v2/health/ready", timeout=10)
    assert requests.get(f"https://{tls_server.http_url}/v2/health/live", verify=str(certs.ca_cert), timeout=10).ok


def test_mtls_client_certificate_accepted(mtls_server, certs):
    r = requests.post(f"https://{mtls_server.http_url}/v2/models/add/infer", json=INFER_BODY,
                      verify=str(certs.ca_cert), cert=(str(certs.client_cert), str(certs.client_key)), timeout=30)
    assert r.status_code == 200, r.text
    ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
    ctx.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    client = httpclient.InferenceServerClient(mtls_server.http_url, ssl=True, ssl_context_factory=lambda: ctx)
    try:
        assert client.is_model_ready("add")
    finally:
        client.close()


@pytest.mark.parametrize("which", ["none", "unknown_ca"])
def test_mtls_refuses_clients_without_a_trusted_certificate(mtls_server, certs, which):
    cert = None if which == "none" else (str(certs.other_client_cert), str(certs.other_client_key))
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(f"https://{mtls_server.http_url}/v2/health/ready", verify=str(certs.ca_cert), cert=cert,
                     timeout=10)
    # the server is unharmed
    assert requests.get(f"https://{mtls_server.http_url}/v2/health/ready", verify=str(certs.ca_cert),
                        cert=(str(certs.client_cert), str(certs.client_key)), timeout=10).ok


def test_tls_handshake_never_completed_does_not_block_others(tls_server, certs):
    """Connections that never start their handshake do not stop others from being served."""
    host, port = tls_server.http_url.split(":")
    idle = [socket.create_connection((host, int(port))) for _ in range(20)]
    try:
        assert requests.get(f"https://{tls_server.http_url}/v2/health/ready", verify=str(certs.ca_cert),
                            timeout=10).ok
    finally:
        for s in idle:
            s.close()


@pytest.mark.parametrize("case", ["mismatched_key", "missing_cert", "not_pem", "key_only", "ca_without_cert"])
def test_unusable_tls_settings_stop_the_start(model_repo, certs, tmp_path, case):
    not_pem = tmp_path / "junk.pem"
    not_pem.write_text("not a certificate\n")
    flags = {
        "mismatched_key": ["--rest_certificate_path", str(certs.server_cert), "--rest_key_path",
                           str(certs.mismatched_key)],
        "missing_cert": ["--rest_certificate_path", str(tmp_path / "absent.pem"), "--rest_key_path",
                         str(certs.server_key)],
        "not_pem": ["--rest_certificate_path", str(not_pem), "--rest_key_path", str(certs.server_key)],
        "key_only": ["--rest_key_path", str(certs.server_key)],
        "ca_without_cert": ["--rest_ca_path", str(certs.ca_cert)],
    }[case]
    res = subprocess.run(ovfast_cmd("--model_name", "add", "--model_path", str(model_repo.paths["add"]),
                                    "--port", "0", "--rest_port", "1", *flags),
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert res.returncode == EX_USAGE, (res.returncode, res.stderr)
    assert "--rest_" in res.stderr or "TLS" in res.stderr, res.stderr
