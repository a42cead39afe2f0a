"""Who may call what: the API key, the switch that disables state-changing endpoints, and REST TLS.

One AccessConfig is built from the command line (cli.access_from_args) and shared by the transports:
REST checks the key and the switch in its middleware (api/rest/guard.py), the Python gRPC handlers
check the switch (:func:`refuse_model_control`), and the native gRPC server reads the key from
``AccessConfig.api_key`` (metadata ``authorization``).
"""
from __future__ import annotations

import hmac
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

from ovfast.api.rest.limits import RestLimits
from ovfast.errors import PermissionDeniedError

log = logging.getLogger("ovfast.access")

# What stays open without the key: the KServe health probes (REST and gRPC), which orchestrators call
# without credentials and which reveal nothing about the models.
HEALTH_PATHS = frozenset({"/v2/health/live", "/v2/health/ready"})
HEALTH_RPCS = frozenset({"/inference.GRPCInferenceService/ServerLive", "/inference.GRPCInferenceService/ServerReady"})

API_KEY_ENV = "API_KEY"  # OVMS's fallback when --api_key_file is not given
MODEL_CONTROL_DISABLED = "Model control is disabled on this server (--disable_model_control)"
MISSING_KEY = "Missing or invalid API key: send 'Authorization: Bearer <key>'"


class AccessError(ValueError):
    """A security flag that cannot be used (unreadable file, certificate and key that do not match...)."""


def read_api_key(path: str) -> bytes:
    """The key in ``path``: its content without surrounding whitespace; printable ASCII, not empty."""
    try:
        with open(path, "rb") as f:
            key = f.read(64 * 1024 + 1).strip()
    except OSError as exc:
        raise AccessError(f"Cannot read --api_key_file {path}: {exc.strerror}") from None
    if not key:
        raise AccessError(f"--api_key_file {path} is empty")
    if len(key) > 64 * 1024 or not all(0x21 <= b <= 0x7E for b in key):
        raise AccessError(f"--api_key_file {path}: the key must be printable ASCII without spaces, at most 64 KiB")
    return key


def api_key(api_key_file: str | None, environ: Mapping[str, str]) -> bytes | None:
    """The key from ``--api_key_file``, else (as OVMS) from the ``API_KEY`` environment variable, else None."""
    if api_key_file:
        return read_api_key(api_key_file)
    value = environ.get(API_KEY_ENV, "").strip()
    if not value:
        return None
    if not value.isascii() or not value.isprintable() or " " in value or len(value) > 64 * 1024:
        raise AccessError(f"The {API_KEY_ENV} environment variable must be printable ASCII without spaces, "
                          "at most 64 KiB")
    log.info("API key taken from the %s environment variable (no --api_key_file)", API_KEY_ENV)
    return value.encode("ascii")


def bearer_matches(authorization: str | None, key: bytes) -> bool:
    """Whether an ``Authorization`` value is ``Bearer <key>`` (scheme case-insensitive); the key is
    compared in constant time."""
    if not authorization:
        return False
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    try:
        given = token.strip().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(given, key)


def rest_ssl_context(certificate: str | None, key: str | None, ca: str | None) -> ssl.SSLContext | None:
    """The REST port's TLS context, or None without TLS flags. Anything unusable is an AccessError:
    there is no fallback to plaintext."""
    if certificate is None and key is None:
        if ca is not None:
            raise AccessError("--rest_ca_path requires --rest_certificate_path and --rest_key_path")
        return None
    if certificate is None or key is None:
        raise AccessError("--rest_certificate_path and --rest_key_path must be given together")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(certificate, key)
    except FileNotFoundError as exc:
        raise AccessError(f"Cannot read the REST TLS certificate or key: {exc.filename}: {exc.strerror}") from None
    except OSError as exc:  # ssl.SSLError included: not PEM, or a key that is not the certificate's
        raise AccessError(f"Cannot use the REST TLS certificate {certificate} with the key {key}: "
                          f"{exc.strerror or exc}") from None
    if ca is not None:
        try:
            ctx.load_verify_locations(cafile=ca)
        except OSError as exc:
            raise AccessError(f"Cannot use the REST TLS CA file {ca}: {exc.strerror or exc}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


@dataclass(frozen=True)
class AccessConfig:
    """api_key: the key every non-health call must carry, or None (no authentication).
    model_control_disabled: state-changing endpoints answer 403 / PERMISSION_DENIED.
    rest_ssl: the REST port's TLS context (mutual when a CA was given), or None for plaintext.
    rest_limits: the REST port's size, time and connection limits."""

    api_key: bytes | None = None
    model_control_disabled: bool = False
    rest_ssl: ssl.SSLContext | None = None
    rest_limits: RestLimits = field(default_factory=RestLimits)

    @classmethod
    def from_flags(cls, *, api_key_file: str | None = None, environ: Mapping[str, str] | None = None,
                   disable_model_control: bool = False,
                   certificate: str | None = None, key: str | None = None, ca: str | None = None,
                   max_input_size: int = RestLimits.max_input_size,
                   header_timeout_s: float = RestLimits.header_timeout_s,
                   body_timeout_s: float = RestLimits.body_timeout_s,
                   max_connections: int | None = None, rest_port: int = 0) -> AccessConfig:
        if not rest_port and any(v is not None for v in (certificate, key, ca)):
            raise AccessError("--rest_certificate_path, --rest_key_path and --rest_ca_path require --rest_port")
        try:
            limits = RestLimits(max_input_size=max_input_size, header_timeout_s=header_timeout_s,
                                body_timeout_s=body_timeout_s, max_connections=max_connections)
        except ValueError as exc:
            raise AccessError(str(exc)) from None
        return cls(api_key=api_key(api_key_file, {} if environ is None else environ),
                   model_control_disabled=disable_model_control,
                   rest_ssl=rest_ssl_context(certificate, key, ca), rest_limits=limits)

    def refuse_model_control(self) -> None:
        """Raises PermissionDeniedError when state-changing endpoints are disabled."""
        if self.model_control_disabled:
            raise PermissionDeniedError(MODEL_CONTROL_DISABLED)
