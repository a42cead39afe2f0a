"""The typed spec: config texts parsed once into dims, shapes, floats; what is not served is refused;
LoadOptions carry the typed values and one function renders them for the native constructor."""
from __future__ import annotations

import json

import pytest

from ovfast.config.load import ConfigError, model_config_from_dict, parse_config_text, parse_dim, parse_floats
from ovfast.config.schema import ANY_DIM, AUTO, Dim, ShapeSpec
from ovfast import _native
from ovfast.runtime.model import _native_options, load_options


def cfg(**kw):
    return model_config_from_dict({"name": "m", "base_path": "/m", **kw})


@pytest.mark.parametrize("text,dim,fixed", [
    ("4", Dim(4, 4), True), ("-1", ANY_DIM, False), ("1:8", Dim(1, 8), False), ("3:3", Dim(3, 3), True),
])
def test_dims_parse_to_integers_and_print_back(text, dim, fixed):
    got = parse_dim(text, "shape")
    assert got == dim and got.fixed is fixed
    assert str(got) == ("3" if text == "3:3" else text)


@pytest.mark.parametrize("text,message", [
    ("0", "dimension 0"), ("-2", "bad dimension '-2'"), ("8:1", "bad range '8:1'"), ("0:4", "bad range"),
    ("x", "bad dimension 'x'"), ("1.5", "bad dimension"),
])
def test_bad_dims_are_config_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_dim(text, "shape")


def test_shape_and_batch_are_typed_values():
    m = cfg(shape={"x": "(1,3,1:8,-1)", "y": "auto"})
    assert m.shape == (("x", ShapeSpec((Dim(1, 1), Dim(3, 3), Dim(1, 8), ANY_DIM))), ("y", AUTO))
    assert str(m.shape[0][1]) == "(1,3,1:8,-1)"
    assert m.auto_shape_inputs == ("y",) and not m.auto_batch
    assert cfg(batch_size="auto").auto_batch
    assert cfg(batch_size="2:6").batch_size == Dim(2, 6)


@pytest.mark.parametrize("text,values", [
    ("127.5", (127.5,)), ("[123.7,116.3,103.5]", (123.7, 116.3, 103.5)), (" [1, 2 ,3] ", (1.0, 2.0, 3.0)),
    (None, ()), ("", ()),
])
def test_mean_scale_parse_to_floats(text, values):
    assert parse_floats(text, "mean") == values


@pytest.mark.parametrize("text,what,message", [
    ("[1,x]", "mean", "mean must be a number or a list of numbers"),
    ("nan", "mean", "finite"), ("[]", "mean", "finite"),
    ("[1,0]", "scale", "must not be 0"),
])
def test_bad_mean_scale_are_config_errors(text, what, message):
    with pytest.raises(ConfigError, match=message):
        parse_floats(text, what)


def test_layouts_are_validated_strings():
    assert cfg(layout={"x": "NHWC:NCHW"}).layout == (("x", "NHWC:NCHW"),)
    with pytest.raises(ConfigError, match="layout"):
        cfg(layout="NHWC:NC")


def test_load_options_carry_typed_values_and_leave_auto_out():
    o = load_options(cfg(shape={"x": "(1,3,1:8,-1)", "y": "auto"}, layout={"x": "NHWC:NCHW"}))
    assert o.shapes == (("x", ShapeSpec((Dim(1, 1), Dim(3, 3), Dim(1, 8), ANY_DIM))),)
    assert o.batch_size is None
    assert dict(o.plugin_config)["CACHE_DIR"] == ""  # "auto" models bypass the model cache
    assert "CACHE_DIR" not in dict(load_options(cfg(shape="auto", allow_cache=True)).plugin_config)
    assert load_options(cfg(batch_size="auto")).batch_size is None
    assert load_options(cfg(batch_size=4)).batch_size == Dim(4, 4)


def test_native_options_carry_typed_values_in_one_struct():
    m = model_config_from_dict({"name": "m", "base_path": "/m", "shape": {"x": "(1,3,1:8,-1)"},
                                "layout": {"x": "NHWC:NCHW"}, "nireq": 2, "color_format": "RGB",
                                "plugin_config": {"NUM_STREAMS": 2, "PERF_COUNT": True}})
    from dataclasses import replace

    o = _native_options("/m/1/model.xml", load_options(replace(m, mean=(1.0, 2.0, 3.0), scale=(4.0,))))
    assert isinstance(o, _native.ModelOptions)
    assert o.model_path == "/m/1/model.xml" and o.device == "CPU" and o.nireq == 2
    assert o.plugin_config == {"NUM_STREAMS": "2", "PERF_COUNT": "YES"}  # NUM_STREAMS set: no default hint
    assert o.shapes == {"x": [(1, 1), (3, 3), (1, 8), (0, -1)]}
    assert o.batch_size is None and o.layouts == {"x": "NHWC:NCHW"} and o.color_format == "RGB"
    assert o.mean == [1.0, 2.0, 3.0] and o.scale == [4.0]
    assert (o.max_batch_size, o.max_queue_delay_us, o.preferred_batch_sizes, o.echo) == (0, 0, [], False)
    assert _native_options("p", load_options(cfg(batch_size="1:8"))).batch_size == (1, 8)
    assert _native_options("p", load_options(cfg(batch_size=-1))).batch_size == (0, -1)


def test_native_options_refuse_a_dimension_that_is_no_range():
    o = _native.ModelOptions()
    with pytest.raises(ValueError, match="dimension"):
        o.batch_size = (4, 2)
    with pytest.raises(ValueError, match="dimension"):
        o.shapes = {"x": [(-2, 3)]}


# -- pipelines and custom node libraries are parsed (validated against the models when served) --------

def test_pipelines_and_custom_nodes_are_parsed_with_the_models():
    text = json.dumps({
        "model_config_list": [{"config": {"name": "m", "base_path": "/m"}}],
        "pipeline_config_list": [{"name": "ocr", "inputs": ["img"], "nodes": [], "outputs": []}],
        "custom_node_library_config_list": [{"name": "crop", "base_path": "/lib/libcrop.so"}],
    })
    repo = parse_config_text(text)
    assert [m.name for m in repo.models] == ["m"]
    assert repo.errors == ()
    assert [p.name for p in repo.pipelines] == ["ocr"]
    assert [(lib.name, lib.base_path) for lib in repo.libraries] == [("crop", "/lib/libcrop.so")]


def test_stateful_keys_as_ovms():
    m = cfg(stateful=True)
    assert (m.stateful, m.max_sequence_number, m.idle_sequence_cleanup, m.low_latency_transformation) == (
        True, 500, True, False)
    m = cfg(stateful=True, max_sequence_number=10, idle_sequence_cleanup=False, low_latency_transformation=True)
    assert (m.max_sequence_number, m.idle_sequence_cleanup, m.low_latency_transformation) == (10, False, True)
    assert cfg(stateful=False).stateful is False  # the default, written out, is fine
    with pytest.raises(ConfigError, match="Stateful model config parameter used for non stateful model: "
                                          "low_latency_transformation"):
        cfg(low_latency_transformation=True)
    with pytest.raises(ConfigError, match="^Dynamic shape and dynamic batch size are not supported for stateful"):
        cfg(stateful=True, batch_size="auto")
    with pytest.raises(ConfigError, match="^Dynamic shape and dynamic batch size are not supported for stateful"):
        cfg(stateful=True, shape={"x": "auto"})
    with pytest.raises(ConfigError, match="Sequence max number parameter too high"):
        cfg(stateful=True, max_sequence_number=1 << 32)
    with pytest.raises(ConfigError, match="max_sequence_number"):
        cfg(stateful=True, max_sequence_number=-1)
    with pytest.raises(ConfigError, match="dynamic_batching' cannot be used with a stateful model"):
        cfg(stateful=True, dynamic_batching={"max_batch_size": 4})


def test_a_pipeline_on_a_stateful_model_is_refused():
    repo = parse_config_text(json.dumps({
        "model_config_list": [{"config": {"name": "lstm", "base_path": "/m", "stateful": True}}],
        "pipeline_config_list": [{"name": "p", "inputs": ["x"], "outputs": [], "nodes": [
            {"name": "n", "model_name": "lstm", "type": "DL model", "inputs": [], "outputs": []}]}]}).encode())
    assert repo.errors == ("pipeline_config_list[0] (pipeline 'p'): Stateful model cannot be subscribed to "
                           "pipeline: model 'lstm'",)


