"""Pure functions over a model's base path: which versions exist, which file to load."""
from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("ovfast.repository")


def list_versions(base_path: str | os.PathLike) -> list[int]:
    """Numbered subdirectories of ``base_path`` (OVMS rules: non-numeric and <= 0 skipped)."""
    base = Path(base_path)
    if not base.is_dir():
        raise FileNotFoundError(f"Directory does not exist: {base}")
    versions = []
    for entry in base.iterdir():
        if not entry.is_dir():
            continue
        try:
            v = int(entry.name)
        except ValueError:
            log.warning("Expected version directory name to be in number format. Got: %s", entry.name)
            continue
        if v <= 0:
            log.warning("Expected version directory name to be a positive number. Got: %s", entry.name)
            continue
        versions.append(v)
    if not versions:
        log.warning("No version found for model in path: %s", base)
    return sorted(versions)


def find_model_file(version_dir: str | os.PathLike) -> Path:
    """The file OpenVINO should read from a version folder, in OVMS's search order:
    .xml+.bin, .onnx, .pdmodel+.pdiparams, saved_model.pb (the folder) / .pb, .tflite."""
    d = Path(version_dir)
    files = sorted(p for p in d.iterdir() if p.is_file())
    by_ext: dict[str, list[Path]] = {}
    for f in files:
        by_ext.setdefault(f.suffix.lower(), []).append(f)
    for xml in by_ext.get(".xml", []):
        if xml.with_suffix(".bin").exists():
            return xml
    if by_ext.get(".onnx"):
        return by_ext[".onnx"][0]
    for pd in by_ext.get(".pdmodel", []):
        if pd.with_suffix(".pdiparams").exists():
            return pd
    for pb in by_ext.get(".pb", []):
        if pb.name == "saved_model.pb":
            return d
        return pb
    if by_ext.get(".tflite"):
        return by_ext[".tflite"][0]
    raise FileNotFoundError(f"Could not find file for model in path: {d}")


def version_stamp(version_dir: str | os.PathLike) -> tuple:
    """What the folder's files are now (name, size, mtime): changes when a file is replaced.
    () when the folder cannot be read."""
    try:
        return tuple(sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(version_dir)))
    except OSError:
        return ()
