"""Keys at rest: the key-encryption key, the upgrade from SECRET_KEY, and `flask keys rotate`."""
import os
import re
import stat

import click
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask_migrate import downgrade, upgrade
from sqlalchemy import select, text

from app import create_app
from stoloto import settings
from stoloto.errors import SisError
from stoloto.extensions import db
from stoloto.models import AuditEvent, Contract
from stoloto.services import contracts, gateway
from stoloto.services.contracts import ContractInput
from tests.conftest import TEST_KEY_ENCRYPTION_KEY, TEST_SECRET
from tests.factories import activated_contract, store

TOKEN = "cash-api-token-for-key-tests-0123456789"
KEY_FILE = "key_encryption_key"
ANOTHER_SECRET = "a-new-secret-key-after-a-leak-0123456789-0123456789"


def raw_key(contract_id: int) -> bytes:
    return bytes(db.session.scalar(text("SELECT private_key_encrypted FROM contracts WHERE id = :i"),
                                   {"i": contract_id}))


def raw_token() -> str:
    return db.session.scalar(text("SELECT value FROM settings WHERE key = :k"), {"k": settings.CASH_API_TOKEN})


def der(key) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _legacy_aes(secret: str) -> AESGCM:
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=b"sis/private-key-at-rest/v1").derive(secret.encode()))


def sealed_as_in_0003(key, contract_id: int, secret: str = TEST_SECRET) -> bytes:
    """Revision 0003's format: 0x01, a 12-byte nonce, AES-256-GCM under a key derived from SECRET_KEY."""
    nonce = os.urandom(12)
    return b"\x01" + nonce + _legacy_aes(secret).encrypt(nonce, der(key), f"contract:{contract_id}".encode())


def opened_as_in_0003(blob: bytes, contract_id: int, secret: str = TEST_SECRET) -> bytes:
    assert blob[:1] == b"\x01"
    return _legacy_aes(secret).decrypt(blob[1:13], blob[13:], f"contract:{contract_id}".encode())


def fetch_over_mutual_tls(application) -> str:
    """`flask terminals fetch` in a process that has not opened any contract's key yet."""
    gateway.forget_clients()
    result = application.test_cli_runner().invoke(args=["terminals", "fetch"])
    assert result.exit_code == 0, result.output
    return result.output


def register_over_api(application, store_code: str, token: str = TOKEN):
    gateway.forget_clients()
    return application.test_client().post("/api/v1/cash-registers/registration",
                                          json={"store_code": store_code, "cash_number": 1},
                                          headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def file_app(app, tmp_path):
    """SIS with no SIS_KEY_ENCRYPTION_KEY: its key-encryption key lives in its own instance folder."""
    application = create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                              "SECRET_KEY": TEST_SECRET, "SIS_KEY_ENCRYPTION_KEY": "", "TESTING": True,
                              "SIS_BOOTSTRAP_ADMIN": False, "SIS_INSTANCE_PATH": str(tmp_path)})
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def restore_config(app):
    saved = dict(app.config)
    yield app.config
    app.config.update(saved)
    settings.forget()
    gateway.forget_clients()


# --- the key-encryption key -------------------------------------------------------------------

def test_key_encryption_key_is_generated_once_into_the_instance_folder(file_app, tmp_path):
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_text()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}\n", content)  # base64url of 32 random bytes, one line
    again = create_app({"SQLALCHEMY_DATABASE_URI": file_app.config["SQLALCHEMY_DATABASE_URI"],
                        "SECRET_KEY": TEST_SECRET, "SIS_KEY_ENCRYPTION_KEY": "", "TESTING": True,
                        "SIS_BOOTSTRAP_ADMIN": False, "SIS_INSTANCE_PATH": str(tmp_path)})
    assert again.config["SIS_INSTANCE_PATH"] == str(tmp_path)
    assert path.read_text() == content


def test_an_instance_folder_that_does_not_exist_yet_is_made_with_both_keys(tmp_path):
    folder = tmp_path / "new" / "instance"
    create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'sis.db'}", "SECRET_KEY": "",
                "SIS_KEY_ENCRYPTION_KEY": "", "TESTING": True, "SIS_BOOTSTRAP_ADMIN": False,
                "SIS_INSTANCE_PATH": str(folder)})
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()} == {
        KEY_FILE: 0o600, "secret_key": 0o600}


@pytest.mark.parametrize("value", ["too-short", "L4stQBP4j2OAK_997tpP0EMjeb98o_YYERjPriIxprw+", "a" * 60])
def test_a_malformed_key_encryption_key_stops_the_start(app, value):
    with pytest.raises(SystemExit) as stopped:
        create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "SECRET_KEY": TEST_SECRET,
                    "SIS_KEY_ENCRYPTION_KEY": value, "TESTING": True, "SIS_BOOTSTRAP_ADMIN": False})
    assert "SIS_KEY_ENCRYPTION_KEY" in str(stopped.value) and "32 байта" in str(stopped.value)


def test_a_new_secret_key_leaves_private_keys_readable(ctx, app, stand, restore_config):
    contract_id = activated_contract(stand, "СМЕНА-1")
    restore_config["SECRET_KEY"] = ANOTHER_SECRET  # rotated after a leak: sessions end, keys stay
    assert "СМЕНА-1: получено 5" in fetch_over_mutual_tls(app)
    assert db.session.get(Contract, contract_id).status == "active"


def test_a_wrong_key_encryption_key_gives_a_clear_message(ctx, restore_config):
    contract = contracts.create_contract(ContractInput(number="ЧУЖОЙ-1", contract_date="15.01.2026",
                                                       agent_inn="7707083893"), "t")
    contracts.prepare_activation(contract.id, "t")
    restore_config["SIS_KEY_ENCRYPTION_KEY"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    with pytest.raises(SisError) as error:
        contracts.update_contract(contract, ContractInput(number="ЧУЖОЙ-2", contract_date="15.01.2026",
                                                          agent_inn="7707083893"), "t")
    assert error.value.code == "KEY_UNREADABLE"
    assert "SIS_KEY_ENCRYPTION_KEY" in str(error.value) and "instance/key_encryption_key" in str(error.value)


def test_private_key_is_not_sealed_with_secret_key(ctx):
    contract = contracts.create_contract(ContractInput(number="ХРАН-1", contract_date="15.01.2026",
                                                       agent_inn="7707083893"), "t")
    contracts.prepare_activation(contract.id, "t")
    blob = raw_key(contract.id)
    assert blob[:1] != b"\x01"
    assert gateway.private_key(db.session.get(Contract, contract.id)).public_key() is not None


def test_cash_api_token_is_stored_encrypted_and_still_shown_in_settings(app, web):
    admin = web("admin")
    assert admin.post("/settings/", {settings.CASH_API_TOKEN: TOKEN}).status_code == 302
    with app.app_context():
        stored = raw_token()
        assert TOKEN not in stored and TOKEN.encode().hex() not in stored
    assert f'value="{TOKEN}"' in admin.get("/settings/").get_data(as_text=True)  # «Показать» reveals it
    answer = app.test_client().get("/api/v1/cash-registers/1/1", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 404 and answer.json["error"]["code"] == "CASH_REGISTER_UNKNOWN"


def test_a_generated_cash_api_token_is_stored_encrypted(app, web):
    page = web("admin").get("/settings/").get_data(as_text=True)
    with app.app_context():
        shown = settings.cash_api_token()
        assert f'value="{shown}"' in page
        assert shown not in raw_token()


# --- upgrade from revision 0003 ---------------------------------------------------------------

def test_upgrade_reseals_keys_and_token_stored_by_revision_0003(app, stand, restore_config):
    with app.app_context():
        contract_id = activated_contract(stand, "МИГ-1")
        store("301", contract_id)
        key = gateway.private_key(db.session.get(Contract, contract_id))
        db.session.commit()
        downgrade(revision="0003")
        assert opened_as_in_0003(raw_key(contract_id), contract_id) == der(key)  # the downgrade's output
        # As revision 0003 stored them: the key sealed with SECRET_KEY, the token in plain text.
        db.session.execute(text("UPDATE contracts SET private_key_encrypted = :b WHERE id = :i"),
                           {"b": sealed_as_in_0003(key, contract_id), "i": contract_id})
        db.session.execute(text("DELETE FROM settings WHERE key = :k"), {"k": settings.CASH_API_TOKEN})
        db.session.execute(text("INSERT INTO settings (key, value, updated_at) VALUES (:k, :v, CURRENT_TIMESTAMP)"),
                           {"k": settings.CASH_API_TOKEN, "v": TOKEN})
        db.session.commit()
        db.session.remove()

        upgrade()
        assert raw_key(contract_id)[:1] != b"\x01" and der(key) not in raw_key(contract_id)
        assert TOKEN not in raw_token()
        db.session.remove()

    restore_config["SECRET_KEY"] = ANOTHER_SECRET  # the keys no longer depend on it
    settings.forget()
    with app.app_context():
        assert "МИГ-1: получено 5" in fetch_over_mutual_tls(app)
        registered = register_over_api(app, "301")
        assert registered.status_code == 200, registered.json
        assert registered.json["status"] == "REGISTERED" and registered.json["contract_number"] == "МИГ-1"


def test_upgrade_with_another_secret_key_refuses_and_changes_nothing(app, restore_config):
    with app.app_context():
        contract = contracts.create_contract(ContractInput(number="МИГ-2", contract_date="15.01.2026",
                                                           agent_inn="7707083893"), "t")
        contracts.prepare_activation(contract.id, "t")
        contract_id = contract.id
        db.session.commit()
        downgrade(revision="0003")
        before = raw_key(contract_id)
        db.session.remove()
        restore_config["SECRET_KEY"] = ANOTHER_SECRET
        with pytest.raises(click.ClickException) as failed:
            upgrade()
        assert "SECRET_KEY" in failed.value.message and "МИГ-2" in failed.value.message
        db.session.remove()
        assert raw_key(contract_id) == before
        db.session.remove()  # its read would hold PostgreSQL's lock on contracts against the migrations' ALTER TABLE
        restore_config["SECRET_KEY"] = TEST_SECRET
        upgrade()
        assert raw_key(contract_id)[:1] != b"\x01"


# --- rotation ---------------------------------------------------------------------------------

def test_rotation_reseals_every_key_and_the_token_and_contracts_keep_working(file_app, stand, tmp_path):
    path = tmp_path / KEY_FILE
    with file_app.app_context():
        first, second = activated_contract(stand, "РОТ-1"), activated_contract(stand, "РОТ-2")
        store("201", first)
        settings.save({settings.CASH_API_TOKEN: TOKEN}, "t")
        keys_before, token_before = {i: raw_key(i) for i in (first, second)}, raw_token()
        db.session.remove()
    old_key = path.read_text()

    result = file_app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "Перешифровано ключей: 2" in result.output

    new_key = path.read_text()
    assert new_key != old_key and len(new_key.split()) == 1  # the old key is no longer accepted
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with file_app.app_context():
        assert all(raw_key(i) != keys_before[i] for i in (first, second)) and raw_token() != token_before
        journal = db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "key_encryption_key")).all()
        assert [(e.actor, e.action, e.result) for e in journal] == [
            ("командная строка", "Смена ключа шифрования", "ok")]
        assert "Перешифровано ключей: 2" in journal[0].details

        output = fetch_over_mutual_tls(file_app)
        assert "РОТ-1: получено 5; РОТ-2: получено 5" in output
        registered = register_over_api(file_app, "201")
        assert registered.status_code == 200, registered.json
        assert registered.json["status"] == "REGISTERED" and registered.json["contract_number"] == "РОТ-1"

        path.write_text(old_key)  # the key from before the rotation opens nothing now
        gateway.forget_clients()
        with pytest.raises(SisError) as error:
            gateway.private_key(db.session.get(Contract, first))
        assert error.value.code == "KEY_UNREADABLE"


def test_rotation_with_the_key_in_the_environment_prints_the_new_one(app, stand, restore_config, web):
    with app.app_context():
        contract_id = activated_contract(stand, "РОТ-ENV")
        store("202", contract_id)
        settings.save({settings.CASH_API_TOKEN: TOKEN}, "t")
        db.session.remove()

    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "Перешифровано ключей: 1" in result.output
    new_key = re.search(r"SIS_KEY_ENCRYPTION_KEY=([A-Za-z0-9_-]{43})\s", result.output).group(1)
    assert new_key != TEST_KEY_ENCRYPTION_KEY
    assert not os.path.exists(os.path.join(app.config["SIS_INSTANCE_PATH"], KEY_FILE))
    journal = web("admin").get("/journal/").get_data(as_text=True)
    assert "Смена ключа шифрования" in journal and "ключ шифрования" in journal  # the object, in Russian

    with app.app_context():  # until the administrator sets the new value, the old one opens nothing
        gateway.forget_clients()
        with pytest.raises(SisError):
            gateway.private_key(db.session.get(Contract, contract_id))
        db.session.remove()
    restore_config["SIS_KEY_ENCRYPTION_KEY"] = new_key  # set, and SIS restarted
    settings.forget()
    with app.app_context():
        assert "РОТ-ENV: получено 5" in fetch_over_mutual_tls(app)
        registered = register_over_api(app, "202")
        assert registered.status_code == 200 and registered.json["status"] == "REGISTERED", registered.json


def test_rotation_refuses_when_a_key_does_not_open_and_changes_nothing(file_app, tmp_path):
    path = tmp_path / KEY_FILE
    with file_app.app_context():
        readable = contracts.create_contract(ContractInput(number="ЦЕЛ-1", contract_date="15.01.2026",
                                                           agent_inn="7707083893"), "t")
        contracts.prepare_activation(readable.id, "t")
        good_key = path.read_text()
        path.write_text("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n")  # a key since lost
        lost = contracts.create_contract(ContractInput(number="ПОТЕРЯН-1", contract_date="15.01.2026",
                                                       agent_inn="7707083893"), "t")
        contracts.prepare_activation(lost.id, "t")
        path.write_text(good_key)
        before = {readable.id: raw_key(readable.id), lost.id: raw_key(lost.id)}
        db.session.remove()

    result = file_app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 1
    assert "ПОТЕРЯН-1" in result.output and "не расшифровывается" in result.output
    assert path.read_text() == good_key
    with file_app.app_context():
        assert {i: raw_key(i) for i in before} == before
        journal = db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "key_encryption_key")).all()
        assert [(e.action, e.result) for e in journal] == [("Смена ключа шифрования", "error")]


def test_rotation_reseals_the_keys_a_renewal_keeps_and_the_renewal_finishes_after_it(file_app, stand, tmp_path):
    from stoloto.services import certificates
    with file_app.app_context():
        renewed, waiting = activated_contract(stand, "РОТ-Н1"), activated_contract(stand, "РОТ-Н2")
        certificates.renew(renewed, "t")  # its previous key is kept until the new certificate has worked
        stand.fault("renew", "garbage")
        with pytest.raises(SisError):
            certificates.renew(waiting, "t")  # the answer is lost: the new key waits for its certificate
        db.session.remove()

    result = file_app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "Перешифровано ключей: 4" in result.output  # two current, one previous, one waiting

    with file_app.app_context():
        gateway.forget_clients()
        assert certificates.renew(waiting, "t").renewed  # the waiting key opens with the new key-encryption key
        assert "РОТ-Н1: получено 5; РОТ-Н2: получено 5" in fetch_over_mutual_tls(file_app)
