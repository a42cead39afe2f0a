"""The Helm chart in ``deploy/helm/ovfast``, rendered by Helm itself (the Helm v4 SDK through
``helm-python-sdk``, as ``helm template`` does), for several combinations of values: every rendered object
must match the Kubernetes schema of its kind, and the Deployment must wire each option end to end (flag,
mount, Secret, probe).
"""

from __future__ import annotations

import base64
import json
import re
import textwrap

import pytest
import yaml

import k8s_schemas as K
from test_manifests import parse_with_ovfast

import helm_sdk
from helm_sdk import HelmError

if not helm_sdk.AVAILABLE:
    pytest.skip("helm-python-sdk (the [test] extra) renders the chart", allow_module_level=True)

CHART = K.ROOT / "deploy" / "helm" / "ovfast"
RESNET = {"model_config_list": [{"config": {"name": "resnet50", "base_path": "/models/resnet50",
                                            "target_device": "CPU"}}]}

# name -> values; each combination is rendered, schema-checked and checked for its wiring below
COMBINATIONS = {
    "defaults": {},
    "grpc-tls": {"tls": {"grpc": {"enabled": True, "secretName": "ovfast-grpc-tls"}}},
    "mtls-both": {"tls": {"grpc": {"enabled": True, "secretName": "grpc-cert", "clientAuth": True},
                          "rest": {"enabled": True, "secretName": "rest-cert", "clientAuth": True}}},
    "rest-tls": {"tls": {"rest": {"enabled": True, "secretName": "rest-cert"}}},
    "api-key-value": {"apiKey": {"enabled": True, "value": "s3cr3t"}},
    "api-key-existing": {"apiKey": {"enabled": True, "existingSecret": "team-keys", "secretKey": "ovfast"}},
    "resources-and-models": {
        "replicaCount": 3, "config": RESNET,
        "resources": {"requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"cpu": "8", "memory": "8Gi"}},
        "models": {"volume": {"persistentVolumeClaim": {"claimName": "models", "readOnly": True}}},
        "podDisruptionBudget": {"minAvailable": 2}, "compiledModelCache": {"enabled": True},
        "extraArgs": ["--log_level=DEBUG", "--max_request_memory=1GiB"],
        "envFrom": [{"secretRef": {"name": "s3-credentials"}}],
        "metrics": {"enabled": True, "list": "ovfast_requests_success,ovfast_requests_fail"},
    },
    "minimal": {"metrics": {"enabled": False}, "podDisruptionBudget": {"enabled": False},
                "service": {"type": "LoadBalancer", "grpcPort": 443, "restPort": 80}},
}


def render(values: dict, name: str = "demo") -> list[dict]:
    out = helm_sdk.render(str(CHART), values, name=name, namespace="serving")
    return [d for path, text in sorted(out.items()) if path.endswith(".yaml") for d in K.load_documents(text)]


@pytest.fixture(scope="module", params=sorted(COMBINATIONS))
def rendered(request) -> tuple[dict, dict[str, dict]]:
    values = COMBINATIONS[request.param]
    return values, {d["kind"]: d for d in render(values)}


def container(objs: dict[str, dict]) -> dict:
    (c,) = objs["Deployment"]["spec"]["template"]["spec"]["containers"]
    return c


def flags(objs: dict[str, dict]) -> dict[str, str | None]:
    out = {}
    for a in container(objs)["args"]:
        name, _, value = a.partition("=")
        out[name] = value or None
    return out


def mounted_from(objs: dict[str, dict], path: str) -> dict:
    """The volume a file path in the container comes from."""
    pod = objs["Deployment"]["spec"]["template"]["spec"]
    (mount,) = [m for m in container(objs)["volumeMounts"] if path.startswith(m["mountPath"].rstrip("/") + "/")]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    return volume


def test_chart_lints_clean():
    report = helm_sdk.lint(str(CHART), strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] > 1] == []  # INFO only


def test_every_rendered_object_matches_its_schema(rendered):
    _, objs = rendered
    assert {"Deployment", "Service", "ConfigMap"} <= set(objs)
    for doc in objs.values():
        assert K.errors(doc) == [], doc["kind"]


def test_config_json_is_values_config_and_is_what_ovfast_reads(rendered):
    values, objs = rendered
    config = json.loads(objs["ConfigMap"]["data"]["config.json"])
    assert config == values.get("config", {"model_config_list": []})
    path = flags(objs)["--config_path"]
    assert path.endswith("/config.json")
    assert mounted_from(objs, path)["configMap"]["name"] == objs["ConfigMap"]["metadata"]["name"]


def test_ports_probes_and_service_agree(rendered):
    values, objs = rendered
    f, c = flags(objs), container(objs)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert int(f["--port"]) == ports["grpc"] and int(f["--rest_port"]) == ports["http"]
    svc = {p["name"]: p for p in objs["Service"]["spec"]["ports"]}
    assert svc["grpc"]["targetPort"] == "grpc" and svc["http"]["targetPort"] == "http"
    assert svc["grpc"]["port"] == values.get("service", {}).get("grpcPort", 9000)
    assert objs["Service"]["spec"]["selector"].items() <= objs["Deployment"]["spec"]["template"]["metadata"][
        "labels"].items()
    rest_tls = values.get("tls", {}).get("rest", {})
    for probe, path in (("readinessProbe", "/v2/health/ready"), ("livenessProbe", "/v2/health/live")):
        if rest_tls.get("clientAuth"):  # the kubelet has no client certificate
            assert c[probe]["tcpSocket"] == {"port": "http"}
        else:
            assert c[probe]["httpGet"] == {"path": path, "port": "http",
                                           "scheme": "HTTPS" if rest_tls.get("enabled") else "HTTP"}


def test_tls_secrets_are_mounted_where_the_flags_point(rendered):
    values, objs = rendered
    f = flags(objs)
    for api in ("grpc", "rest"):
        tls = values.get("tls", {}).get(api, {})
        names = [f"--{api}_certificate_path", f"--{api}_key_path", f"--{api}_ca_path"]
        wanted = names if tls.get("clientAuth") else names[:2] if tls.get("enabled") else []
        assert [n for n in names if n in f] == wanted
        for name, key in zip(wanted, ("tls.crt", "tls.key", "ca.crt")):
            assert f[name].endswith("/" + key)
            assert mounted_from(objs, f[name])["secret"]["secretName"] == tls["secretName"]


def test_api_key_file_comes_from_a_secret(rendered):
    values, objs = rendered
    key = values.get("apiKey", {})
    f = flags(objs)
    if not key.get("enabled"):
        assert "--api_key_file" not in f and "Secret" not in objs
        return
    secret_name = mounted_from(objs, f["--api_key_file"])["secret"]["secretName"]
    assert f["--api_key_file"].endswith("/" + key.get("secretKey", "api-key"))
    if key.get("existingSecret"):
        assert secret_name == key["existingSecret"] and "Secret" not in objs
    else:
        secret = objs["Secret"]
        assert secret["metadata"]["name"] == secret_name
        assert base64.b64decode(secret["data"]["api-key"]).decode() == key["value"]


def test_resources_replicas_and_disruption_budget(rendered):
    values, objs = rendered
    c = container(objs)
    assert c["resources"] == values.get("resources", {"requests": {"cpu": "1", "memory": "2Gi"},
                                                      "limits": {"memory": "2Gi"}})
    assert objs["Deployment"]["spec"]["replicas"] == values.get("replicaCount", 1)
    pdb_values = values.get("podDisruptionBudget", {})
    if pdb_values.get("enabled", True) is False:
        assert "PodDisruptionBudget" not in objs
        return
    pdb = objs["PodDisruptionBudget"]["spec"]
    assert pdb["selector"]["matchLabels"] == objs["Deployment"]["spec"]["selector"]["matchLabels"]
    assert pdb == {"selector": pdb["selector"],
                   **({"minAvailable": 2} if "minAvailable" in pdb_values else {"maxUnavailable": 1})}


def test_pod_runs_as_non_root_on_a_read_only_root(rendered):
    _, objs = rendered
    pod = objs["Deployment"]["spec"]["template"]["spec"]
    c = container(objs)
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    writable = {m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")}
    assert "/tmp" in writable
    if "--cache_dir" in flags(objs):
        assert flags(objs)["--cache_dir"] in writable


def test_metrics_and_extra_options(rendered):
    values, objs = rendered
    f = flags(objs)
    metrics = values.get("metrics", {}).get("enabled", True)
    assert ("--metrics_enable" in f) == metrics
    annotations = objs["Deployment"]["spec"]["template"]["metadata"].get("annotations", {})
    assert (annotations.get("prometheus.io/port") == f["--rest_port"]) == metrics
    for arg in values.get("extraArgs", []):
        assert arg in container(objs)["args"]
    if values.get("models", {}).get("volume"):
        assert mounted_from(objs, "/models/resnet50")["persistentVolumeClaim"]["claimName"] == "models"
    assert container(objs).get("envFrom", []) == values.get("envFrom", [])


def test_ovfast_accepts_the_rendered_args(rendered):
    _, objs = rendered
    c = container(objs)
    assert c["command"] == ["ovfast"]
    parse_with_ovfast(c["args"])


@pytest.mark.parametrize("values, message", [
    ({"tls": {"grpc": {"enabled": True}}}, "tls.grpc.enabled needs tls.grpc.secretName"),
    ({"tls": {"rest": {"enabled": True}}}, "tls.rest.enabled needs tls.rest.secretName"),
    ({"apiKey": {"enabled": True}}, "apiKey.enabled needs apiKey.existingSecret or apiKey.value"),
    ({"podDisruptionBudget": {"minAvailable": 1, "maxUnavailable": 1}}, "not both"),
    ({"replicaCount": "three"}, "replicaCount"),
    ({"ports": {"grpc": 70000, "rest": 8000}}, "ports/grpc"),
    ({"extraArgs": ["log_level=DEBUG"]}, "extraArgs"),
    ({"tsl": {}}, "'tsl' not allowed"),
])
def test_bad_values_are_refused_with_a_clear_message(values, message):
    with pytest.raises(HelmError, match=message):
        render(values)


def test_image_defaults_to_app_version_and_can_be_pinned():
    chart = (CHART / "Chart.yaml").read_text()
    app_version = [line.split(":", 1)[1].strip().strip('"') for line in chart.splitlines()
                   if line.startswith("appVersion:")][0]
    (dep,) = [d for d in render({}) if d["kind"] == "Deployment"]
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == f"ghcr.io/ovfast/ovfast:{app_version}"
    (dep,) = [d for d in render({"image": {"repository": "registry.local/ovfast", "tag": "dev"}})
              if d["kind"] == "Deployment"]
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/ovfast:dev"


def test_docs_examples_render_and_validate():
    """The manifests and values files docs/kubernetes.md tells users to write (its `<<'EOF'` blocks)."""
    text = (K.ROOT / "docs" / "kubernetes.md").read_text()
    bodies = [textwrap.dedent(b) for b in re.findall(r"<<'EOF'\n(.*?)\n[ ]*EOF\n", text, re.S)]
    manifests = [d for b in bodies if b.lstrip().startswith("apiVersion:") for d in K.load_documents(b)]
    values = [yaml.safe_load(b) for b in bodies if b.startswith("config:")]
    assert manifests and values
    for doc in manifests:
        assert K.errors(doc) == [], doc["metadata"]["name"]
    for v in values:
        objs = render(v)
        assert {d["kind"] for d in objs} >= {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget"}
        for doc in objs:
            assert K.errors(doc) == [], doc["kind"]
