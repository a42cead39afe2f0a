"""What a ModelMesh ``loadModel`` names, as something the registry can load.

- ``modelKey`` (JSON, unknown keys ignored): ``model_type.name`` picks the format (``openvino_ir``, ``onnx``,
  ``tensorflow``, ``paddle``, ``tflite``; absent: found from the files, as for config.json models),
  ``disk_size_bytes`` (added by ModelMesh's puller) helps predict the size; with ModelMesh's storage helper off,
  ``storage_key``, ``bucket`` and ``storage_params`` say where a relative ``modelPath`` lives.
- ``modelPath``: a local file or folder (the puller's ``/models/<modelId>/<name>``), or an ``s3://``, ``gs://``,
  ``az://`` URI, fetched by repository/storage.py. ``modelType`` (ModelMesh's placement label) is ignored, as
  the SPI says.
- The registry loads OVMS's layout (``<base>/<version>/<files>``): a folder with numbered version folders is
  used as it is; anything else becomes version 1 of a small folder of symbolic links (:func:`build_layout`),
  holding only the files of the chosen format when the folder has several.

Errors are raised as the SPI wants them when nothing was loaded: INVALID_ARGUMENT for a request that can
never work (bad JSON, a format ovfast does not serve), FAILED_PRECONDITION for files that are not there.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ovfast.errors import FailedPreconditionError, InvalidArgumentError
from ovfast.repository.layout import MAPPING_FILE, find_model_file
from ovfast.repository.storage_access import SCHEME_TYPES, is_remote

# modelKey model_type.name -> format; ModelMesh's ServingRuntime lists these names (deploy/modelmesh)
FORMATS = {"openvino_ir": "openvino_ir", "openvino": "openvino_ir", "onnx": "onnx", "tensorflow": "tensorflow",
           "paddle": "paddle", "tflite": "tflite"}
_EXT_FORMAT = {".xml": "openvino_ir", ".onnx": "onnx", ".pb": "tensorflow", ".pdmodel": "paddle",
               ".tflite": "tflite"}
_COMPANION = {".xml": ".bin", ".pdmodel": ".pdiparams"}  # files a model file needs beside it
_MODEL_EXTS = {".xml", ".bin", ".onnx", ".pb", ".pdmodel", ".pdiparams", ".tflite"}
_TYPE_SCHEME = {v: k for k, v in SCHEME_TYPES.items()}  # storage-config type -> URI scheme


@dataclass(frozen=True)
class ModelKey:
    """The parts of ``modelKey`` ovfast uses."""

    format: str | None = None
    disk_size: int = 0
    storage_key: str | None = None
    storage_type: str | None = None
    bucket: str | None = None


def parse_model_key(text: str) -> ModelKey:
    if not text.strip():
        return ModelKey()
    try:
        doc = json.loads(text)
    except ValueError:
        raise InvalidArgumentError("modelKey is not valid JSON") from None
    if not isinstance(doc, dict):
        raise InvalidArgumentError("modelKey must be a JSON object")
    fmt = None
    mt = doc.get("model_type")
    name = mt.get("name") if isinstance(mt, dict) else None
    if name is not None:
        if not isinstance(name, str) or name.strip().lower() not in FORMATS:
            raise InvalidArgumentError(f"modelKey model_type.name {name!r} is not a format ovfast serves "
                                       f"({', '.join(sorted(set(FORMATS.values())))})")
        fmt = FORMATS[name.strip().lower()]
    size = doc.get("disk_size_bytes")
    params = doc.get("storage_params")
    if not isinstance(params, dict):
        params = {}

    def text_of(*values: Any) -> str | None:
        return next((v for v in values if isinstance(v, str) and v), None)

    return ModelKey(format=fmt, disk_size=size if type(size) is int and size > 0 else 0,
                    storage_key=text_of(doc.get("storage_key")),
                    storage_type=text_of(params.get("type"), doc.get("storage_type")),
                    bucket=text_of(params.get("bucket"), doc.get("bucket")))


def source_of(model_path: str, key: ModelKey, entries: dict[str, dict]) -> str:
    """Where to read the model: a URI as it is; a relative path in the bucket of ``key``'s storage (ModelMesh's
    storage helper off) as a URI; else the local path. FAILED_PRECONDITION when a relative path names
    storage that cannot be placed."""
    path = model_path.strip()
    if not path:
        raise InvalidArgumentError("modelPath is empty")
    if is_remote(path) or os.path.isabs(path) or key.storage_key is None:
        return path
    entry = entries.get(key.storage_key, {})
    kind = key.storage_type or entry.get("type")
    scheme = _TYPE_SCHEME.get(str(kind))
    bucket = key.bucket or entry.get("container" if kind == "azure" else "bucket")
    if scheme is None or not bucket:
        raise FailedPreconditionError(
            f"modelPath {path!r} is relative to storage {key.storage_key!r}, whose type (s3, gcs, azure) or "
            f"bucket is unknown: give --storage_config_dir, or a bucket in the InferenceService's storage")
    return f"{scheme}://{bucket}/{path.lstrip('/')}"


def format_of(path: Path) -> str | None:
    """The format of a model file or folder, by its name (a folder: the file the registry would load)."""
    if path.is_dir():
        try:
            path = find_model_file(path)
        except OSError:
            return None
        if path.is_dir():  # a SavedModel folder
            return "tensorflow"
    return _EXT_FORMAT.get(path.suffix.lower())


def _companions(f: Path) -> list[Path]:
    extra = _COMPANION.get(f.suffix.lower())
    return [f.with_suffix(extra)] if extra and f.with_suffix(extra).exists() else []


def _files_of_format(folder: Path, fmt: str) -> list[Path] | None:
    """The folder's files with the model files of other formats left out (None: none of ``fmt``)."""
    files = sorted(p for p in folder.iterdir() if p.is_file())
    ours = [f for f in files if _EXT_FORMAT.get(f.suffix.lower()) == fmt]
    if fmt == "openvino_ir":
        ours = [f for f in ours if _companions(f)]
    if not ours:
        return None
    keep = set(ours) | {c for f in ours for c in _companions(f)}
    return [f for f in files if f.suffix.lower() not in _MODEL_EXTS or f in keep]


def build_layout(model_path: str, fmt: str | None, dest: Path) -> str:
    """A base path in OVMS's layout for a local model file or folder (module docstring); ``dest`` is this
    model's own folder for links (replaced). Raises FAILED_PRECONDITION when no model of ``fmt`` is there."""
    path = Path(model_path)
    if not path.exists():
        raise FailedPreconditionError(f"modelPath {model_path} does not exist")
    if path.is_dir() and any(e.is_dir() and e.name.isdigit() and int(e.name) > 0 for e in path.iterdir()):
        return str(path)  # numbered version folders already
    found = format_of(path)
    if fmt is not None and found != fmt and not path.is_dir():
        raise FailedPreconditionError(f"modelPath {model_path} is not a model of format {fmt}")
    if fmt is None and found is None:
        raise FailedPreconditionError(f"no model file in modelPath {model_path} (.xml+.bin, .onnx, .pdmodel, "
                                      f"saved_model.pb / .pb, .tflite)")
    shutil.rmtree(dest, ignore_errors=True)
    version = dest / "1"
    if path.is_dir() and (fmt is None or found == fmt):
        dest.mkdir(parents=True)
        version.symlink_to(path.resolve(), target_is_directory=True)
        return str(dest)
    if path.is_dir():
        files = _files_of_format(path, fmt or "")
        if files is None:
            raise FailedPreconditionError(f"no {fmt} model in modelPath {model_path}")
    else:
        files = [path, *_companions(path)]
        mapping = path.parent / MAPPING_FILE
        if mapping.is_file():
            files.append(mapping)
    version.mkdir(parents=True)
    for f in files:
        (version / f.name).symlink_to(f.resolve())
    return str(dest)


def files_size(model_path: str) -> int:
    """Bytes of a local model file or folder (its files, recursively); 0 when it cannot be read. Cheap:
    one stat per file."""
    path = Path(model_path)
    try:
        if path.is_file():
            return path.stat().st_size
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    except OSError:
        return 0
