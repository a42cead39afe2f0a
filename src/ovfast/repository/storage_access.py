"""How ovfast reaches a model in object storage: ``s3://``, ``gs://`` and ``az://`` URIs, the credentials
for them, and the fsspec filesystem (s3fs, gcsfs, adlfs) built from both.

Credentials, first match wins:
1. a ModelMesh ``storage-config`` entry (``--storage_config_dir``: one JSON file per storage key, as the
   mounted Secret): the key asked for by name, else an entry of the URI's type whose ``bucket`` (s3/gcs)
   or ``container`` (azure) is the URI's, else ``default_<type>``, else ``default`` if of that type;
2. OVMS's environment variables: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
   ``AWS_REGION``, ``S3_ENDPOINT`` (``AWS_PROFILE`` through botocore); ``GOOGLE_APPLICATION_CREDENTIALS``
   (``STORAGE_EMULATOR_HOST`` for an emulator); ``AZURE_STORAGE_CONNECTION_STRING``;
3. the client library's own default chain (instance roles, GKE metadata), or anonymous access.

Every request has a connect and a read timeout and a few retries, so an unreachable endpoint fails a
model's scan instead of hanging it. Error messages never carry a secret (see ``scrub``).
"""
from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("ovfast.storage")

# uri scheme -> storage-config "type"
SCHEME_TYPES = {"s3": "s3", "gs": "gcs", "az": "azure"}
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 60
RETRIES = 2


class StorageError(OSError):
    """A remote model folder could not be listed or fetched; the message names the URI, never a secret."""


@dataclass(frozen=True)
class RemoteURI:
    """``scheme://bucket/prefix`` (prefix without leading or trailing slashes)."""

    scheme: str
    bucket: str
    prefix: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}".rstrip("/")

    @property
    def root(self) -> str:
        """The path fsspec filesystems take: ``bucket/prefix``."""
        return f"{self.bucket}/{self.prefix}".rstrip("/")

    def child(self, name: str | int) -> RemoteURI:
        return RemoteURI(self.scheme, self.bucket, f"{self.prefix}/{name}".strip("/"))


def is_remote(path: str) -> bool:
    return "://" in path


def parse_uri(uri: str) -> RemoteURI:
    scheme, _, rest = uri.partition("://")
    if scheme == "azfs":
        raise StorageError(f"{uri}: Azure file shares (azfs://) are not served; copy the model to a blob "
                           "container and use az://container/path")
    if scheme not in SCHEME_TYPES:
        raise StorageError(f"{uri}: unsupported scheme (s3://, gs://, az://)")
    bucket, _, prefix = rest.strip("/").partition("/")
    if not bucket:
        raise StorageError(f"{uri}: no bucket (expected {scheme}://bucket/path)")
    return RemoteURI(scheme, bucket, prefix.strip("/"))


def read_storage_config(folder: str | os.PathLike | None) -> dict[str, dict]:
    """ModelMesh's storage-config folder: {key: entry}. A file that is not a JSON object with a "type" is
    skipped with an error naming it (never its content). Names starting with '.' (the ``..data`` links of
    a mounted Secret) are not keys."""
    if not folder:
        return {}
    entries: dict[str, dict] = {}
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        log.error("Storage config folder %s cannot be read: %s", folder, exc.strerror)
        return {}
    for name in names:
        path = Path(folder) / name
        if name.startswith(".") or not path.is_file():
            continue
        try:
            doc = json.loads(path.read_bytes())
        except (OSError, ValueError):
            log.error("Storage config %s: not a readable JSON file; skipped", path)
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
            log.error('Storage config %s: must be a JSON object with a "type" (s3, gcs, azure); skipped', path)
            continue
        entries[name] = doc
    return entries


def pick_entry(entries: dict[str, dict], uri: RemoteURI, key: str | None = None) -> tuple[str, dict] | None:
    """The storage-config entry for ``uri`` (module docstring, rule 1), or None."""
    kind = SCHEME_TYPES[uri.scheme]
    if key:
        if key not in entries:
            raise StorageError(f"{uri.url}: storage-config has no key {key!r}")
        if entries[key].get("type") != kind:
            raise StorageError(f"{uri.url}: storage-config key {key!r} is of type "
                               f"{entries[key].get('type')!r}, not {kind!r}")
        return key, entries[key]
    field = "container" if kind == "azure" else "bucket"
    for name, e in entries.items():
        if e.get("type") == kind and e.get(field) == uri.bucket:
            return name, e
    for name in (f"default_{kind}", "default"):
        if entries.get(name, {}).get("type") == kind:
            return name, entries[name]
    return None


def _with_scheme(endpoint: str) -> str:
    return endpoint if "://" in endpoint else f"https://{endpoint}"


def _s3_options(entry: dict | None, env: dict[str, str]) -> dict[str, Any]:
    e = entry or {}
    key = e.get("access_key_id") or env.get("AWS_ACCESS_KEY_ID")
    secret = e.get("secret_access_key") or env.get("AWS_SECRET_ACCESS_KEY")
    token = None if entry else env.get("AWS_SESSION_TOKEN")
    endpoint = e.get("endpoint_url") or env.get("S3_ENDPOINT")
    region = e.get("region") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    client: dict[str, Any] = {}
    if region:
        client["region_name"] = region
    if e.get("certificate"):
        client["verify"] = _ca_bundle(e["certificate"])
    opts: dict[str, Any] = {
        "config_kwargs": {"connect_timeout": CONNECT_TIMEOUT_S, "read_timeout": READ_TIMEOUT_S,
                          "retries": {"max_attempts": RETRIES + 1, "mode": "standard"}},
        "client_kwargs": client, "use_listings_cache": False,
    }
    if endpoint:
        opts["endpoint_url"] = _with_scheme(endpoint)
    if key and secret:
        opts.update(key=key, secret=secret, token=token)
    elif not (env.get("AWS_PROFILE") or _botocore_has_credentials()):
        opts["anon"] = True  # OVMS: public buckets work without credentials
    return opts


@functools.lru_cache(maxsize=1)
def _botocore_has_credentials() -> bool:
    """botocore's own chain (AWS_PROFILE, ~/.aws, instance role) finds credentials; asked once."""
    import botocore.session

    try:
        return botocore.session.get_session().get_credentials() is not None
    except Exception:  # noqa: BLE001 - a broken profile is reported by the request that needs it
        return False


def _ca_bundle(pem: str) -> str:
    """storage-config's ``certificate`` (PEM text) as the file path botocore wants."""
    import hashlib
    import tempfile

    path = Path(tempfile.gettempdir()) / f"ovfast-ca-{hashlib.sha256(pem.encode()).hexdigest()[:16]}.pem"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(pem)
        os.replace(tmp, path)
    return str(path)


def _gcs_options(entry: dict | None, env: dict[str, str]) -> dict[str, Any]:
    e = entry or {}
    endpoint = e.get("endpoint_url") or env.get("STORAGE_EMULATOR_HOST")
    token: Any = None
    if e.get("private_key") and e.get("client_email"):
        token = {"type": "service_account", "private_key": e["private_key"], "client_email": e["client_email"],
                 "token_uri": e.get("token_uri", "https://oauth2.googleapis.com/token"),
                 "project_id": e.get("project_id", "")}
    elif env.get("GOOGLE_APPLICATION_CREDENTIALS"):
        token = env["GOOGLE_APPLICATION_CREDENTIALS"]
    elif endpoint:
        token = "anon"  # an emulator takes no credentials
    opts: dict[str, Any] = {"token": token, "requests_timeout": READ_TIMEOUT_S, "timeout": READ_TIMEOUT_S,
                            "use_listings_cache": False}
    if endpoint:
        opts["endpoint_url"] = endpoint if "://" in endpoint else f"http://{endpoint}"  # emulators speak http
    return opts


def _azure_options(entry: dict | None, env: dict[str, str], uri: RemoteURI) -> dict[str, Any]:
    e = entry or {}
    opts: dict[str, Any] = {"connection_timeout": CONNECT_TIMEOUT_S, "read_timeout": READ_TIMEOUT_S,
                            "timeout": READ_TIMEOUT_S,
                            "use_listings_cache": False}
    conn = e.get("connection_string") or (None if entry else env.get("AZURE_STORAGE_CONNECTION_STRING"))
    if conn:
        opts["connection_string"] = conn
    elif e.get("account_name"):
        opts["account_name"] = e["account_name"]
        if e.get("account_key"):
            opts["account_key"] = e["account_key"]
        if e.get("sas_token"):
            opts["sas_token"] = e["sas_token"]
    else:
        raise StorageError(f"{uri.url}: no Azure credentials: set AZURE_STORAGE_CONNECTION_STRING or give a "
                           "storage-config entry of type azure with connection_string or account_name")
    return opts


@dataclass(frozen=True)
class Access:
    """What one remote URI is read with: the filesystem class, its options, and where they came from."""

    uri: RemoteURI
    protocol: str  # fsspec protocol: s3, gcs, abfs
    options: dict
    source: str  # "storage-config key 'x'" or "environment"

    def secrets(self) -> list[str]:
        found = []

        def walk(v: Any) -> None:
            if isinstance(v, dict):
                for k, x in v.items():
                    if k in ("key", "secret", "token", "account_key", "sas_token", "connection_string",
                             "private_key") and isinstance(x, str) and len(x) >= 4:
                        found.append(x)
                    walk(x)

        walk(self.options)
        return found

    def scrub(self, text: str) -> str:
        for s in self.secrets():
            text = text.replace(s, "***")
        return text

    def filesystem(self) -> Any:
        try:
            if self.protocol == "s3":
                from s3fs import S3FileSystem as cls
            elif self.protocol == "gcs":
                # the plain client: gcsfs' default class first probes the bucket type over a gRPC API that
                # S3-style emulators and private endpoints do not serve
                from gcsfs.core import GCSFileSystem as cls
            else:
                from adlfs import AzureBlobFileSystem as cls
        except ImportError as exc:
            raise StorageError(f"{self.uri.url}: the object storage client is not installed ({exc.name}); "
                               "install ovfast[storage]") from None
        try:
            fs = cls(**self.options)
            if self.protocol == "abfs":
                fs.service_client = _azure_client(self.options)
            return fs
        except Exception as exc:  # noqa: BLE001 - bad credentials material is reported, not raised raw
            raise StorageError(f"{self.uri.url}: cannot set up the {self.protocol} client "
                               f"({self.source}): {self.scrub(str(exc))}") from None


def _azure_client(options: dict) -> Any:
    """adlfs' blob client with a short retry policy: the Azure SDK's default waits 15 s, 18 s, 24 s ...
    between attempts, and adlfs passes no retry settings to listings."""
    from azure.storage.blob.aio import BlobServiceClient, ExponentialRetry

    # the SDK logs every request's headers at INFO
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)

    kw: dict[str, Any] = {"retry_policy": ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=RETRIES),
          "connection_timeout": CONNECT_TIMEOUT_S, "read_timeout": READ_TIMEOUT_S}
    if options.get("connection_string"):
        return BlobServiceClient.from_connection_string(options["connection_string"], **kw)
    url = f"https://{options['account_name']}.blob.core.windows.net"
    if options.get("sas_token"):
        return BlobServiceClient(url + "?" + options["sas_token"].lstrip("?"), **kw)
    return BlobServiceClient(url, credential=options.get("account_key"), **kw)


def access_for(uri: RemoteURI, entries: dict[str, dict], key: str | None = None,
               env: dict[str, str] | None = None) -> Access:
    env = dict(os.environ) if env is None else env
    picked = pick_entry(entries, uri, key)
    entry = picked[1] if picked else None
    source = f"storage-config key {picked[0]!r}" if picked else "environment"
    if uri.scheme == "s3":
        opts = _s3_options(entry, env)
        return Access(uri, "s3", opts, source + (", no credentials found: anonymous" if opts.get("anon") else ""))
    if uri.scheme == "gs":
        return Access(uri, "gcs", _gcs_options(entry, env), source)
    return Access(uri, "abfs", _azure_options(entry, env, uri), source)


def describe_failure(access: Access, what: str, exc: BaseException) -> StorageError:
    """One clear, secret-free error for a failed remote operation."""
    kind = type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        reason = "not found (no such bucket or path)"
    elif isinstance(exc, PermissionError):
        reason = "access denied (check the credentials)"
    else:
        reason = "request failed"
    detail = access.scrub(str(exc)).strip().splitlines()[0][:300] if str(exc).strip() else kind
    return StorageError(f"{access.uri.url}: {what}: {reason} ({access.source}): {kind}: {detail}")
