"""Checks a repaired ovfast wheel: a manylinux tag; libjpeg, libpng and grpc++ bundled in ovfast.libs/;
nothing of OpenVINO (or its TBB/hwloc) bundled; the extension's RUNPATH reaching both ovfast.libs and
the openvino wheel's libs. Exits non-zero with the reasons otherwise.

    python packaging/check_wheel.py dist/ovfast-...-manylinux_2_35_x86_64.whl

Needs pyelftools (auditwheel depends on it).
"""
from __future__ import annotations

import io
import re
import sys
import zipfile

from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

BUNDLED = ("libjpeg", "libpng16", "libgrpc++", "libgrpc-", "libgpr")
NOT_BUNDLED = ("libopenvino", "libtbb", "libhwloc")
RUNPATH = ("$ORIGIN/../openvino/libs", "$ORIGIN/../ovfast.libs")


def dynamic_tags(data: bytes) -> dict[str, list[str]]:
    tags: dict[str, list[str]] = {}
    for section in ELFFile(io.BytesIO(data)).iter_sections():
        if isinstance(section, DynamicSection):
            for tag in section.iter_tags():
                if tag.entry.d_tag == "DT_NEEDED":
                    tags.setdefault("NEEDED", []).append(tag.needed)
                elif tag.entry.d_tag in ("DT_RUNPATH", "DT_RPATH"):
                    tags.setdefault("RUNPATH", []).extend(tag.runpath.split(":") if tag.entry.d_tag == "DT_RUNPATH"
                                                          else tag.rpath.split(":"))
    return tags


def problems(path: str) -> list[str]:
    found: list[str] = []
    if not re.search(r"-manylinux_2_\d+_x86_64\.whl$", path):
        found.append(f"not a manylinux wheel: {path}")
    with zipfile.ZipFile(path) as whl:
        names = whl.namelist()
        libs = [n.split("/", 1)[1] for n in names if n.startswith("ovfast.libs/") and not n.endswith("/")]
        for prefix in BUNDLED:
            if not any(lib.startswith(prefix) for lib in libs):
                found.append(f"{prefix}* is not bundled in ovfast.libs/ (has: {', '.join(sorted(libs))})")
        for n in names:
            base = n.rsplit("/", 1)[-1]
            if base.startswith(NOT_BUNDLED):
                found.append(f"{n}: OpenVINO's libraries must come from the openvino wheel, not this one")
        native = [n for n in names if re.fullmatch(r"ovfast/_native\..*\.so", n)]
        if len(native) != 1:
            return found + [f"expected one ovfast/_native*.so, found {native}"]
        tags = dynamic_tags(whl.read(native[0]))
        for want in RUNPATH:
            if want not in tags.get("RUNPATH", []):
                found.append(f"{native[0]}: RUNPATH {tags.get('RUNPATH')} lacks {want}")
        if not any(n.startswith("libopenvino.so.") for n in tags.get("NEEDED", [])):
            found.append(f"{native[0]}: does not link libopenvino.so.*: {tags.get('NEEDED')}")
        print(f"{path}:\n  bundled: {', '.join(sorted(libs))}\n  {native[0]} RUNPATH: {tags.get('RUNPATH')}")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    found = problems(argv[1])
    for p in found:
        print(f"check_wheel: {p}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
