"""observability.metrics: family selection, config.json `monitoring`, and the text rendering
(OVMS counter names survive a round trip through prometheus_client's parser)."""

from __future__ import annotations

import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from ovfast.observability import metrics as m


def test_default_set_excludes_optional_gauges():
    assert "ovms_infer_req_queue_size" not in m.DEFAULT_FAMILIES
    assert "ovms_infer_req_active" not in m.DEFAULT_FAMILIES
    assert "ovms_requests_success" in m.DEFAULT_FAMILIES
    assert m.select_families([]) == m.DEFAULT_FAMILIES


def test_select_keeps_order_drops_graph_families_and_refuses_unknown():
    assert m.select_families(["ovms_streams", "ovms_current_graphs", "ovms_streams"]) == ("ovms_streams",)
    with pytest.raises(ValueError, match="Invalid name in metrics_list: nope, ovms_nope"):
        m.select_families(["ovms_streams", "nope", "ovms_nope"])


def test_routes_match_native_numbering():
    # route = api * 6 + interface * 3 + method (native/include/ovfast/metrics.hpp)
    for i, (api, itf, method) in enumerate(m.ROUTES):
        assert i // 6 == (0 if api == m.TFS else 1)
        assert (i // 3) % 2 == (0 if itf == m.GRPC else 1)
        assert (method in ("Predict", "ModelInfer")) == (i % 3 == 0)


def test_render_round_trip_keeps_ovms_names():
    c = Metric("ovms_requests_success", "help", "counter")
    c.add_sample("ovms_requests_success", {"name": 'we"ird\\'}, 3)
    g = Metric("ovfast_models_loaded", "help", "gauge")
    g.add_sample("ovfast_models_loaded", {}, 2)
    h = Metric("ovms_inference_time_us", "help", "histogram")
    m._add_histogram(h, {"name": "a"}, ([1] + [0] * 32 + [2], 123))
    text = m.render_text([c, g, h]).decode()
    assert "\novms_requests_success{" in "\n" + text
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert fams["ovms_requests_success"].samples[0].labels["name"] == 'we"ird\\'
    assert fams["ovms_requests_success"].samples[0].value == 3
    buckets = [s for s in fams["ovms_inference_time_us"].samples if s.name.endswith("_bucket")]
    assert buckets[0].labels["le"] == "10" and buckets[0].value == 1
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 3
    count = [s for s in fams["ovms_inference_time_us"].samples if s.name.endswith("_count")][0]
    assert count.value == 3


def test_batching_families_are_default_and_selectable():
    for name in ("ovfast_batch_size", "ovfast_batch_queue_delay_us"):
        assert m.FAMILIES[name].type == "histogram"
        assert name in m.DEFAULT_FAMILIES
        assert m.select_families([name]) == (name,)
    assert list(m.BATCH_SIZE_BOUNDS) == sorted(set(m.BATCH_SIZE_BOUNDS)) and m.BATCH_SIZE_BOUNDS[0] == 1


def test_batch_size_histogram_uses_its_own_bounds():
    h = Metric("ovfast_batch_size", "help", "histogram")
    bounds = m.BATCH_SIZE_BOUNDS
    counts = [0] * (len(bounds) + 1)
    counts[0], counts[3], counts[-1] = 5, 2, 1  # five runs of 1 row, two of 4 rows, one beyond the last bound
    m._add_histogram(h, {"name": "a", "version": "1"}, (counts, 5 + 8 + 1000), bounds)
    fams = {f.name: f for f in text_string_to_metric_families(m.render_text([h]).decode())}
    buckets = {s.labels["le"]: s.value for s in fams["ovfast_batch_size"].samples if s.name.endswith("_bucket")}
    assert list(buckets) == [str(b) for b in bounds] + ["+Inf"]
    assert buckets["1"] == 5 and buckets[str(bounds[3])] == 7 and buckets["+Inf"] == 8
    total = {s.name: s.value for s in fams["ovfast_batch_size"].samples if not s.name.endswith("_bucket")}
    assert total == {"ovfast_batch_size_count": 8, "ovfast_batch_size_sum": 1013}
