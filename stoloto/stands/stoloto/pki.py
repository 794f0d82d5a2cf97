"""The Stoloto stand's PKI: its own CA, its TLS server certificate, the client certificates it issues."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import os
import re
import ssl
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..server import invalid

log = logging.getLogger(__name__)

FINGERPRINT_RE = re.compile(r"^[0-9a-f]{64}$")
# Client certificates are valid from this long before they are issued: the agent's clock may be behind.
CLIENT_CERT_BACKDATE = dt.timedelta(minutes=5)
# OpenSSL's X509_V_FLAG_NO_CHECK_TIME (not in ssl.VerifyFlags): the handshake checks the client certificate's
# chain but not its dates, so an expired certificate reaches the app and gets §1's 401, not a TLS alert.
X509_V_FLAG_NO_CHECK_TIME = 0x200000


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class StandClock:
    """The stand's time: the real time moved forward by an offset, so a test sees a certificate expire at once."""

    def __init__(self) -> None:
        self.offset = dt.timedelta(0)

    def now(self) -> dt.datetime:
        return utcnow() + self.offset


def rfc3339(moment: dt.datetime) -> str:
    """UTC to the second with a Z, as §1.4's not_after."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def spki_fingerprint(public_key: Any) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex (as in Appendix 5)."""
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def normalize_fingerprint(text: Any) -> str:
    """Accept any case, spaces, colons or dashes; 400 unless 64 hex digits remain."""
    value = re.sub(r"[\s:\-]", "", text).lower() if isinstance(text, str) else ""
    if not FINGERPRINT_RE.match(value):
        raise invalid("'fingerprint' must be a SHA-256 fingerprint (64 hex digits)", ["fingerprint"])
    return value


def write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by the owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_usage(digital_signature: bool = False, key_encipherment: bool = False,
              cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=False,
                         key_encipherment=key_encipherment, data_encipherment=False,
                         key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
                         encipher_only=False, decipher_only=False)


class StandPki:
    """The stand's CA and TLS server certificate, made on first start and kept in the data dir."""

    def __init__(self, data_dir: Path, server_names: list[str]) -> None:
        self.ca_path = data_dir / "ca.pem"
        self.ca_key_path = data_dir / "ca.key"
        self.server_cert_path = data_dir / "server.pem"
        self.server_key_path = data_dir / "server.key"
        self._load_or_create_ca()
        if not self._server_cert_usable(server_names):
            self._create_server_cert(server_names)

    @property
    def ca_pem(self) -> str:
        return cert_pem(self.ca_cert).decode()

    def _load_or_create_ca(self) -> None:
        if self.ca_path.exists() and self.ca_key_path.exists():
            self.ca_cert = x509.load_pem_x509_certificate(self.ca_path.read_bytes())
            self.ca_key = serialization.load_pem_private_key(self.ca_key_path.read_bytes(), None)
            return
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Stoloto test stand"),
                          x509.NameAttribute(NameOID.COMMON_NAME, "Stoloto Test Stand CA")])
        now = utcnow()
        public = self.ca_key.public_key()
        self.ca_cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(key_usage(digital_signature=True, cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        write_private(self.ca_key_path, key_pem(self.ca_key))
        self.ca_path.write_bytes(cert_pem(self.ca_cert))

    def _server_cert_usable(self, server_names: list[str]) -> bool:
        """Reuse the stored server certificate unless it is missing, stale or lacks a name."""
        if not (self.server_cert_path.exists() and self.server_key_path.exists()):
            return False
        cert = x509.load_pem_x509_certificate(self.server_cert_path.read_bytes())
        try:
            cert.verify_directly_issued_by(self.ca_cert)
        except (ValueError, TypeError, InvalidSignature) as exc:
            log.info("server certificate not issued by the stand CA (%s), making a new one", exc)
            return False
        if cert.not_valid_after_utc - utcnow() < dt.timedelta(days=30):
            return False
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        present = {str(v) for v in san.get_values_for_type(x509.DNSName)}
        present |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
        return set(server_names) <= present

    def _create_server_cert(self, server_names: list[str]) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        now = utcnow()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(self.ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName(san_entries(server_names)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                           critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        write_private(self.server_key_path, key_pem(key))
        self.server_cert_path.write_bytes(cert_pem(cert))

    def server_context(self) -> ssl.SSLContext:
        """TLS server context: asks for a client certificate, optional, issued by the stand CA."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.server_cert_path, self.server_key_path)
        context.load_verify_locations(cafile=str(self.ca_path))
        context.verify_mode = ssl.CERT_OPTIONAL
        context.verify_flags |= X509_V_FLAG_NO_CHECK_TIME
        return context

    def sign_client_certificate(self, csr: x509.CertificateSigningRequest, now: dt.datetime,
                                validity: dt.timedelta) -> x509.Certificate:
        """A TLS client certificate with the CSR subject and key, issued at `now` (the stand's clock)."""
        public = csr.public_key()
        return (
            x509.CertificateBuilder().subject_name(csr.subject).issuer_name(self.ca_cert.subject)
            .public_key(public).serial_number(x509.random_serial_number())
            .not_valid_before(now - CLIENT_CERT_BACKDATE)
            .not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(digital_signature=True,
                                     key_encipherment=isinstance(public, rsa.RSAPublicKey)), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                           critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )


def san_entries(names: list[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def server_names_for(host: str) -> list[str]:
    """localhost and loopback always; the listening host too when it is a specific name."""
    names = ["localhost", "127.0.0.1", "::1"]
    if host not in ("", "0.0.0.0", "::") and host not in names:
        names.append(host)
    return names


def load_csr(pem: str) -> x509.CertificateSigningRequest:
    """Parse a PEM CSR and check its self-signature; 400 otherwise."""
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
        csr.public_key()
        valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise invalid(f"'csr' is not a valid PEM certificate request: {exc}", ["csr"]) from exc
    if not valid:
        raise invalid("'csr' signature does not match its public key", ["csr"])
    return csr
