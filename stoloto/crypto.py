"""Keys, certificate requests, fingerprints and encryption of private keys at rest."""
import hashlib
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

KEY_ALGORITHM = "EC P-256 (secp256r1), ECDSA SHA-256"
# Russian OIDs for the taxpayer number: ИНН ЮЛ (10 digits) and ИНН (12 digits).
OID_INN_LEGAL = x509.ObjectIdentifier("1.2.643.100.4")
OID_INN = x509.ObjectIdentifier("1.2.643.3.131.1.1")
_KEY_BLOB_VERSION = b"\x01"


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _wrapping_key(secret: str) -> bytes:
    # SECRET_KEY is high-entropy, so a single HKDF step is enough (no password KDF needed).
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"sis/private-key-at-rest/v1").derive(secret.encode())


def encrypt_private_key(key: ec.EllipticCurvePrivateKey, secret: str, context: bytes) -> bytes:
    """AES-256-GCM over the PKCS#8 DER; `context` (the contract id) is authenticated, not stored."""
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    nonce = os.urandom(12)
    return _KEY_BLOB_VERSION + nonce + AESGCM(_wrapping_key(secret)).encrypt(nonce, der, context)


def decrypt_private_key(blob: bytes, secret: str, context: bytes) -> ec.EllipticCurvePrivateKey:
    if blob[:1] != _KEY_BLOB_VERSION:
        raise ValueError("unknown private key format")
    nonce, sealed = blob[1:13], blob[13:]
    der = AESGCM(_wrapping_key(secret)).decrypt(nonce, sealed, context)
    return serialization.load_der_private_key(der, password=None)


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
