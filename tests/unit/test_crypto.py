"""The SIS key, its certificate request and the key's encryption at rest."""
import base64
import subprocess

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from stoloto import crypto

KEK_TEXT = "L4stQBP4j2OAK_997tpP0EMjeb98o_YYERjPriIxprw"
KEK = base64.urlsafe_b64decode(KEK_TEXT + "=")
OTHER_KEK = bytes(32)


@pytest.fixture(scope="module")
def key():
    return crypto.generate_private_key()


def test_key_is_ec_p256(key):
    assert isinstance(key.curve, ec.SECP256R1)


@pytest.mark.parametrize("inn, oid", [("7707083893", "1.2.643.100.4"), ("500100732259", "1.2.643.3.131.1.1")])
def test_csr_subject_holds_number_and_inn(key, inn, oid):
    csr = crypto.load_csr(crypto.build_csr(key, "СТ-2026/001", inn, "ООО «Ромашка»"))
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "SIS СТ-2026/001"
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "ООО «Ромашка»"
    inn_attribute = [a for a in csr.subject if a.oid.dotted_string == oid]
    assert [a.value for a in inn_attribute] == [inn]
    assert csr.signature_hash_algorithm.name == "sha256"


def test_csr_without_agent_name_has_no_organization(key):
    csr = crypto.load_csr(crypto.build_csr(key, "42", "7707083893", None))
    assert not csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)


def test_openssl_accepts_the_csr(key, tmp_path):
    path = tmp_path / "request.csr"
    path.write_text(crypto.build_csr(key, "СТ-2026/001", "7707083893", None))
    result = subprocess.run(["openssl", "req", "-in", str(path), "-verify", "-noout"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "verify OK" in (result.stdout + result.stderr)


def test_openssl_rejects_a_tampered_csr(key, tmp_path):
    csr = crypto.load_csr(crypto.build_csr(key, "1", "7707083893", None))
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0xFF  # damage the signature
    path = tmp_path / "bad.csr"
    path.write_bytes(bytes(der))
    result = subprocess.run(["openssl", "req", "-inform", "DER", "-in", str(path), "-verify", "-noout"],
                            capture_output=True, text=True)
    # OpenSSL 3.0 exits 0 here but prints "verify failure"; later versions exit non-zero.
    assert result.returncode != 0 or "verify failure" in (result.stdout + result.stderr)
    assert "verify OK" not in (result.stdout + result.stderr)


def test_fingerprint_is_sha256_of_subject_public_key_info(key):
    import hashlib
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    assert crypto.public_key_fingerprint(key.public_key()) == hashlib.sha256(der).hexdigest()
    formatted = crypto.format_fingerprint(hashlib.sha256(der).hexdigest())
    assert len(formatted.split()) == 16 and formatted.replace(" ", "").lower() == hashlib.sha256(der).hexdigest()


def test_key_at_rest_is_encrypted_and_round_trips(key):
    blob = crypto.encrypt_private_key(key, KEK, b"contract:1")
    plain = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    assert plain not in blob and scalar not in blob and b"PRIVATE KEY" not in blob
    restored = crypto.decrypt_private_key(blob, [KEK], b"contract:1")
    assert restored.private_numbers() == key.private_numbers()


def test_key_does_not_decrypt_with_another_key_or_row(key):
    blob = crypto.encrypt_private_key(key, KEK, b"contract:1")
    with pytest.raises(ValueError):
        crypto.decrypt_private_key(blob, [OTHER_KEK], b"contract:1")
    with pytest.raises(InvalidTag):
        crypto.decrypt_private_key(blob, [KEK], b"contract:2")


def test_a_sealed_value_names_the_key_that_sealed_it():
    blob = crypto.seal(b"token", KEK, b"setting:x")
    assert crypto.sealed_by(blob) == crypto.key_id(KEK) != crypto.key_id(OTHER_KEK)
    assert KEK not in blob and crypto.key_id(KEK) != KEK[:8]
    assert crypto.unseal(blob, [OTHER_KEK, KEK], b"setting:x") == b"token"  # any accepted key, by its id


def test_a_tampered_key_id_does_not_open():
    blob = bytearray(crypto.seal(b"token", KEK, b"setting:x"))
    blob[1:9] = crypto.key_id(OTHER_KEK)
    with pytest.raises(InvalidTag):
        crypto.unseal(bytes(blob), [KEK, OTHER_KEK], b"setting:x")


@pytest.mark.parametrize("text", [KEK_TEXT, KEK_TEXT + "="])
def test_key_encryption_key_is_32_bytes_in_base64url(text):
    assert crypto.parse_key_encryption_key(text) == KEK


@pytest.mark.parametrize("text", ["", "short", KEK_TEXT[:-1], KEK_TEXT + "A", KEK_TEXT[:-1] + "+",
                                  " " + KEK_TEXT, KEK_TEXT[:-1] + "é"])
def test_anything_else_is_not_a_key_encryption_key(text):
    with pytest.raises(ValueError) as error:
        crypto.parse_key_encryption_key(text)
    assert "32 байта" in str(error.value)
