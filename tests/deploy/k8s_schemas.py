"""Validators for the manifests in ``deploy/``, built from the schemas stored in ``deploy/schemas/``.

Core kinds use the Kubernetes JSON schemas (strict: unknown fields are errors); KServe's kinds use the
``openAPIV3Schema`` of the version named by ``apiVersion`` in KServe's own CRDs. A CRD schema lets the
API server prune unknown fields silently, which would hide a misspelt field here, so every object in it
that lists its properties (and does not preserve unknown fields) is made closed, as ``kubectl apply``'s
strict field validation treats it. CR ``metadata`` is checked against Kubernetes' ObjectMeta.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any, Iterator

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "deploy" / "schemas"
K8S_DIR = SCHEMAS / "kubernetes" / "v1.30.0-local-strict"
KSERVE_DIR = SCHEMAS / "kserve"

# (apiVersion, kind) -> the stored Kubernetes schema file
CORE_KINDS = {
    ("apps/v1", "Deployment"): "deployment-apps-v1.json",
    ("v1", "Service"): "service-v1.json",
    ("v1", "ConfigMap"): "configmap-v1.json",
    ("v1", "Secret"): "secret-v1.json",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudget-policy-v1.json",
}
# kind -> the stored KServe CRD file
KSERVE_KINDS = {
    "InferenceService": "serving.kserve.io_inferenceservices.yaml",
    "ServingRuntime": "serving.kserve.io_servingruntimes.yaml",
    "ClusterServingRuntime": "serving.kserve.io_clusterservingruntimes.yaml",
}
KSERVE_GROUP = "serving.kserve.io"
OBJECT_META = "https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


@cache
def _registry() -> Registry:
    defs = json.loads((K8S_DIR / "_definitions.json").read_text())
    return Registry().with_resource(defs["$id"], Resource.from_contents(defs))


def _closed(node: Any) -> Any:
    """A copy of an OpenAPI v3 structural schema with every listed-properties object closed and
    ``nullable`` turned into JSON Schema's null type."""
    if isinstance(node, list):
        return [_closed(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _closed(v) for k, v in node.items()}
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


# libyaml's loader when PyYAML has it: the InferenceService CRD is 2 MB of YAML
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def _crd_versions(kind: str) -> dict[str, dict]:
    crd = yaml.load((KSERVE_DIR / KSERVE_KINDS[kind]).read_text(), Loader=_LOADER)
    assert crd["spec"]["group"] == KSERVE_GROUP and crd["spec"]["names"]["kind"] == kind
    return {v["name"]: v for v in crd["spec"]["versions"]}


@cache
def _validator(api_version: str, kind: str) -> Draft202012Validator:
    if (api_version, kind) in CORE_KINDS:
        schema = json.loads((K8S_DIR / CORE_KINDS[api_version, kind]).read_text())
    elif kind in KSERVE_KINDS and api_version.startswith(KSERVE_GROUP + "/"):
        version = _crd_versions(kind).get(api_version.split("/", 1)[1])
        if version is None or not version.get("served"):
            raise KeyError(f"KServe's CRD does not serve {api_version} {kind}")
        schema = copy.deepcopy(_closed(version["schema"]["openAPIV3Schema"]))
        schema["properties"]["metadata"] = {"$ref": OBJECT_META}
    else:
        raise KeyError(f"no stored schema for {api_version} {kind}")
    return Draft202012Validator(schema, registry=_registry())


def errors(doc: dict) -> list[str]:
    """Every schema violation of one manifest, as ``path: message`` lines (empty when valid)."""
    validator = _validator(doc.get("apiVersion", ""), doc.get("kind", ""))
    found: Iterator[ValidationError] = validator.iter_errors(doc)
    return sorted(f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in found)


def load_documents(text: str) -> list[dict]:
    """The non-empty YAML documents of a manifest stream."""
    return [d for d in yaml.safe_load_all(text) if d]
