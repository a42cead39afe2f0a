"""TLS and mutual TLS on the native gRPC port (--grpc_certificate_path, --grpc_key_path, --grpc_ca_path),
with certificates made here by `openssl`: tritonclient and ovmsclient infer over TLS; a plaintext client
is not served; under mutual TLS a client without a certificate, or with one another CA signed, is
refused; an unreadable or mismatched certificate or key stops the start with a clear message."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from ovmsclient import make_grpc_client
from tritonclient.utils import InferenceServerException

import models as M
from conftest import ServerStartError, start_server

X = np.arange(10, dtype=np.float32).reshape(1, 10)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(d: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=d)


def _signed(d: Path, name: str, ca: str, san: str | None) -> None:
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", cwd=d)
    ext = d / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\n" if san else "basicConstraints=CA:FALSE\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-days", "2", "-extfile", ext.name, "-out", f"{name}.crt", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """ca.crt signs server.crt (127.0.0.1, localhost) and client.crt; other_ca.crt signs stranger.crt."""
    d = tmp_path_factory.mktemp("pki")
    _ca(d, "ca")
    _ca(d, "other_ca")
    _signed(d, "server", "ca", "IP:127.0.0.1,DNS:localhost")
    _signed(d, "client", "ca", None)
    _signed(d, "stranger", "other_ca", None)
    return d


@pytest.fixture(scope="module")
def add_model(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("tls") / "add"
    M.build_add(base)
    return base


def _args(add_model: Path, pki: Path, *extra: str) -> list[str]:
    return ["--model_name", "add", "--model_path", str(add_model),
            "--grpc_certificate_path", str(pki / "server.crt"), "--grpc_key_path", str(pki / "server.key"), *extra]


def _triton(url: str, pki: Path, cert: str | None = None):
    kw = {"ssl": True, "root_certificates": str(pki / "ca.crt")}
    if cert:
        kw.update(private_key=str(pki / f"{cert}.key"), certificate_chain=str(pki / f"{cert}.crt"))
    return grpcclient.InferenceServerClient(url, **kw)


def _infer(client) -> np.ndarray:
    inp = grpcclient.InferInput(M.ADD_INPUT, [1, 10], "FP32")
    inp.set_data_from_numpy(X)
    return client.infer("add", [inp], client_timeout=30).as_numpy(M.ADD_OUTPUT)


def test_tls_serves_tritonclient_and_ovmsclient_and_refuses_plaintext(ovfast_server, add_model, pki):
    srv = ovfast_server(*_args(add_model, pki))
    with _triton(srv.grpc_url, pki) as c:
        np.testing.assert_array_equal(_infer(c), X + 1)
        assert c.is_server_live()
    tfs = make_grpc_client(srv.grpc_url, tls_config={"server_cert_path": str(pki / "ca.crt")})
    np.testing.assert_array_equal(tfs.predict({M.ADD_INPUT: X}, "add"), X + 1)
    plain = grpcclient.InferenceServerClient(srv.grpc_url)
    with pytest.raises(InferenceServerException):
        plain.is_server_live(client_timeout=5)
    plain.close()
    assert "(TLS)" in srv.log()


def test_mutual_tls_requires_a_client_certificate_the_ca_signed(ovfast_server, add_model, pki):
    srv = ovfast_server(*_args(add_model, pki, "--grpc_ca_path", str(pki / "ca.crt")))
    with _triton(srv.grpc_url, pki, cert="client") as c:
        np.testing.assert_array_equal(_infer(c), X + 1)
    tfs = make_grpc_client(srv.grpc_url, tls_config={
        "server_cert_path": str(pki / "ca.crt"), "client_cert_path": str(pki / "client.crt"),
        "client_key_path": str(pki / "client.key")})
    np.testing.assert_array_equal(tfs.predict({M.ADD_INPUT: X}, "add"), X + 1)
    for cert in (None, "stranger"):
        with _triton(srv.grpc_url, pki, cert=cert) as c, pytest.raises(InferenceServerException) as e:
            _infer(c)
        assert "UNAVAILABLE" in str(e.value.status()), (cert, e.value)
    with _triton(srv.grpc_url, pki, cert="client") as c:  # still serving
        np.testing.assert_array_equal(_infer(c), X + 1)


@pytest.mark.parametrize("case, message", [
    ("missing key file", "--grpc_key_path: cannot read"),
    ("key of another certificate", "the key does not match the certificate"),
    ("certificate without key", "must be given together"),
    ("CA that is not PEM", "--grpc_ca_path"),
])
def test_unusable_tls_files_stop_the_start(tmp_path, add_model, pki, case, message):
    args = {
        "missing key file": _args(add_model, pki)[:-1] + [str(tmp_path / "nope.key")],
        "key of another certificate": _args(add_model, pki)[:-1] + [str(pki / "client.key")],
        "certificate without key": _args(add_model, pki)[:-2],
        "CA that is not PEM": _args(add_model, pki, "--grpc_ca_path", str(pki / "server.ext")),
    }[case]
    with pytest.raises(ServerStartError) as e:
        start_server(args, tmp_path, attempts=1)
    assert message in str(e.value), str(e.value)
