"""Pure functions over a model's base path: which versions exist, which file to load, how its
tensors are renamed (mapping_config.json)."""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("ovfast.repository")


def list_versions(base_path: str | os.PathLike) -> list[int]:
    """Numbered subdirectories of ``base_path`` (OVMS rules: non-numeric and <= 0 skipped)."""
    base = Path(base_path)
    if not base.is_dir():
        raise FileNotFoundError(f"Directory does not exist: {base}")
    return version_numbers((e.name for e in base.iterdir() if e.is_dir()), str(base))


def version_numbers(names: Iterable[str], where: str) -> list[int]:
    """The versions among a base path's folder names (local or remote), sorted; OVMS's warnings for the rest."""
    versions = []
    for name in names:
        try:
            v = int(name)
        except ValueError:
            log.warning("Expected version directory name to be in number format. Got: %s", name)
            continue
        if v <= 0:
            log.warning("Expected version directory name to be a positive number. Got: %s", name)
            continue
        versions.append(v)
    if not versions:
        log.warning("No version found for model in path: %s", where)
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


MAPPING_FILE = "mapping_config.json"
_MAPPING_KEYS = ("inputs", "outputs")


@dataclass(frozen=True)
class TensorMapping:
    """A version folder's ``mapping_config.json``: (model tensor name, public name) pairs, sorted."""

    inputs: tuple[tuple[str, str], ...] = ()
    outputs: tuple[tuple[str, str], ...] = ()


def read_mapping(version_dir: str | os.PathLike) -> TensorMapping:
    """The folder's tensor renames; none when it has no ``mapping_config.json``.

    Format (OVMS): ``{"inputs": {"<model name>": "<public name>"}, "outputs": {...}}``, both optional,
    no other keys. Raises ValueError, naming the file, when it is unreadable, not JSON, of another
    shape, or gives two inputs (or two outputs) one public name.
    """
    path = Path(version_dir) / MAPPING_FILE
    if not path.is_file():
        return TensorMapping()
    where = f"{path} (mapping_config.json)"
    try:
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        raise ValueError(f"{where}: cannot be read: {exc.strerror}") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{where}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or set(doc) - set(_MAPPING_KEYS):
        raise ValueError(f'{where}: must be an object with only "inputs" and "outputs", '
                         f'e.g. {{"inputs": {{"model_name": "public_name"}}}}')
    pairs = []
    for key in _MAPPING_KEYS:
        m = doc.get(key, {})
        if not isinstance(m, dict) or not all(isinstance(v, str) and v for v in m.values()):
            raise ValueError(f'{where}: "{key}" must map tensor names to non-empty strings, got {m!r}')
        public = list(m.values())
        repeated = sorted({n for n in public if public.count(n) > 1})
        if repeated:
            raise ValueError(f'{where}: "{key}" gives several tensors the name(s) {repeated}')
        pairs.append(tuple(sorted(m.items())))
    return TensorMapping(*pairs)


def version_stamp(version_dir: str | os.PathLike) -> tuple:
    """What the folder's files are now (name, size, mtime): changes when a file is replaced.
    () when the folder cannot be read."""
    try:
        return tuple(sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(version_dir)))
    except OSError:
        return ()
