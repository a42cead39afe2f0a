"""Where model files come from: a local folder, or object storage through a local download cache.

The registry asks a ``Storage`` three things, whatever the base path is:
- ``list_versions(base)``: the numbered version folders (OVMS rules, ``layout.version_numbers``);
- ``version_dir(base, v)``: a local folder holding version ``v``'s files. A local base path answers at
  once. A remote one is compared with the cache (every file's name, size and ETag/MD5 — its *stamp*) and
  downloaded again when it changed: into a temporary folder, each file's size and MD5 checked, then renamed
  into place, so a half-downloaded version is never loaded. Polling calls both every
  ``--file_system_poll_wait_seconds``, so remote versions come and go as local ones do;
- ``release(base, versions)``: the cached copies of versions no longer served are deleted.
``fetch_model(uri)`` gives the ModelMesh SPI a local copy of a whole model folder the same way.

Remote calls block, so they run in the default executor; each has timeouts (storage_access).
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from ovfast.repository import layout
from ovfast.repository.storage_access import (
    Access, RemoteURI, StorageError, access_for, describe_failure, is_remote, parse_uri, read_storage_config,
)

log = logging.getLogger("ovfast.storage")

CACHE_DIR_NAME = "ovfast-model-cache"  # under the system temp folder unless --storage_cache_dir says where


def default_cache_dir() -> Path:
    """Asked only when a remote version is fetched: a read-only container with no writable temp folder
    serves local models (tempfile.gettempdir() raises there)."""
    return Path(tempfile.gettempdir()) / CACHE_DIR_NAME
_SOURCE = ".source.json"  # beside a cached folder: the stamp it was downloaded from
_PARTIAL = ".partial-"


def _md5_hex(info: dict) -> str | None:
    """The MD5 a listing gives for a file, as hex, when it has one (S3 single-part ETag, GCS md5Hash,
    Azure content_md5)."""
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
    if info.get("md5Hash"):
        try:
            return base64.b64decode(info["md5Hash"]).hex()
        except ValueError:
            return None
    md5 = (info.get("content_settings") or {}).get("content_md5")
    if md5:
        return bytes(md5).hex()
    if len(etag) == 32 and "-" not in etag and "ETag" in info:  # S3: multipart ETags have a "-N" suffix
        return etag.lower()
    return None


def _file_tag(info: dict) -> str:
    return str(info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("generation") or "")


class Storage:
    """Local folders as they are; s3:// gs:// az:// through ``cache_dir``. Thread-safe."""

    def __init__(self, cache_dir: str | os.PathLike | None = None, config_dir: str | os.PathLike | None = None):
        self._cache_dir = Path(cache_dir) if cache_dir else None
        self.config_dir = config_dir
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @property
    def cache_dir(self) -> Path:
        if self._cache_dir is None:
            self._cache_dir = default_cache_dir()
        return self._cache_dir

    # -- what the registry calls (on the event loop) ---------------------------------------
    async def list_versions(self, base: str) -> list[int]:
        if not is_remote(base):
            return layout.list_versions(base)
        return await asyncio.get_running_loop().run_in_executor(None, self.list_remote_versions, base)

    async def version_dir(self, base: str, version: int) -> str:
        if not is_remote(base):
            return f"{base}/{version}"
        return await asyncio.get_running_loop().run_in_executor(None, self.fetch_version, base, version)

    def cached_version_dir(self, base: str, version: int) -> str | None:
        """The cached copy of a remote version as last downloaded (no network call; None: not downloaded).
        It may be older than the bucket: only ``version_dir`` compares it with the listing."""
        folder = self._cache_root(parse_uri(base))
        if (folder / str(version)).is_dir() and (folder / f"{version}{_SOURCE}").is_file():
            return str(folder / str(version))
        return None

    def release(self, base: str, versions: list[int]) -> None:
        """Deletes the cached copies of ``versions`` of a remote base path (a model already loaded from
        them keeps its memory: OpenVINO has read or mapped the files)."""
        if not is_remote(base) or not versions:
            return
        folder = self._cache_root(parse_uri(base))
        for v in versions:
            with self._lock(f"{folder}/{v}"):
                if (folder / str(v)).exists():
                    log.info("Model cache: removing %s version %d (%s)", base, v, folder / str(v))
                self._remove(folder / str(v), folder / f"{v}{_SOURCE}")

    async def fetch_model(self, uri: str, storage_key: str | None = None) -> str:
        """A local folder with the files of ``uri`` (a remote model folder, e.g. ModelMesh's modelPath);
        a local path is returned as it is."""
        if not is_remote(uri):
            return uri
        return await asyncio.get_running_loop().run_in_executor(None, self.fetch_tree, uri, storage_key)

    def release_model(self, uri: str) -> None:
        if is_remote(uri):
            folder = self._cache_root(parse_uri(uri))
            with self._lock(f"{folder}/model"):
                self._remove(folder / "model", folder / f"model{_SOURCE}")

    # -- remote work (executor threads) -------------------------------------------------------
    def access(self, uri: RemoteURI, storage_key: str | None = None) -> Access:
        return access_for(uri, read_storage_config(self.config_dir), storage_key)

    def list_remote_versions(self, base: str) -> list[int]:
        uri = parse_uri(base)
        access = self.access(uri)
        fs = access.filesystem()
        try:
            entries = fs.ls(uri.root, detail=True)
        except Exception as exc:  # noqa: BLE001 - every client error becomes one StorageError
            raise describe_failure(access, "listing version folders", exc) from None
        names = [e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e.get("type") == "directory"]
        if not names and not entries:
            raise StorageError(f"Directory does not exist: {uri.url}")
        return layout.version_numbers(names, uri.url)

    def fetch_version(self, base: str, version: int) -> str:
        uri = parse_uri(base)
        return self._sync(uri.child(version), self._cache_root(uri), str(version), None)

    def fetch_tree(self, uri_text: str, storage_key: str | None = None) -> str:
        uri = parse_uri(uri_text)
        return self._sync(uri, self._cache_root(uri), "model", storage_key)

    def _cache_root(self, uri: RemoteURI) -> Path:
        digest = hashlib.sha256(uri.url.encode()).hexdigest()[:16]
        return self.cache_dir / f"{uri.scheme}-{uri.bucket}-{digest}"

    def _lock(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    @staticmethod
    def _remove(folder: Path, source: Path) -> None:
        source.unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)

    def _sync(self, uri: RemoteURI, root: Path, name: str, storage_key: str | None) -> str:
        """``root/name`` holding the files under ``uri``, downloaded again if they changed."""
        access = self.access(uri, storage_key)
        fs = access.filesystem()
        try:
            listing: dict[str, dict[str, Any]] = fs.find(uri.root, detail=True)
        except Exception as exc:  # noqa: BLE001
            raise describe_failure(access, "listing files", exc) from None
        files: dict[str, tuple[str, dict]] = {}  # relative path -> (remote path, listing entry)
        for path, info in listing.items():
            rel = path[len(uri.root) + 1:]
            if info.get("type") != "directory" and path.startswith(uri.root + "/") and ".." not in Path(rel).parts:
                files[rel] = (path, info)
        if not files:
            files = self._single_file(access, fs, uri)
        stamp = sorted([rel, int(info.get("size") or 0), _file_tag(info)] for rel, (_, info) in files.items())
        final, source = root / name, root / f"{name}{_SOURCE}"
        with self._lock(str(final)):
            try:
                if final.is_dir() and json.loads(source.read_text()) == stamp:
                    return str(final)
            except (OSError, ValueError):
                pass
            root.mkdir(parents=True, exist_ok=True)
            partial = root / f"{_PARTIAL}{name}-{uuid.uuid4().hex[:8]}"
            try:
                self._download(access, fs, uri, files, partial)
                old = root / f"{_PARTIAL}{name}-old-{uuid.uuid4().hex[:8]}"
                source.unlink(missing_ok=True)
                if final.exists():
                    final.rename(old)  # a loaded model keeps the (unlinked) files it mapped
                partial.rename(final)
                tmp = source.with_suffix(f".{uuid.uuid4().hex[:8]}.tmp")
                tmp.write_text(json.dumps(stamp))
                os.replace(tmp, source)
                shutil.rmtree(old, ignore_errors=True)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
        total = sum(int(info.get("size") or 0) for _, info in files.values())
        log.info("Model cache: downloaded %s (%d files, %d bytes) to %s", uri.url, len(files), total, final)
        return str(final)

    @staticmethod
    def _single_file(access: Access, fs: Any, uri: RemoteURI) -> dict[str, tuple[str, dict]]:
        """A URI naming one object (ModelMesh's modelPath may be a model file) as a one-file folder."""
        try:
            info = fs.info(uri.root)
        except FileNotFoundError:
            info = {}
        except Exception as exc:  # noqa: BLE001
            raise describe_failure(access, "reading", exc) from None
        if info.get("type") != "file":
            raise StorageError(f"Directory does not exist or is empty: {uri.url}")
        return {uri.root.rsplit("/", 1)[-1]: (uri.root, info)}

    @staticmethod
    def _download(access: Access, fs: Any, uri: RemoteURI, files: dict[str, tuple[str, dict]], into: Path) -> None:
        for rel, (remote, info) in sorted(files.items()):
            local = into / rel
            local.parent.mkdir(parents=True, exist_ok=True)
            try:
                fs.get_file(remote, str(local))
            except Exception as exc:  # noqa: BLE001
                raise describe_failure(access, f"downloading {rel}", exc) from None
            size = local.stat().st_size
            want = int(info.get("size") or 0)
            if size != want:
                raise StorageError(f"{uri.url}/{rel}: downloaded {size} bytes, the listing says {want}")
            md5 = _md5_hex(info)
            if md5 is not None:
                h = hashlib.md5()
                with open(local, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                if h.hexdigest() != md5:
                    raise StorageError(f"{uri.url}/{rel}: checksum mismatch (MD5 {h.hexdigest()}, expected {md5})")


__all__ = ["Storage", "StorageError", "default_cache_dir", "is_remote"]
