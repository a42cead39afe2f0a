"""The Kubernetes manifests in ``deploy/`` against the real schemas (KServe's CRDs, Kubernetes' JSON
schemas; see ``deploy/schemas/README.md``) and against the contracts ovfast keeps with ModelMesh and
KServe. The Helm chart's rendered output is checked in ``test_helm_chart.py``.
"""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path

import pytest

import k8s_schemas as K

DEPLOY = K.ROOT / "deploy"
MANIFESTS = sorted(p for d in ("kserve", "modelmesh") for p in (DEPLOY / d).glob("*.yaml"))
# What ovfast serves (it reads what OpenVINO reads), by ModelMesh/KServe format name.
FORMATS = {"openvino_ir", "onnx", "tensorflow", "paddle", "tflite"}
# Ports ModelMesh's controller uses inside a runtime pod (spec/modelmesh.md §3.7).
MODELMESH_RESERVED_PORTS = {8033, 8080, 8085, 8086, 8089, 8090, 2112, 8008}
# Flags the ServingRuntimes pass that other engineers are adding to ovfast's CLI (REST TLS): the CLI check
# below accepts them until they exist, then parses them for real.
PENDING_FLAGS = ("--rest_certificate_path", "--rest_key_path", "--rest_ca_path")


def docs_of(path: Path) -> list[dict]:
    return K.load_documents(path.read_text())


def one(path: str, kind: str) -> dict:
    (doc,) = [d for d in docs_of(DEPLOY / path) if d["kind"] == kind]
    return doc


def test_manifest_set_is_complete():
    kinds = sorted((p.relative_to(DEPLOY).as_posix(), d["kind"]) for p in MANIFESTS for d in docs_of(p))
    assert ("kserve/clusterservingruntime.yaml", "ClusterServingRuntime") in kinds
    assert ("kserve/servingruntime.yaml", "ServingRuntime") in kinds
    assert ("modelmesh/servingruntime.yaml", "ServingRuntime") in kinds
    assert ("kserve/inferenceservices.yaml", "InferenceService") in kinds
    assert ("modelmesh/inferenceservice.yaml", "InferenceService") in kinds


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_manifest_matches_schema(path):
    docs = docs_of(path)
    assert docs
    for doc in docs:
        assert K.errors(doc) == [], f"{doc['kind']} {doc['metadata']['name']}"


# --- the validator itself: it must catch what a cluster would refuse ---------------------------------

def _mm_runtime() -> dict:
    return copy.deepcopy(one("modelmesh/servingruntime.yaml", "ServingRuntime"))


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["spec"].update(grpcEndpont="port:8085"), "'grpcEndpont' was unexpected"),
    (lambda d: d["spec"].update(multiModel="yes"), "'yes' is not of type 'boolean'"),
    (lambda d: d["spec"]["containers"][0].update(imagePullPolcy="Always"), "'imagePullPolcy' was unexpected"),
    (lambda d: d["spec"]["containers"][0].pop("name"), "'name' is a required property"),
    (lambda d: d["spec"]["supportedModelFormats"][0].update(autoSelect="true"), "is not of type 'boolean'"),
    (lambda d: d["metadata"].update(lables={}), "'lables' was unexpected"),
    (lambda d: d["spec"]["containers"][0]["resources"].update(request={}), "'request' was unexpected"),
])
def test_validator_rejects_broken_servingruntime(mutate, expected):
    doc = _mm_runtime()
    mutate(doc)
    assert any(expected in e for e in K.errors(doc)), K.errors(doc)


def test_validator_rejects_broken_inferenceservice_and_core_kinds():
    isvc = docs_of(DEPLOY / "kserve/inferenceservices.yaml")[0]
    isvc["spec"]["predictor"]["model"]["modelFormat"] = "openvino_ir"
    assert any("is not of type 'object'" in e for e in K.errors(isvc))
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "x"},
           "spec": {"maxUnavaliable": 1}}
    assert any("maxUnavaliable" in e for e in K.errors(pdb))
    with pytest.raises(KeyError, match="does not serve"):
        K.errors({**isvc, "apiVersion": "serving.kserve.io/v1alpha9"})
    with pytest.raises(KeyError, match="no stored schema"):
        K.errors({"apiVersion": "v1", "kind": "Pod"})


def test_stored_schemas_match_their_recorded_checksums():
    readme = (DEPLOY / "schemas" / "README.md").read_text()
    recorded = dict((name, digest) for digest, name in re.findall(r"`([0-9a-f]{64})`\s+`([^`]+)`", readme))
    stored = {p.relative_to(DEPLOY / "schemas").as_posix(): p for p in (DEPLOY / "schemas").rglob("*")
              if p.suffix in (".json", ".yaml")}
    assert set(recorded) == set(stored)
    for name, path in stored.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded[name], name


# --- ModelMesh: the runtime contract (spec/modelmesh.md §3.4-3.8) -----------------------------------

def _container(runtime: dict) -> dict:
    (container,) = runtime["spec"]["containers"]
    return container


def _flag(args: list[str], name: str) -> str | None:
    values = [a.split("=", 1)[1] for a in args if a.startswith(name + "=")]
    assert len(values) <= 1, name
    return values[0] if values else None


def test_modelmesh_runtime_is_native_multi_model():
    rt = one("modelmesh/servingruntime.yaml", "ServingRuntime")
    spec = rt["spec"]
    assert spec["multiModel"] is True
    assert "builtInAdapter" not in spec  # ovfast serves the SPI itself
    assert spec["protocolVersions"] == ["grpc-v2"]
    assert {f["name"] for f in spec["supportedModelFormats"]} == FORMATS
    assert all(f.get("autoSelect") for f in spec["supportedModelFormats"])
    args = _container(rt)["args"]
    assert "--modelmesh" in args
    # management: ovfast's default SPI port; data: the gRPC port ovfast is told to serve
    assert spec["grpcEndpoint"] == "port:8085"
    data_port = int(spec["grpcDataEndpoint"].removeprefix("port:"))
    assert int(_flag(args, "--port")) == data_port
    assert data_port not in MODELMESH_RESERVED_PORTS
    assert _flag(args, "--rest_port") == "0"


def test_modelmesh_runtime_capacity_comes_from_the_memory_request():
    container = _container(one("modelmesh/servingruntime.yaml", "ServingRuntime"))
    env = {e["name"]: e for e in container["env"]}
    ref = env["CONTAINER_MEM_REQ_BYTES"]["valueFrom"]["resourceFieldRef"]
    assert ref == {"containerName": container["name"], "resource": "requests.memory"}
    assert int(env["MEM_BUFFER_BYTES"]["value"]) > 0
    assert container["resources"]["limits"]["memory"] == container["resources"]["requests"]["memory"]


# --- KServe standalone ------------------------------------------------------------------------------

def test_standalone_runtimes_speak_v1_v2_grpc_v2_and_agree():
    cluster = one("kserve/clusterservingruntime.yaml", "ClusterServingRuntime")
    namespaced = one("kserve/servingruntime.yaml", "ServingRuntime")
    assert cluster["spec"] == namespaced["spec"]
    spec = cluster["spec"]
    assert spec["protocolVersions"] == ["v1", "v2", "grpc-v2"]
    assert FORMATS <= {f["name"] for f in spec["supportedModelFormats"]}
    container = _container(cluster)
    assert container["command"] == ["ovfast"]
    args = container["args"]
    assert _flag(args, "--model_path") == "/mnt/models"  # where KServe's storage initializer writes
    assert _flag(args, "--rest_port") == "8080"  # KServe's HTTP port
    rest = int(_flag(args, "--rest_port"))
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": rest}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": rest}
    assert spec["annotations"]["prometheus.kserve.io/port"] == str(rest)
    assert "--metrics_enable" in args


@pytest.mark.parametrize("path", ["kserve/clusterservingruntime.yaml", "modelmesh/servingruntime.yaml"])
def test_runtime_container_is_locked_down(path):
    (rt,) = docs_of(DEPLOY / path)
    sc = _container(rt)["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
    # a read-only root still needs a writable /tmp
    mounts = {m["mountPath"]: m["name"] for m in _container(rt)["volumeMounts"]}
    volumes = {v["name"]: v for v in rt["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def _runtimes() -> dict[str, dict]:
    return {d["metadata"]["name"]: d for p in MANIFESTS for d in docs_of(p)
            if d["kind"] in ("ServingRuntime", "ClusterServingRuntime")}


@pytest.mark.parametrize("path", ["kserve/inferenceservices.yaml", "modelmesh/inferenceservice.yaml"])
def test_inferenceservices_name_a_runtime_that_serves_their_format(path):
    runtimes = _runtimes()
    for isvc in docs_of(DEPLOY / path):
        model = isvc["spec"]["predictor"]["model"]
        runtime = runtimes[model["runtime"]]["spec"]
        fmt = model["modelFormat"]
        assert any(f["name"] == fmt["name"] and fmt.get("version") in (None, f.get("version"))
                   for f in runtime["supportedModelFormats"]), isvc["metadata"]["name"]
        modelmesh = isvc["metadata"].get("annotations", {}).get("serving.kserve.io/deploymentMode") == "ModelMesh"
        assert modelmesh == runtime.get("multiModel", False), isvc["metadata"]["name"]
        assert ("storageUri" in model) != ("storage" in model)
        if "storageUri" in model:
            assert re.match(r"^(s3|gs|pvc|https?)://", model["storageUri"])
        if not modelmesh:
            assert model.get("protocolVersion", "v1") in runtime["protocolVersions"]


def test_grpc_example_exposes_ovfast_grpc_port():
    (isvc,) = [d for d in docs_of(DEPLOY / "kserve/inferenceservices.yaml")
               if d["spec"]["predictor"]["model"].get("protocolVersion") == "grpc-v2"]
    (port,) = isvc["spec"]["predictor"]["model"]["ports"]
    args = _container(one("kserve/clusterservingruntime.yaml", "ClusterServingRuntime"))["args"]
    assert port["name"] == "h2c" and port["containerPort"] == int(_flag(args, "--port"))


# --- ovfast itself accepts what the manifests pass ---------------------------------------------------

def parse_with_ovfast(args: list[str]) -> None:
    """Parses ``args`` with ovfast's own CLI parser; flags still being added elsewhere are skipped."""
    cli = pytest.importorskip("ovfast.cli", reason="ovfast is not built in this environment")
    # raises UsageError on a malformed value; returns the flags it does not know
    _, unknown = cli.build_parser().parse_known_args(args)
    assert [a for a in unknown if a.split("=", 1)[0] not in PENDING_FLAGS] == []


@pytest.mark.parametrize("path", ["kserve/clusterservingruntime.yaml", "modelmesh/servingruntime.yaml"])
def test_ovfast_accepts_runtime_args(path):
    (rt,) = docs_of(DEPLOY / path)
    args = [a.replace("{{.Name}}", "resnet50") for a in _container(rt)["args"]]
    parse_with_ovfast(args)


def test_modelmesh_runtime_settings_from_its_pod(monkeypatch):
    """What ovfast makes of the ModelMesh runtime's args and env, with the memory request as Kubernetes
    fills in CONTAINER_MEM_REQ_BYTES (bytes): the SPI on grpcEndpoint, capacity = request - buffer."""
    cli = pytest.importorskip("ovfast.cli", reason="ovfast is not built in this environment")
    from ovfast.config.budget import parse_size

    rt = one("modelmesh/servingruntime.yaml", "ServingRuntime")
    container = _container(rt)
    for var in ("INTERNAL_GRPC_PORT", "INTERNAL_GRPC_SOCKET_PATH", "ADAPTER_PORT", "DEFAULT_MODELSIZE",
                "LIMIT_PER_MODEL_CONCURRENCY", "INTERNAL_SERVING_GRPC_PORT"):
        monkeypatch.delenv(var, raising=False)
    request = parse_size(container["resources"]["requests"]["memory"], "memory request")
    env = {e["name"]: e.get("value") for e in container["env"]}
    monkeypatch.setenv("CONTAINER_MEM_REQ_BYTES", str(request))
    for name in ("MEM_BUFFER_BYTES", "LOADING_CONCURRENCY", "LOADTIME_TIMEOUT"):
        monkeypatch.setenv(name, env[name])
    cfg = cli.config_from_args(cli.build_parser().parse_args(container["args"]))
    mm = cfg.modelmesh
    assert f"port:{mm.endpoint.removeprefix('port:')}" == rt["spec"]["grpcEndpoint"]
    assert f"port:{cfg.port}" == rt["spec"]["grpcDataEndpoint"]
    assert mm.capacity_bytes == request - int(env["MEM_BUFFER_BYTES"])
    assert (mm.loading_concurrency, mm.load_timeout_ms) == (int(env["LOADING_CONCURRENCY"]),
                                                            int(env["LOADTIME_TIMEOUT"]))
