"""One inference entry: the four APIs (KServe gRPC, KServe REST, TFS gRPC, TFS REST) behave alike for
what DataPlane.infer decides: shape "auto" follows the request, and a version that is still loading is
waited for (up to 10 s, as OVMS) instead of failing at once."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

import models as M
from four_apis import APIS, CLIENT_TIMEOUT_S, infer
from lifecycle_util import rest, serve_version_without_model_file, states, wait_until

@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "staging").mkdir()
    return tmp_path


@pytest.mark.parametrize("api", APIS)
def test_shape_auto_follows_the_request_on_every_api(repo, ovfast_server, api):
    # OVMS's face-detection demo: --shape auto, then a batch of 4 images
    base = M.build_add(repo / "models" / "add")
    srv = ovfast_server("--model_name", "add", "--model_path", str(base), "--shape", "auto",
                        "--file_system_poll_wait_seconds", "0")
    for rows, width in ((1, 10), (4, 10), (2, 3)):
        x = np.arange(rows * width, dtype=np.float32).reshape(rows, width)
        np.testing.assert_allclose(infer(srv, api, "add", x), x + 1.0)
    assert states(srv) == {"add": {"1": "AVAILABLE"}}


def test_request_for_a_loading_version_waits_on_every_api(repo, ovfast_server):
    # Version 2 is a folder without its model file: it stays LOADING until the file comes.
    srv, base = serve_version_without_model_file(repo, ovfast_server)

    x = np.arange(10, dtype=np.float32).reshape(1, 10)
    results: dict[str, object] = {}

    def call(api: str) -> None:
        try:
            results[api] = infer(srv, api, "m", x, version=2)
        except Exception as exc:  # noqa: BLE001 - reported below
            results[api] = exc

    threads = [threading.Thread(target=call, args=(api,)) for api in APIS]
    for t in threads:
        t.start()
    # Every request is in the server, waiting for version 2 (the server logs each wait at DEBUG).
    wait_until(lambda: srv.stderr().count("Waiting for model m version 2 to load") >= len(APIS) or results,
               "the four requests to wait for version 2", srv)
    assert results == {}, results  # none came back while version 2 could not load

    # The model file arrives (bin first, so the version is complete when the xml shows up); a reload loads it.
    M.build_add(repo / "staging", version=2, addend=2.0)
    for name in ("model.bin", "model.xml"):
        os.rename(repo / "staging" / "2" / name, base / "2" / name)
    assert rest(srv, "POST", "/v1/config/reload")[0] == 201
    for t in threads:
        t.join(CLIENT_TIMEOUT_S)
    for api in APIS:
        assert isinstance(results[api], np.ndarray), f"{api}: {results[api]!r}"
        np.testing.assert_allclose(results[api], x + 2.0, err_msg=api)
