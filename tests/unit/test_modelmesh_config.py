"""ModelMesh settings (config/modelmesh.py: flags over ModelMesh's environment variables, checked as ModelMesh
checks them), the CLI's handling of --modelmesh, and what a loadModel request names (api/modelmesh/source.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ovfast import cli
from ovfast.api.modelmesh.source import (
    ModelKey, build_layout, files_size, format_of, parse_model_key, source_of,
)
from ovfast.config import modelmesh as mmc
from ovfast.errors import FailedPreconditionError, InvalidArgumentError
from ovfast.repository.layout import find_model_file, list_versions

GiB, MiB = 2**30, 2**20


def args(*argv: str):
    return cli.build_parser().parse_args(list(argv))


def config(*argv: str, env: dict | None = None) -> mmc.ModelMeshConfig | None:
    a = args(*argv)
    budget = None
    if a.memory_budget:
        from ovfast.config.budget import parse_memory_budget
        budget = parse_memory_budget(a.memory_budget)
    return mmc.from_args(a, budget, env or {})


def test_off_without_flag_or_environment():
    assert config() is None
    with pytest.raises(mmc.ModelMeshConfigError, match="--modelmesh_endpoint requires --modelmesh"):
        config("--modelmesh_endpoint", "port:9")


def test_defaults():
    c = config("--modelmesh", "--memory_budget", "4GiB")
    assert c == mmc.ModelMeshConfig(endpoint="port:8085", capacity_bytes=4 * GiB, loading_concurrency=1,
                                    load_timeout_ms=90000, default_model_size=128 * MiB, model_concurrency=0)
    assert c.addresses("127.0.0.1") == ["127.0.0.1:8085"]
    assert c.addresses("0.0.0.0,::1") == ["0.0.0.0:8085", "[::1]:8085"]
    small = config("--modelmesh", "--memory_budget", "600MiB")
    assert small.default_model_size == 60 * MiB  # a tenth of the capacity, so ModelMesh accepts it


@pytest.mark.parametrize("env, endpoint", [
    ({"INTERNAL_GRPC_PORT": "9100"}, "port:9100"),
    ({"ADAPTER_PORT": "9101"}, "port:9101"),
    ({"INTERNAL_GRPC_SOCKET_PATH": "/tmp/mmesh/grpc.sock", "INTERNAL_GRPC_PORT": "9100"}, "unix:/tmp/mmesh/grpc.sock"),
])
def test_environment_turns_it_on_and_names_the_endpoint(env, endpoint):
    a = args()
    assert mmc.enabled(a, env)
    assert mmc.from_args(a, 2 * GiB, env).endpoint == endpoint


def test_environment_sizes_and_flags_over_them():
    env = {"CONTAINER_MEM_REQ_BYTES": "4Gi", "MEM_BUFFER_BYTES": str(128 * MiB), "LOADING_CONCURRENCY": "2",
           "LOADTIME_TIMEOUT": "30000", "DEFAULT_MODELSIZE": "1000000", "LIMIT_PER_MODEL_CONCURRENCY": "4"}
    c = config("--modelmesh", env=env)
    assert (c.capacity_bytes, c.loading_concurrency, c.load_timeout_ms, c.default_model_size,
            c.model_concurrency) == (4 * GiB - 128 * MiB, 2, 30000, 1000000, 4)
    c = config("--modelmesh", "--memory_budget", "2GiB", "--modelmesh_loading_concurrency", "3",
               "--modelmesh_load_timeout_ms", "1000", "--modelmesh_default_model_size", "16MiB",
               "--modelmesh_model_concurrency", "0", "--modelmesh_endpoint", "unix:/run/ovfast/mm.sock", env=env)
    assert (c.capacity_bytes, c.loading_concurrency, c.load_timeout_ms, c.default_model_size,
            c.model_concurrency, c.endpoint) == (2 * GiB, 3, 1000, 16 * MiB, 0, "unix:/run/ovfast/mm.sock")
    assert c.addresses("0.0.0.0") == ["unix:/run/ovfast/mm.sock"]
    assert c.data_socket == ""
    assert config("--modelmesh", "--memory_budget", "2GiB", "--modelmesh_data_endpoint", "unix:/run/d.sock"
                  ).data_socket == "unix:/run/d.sock"
    assert config("--modelmesh", "--memory_budget", "2GiB", env={"INTERNAL_SERVING_GRPC_SOCKET_PATH": "/tmp/mmesh/"
                  "data.sock"}).data_socket == "unix:/tmp/mmesh/data.sock"


@pytest.mark.parametrize("argv, env, message", [
    (("--modelmesh_endpoint", "8085"), {}, "port:N"),
    (("--modelmesh_endpoint", "port:70000"), {}, "port:N"),
    (("--modelmesh_endpoint", "unix:relative.sock"), {}, "port:N"),
    ((), {"INTERNAL_GRPC_SOCKET_PATH": "grpc.sock"}, "absolute"),
    ((), {"INTERNAL_GRPC_PORT": "http"}, "INTERNAL_GRPC_PORT must be an integer"),
    (("--modelmesh_loading_concurrency", "0"), {}, "from 1"),
    (("--modelmesh_data_endpoint", "port:8001"), {}, "the TCP data endpoint is --port"),
    ((), {"INTERNAL_SERVING_GRPC_SOCKET_PATH": "data.sock"}, "absolute"),
    (("--modelmesh_load_timeout_ms", "99"), {}, "from 100"),
    ((), {"LOADTIME_TIMEOUT": "-1"}, "LOADTIME_TIMEOUT"),
    (("--modelmesh_default_model_size", "4KiB"), {}, "at least 8192"),
    (("--modelmesh_default_model_size", "lots"), {}, "--modelmesh_default_model_size"),
    (("--modelmesh_default_model_size", "1GiB", "--memory_budget", "1GiB"), {}, "capacity of at least"),
    ((), {"CONTAINER_MEM_REQ_BYTES": str(200 * MiB)}, "no memory left"),
    ((), {"CONTAINER_MEM_REQ_BYTES": "a lot"}, "CONTAINER_MEM_REQ_BYTES"),
])
def test_bad_settings_are_refused_with_their_name(argv, env, message):
    with pytest.raises(mmc.ModelMeshConfigError, match=message):
        config("--modelmesh", *argv, env=env)


def test_cli_modelmesh_serves_no_model_and_no_demo(monkeypatch):
    for var in ("INTERNAL_GRPC_PORT", "INTERNAL_GRPC_SOCKET_PATH", "ADAPTER_PORT", "INTERNAL_SERVING_GRPC_PORT",
                "CONTAINER_MEM_REQ_BYTES"):
        monkeypatch.delenv(var, raising=False)
    cfg = cli.config_from_args(args("--modelmesh", "--memory_budget", "3GiB"))
    assert cfg.models == () and not cfg.demo
    assert (cfg.port, cfg.rest_port, cfg.file_system_poll_wait_seconds) == (8001, 0, 0)
    assert cfg.modelmesh.capacity_bytes == 3 * GiB
    r = cfg.residency
    assert (r.memory_budget, r.explicit, r.evict, r.idle_unload_seconds) == (3 * GiB, True, False, 0)
    monkeypatch.setenv("INTERNAL_SERVING_GRPC_PORT", "8011")
    assert cli.config_from_args(args("--modelmesh", "--memory_budget", "3GiB")).port == 8011
    assert cli.config_from_args(args("--modelmesh", "--memory_budget", "3GiB", "--port", "9")).port == 9
    with pytest.raises(cli.UsageError, match="ModelMesh sends inference over gRPC"):
        cli.config_from_args(args("--modelmesh", "--memory_budget", "3GiB", "--port", "0"))


@pytest.mark.parametrize("argv", [
    ("--config_path", "c.json"), ("--model_name", "m", "--model_path", "/m"), ("--idle_unload_seconds", "5"),
    ("--model_control_mode", "explicit"),
])
def test_cli_modelmesh_refuses_models_and_unloading_of_its_own(argv, monkeypatch):
    with pytest.raises(cli.UsageError, match="ModelMesh"):
        cli.config_from_args(args("--modelmesh", "--memory_budget", "3GiB", *argv))


# --------------------------------------------------------------------- modelKey, modelPath, layout


def test_model_key():
    assert parse_model_key("") == ModelKey()
    key = parse_model_key(json.dumps({"bucket": "b", "disk_size_bytes": 2415, "storage_key": "minio",
                                      "model_type": {"name": "OpenVINO_IR", "version": "opset1"}, "other": [1]}))
    assert key == ModelKey(format="openvino_ir", disk_size=2415, storage_key="minio", bucket="b")
    assert parse_model_key('{"storage_params": {"type": "s3", "bucket": "x"}}').storage_type == "s3"
    for bad, message in (("{", "not valid JSON"), ("[1]", "JSON object"),
                         ('{"model_type": {"name": "sklearn"}}', "not a format ovfast serves")):
        with pytest.raises(InvalidArgumentError, match=message):
            parse_model_key(bad)


def test_source_of():
    entries = {"minio": {"type": "s3", "bucket": "models"}, "blob": {"type": "azure", "container": "c"}}
    assert source_of("/models/m__isvc-1/model", ModelKey(), entries) == "/models/m__isvc-1/model"
    assert source_of("s3://b/p", ModelKey(storage_key="minio"), entries) == "s3://b/p"
    assert source_of("onnx/mnist.onnx", ModelKey(storage_key="minio"), entries) == "s3://models/onnx/mnist.onnx"
    assert source_of("p", ModelKey(storage_key="minio", bucket="other"), entries) == "s3://other/p"
    assert source_of("p", ModelKey(storage_key="blob"), entries) == "az://c/p"
    assert source_of("p", ModelKey(storage_key="x", storage_type="gcs", bucket="g"), {}) == "gs://g/p"
    with pytest.raises(FailedPreconditionError, match="bucket is unknown"):
        source_of("p", ModelKey(storage_key="missing"), entries)
    with pytest.raises(InvalidArgumentError):
        source_of(" ", ModelKey(), entries)


def _files(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"x" * 10)
    return folder


def test_layout_of_a_folder_a_file_and_numbered_versions(tmp_path):
    ir = _files(tmp_path / "ir", "model.xml", "model.bin")
    base = build_layout(str(ir), "openvino_ir", tmp_path / "links" / "a")
    assert list_versions(base) == [1] and find_model_file(Path(base) / "1").name == "model.xml"
    onnx = _files(tmp_path / "one", "mnist.onnx") / "mnist.onnx"
    base = build_layout(str(onnx), "onnx", tmp_path / "links" / "b")
    assert [p.name for p in (Path(base) / "1").iterdir()] == ["mnist.onnx"]
    versions = tmp_path / "versions"
    _files(versions / "1", "model.onnx")
    _files(versions / "3", "model.onnx")
    assert build_layout(str(versions), None, tmp_path / "links" / "c") == str(versions)
    assert format_of(ir) == "openvino_ir" and format_of(onnx) == "onnx"
    assert files_size(str(ir)) == 20 and files_size(str(tmp_path / "nothing")) == 0


def test_layout_keeps_only_the_chosen_format(tmp_path):
    both = _files(tmp_path / "both", "model.xml", "model.bin", "model.onnx", "labels.txt")
    base = build_layout(str(both), "onnx", tmp_path / "links" / "a")
    assert sorted(p.name for p in (Path(base) / "1").iterdir()) == ["labels.txt", "model.onnx"]
    base = build_layout(str(both), "openvino_ir", tmp_path / "links" / "a")  # replaced
    assert find_model_file(Path(base) / "1").name == "model.xml"
    ir_file = both / "model.xml"
    assert sorted(p.name for p in (Path(build_layout(str(ir_file), None, tmp_path / "links" / "b")) / "1")
                  .iterdir()) == ["model.bin", "model.xml"]


@pytest.mark.parametrize("make, fmt, message", [
    (lambda t: t / "missing", None, "does not exist"),
    (lambda t: _files(t / "empty", "README"), None, "no model file"),
    (lambda t: _files(t / "ir", "model.xml", "model.bin"), "tflite", "no tflite model"),
    (lambda t: _files(t / "f", "m.onnx") / "m.onnx", "openvino_ir", "not a model of format openvino_ir"),
])
def test_layout_refuses_what_is_not_there(tmp_path, make, fmt, message):
    with pytest.raises(FailedPreconditionError, match=message):
        build_layout(str(make(tmp_path)), fmt, tmp_path / "links")
