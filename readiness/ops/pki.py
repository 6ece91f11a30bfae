"""The deployment's certificate authority and its server certificates, as PEM files.

Every broker the project starts listens on TLS with a certificate signed by a CA that the project
generates for the deployment (``<var_dir>/pki`` here; the ministry's own CA in production). The
CA's private key never leaves that folder; clients trust ``ca.pem`` (``ssl.truststore.type=PEM``).
A server's key store is a PKCS#12 file with its key and certificate chain, encrypted with a
generated password (Java 17 cannot read PBES2-encrypted PEM keys, which is all a modern library
writes, while it reads PBES2 in PKCS#12).
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from readiness.ops.locks import file_lock
from readiness.ops.secrets import ensure_secret_file, write_private

CA_DAYS = 3650
SERVER_DAYS = 825
ORGANISATION = "readiness deployment"


@dataclass(frozen=True)
class ServerFiles:
    """A server's key store (encrypted key + chain), its password file, and the CA that signed it."""

    keystore: Path
    password_file: Path
    ca: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)  # tolerate small clock skew


def ensure_ca(pki_dir: Path) -> tuple[Path, Path]:
    """``(ca.pem, ca.key)`` under ``pki_dir``, created once (EC P-256, ten years)."""
    pki_dir = Path(pki_dir)
    cert_path, key_path = pki_dir / "ca.pem", pki_dir / "ca.key"
    if cert_path.is_file() and key_path.is_file():  # no lock: a provisioned folder may be read-only
        return cert_path, key_path
    with file_lock(pki_dir / ".pki.lock"):
        if cert_path.is_file() and key_path.is_file():
            return cert_path, key_path
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name("readiness deployment CA")
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(_now())
                .not_valid_after(_now() + dt.timedelta(days=CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _host_names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def ensure_server(pki_dir: Path, name: str, hosts: list[str]) -> ServerFiles:
    """A server certificate for ``hosts`` (IP addresses or DNS names), signed by the CA, once.

    Reissued when the hosts change. The key is encrypted with a generated password kept in
    ``<name>.password`` (mode 0600), which the server's configuration names.
    """
    pki_dir = Path(pki_dir)
    ca_path, ca_key_path = ensure_ca(pki_dir)
    keystore, password_file = pki_dir / f"{name}.p12", pki_dir / f"{name}.password"
    hosts_file = pki_dir / f"{name}.hosts"

    def issued() -> bool:
        return (keystore.is_file() and password_file.is_file() and hosts_file.is_file()
                and hosts_file.read_text() == ",".join(hosts))

    if issued():  # no lock: a provisioned folder may be mounted read-only
        return ServerFiles(keystore, password_file, ca_path)
    with file_lock(pki_dir / ".pki.lock"):
        password = ensure_secret_file(password_file)
        if issued():
            return ServerFiles(keystore, password_file, ca_path)
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(ca_cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(_now()).not_valid_after(_now() + dt.timedelta(days=SERVER_DAYS))
                .add_extension(x509.SubjectAlternativeName(_host_names(hosts)), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
        write_private(keystore, pkcs12.serialize_key_and_certificates(
            name.encode(), key, cert, [ca_cert], serialization.BestAvailableEncryption(password.encode())))
        hosts_file.write_text(",".join(hosts))
    return ServerFiles(keystore, password_file, ca_path)


def fingerprint(cert_path: Path) -> str:
    """SHA-256 fingerprint of a PEM certificate, as operators compare it out of band."""
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex(":")

