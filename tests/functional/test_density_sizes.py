"""Measured sizes where clients see them (issue 16 point 2): each loaded version's measured memory in
KServe REST model metadata (``parameters.size_bytes``), Triton's ModelConfig over gRPC and REST
(``parameters.size_bytes.string_value``: gRPC's ModelMetadataResponse has no parameters), the REST
repository index and ``ovfast_model_memory_bytes`` — with a budget, and without one (today's eager
loads). A version that is not loaded reports 0."""
from __future__ import annotations

import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from density_util import build_catalog, check, index, infer, metrics


def _sizes(srv, name: str) -> dict[str, int]:
    """What each place says ``name`` (version 1) holds."""
    h = httpclient.InferenceServerClient(srv.http_url)
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    try:
        grpc_cfg = g.get_model_config(name).config
        return {
            "rest metadata": h.get_model_metadata(name)["parameters"]["size_bytes"],
            "rest config": int(h.get_model_config(name)["parameters"]["size_bytes"]["string_value"]),
            "grpc config": int(grpc_cfg.parameters["size_bytes"].string_value),
            "rest index": index(srv)[name]["size_bytes"],
            "metric": int(metrics(srv).get(f"ovfast_model_memory_bytes{{name={name},version=1}}", 0)),
        }
    finally:
        h.close()
        g.close()


def test_sizes_of_lazily_loaded_versions_over_every_client(tmp_path, ovfast_server):
    cfg, seeds = build_catalog(tmp_path, ["a", "b"])
    srv = ovfast_server("--config_path", str(cfg), "--memory_budget", "1GiB", "--metrics_enable")
    assert set(_sizes(srv, "a").values()) == {0}  # in the catalog, not loaded
    check(infer(srv, "kserve-grpc", "a"), seeds["a"])
    a = _sizes(srv, "a")
    assert len(set(a.values())) == 1 and a["metric"] > 0, a  # one measurement, reported everywhere
    assert set(_sizes(srv, "b").values()) == {0}
    assert metrics(srv)["ovfast_memory_used_bytes"] == a["metric"]

    # an explicit unload: the version holds nothing any more, and says so (its metadata is gone with it)
    h = httpclient.InferenceServerClient(srv.http_url)
    h.unload_model("a")
    h.close()
    assert index(srv)["a"]["size_bytes"] == 0
    assert "ovfast_model_memory_bytes{name=a,version=1}" not in metrics(srv)
    assert metrics(srv)["ovfast_memory_used_bytes"] == 0


def test_sizes_without_a_budget(tmp_path, ovfast_server):
    cfg, seeds = build_catalog(tmp_path, ["m"])
    srv = ovfast_server("--config_path", str(cfg), "--metrics_enable")
    check(infer(srv, "kserve-rest", "m"), seeds["m"])
    sizes = _sizes(srv, "m")
    assert len(set(sizes.values())) == 1 and sizes["metric"] > 0, sizes
