"""TLS material for the server's ports, read and checked once at start.

A certificate, its key and (for mutual TLS) a CA bundle are read as PEM text and checked with the
standard library's ``ssl`` (the key must match the certificate, the CA bundle must parse): a file
that cannot be used stops the start with a message naming the flag, never a silent plaintext port.
"""
from __future__ import annotations

import ssl
from dataclasses import dataclass


class TlsConfigError(ValueError):
    """A TLS flag names a file that is missing, unreadable, not PEM, or a key that does not match."""


@dataclass(frozen=True)
class TlsFiles:
    cert_pem: str
    key_pem: str
    ca_pem: str = ""  # not empty: clients must present a certificate this bundle signed

    @property
    def mutual(self) -> bool:
        return bool(self.ca_pem)


def _read(flag: str, path: str) -> str:
    try:
        with open(path, encoding="ascii") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise TlsConfigError(f"--{flag}: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if "-----BEGIN " not in text:
        raise TlsConfigError(f"--{flag}: {path} is not a PEM file")
    return text


def load_tls(prefix: str, cert_path: str | None, key_path: str | None, ca_path: str | None) -> TlsFiles | None:
    """The TLS files of one port (``prefix`` is "grpc" or "rest": the flags are --<prefix>_certificate_path,
    --<prefix>_key_path, --<prefix>_ca_path); None when no flag is given."""
    cert_flag, key_flag, ca_flag = f"{prefix}_certificate_path", f"{prefix}_key_path", f"{prefix}_ca_path"
    if not (cert_path or key_path or ca_path):
        return None
    if not (cert_path and key_path):
        raise TlsConfigError(f"--{cert_flag} and --{key_flag} must be given together"
                             + (f" (--{ca_flag} needs both)" if ca_path else ""))
    cert, key = _read(cert_flag, cert_path), _read(key_flag, key_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert_path, key_path)
    except ssl.SSLError as exc:
        raise TlsConfigError(f"--{cert_flag} / --{key_flag}: the key does not match the certificate, or one of "
                             f"them is not valid PEM ({exc.reason or exc})") from None
    ca = ""
    if ca_path:
        ca = _read(ca_flag, ca_path)
        try:
            ctx.load_verify_locations(cafile=ca_path)
        except ssl.SSLError as exc:
            raise TlsConfigError(f"--{ca_flag}: not a valid PEM CA bundle ({exc.reason or exc})") from None
    return TlsFiles(cert, key, ca)
