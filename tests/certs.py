"""Test certificates, generated in the test run (nothing is downloaded or committed).

``make_certs(directory)`` writes a CA, a server certificate for 127.0.0.1 / localhost signed by it,
a client certificate signed by it, a second CA with a client certificate the first CA does not
know, and a private key that belongs to no certificate; it returns their paths.
"""
from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class CertPaths:
    ca_cert: Path  # the CA the server trusts (--rest_ca_path) and clients verify the server with
    server_cert: Path  # for 127.0.0.1 and localhost, signed by ca_cert
    server_key: Path
    client_cert: Path  # signed by ca_cert
    client_key: Path
    other_client_cert: Path  # signed by another CA: refused under mutual TLS
    other_client_key: Path
    mismatched_key: Path  # a valid key that is not server_cert's


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key, issuer: str, issuer_key, *, ca: bool = False, server: bool = False,
          client: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                          content_commitment=False, key_encipherment=False, data_encipherment=False,
                                          key_agreement=False, encipher_only=False, decipher_only=False),
                            critical=True)
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                            critical=False)
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                            critical=False)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    if client:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _write_key(path: Path, key) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def make_certs(directory: Path) -> CertPaths:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, other_ca_key = _key(), _key()
    ca = _cert("ovfast test CA", ca_key, "ovfast test CA", ca_key, ca=True)
    server_key, client_key, other_client_key = _key(), _key(), _key()
    return CertPaths(
        ca_cert=_write_cert(directory / "ca.pem", ca),
        server_cert=_write_cert(directory / "server.pem",
                                _cert("localhost", server_key, "ovfast test CA", ca_key, server=True)),
        server_key=_write_key(directory / "server.key", server_key),
        client_cert=_write_cert(directory / "client.pem",
                                _cert("ovfast test client", client_key, "ovfast test CA", ca_key, client=True)),
        client_key=_write_key(directory / "client.key", client_key),
        other_client_cert=_write_cert(directory / "other-client.pem",
                                      _cert("someone else", other_client_key, "another CA", other_ca_key,
                                            client=True)),
        other_client_key=_write_key(directory / "other-client.key", other_client_key),
        mismatched_key=_write_key(directory / "mismatched.key", _key()),
    )
