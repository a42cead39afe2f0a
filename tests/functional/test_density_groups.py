"""Idle unloading and OVMS's idle-servable groups against a real server: versions unused for
--idle_unload_seconds are unloaded and load again on their next request; versions of one group_name
load and unload together; the "permanent" group is loaded at start and never unloaded; a catalog
of a thousand entries starts with nothing loaded and a reload touches only what changed."""
from __future__ import annotations

import json

from density_util import build_catalog, check, index, infer, metrics, ready
from lifecycle_util import rest, wait_until, write_config
from test_density import BIG, measured_size


def test_idle_versions_unload_and_come_back(tmp_path, ovfast_server):
    cfg, seeds = build_catalog(tmp_path, ["a", "keep"], extra={"keep": {"group_name": "permanent"}})
    srv = ovfast_server("--config_path", str(cfg), "--idle_unload_seconds", "1", "--metrics_enable")
    assert ready(srv) == {"a", "keep"}  # without a budget, loaded at start as always
    wait_until(lambda: ready(srv) == {"keep"}, "a to be unloaded as idle", srv)
    assert "idle" in index(srv)["a"]["reason"]
    check(infer(srv, "kserve-grpc", "a"), seeds["a"])  # loads again on request
    assert "a" in ready(srv)
    wait_until(lambda: metrics(srv)["ovfast_model_unloads{reason=idle}"] == 2, "a second idle unload", srv)
    assert ready(srv) == {"keep"}  # permanent: never unloaded


def test_a_group_loads_and_unloads_together(tmp_path, ovfast_server):
    size = measured_size(ovfast_server, tmp_path)
    groups = {"g1": {"group_name": "g1"}, "g2": {"group_name": "g1"}, "p": {"group_name": "permanent"}}
    cfg, seeds = build_catalog(tmp_path / "groups", ["g1", "g2", "p", "x"], BIG, extra=groups)
    srv = ovfast_server("--config_path", str(cfg), "--memory_budget", str(int(size * 3.5)), "--metrics_enable")
    assert ready(srv) == {"p"}  # the permanent group is loaded at start
    check(infer(srv, "kserve-rest", "g1"), seeds["g1"], BIG)
    assert ready(srv) == {"p", "g1", "g2"}  # its whole group came with it
    check(infer(srv, "kserve-grpc", "x"), seeds["x"], BIG)
    assert ready(srv) == {"p", "x"}, (size, index(srv))  # the group left together; the permanent one stays
    assert metrics(srv)["ovfast_model_unloads{reason=budget}"] == 2
    check(infer(srv, "tfs-rest", "g2"), seeds["g2"], BIG)
    assert ready(srv) == {"p", "g1", "g2"}


def test_a_large_catalog_starts_unloaded_and_reloads_only_what_changed(tmp_path, ovfast_server):
    cfg, _ = build_catalog(tmp_path, ["shared"])
    entries = [{"name": f"m{i:04d}", "base_path": "models/shared"} for i in range(1000)]
    write_config(cfg, entries, memory_budget="1GiB")  # the budget from config.json
    srv = ovfast_server("--config_path", str(cfg), "--file_system_poll_wait_seconds", "0")
    idx = index(srv)
    assert len(idx) == 1000 and ready(srv) == set()
    check(infer(srv, "kserve-grpc", "m0500"), 1)
    assert ready(srv) == {"m0500"}
    entries[7] = {**entries[7], "nireq": 2}
    write_config(cfg, entries + [{"name": "new", "base_path": "models/shared"}], memory_budget="1GiB")
    before = len(srv.stderr())
    code, doc = rest(srv, "POST", "/v1/config/reload")
    assert code in (200, 201), doc
    reload_lines = [ln for ln in srv.stderr()[before:].splitlines() if "Config reload: Model" in ln]
    assert len(reload_lines) == 2 and any("m0007" in ln for ln in reload_lines), reload_lines
    assert ready(srv) == {"m0500"} and len(index(srv)) == 1001
    assert json.loads(json.dumps(doc))["new"]["model_version_status"][0]["state"] == "AVAILABLE"
