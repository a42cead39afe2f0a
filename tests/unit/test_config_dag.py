"""Pipeline definitions (config/dag.py, config/dag_check.py): parsing as OVMS's schema, and every
validation error with OVMS's message, against given signatures (no models, no server)."""
from __future__ import annotations

import json

import pytest

from ovfast.config import dag
from ovfast.config.dag_check import Signature, check
from ovfast.config.load import ConfigError, parse_config_text


def node(name, model="m", inputs=None, outputs=None, **kw):
    d = {"name": name, "type": "DL model", "model_name": model,
         "inputs": inputs if inputs is not None else [{"x": {"node_name": "request", "data_item": "in"}}],
         "outputs": outputs if outputs is not None else [{"data_item": "y", "alias": "y"}]}
    d.update(kw)
    return d


def custom(name, inputs, **kw):
    d = {"name": name, "type": "custom", "library_name": "lib", "inputs": inputs,
         "outputs": [{"data_item": "out", "alias": "out"}]}
    d.update(kw)
    return d


def pipeline(nodes, outputs=None, inputs=("in",), **kw):
    d = {"name": "p", "inputs": list(inputs), "nodes": nodes,
         "outputs": outputs if outputs is not None else [{"res": {"node_name": nodes[-1]["name"], "data_item": "y"}}]}
    d.update(kw)
    return dag.parse_pipeline(d)


def sig(inputs, outputs):
    return Signature(dict(inputs), dict(outputs))


AFFINE = sig({"x": ("FP32", (1, 4))}, {"y": ("FP32", (1, 4)), "z": ("FP32", (1, 4))})


def error(p, signatures) -> str:
    with pytest.raises(dag.PipelineError) as info:
        check(p, signatures)
    return str(info.value)


def test_config_file_carries_pipelines_and_libraries(tmp_path):
    repo = parse_config_text(json.dumps({
        "model_config_list": [{"config": {"name": "m", "base_path": "/m"}}],
        "custom_node_library_config_list": [{"name": "lib", "base_path": "libs/libnode.so"}],
        "pipeline_config_list": [
            {"name": "p", "inputs": ["in"], "nodes": [node("a", params=None) if False else node("a")],
             "outputs": [{"res": {"node_name": "a", "data_item": "y"}}]},
            {"name": "m", "inputs": ["in"], "nodes": [node("a")], "outputs": []},
            {"name": "p", "inputs": ["in"], "nodes": [node("b")], "outputs": []},
            {"name": "bad", "inputs": ["in"], "nodes": [{"name": "n", "type": "python"}], "outputs": []},
        ]}), tmp_path)
    assert [p.name for p in repo.pipelines] == ["p"]
    assert repo.libraries == (dag.LibraryConfig("lib", str(tmp_path / "libs/libnode.so")),)
    assert repo.errors[0] == "pipeline_config_list[1] (pipeline 'm'): Pipeline has the same name as model"
    assert repo.errors[1] == ("pipeline_config_list[2] (pipeline 'p'): Pipeline definition with the same name "
                              "already exists")
    assert "Unsupported node type" not in repo.errors[2]  # schema: 'inputs' and 'outputs' are required first
    assert repo.errors[2].startswith("pipeline_config_list[3] (pipeline 'bad') nodes[0]")
    p = repo.pipelines[0]
    assert p.nodes[0].inputs == (dag.NodeInput("x", "request", "in"),)
    assert p.outputs == (("res", "a", "y"),)


def test_schema_refusals():
    with pytest.raises(ConfigError, match="Unsupported node type"):
        pipeline([node("a", type="custom")])
    with pytest.raises(ConfigError, match="Unsupported node type"):
        pipeline([{**node("a"), "type": "python"}])
    with pytest.raises(ConfigError, match="demultiply_count must be an integer from -1 to 10000"):
        pipeline([node("a", demultiply_count=10001)])
    with pytest.raises(ConfigError, match="params must be an object of strings"):
        pipeline([custom("c", [], params={"k": 1})])
    with pytest.raises(ConfigError, match="unknown key"):
        pipeline([node("a", colour="red")])


def test_a_valid_chain_derives_the_pipeline_signature():
    p = pipeline([node("a"), node("b", inputs=[{"x": {"node_name": "a", "data_item": "y"}}])])
    c = check(p, {"a": AFFINE, "b": AFFINE})
    assert [n.name for n in c.order] == ["a", "b"]
    assert c.inputs == {"in": ("FP32", (1, 4))}
    assert c.outputs == {"res": ("FP32", (1, 4))}


@pytest.mark.parametrize("build, message", [
    (lambda: pipeline([node("a"), node("a")]), "Pipeline definition has multiple nodes with the same name - a"),
    (lambda: pipeline([node("a", inputs=[{"x": {"node_name": "ghost", "data_item": "y"}}])]),
     "Pipeline definition has reference to missing node - node: a refers to: ghost"),
    (lambda: pipeline([node("a", inputs=[{"x": {"node_name": "request", "data_item": "nope"}}])]),
     "Pipeline definition has reference to missing data source - node: a reads request input: nope"),
    (lambda: pipeline([node("a", inputs=[{"x": {"node_name": "b", "data_item": "y"}}]),
                       node("b", inputs=[{"x": {"node_name": "a", "data_item": "y"}}])]),
     "Pipeline definition contains a cycle - a, b"),
    (lambda: pipeline([node("a"), node("b")], outputs=[{"res": {"node_name": "b", "data_item": "y"}}]),
     "Pipeline definition has unconnected nodes - a"),
    (lambda: pipeline([node("a", inputs=[{"x": {"node_name": "response", "data_item": "y"}}])]),
     "Pipeline definition has response node used as dependency node - node: a"),
    (lambda: pipeline([node("a")], outputs=[]), "Pipeline definition is missing request or response node"),
    (lambda: pipeline([node("a", gather_from="a")]), "Gather node refers to node that isn't demultiplexer"),
    (lambda: pipeline([node("a", gather_from="zz")]), "Gather node refers to not existing node"),
    (lambda: pipeline([node("a", gather_from="request")]), "Gathering from entry node is not allowed"),
    (lambda: pipeline([node("a", demultiply_count=-1),
                       node("b", demultiply_count=0, inputs=[{"x": {"node_name": "a", "data_item": "y"}}])]),
     "Only one dynamic demultiplexer is allowed in a pipeline"),
    (lambda: pipeline([node("a", demultiply_count=2),
                       node("b", inputs=[{"x": {"node_name": "a", "data_item": "y"}},
                                         {"w": {"node_name": "request", "data_item": "in"}}])]),
     "Demultiplexer and gather nodes are not in LIFO order - node: b reads from different demultiplexing levels"),
])
def test_structure_errors(build, message):
    assert error(build(), {"a": AFFINE, "b": AFFINE}).startswith(message)


def test_signature_errors():
    p = pipeline([node("a", inputs=[{"q": {"node_name": "request", "data_item": "in"}}])])
    assert error(p, {"a": AFFINE}) == "Pipeline definition has connection to non existing model input - node: a input: q"
    two = sig({"x": ("FP32", (1, 4)), "w": ("FP32", (1, 4))}, {"y": ("FP32", (1, 4))})
    assert error(pipeline([node("a")]), {"a": two}) == (
        "Pipeline definition does not have connections for all inputs of underlying models - node: a inputs: w")
    p = pipeline([node("a", outputs=[{"data_item": "nope", "alias": "y"}])])
    assert error(p, {"a": AFFINE}) == "Pipeline definition has reference to missing model output - node: a output: nope"
    chain = pipeline([node("a"), node("b", inputs=[{"x": {"node_name": "a", "data_item": "y"}}])])
    other = sig({"x": ("FP32", (1, 5))}, {"y": ("FP32", (1, 5))})
    assert error(chain, {"a": AFFINE, "b": other}) == (
        "Shape mismatch between connected nodes - a:y FP32 (1,4) -> b:x FP32 (1,5)")
    ints = sig({"x": ("INT32", (1, 4))}, {"y": ("INT32", (1, 4))})
    assert error(chain, {"a": AFFINE, "b": ints}).startswith("Precision mismatch between connected nodes - a:y FP32")
    both = pipeline([node("a"), node("b")], outputs=[{"r1": {"node_name": "a", "data_item": "y"}},
                                                      {"r2": {"node_name": "b", "data_item": "y"}}])
    assert error(both, {"a": AFFINE, "b": other}).startswith(
        "Multiple nodes connected to the same pipeline input require different tensor metadata - input: in")
    loose = sig({"x": ("FP32", (1, -1))}, {"y": ("FP32", (1, 4))})
    assert check(both, {"a": loose, "b": AFFINE}).inputs == {"in": ("FP32", (1, 4))}, "compatible: the narrowest"


def test_demultiplexing_shapes():
    rows = sig({"x": ("FP32", (1, 4))}, {"y": ("FP32", (3, 1, 2))})
    per_row = sig({"x": ("FP32", (1, 2))}, {"y": ("FP32", (1, 2))})
    gathered = sig({"x": ("FP32", (3, 1, 2))}, {"y": ("FP32", (3, 1, 2))})
    p = pipeline([node("split", demultiply_count=3),
                  node("row", inputs=[{"x": {"node_name": "split", "data_item": "y"}}]),
                  node("join", gather_from="split", inputs=[{"x": {"node_name": "row", "data_item": "y"}}])],
                 outputs=[{"rows": {"node_name": "row", "data_item": "y"}},
                          {"joined": {"node_name": "join", "data_item": "y"}}])
    c = check(p, {"split": rows, "row": per_row, "join": gathered})
    assert c.outputs == {"rows": ("FP32", (3, 1, 2)), "joined": ("FP32", (3, 1, 2))}
    assert c.levels["row"] == ("split",) and c.levels["join"] == ()
    wrong = sig({"x": ("FP32", (1, 4))}, {"y": ("FP32", (4, 1, 2))})
    assert error(p, {"split": wrong, "row": per_row, "join": gathered}).startswith(
        "Wrong dimension size. Should match demultiply count - node: split output: y shape: (4,1,2)")
    flat = sig({"x": ("FP32", (1, 4))}, {"y": ("FP32", (3,))})
    assert error(p, {"split": flat, "row": per_row, "join": gathered}).startswith(
        "Pipeline has not enough shape dimensions to demultiply")
    dynamic = pipeline([node("split", demultiply_count=-1),
                        node("row", inputs=[{"x": {"node_name": "split", "data_item": "y"}}])])
    c = check(dynamic, {"split": rows, "row": per_row})
    assert c.outputs == {"res": ("FP32", (-1, 1, 2))}
