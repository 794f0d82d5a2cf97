"""Keys, certificate requests, fingerprints and encryption of private keys at rest."""
import base64
import hashlib
import os
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

KEY_ALGORITHM = "EC P-256 (secp256r1), ECDSA SHA-256"
# Russian OIDs for the taxpayer number: ИНН ЮЛ (10 digits) and ИНН (12 digits).
OID_INN_LEGAL = x509.ObjectIdentifier("1.2.643.100.4")
OID_INN = x509.ObjectIdentifier("1.2.643.3.131.1.1")
# A sealed value: version 0x02, the id of the key-encryption key that sealed it, a 12-byte nonce,
# AES-256-GCM. (0x01 was the format sealed with a key derived from SECRET_KEY; migration 0005 reads it.)
_SEALED_VERSION = b"\x02"
_KEY_ID_BYTES = 8
_HEADER_BYTES = 1 + _KEY_ID_BYTES
KEY_ENCRYPTION_KEY_BYTES = 32


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def parse_key_encryption_key(text: str) -> bytes:
    """A key-encryption key as written: 32 random bytes in base64url, 43 characters (a trailing «=» allowed)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{43}=?", text):
        raise ValueError("ключ шифрования ключей — 32 байта в base64url: 43 символа A–Z, a–z, 0–9, «-», «_»")
    return base64.urlsafe_b64decode(text.rstrip("=") + "=")


def key_id(kek: bytes) -> bytes:
    """Names a key-encryption key inside what it sealed, without revealing it."""
    return hashlib.sha256(b"sis/key-encryption-key-id/" + kek).digest()[:_KEY_ID_BYTES]


def sealed_by(blob: bytes) -> bytes | None:
    """The id of the key that sealed `blob`, or None when it is not in the sealed format."""
    return blob[1:_HEADER_BYTES] if blob[:1] == _SEALED_VERSION and len(blob) > _HEADER_BYTES else None


def seal(plain: bytes, kek: bytes, context: bytes) -> bytes:
    """AES-256-GCM under the key-encryption key; `context` (what the value belongs to) is authenticated,
    not stored, so a sealed value copied to another row does not open."""
    header = _SEALED_VERSION + key_id(kek)
    nonce = os.urandom(12)
    return header + nonce + AESGCM(kek).encrypt(nonce, plain, header + context)


def unseal(blob: bytes, keks: list[bytes], context: bytes) -> bytes:
    """Opens a sealed value with whichever of `keks` sealed it.

    Raises ValueError when none of them did, InvalidTag when the value or its context was altered.
    """
    wanted = sealed_by(blob)
    kek = next((k for k in keks if key_id(k) == wanted), None)
    if wanted is None or kek is None:
        raise ValueError("sealed with an unknown key")
    nonce, sealed = blob[_HEADER_BYTES:_HEADER_BYTES + 12], blob[_HEADER_BYTES + 12:]
    return AESGCM(kek).decrypt(nonce, sealed, blob[:_HEADER_BYTES] + context)


def private_key_der(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def encrypt_private_key(key: ec.EllipticCurvePrivateKey, kek: bytes, context: bytes) -> bytes:
    """The PKCS#8 DER, sealed; `context` binds it to its contract."""
    return seal(private_key_der(key), kek, context)


def decrypt_private_key(blob: bytes, keks: list[bytes], context: bytes) -> ec.EllipticCurvePrivateKey:
    return serialization.load_der_private_key(unseal(blob, keks, context), password=None)


def inn_oid(inn: str) -> x509.ObjectIdentifier:
    return OID_INN_LEGAL if len(inn) == 10 else OID_INN


def csr_subject(contract_number: str, agent_inn: str, agent_name: str | None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, f"SIS {contract_number}")]
    if agent_name:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, agent_name))
    attributes.append(x509.NameAttribute(inn_oid(agent_inn), agent_inn, _type=_ASN1Type.NumericString))
    return x509.Name(attributes)


def build_csr(key: ec.EllipticCurvePrivateKey, contract_number: str, agent_inn: str,
              agent_name: str | None) -> str:
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(csr_subject(contract_number, agent_inn, agent_name))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def build_csr_for_subject(key: ec.EllipticCurvePrivateKey, subject: x509.Name) -> str:
    """A request for a new key with an existing certificate's subject, as renewal (§1.4) asks."""
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def public_key_fingerprint(public_key) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex."""
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def format_fingerprint(hex_digest: str) -> str:
    """'ab12cd34…' → 'AB12 CD34 …': groups of four, easy to compare aloud."""
    upper = hex_digest.upper()
    return " ".join(upper[i:i + 4] for i in range(0, len(upper), 4))


_SUBJECT_LABELS = {NameOID.COMMON_NAME: "CN", NameOID.ORGANIZATION_NAME: "O",
                   OID_INN_LEGAL: "ИНН ЮЛ (1.2.643.100.4)", OID_INN: "ИНН (1.2.643.3.131.1.1)"}


def describe_subject(name: x509.Name) -> str:
    return ", ".join(f"{_SUBJECT_LABELS.get(a.oid, a.oid.dotted_string)}={a.value}" for a in name)


def load_csr(pem: str) -> x509.CertificateSigningRequest:
    return x509.load_pem_x509_csr(pem.encode())
