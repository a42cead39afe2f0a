"""Issue 14 points 3-6 on the REST port: bodies over the limit refused from Content-Length, compression
bombs refused while decompressing, aborted uploads give their memory back, slow clients are cut off,
open connections are bounded (descriptors stay for everyone else), and a client that goes away has its
queued work dropped. Memory and descriptors are read from /proc; nothing asserts a speed."""
from __future__ import annotations

import gzip
import json
import os
import resource
import socket
import threading
import time
import zlib

import grpc
import pytest
import requests

import models as M

pytestmark = pytest.mark.timeout(300)
MiB = 1 << 20
INFER_PATH = "/v2/models/add/infer"
INFER = {"inputs": [{"name": "b", "datatype": "FP32", "shape": [1, 10], "data": [0.0] * 10}]}


def connect(srv) -> socket.socket:
    host, port = srv.http_url.split(":")
    return socket.create_connection((host, int(port)), timeout=60)


def head(path: str, length: int, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"
            f"{extra}\r\n").encode()


def read_response(s: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    return status, data


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def settle(srv) -> None:
    """Lets the server finish what it does for connections that just closed (one request round trip)."""
    for _ in range(3):
        assert requests.get(f"http://{srv.http_url}/v2/health/ready", timeout=30).ok
        time.sleep(0.2)


@pytest.fixture(scope="module")
def add_server(model_repo, ovfast_server_session):
    return ovfast_server_session("--model_name", "add", "--model_path", str(model_repo.paths["add"]),
                                 "--rest_max_input_size", str(8 * MiB), "--rest_body_timeout_seconds", "2",
                                 "--rest_header_timeout_seconds", "2")


# -- point 5: Content-Length --------------------------------------------------------------------

@pytest.mark.parametrize("length", [8 * MiB + 1, 2**31, 2**62])
def test_body_over_the_limit_is_refused_before_it_is_read(add_server, length):
    """The server answers 413 from the headers alone: the client sends only one byte of its body."""
    with connect(add_server) as s:
        s.sendall(head(INFER_PATH, length) + b"{")
        status, data = read_response(s)
    assert status == 413, data
    assert b"rest_max_input_size" in data


def test_default_limit_is_the_grpc_message_limit(main_server):
    with connect(main_server) as s:
        s.sendall(head(INFER_PATH, (1 << 30) + 1) + b"{")
        status, data = read_response(s)
    assert status == 413, data


def test_body_at_the_limit_is_read(add_server):
    pad = 8 * MiB - len(json.dumps(INFER))
    body = json.dumps(INFER).encode()[:-1] + b" " * pad + b"}"
    assert len(body) == 8 * MiB
    r = requests.post(f"http://{add_server.http_url}{INFER_PATH}", data=body, timeout=60)
    assert r.status_code == 200, r.text


# -- point 4: compression bombs -------------------------------------------------------------------

def _bomb(encoding: str, inflated: int) -> bytes:
    if encoding == "br":
        brotli = pytest.importorskip("brotli")
        return brotli.compress(b"0" * inflated, quality=1)
    comp = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    block = b" " * MiB
    return b"".join(comp.compress(block) for _ in range(inflated // MiB)) + comp.flush()


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_compression_bomb_is_refused_while_decompressing(add_server, encoding):
    """256 MiB inflated from well under 1 MiB on the wire: 413 once the inflated body passes the 8 MiB
    limit, and the server's memory never holds the inflated body."""
    bomb = _bomb(encoding, 256 * MiB)
    assert len(bomb) < MiB
    before = add_server.rss_mb()
    r = requests.post(f"http://{add_server.http_url}{INFER_PATH}", data=bomb,
                      headers={"Content-Encoding": encoding, "Content-Type": "application/json"}, timeout=120)
    assert r.status_code == 413, r.text
    assert "decompressed" in r.json()["error"]
    assert add_server.rss_mb() - before < 64, (before, add_server.rss_mb())


def test_compressed_request_within_the_limit_is_served(add_server):
    body = gzip.compress(json.dumps(INFER).encode())
    r = requests.post(f"http://{add_server.http_url}{INFER_PATH}", data=body,
                      headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [1.0] * 10


# -- point 3: aborted uploads ---------------------------------------------------------------------

def test_aborted_uploads_give_their_memory_back(model_repo, ovfast_server):
    """Eight 50 MB uploads cut off 1 MB before their end leave no 50 MB buffers behind."""
    srv = ovfast_server("--model_name", "add", "--model_path", str(model_repo.paths["add"]))
    settle(srv)
    before = srv.rss_mb()
    chunk = b" " * MiB
    for _ in range(8):
        s = connect(srv)
        s.sendall(head(INFER_PATH, 50 * MiB))
        for _ in range(49):
            s.sendall(chunk)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
        s.close()
        settle(srv)
    grown = srv.rss_mb() - before
    assert grown < 120, f"RSS grew {grown:.0f} MB after 8 aborted 50 MB uploads"


@pytest.mark.parametrize("path,status", [(INFER_PATH, 200), (INFER_PATH, 400), ("/v1/models/add:predict", 412)])
def test_big_bodies_give_their_memory_back_on_a_kept_alive_connection(model_repo, ovfast_server, path, status):
    """A 300 MB body served (200) or refused after reading (400 / 412) is freed with its response, although
    the client keeps the connection open (aiohttp keeps a connection's last request while it waits for the
    next; before the fix that kept the body too: RSS +300 MB until the connection closed)."""
    srv = ovfast_server("--model_name", "add", "--model_path", str(model_repo.paths["add"]))
    settle(srv)
    before = srv.rss_mb()
    if status == 200:
        body = b'{"inputs":[{"name":"b","datatype":"FP32","shape":[1,10],"data":[0,0,0,0,0,0,0,0,0,0]}],"pad":"' \
            + b"x" * (300 * MiB) + b'"}'
    else:
        body = b"[" * 10 + b" " * (300 * MiB)
    with requests.Session() as session:
        r = session.post(f"http://{srv.http_url}{path}", data=body, timeout=120)
        assert r.status_code == status, r.text
        del body
        settle(srv)
        grown = srv.rss_mb() - before
        assert grown < 100, f"RSS grew {grown:.0f} MB after a 300 MB body, connection still open"
        assert session.get(f"http://{srv.http_url}/v2/health/live", timeout=10).ok  # the same connection


# -- point 6: slow clients ------------------------------------------------------------------------

def test_slow_headers_are_cut_off(add_server):
    """Connections that send their headers a byte at a time are closed after --rest_header_timeout_seconds
    (2 s here); without the timeout they would be held for an hour."""
    socks = [connect(add_server) for _ in range(30)]
    for s in socks:
        s.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n")
    deadline = time.monotonic() + 60
    closed = 0
    for s in socks:
        s.settimeout(0.5)
        while time.monotonic() < deadline:
            try:
                s.sendall(b"X")
                if s.recv(1) == b"":
                    closed += 1
                    break
            except socket.timeout:
                continue
            except OSError:
                closed += 1
                break
        s.close()
    assert closed == len(socks)
    assert requests.get(f"http://{add_server.http_url}/v2/health/ready", timeout=10).ok


def test_idle_connection_without_a_request_is_closed(add_server):
    with connect(add_server) as s:
        s.settimeout(60)
        assert s.recv(1) == b""


def test_slow_body_gets_408(add_server):
    with connect(add_server) as s:
        s.sendall(head(INFER_PATH, 1000) + b'{"inputs": ')
        s.settimeout(60)
        status, data = read_response(s)
    assert status == 408, data
    assert b"rest_body_timeout_seconds" in data


# -- point 6: connection limit and descriptors --------------------------------------------------------

def test_connection_limit_keeps_descriptors_for_everyone_else(model_repo, ovfast_server, tmp_path):
    """300 idle connections against a limit of 40: the server holds at most 40 of them (its descriptor
    count says so), the rest get 503 and are closed; gRPC and a config reload still work, and once the
    idle connections go, REST serves again."""
    cfg = model_repo.write_config(tmp_path / "config.json", ["add"])
    srv = ovfast_server("--config_path", str(cfg), "--rest_max_connections", "40",
                        "--rest_header_timeout_seconds", "120")
    settle(srv)
    base_fds = open_fds(srv.proc.pid)
    socks = []
    try:
        for _ in range(300):
            socks.append(connect(srv))
        time.sleep(1)
        settle_deadline = time.monotonic() + 30
        held = open_fds(srv.proc.pid) - base_fds
        while held > 40 and time.monotonic() < settle_deadline:  # refused ones are closing
            time.sleep(0.2)
            held = open_fds(srv.proc.pid) - base_fds
        assert held <= 40 + 2, held
        refused = 0
        for s in socks[60:]:
            s.settimeout(10)
            status, _ = read_response(s)
            refused += status == 503
        assert refused == 240
        with grpc.insecure_channel(srv.grpc_url) as ch:
            from tritonclient.grpc import service_pb2, service_pb2_grpc

            stub = service_pb2_grpc.GRPCInferenceServiceStub(ch)
            assert stub.ModelReady(service_pb2.ModelReadyRequest(name="add"), timeout=30).ready
        model_repo.write_config(cfg, ["add", "two_io"])
        with grpc.insecure_channel(srv.grpc_url) as ch:
            from tritonclient.grpc import service_pb2, service_pb2_grpc

            stub = service_pb2_grpc.GRPCInferenceServiceStub(ch)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # the config watcher picks the new model up
                try:
                    if stub.ModelReady(service_pb2.ModelReadyRequest(name="two_io"), timeout=30).ready:
                        break
                except grpc.RpcError:
                    pass
                time.sleep(0.3)
            else:
                raise AssertionError("the config watcher did not load two_io")
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://{srv.http_url}/v2/health/ready", timeout=5).ok:
                break
        except requests.RequestException:
            pass
        time.sleep(0.2)
    assert requests.post(f"http://{srv.http_url}{INFER_PATH}", json=INFER, timeout=30).ok


def test_open_file_limit_is_raised_to_the_hard_limit(model_repo, ovfast_server):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 512:
        pytest.skip(f"hard open-file limit {hard}: nothing to raise to")
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))
    try:
        srv = ovfast_server("--model_name", "add", "--model_path", str(model_repo.paths["add"]))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    with open(f"/proc/{srv.proc.pid}/limits") as f:
        (line,) = [ln for ln in f if ln.startswith("Max open files")]
    assert line.split()[3:5] == [str(hard), str(hard)], line


# -- point 6: a client that goes away -------------------------------------------------------------

def test_disconnected_client_has_its_queued_work_dropped(ovfast_server, tmp_path):
    """A REST request waiting in the batcher (5 s queue delay) whose client disconnects is never run: the
    model's statistics show no success for it, and one failure (the dropped job)."""
    srv = ovfast_server("--model_name", "rows", "--model_path", str(M.build_rows(tmp_path / "rows", width=4)),
                        "--max_batch_size", "8", "--max_queue_delay_us", "5000000", "--metrics_enable")
    body = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]})
    with connect(srv) as s:
        s.sendall(head("/v2/models/rows/infer", len(body)) + body.encode())
        for _ in range(600):  # until the job is in the batcher's queue (ordering only)
            text = requests.get(f"http://{srv.http_url}/metrics", timeout=10).text
            if any(ln.startswith("ovms_current_requests{") and ln.endswith(" 1") for ln in text.splitlines()):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the request never reached the model")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        (st,) = requests.get(f"http://{srv.http_url}/v2/models/rows/stats", timeout=10).json()["model_stats"]
        done = st["inference_stats"]["success"]["count"] + st["inference_stats"]["fail"]["count"]
        if done:
            break
        time.sleep(0.3)
    assert st["inference_stats"]["success"]["count"] == 0, st
    assert st["inference_stats"]["fail"]["count"] == 1 and st["execution_count"] == 0, st


def test_reload_completes_when_its_client_disconnects(model_repo, ovfast_server, tmp_path):
    """A config reload is never cut halfway by its client going away (handlers are cancelled on disconnect)."""
    cfg = model_repo.write_config(tmp_path / "config.json", ["add"])
    srv = ovfast_server("--config_path", str(cfg), "--file_system_poll_wait_seconds", "0")
    model_repo.write_config(cfg, ["add", "two_io", "dynamic"])
    with connect(srv) as s:
        s.sendall(b"POST /v1/config/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        time.sleep(0.05)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready = [requests.get(f"http://{srv.http_url}/v2/models/{m}/ready", timeout=10).status_code
                 for m in ("two_io", "dynamic")]
        if ready == [200, 200]:
            break
        time.sleep(0.2)
    assert ready == [200, 200]
    assert "CancelledError" not in srv.stderr()


def test_server_survives_many_disconnects_mid_request(ovfast_server, tmp_path):
    """Clients that vanish while their request waits cancel their handlers; the server keeps answering
    everyone else and logs no unexpected error."""
    srv = ovfast_server("--model_name", "rows", "--model_path", str(M.build_rows(tmp_path / "rows", width=4)),
                        "--max_batch_size", "8", "--max_queue_delay_us", "500000")
    body = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]})
    results = []

    def good():
        r = requests.post(f"http://{srv.http_url}/v2/models/rows/infer", data=body, timeout=60)
        results.append(r.status_code)

    threads = [threading.Thread(target=good) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(20):
        with connect(srv) as s:
            s.sendall(head("/v2/models/rows/infer", len(body)) + body.encode())
    for t in threads:
        t.join()
    assert results == [200] * 4
    r = requests.post(f"http://{srv.http_url}/v2/models/rows/infer", data=body, timeout=60)
    assert r.json()["outputs"][0]["data"] == [3.0, 5.0, 7.0, 9.0]
    assert "Traceback" not in srv.stderr(), srv.stderr()[-3000:]
