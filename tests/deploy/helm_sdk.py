"""Helm's Go SDK (``helm-python-sdk``), called in a child process.

Loading the SDK starts a Go runtime, which takes over the process's signal handling: SIGPIPE, ignored by
Python, gets a handler, and a test process that later writes to a socket its peer closed (a TLS server
refusing a client certificate) could then die of a signal it never asked for. So the tests never load it
themselves: each call runs ``python helm_sdk.py`` with a JSON request on stdin.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

AVAILABLE = importlib.util.find_spec("helm_python") is not None


class HelmError(Exception):
    """The SDK refused the chart or the values; ``kind`` is its exception's class name."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


def _call(request: dict) -> object:
    r = subprocess.run([sys.executable, __file__], input=json.dumps(request), capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"helm_sdk.py exited {r.returncode}: {r.stderr[-3000:]}")
    answer = json.loads(r.stdout)
    if "error" in answer:
        raise HelmError(answer["error"], answer["message"])
    return answer["result"]


def render(chart: str, values: dict, name: str, namespace: str) -> dict[str, str]:
    """``helm template``: rendered file path -> text."""
    return _call({"op": "render", "chart": chart, "values": values, "name": name, "namespace": namespace})


def lint(chart: str, strict: bool = True) -> dict:
    """``helm lint``: the SDK's report (``errors``, ``messages``)."""
    return _call({"op": "lint", "chart": chart, "strict": strict})


def _serve(request: dict) -> dict:
    import helm_python as helm  # noqa: PLC0415 - only ever in the child

    try:
        if request["op"] == "lint":
            return {"result": helm.lint(request["chart"], strict=request["strict"])}
        with helm.Chart.load(request["chart"]) as chart:
            out = chart.render(request["values"], name=request["name"], namespace=request["namespace"])
        return {"result": dict(out)}
    except (helm.HelmRenderError, helm.HelmValuesError) as exc:
        return {"error": type(exc).__name__, "message": str(exc)}


if __name__ == "__main__":
    json.dump(_serve(json.load(sys.stdin)), sys.stdout)
