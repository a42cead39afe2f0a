"""config.json parsing and validation (pure)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ovfast.config.load import (
    ConfigError, model_config_from_dict, parse_batch_size, parse_config_text, parse_layout, parse_shape,
)
from ovfast.config.schema import ANY_DIM, AUTO, Dim, ShapeSpec
from ovfast.repository.version_policy import All, Latest, Specific


def doc(*configs, **top) -> str:
    return json.dumps({"model_config_list": [{"config": c} for c in configs], **top})


def test_full_entry_parses(tmp_path: Path):
    repo = parse_config_text(doc({
        "name": "resnet", "base_path": "models/resnet", "batch_size": "1:8", "layout": "NHWC:NCHW",
        "nireq": 4, "target_device": "AUTO", "plugin_config": {"NUM_STREAMS": "2", "PERFORMANCE_HINT": "THROUGHPUT"},
        "model_version_policy": {"latest": {"num_versions": 2}}, "allow_cache": True, "color_format": "BGR",
    }), tmp_path)
    assert repo.errors == ()
    (m,) = repo.models
    assert m.base_path == str(tmp_path / "models" / "resnet")
    assert m.batch_size == Dim(1, 8)
    assert m.layout == (("", "NHWC:NCHW"),)
    assert m.nireq == 4 and m.target_device == "AUTO" and m.allow_cache
    assert m.plugin_config_dict == {"NUM_STREAMS": "2", "PERFORMANCE_HINT": "THROUGHPUT"}
    assert m.model_version_policy == Latest(2)
    assert m.color_format == "BGR"


@pytest.mark.parametrize("value,expected", [
    (None, None), (0, None), ("0", None), (4, Dim(4, 4)), ("4", Dim(4, 4)), ("auto", AUTO), (-1, ANY_DIM),
    ("-1", ANY_DIM), ("1:8", Dim(1, 8)),
])
def test_batch_size_forms(value, expected):
    assert parse_batch_size(value) == expected


@pytest.mark.parametrize("value", [-2, "x", "8:1", "0:4", 1.5, [1], True])
def test_batch_size_invalid(value):
    with pytest.raises(ConfigError, match="batch_size"):
        parse_batch_size(value)


def _spec(*dims) -> ShapeSpec:
    return ShapeSpec(tuple(Dim(*d) if isinstance(d, tuple) else (ANY_DIM if d == -1 else Dim(d, d)) for d in dims))


def test_shape_forms():
    assert parse_shape("auto") == (("", AUTO),)
    assert parse_shape("(1, 3,224,224)") == (("", _spec(1, 3, 224, 224)),)
    assert parse_shape([1, 3, 224, 224]) == (("", _spec(1, 3, 224, 224)),)
    assert parse_shape({"in": "(1,3,-1,-1)", "other": "auto", "third": [2, 2], "r": "(1,1:10)"}) == (
        ("in", _spec(1, 3, -1, -1)), ("other", AUTO), ("third", _spec(2, 2)), ("r", _spec(1, (1, 10))))


@pytest.mark.parametrize("value", ["1,3", "(1,a)", "(1,0)", "(1,5:2)", "(1,-2)", 5, {"x": 3}, {"": "(1)"}])
def test_shape_invalid(value):
    with pytest.raises(ConfigError):
        parse_shape(value)


def test_layout_forms():
    assert parse_layout("NHWC:NCHW") == (("", "NHWC:NCHW"),)
    assert parse_layout("NC") == (("", "NC"),)
    assert parse_layout("N...") == (("", "N..."),)
    assert parse_layout({"in": "NHWC:NCHW", "out": "CN:NC"}) == (("in", "NHWC:NCHW"), ("out", "CN:NC"))


@pytest.mark.parametrize("value", ["nhwc", "NHWC:NCH", "A:B:C", 3, {"in": ""}])
def test_layout_invalid(value):
    with pytest.raises(ConfigError, match="layout"):
        parse_layout(value)


def test_version_policies():
    base = {"name": "m", "base_path": "/m"}
    assert model_config_from_dict(base).model_version_policy == Latest(1)
    assert model_config_from_dict({**base, "model_version_policy": {"all": {}}}).model_version_policy == All()
    spec = model_config_from_dict({**base, "model_version_policy": {"specific": {"versions": [3, 1]}}})
    assert spec.model_version_policy == Specific((1, 3))
    with pytest.raises(ConfigError, match="model_version_policy"):
        model_config_from_dict({**base, "model_version_policy": {"latest": {}, "all": {}}})


@pytest.mark.parametrize("entry,message", [
    ({"name": "m", "base_path": "/m", "colour": 1}, "unknown key"),
    ({"base_path": "/m"}, "'name' is required"),
    ({"name": "m"}, "base_path"),
    ({"name": "m", "base_path": "/a/../etc"}, r"'\.\.'"),
    ({"name": "m", "base_path": "azure://x/y"}, "azure"),
    ({"name": "m", "base_path": "/m", "nireq": -1}, "nireq"),
    ({"name": "m", "base_path": "/m", "nireq": 100001}, "Nireq parameter too high"),
    ({"name": "m", "base_path": "/m", "plugin_config": {"A": [1]}}, "plugin_config"),
    ({"name": "m", "base_path": "/m", "plugin_config": "x"}, "plugin_config"),
    ({"name": "m", "base_path": "/m", "allow_cache": "yes"}, "allow_cache"),
    ({"name": "m", "base_path": "/m", "max_sequence_number": 10}, "used for non stateful model"),
    ({"name": "m", "base_path": "/m", "stateful": "yes"}, "'stateful' must be true or false"),
    ({"name": "m", "base_path": "/m", "custom_loader_options": {}}, "not supported"),
    ({"name": "m", "base_path": "/m", "target_device": ""}, "target_device"),
    ({"name": "m", "base_path": "/m", "color_format": "XYZ"}, "color_format"),
])
def test_invalid_entries(entry, message):
    with pytest.raises(ConfigError, match=message):
        model_config_from_dict(entry)


def test_shape_wins_over_batch_size():
    m = model_config_from_dict({"name": "m", "base_path": "/m", "shape": "(1,10)", "batch_size": 4})
    assert m.batch_size is None and m.shape == (("", _spec(1, 10)),)


def test_remote_paths_kept():
    assert model_config_from_dict({"name": "m", "base_path": "s3://bucket/m"}).base_path == "s3://bucket/m"


def test_one_bad_entry_does_not_stop_the_others():
    repo = parse_config_text(doc({"name": "good", "base_path": "/g"}, {"name": "bad", "base_path": "/b", "nireq": "x"},
                                 {"name": "good", "base_path": "/dup"}))
    assert [m.name for m in repo.models] == ["good"]
    assert len(repo.errors) == 2
    assert "model 'bad'" in repo.errors[0] and "already used" in repo.errors[1]
    assert repo.invalid_names == ("bad",)


@pytest.mark.parametrize("text,message", [
    ("{not json", "not valid json"),
    ("[]", "JSON object"),
    ("{}", "model_config_list"),
    ('{"model_config_list": [], "extra": 1}', "unknown top-level"),
    ('{"model_config_list": {}}', "must be an array"),
    ('{"model_config_list": [], "mediapipe_config_list": [{}]}', "not supported"),
    ('{"model_config_list": [], "monitoring": {"metrics": {"enable": "yes"}}}', "enable"),
    ('{"model_config_list": [], "monitoring": {"metrics": {"enable": true, "metrics_list": [1]}}}', "metrics_list"),
    ('{"model_config_list": [], "monitoring": {"metrics": {"enable": true, "x": 1}}}', "unknown key"),
    ('{"model_config_list": [], "monitoring": {"other": {}}}', "monitoring"),
])
def test_invalid_files(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_config_text(text)


def test_monitoring_accepted():
    repo = parse_config_text(doc(monitoring={"metrics": {"enable": True, "metrics_list": ["ovms_requests_success"]}}))
    assert repo.monitoring.metrics.enable is True
    assert repo.monitoring.metrics.metrics_list == ("ovms_requests_success",)


def test_digest_follows_content():
    a = parse_config_text(doc({"name": "m", "base_path": "/m"}))
    b = parse_config_text(doc({"name": "m", "base_path": "/m"}))
    c = parse_config_text(doc({"name": "m", "base_path": "/n"}))
    assert a.digest == b.digest != c.digest
