"""One call over each of the four inference APIs (KServe gRPC, KServe REST, TFS gRPC, TFS REST), with the
real clients, for tests that check the APIs behave alike."""
from __future__ import annotations

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from ovmsclient import make_grpc_client, make_http_client

import models as M

APIS = ("kserve_grpc", "kserve_rest", "tfs_grpc", "tfs_rest")
CLIENT_TIMEOUT_S = 60  # longer than the server's 10 s wait; never asserted as a time


def infer(srv, api: str, model: str, x: np.ndarray, version: int | None = None) -> np.ndarray:
    """``add`` (b -> a) over one API; ``version`` None = the default version."""
    if api.startswith("kserve"):
        mod = grpcclient if api == "kserve_grpc" else httpclient
        url = srv.grpc_url if api == "kserve_grpc" else srv.http_url
        client = mod.InferenceServerClient(url) if api == "kserve_grpc" else mod.InferenceServerClient(
            url, network_timeout=CLIENT_TIMEOUT_S)
        inp = mod.InferInput(M.ADD_INPUT, list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        kw = {"client_timeout": CLIENT_TIMEOUT_S} if api == "kserve_grpc" else {}
        res = client.infer(model, [inp], model_version="" if version is None else str(version), **kw)
        return res.as_numpy(M.ADD_OUTPUT)
    client = make_grpc_client(srv.grpc_url) if api == "tfs_grpc" else make_http_client(srv.http_url)
    out = client.predict({M.ADD_INPUT: x}, model, model_version=version or 0, timeout=CLIENT_TIMEOUT_S)
    return out[M.ADD_OUTPUT] if isinstance(out, dict) else out
