"""«Резервное копирование»: `flask backup` of a serving instance and `flask restore` into a fresh one."""
import io
import json
import os
import stat
import tarfile
import threading

import pytest
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import make_url

from app import create_app
from stoloto import settings
from stoloto.extensions import db
from stoloto.models import AuditEvent, CashRegister, Contract, Store, Terminal
from stoloto.services import contracts, gateway, terminals
from stoloto.services.contracts import ContractInput
from tests.conftest import TEST_KEY_ENCRYPTION_KEY, Browser
from tests.factories import activated_contract, store
from tests.processes import wait_for

TOKEN = "backup-cash-api-token-0123456789"
URL = "/api/v1/cash-registers/registration"
OTHER_KEY = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
DAMAGED = "не является резервной копией СИ Столото или повреждён"


def cli(application, *args):
    return application.test_cli_runner().invoke(args=list(args))


def fresh_app(database_url: str, instance, key_encryption_key: str = ""):
    """SIS started on its own database and instance folder; its keys are whatever that folder holds."""
    instance.mkdir(exist_ok=True)
    return create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SIS_KEY_ENCRYPTION_KEY": key_encryption_key,
                       "TESTING": True, "SIS_BOOTSTRAP_ADMIN": False, "SIS_INSTANCE_PATH": str(instance)})


def close(application) -> None:
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def target(app, tmp_path):
    """An empty database of the source's kind (PostgreSQL: another database, created here) and a URL to it."""
    source = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if source.get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    name = f"{source.database}2"
    server = create_engine(source.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield source.set(database=name).render_as_string(hide_password=False)
    with server.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    server.dispose()


@pytest.fixture
def caches():
    """Settings and Stoloto clients are kept per process: each instance here must read its own."""
    settings.forget()
    gateway.forget_clients()
    yield
    settings.forget()
    gateway.forget_clients()


def register(client, store_code: str, cash_number: int):
    return client.post(URL, json={"store_code": store_code, "cash_number": cash_number},
                       headers={"Authorization": f"Bearer {TOKEN}"})


def numbers_by_register() -> dict[tuple[str, int], str]:
    rows = db.session.execute(select(Store.code, CashRegister.cash_number, Terminal.number)
                              .join(Store, CashRegister.store_id == Store.id)
                              .join(Terminal, CashRegister.terminal_id == Terminal.id)).all()
    return {(code, cash): number for code, cash, number in rows}


def test_backup_while_registrations_stream_restores_into_a_fresh_instance_that_works(
        app, stand, accounts, target, tmp_path, caches):
    with app.app_context():
        settings.save({settings.CASH_API_TOKEN: TOKEN, settings.BATCH_SIZE: 60}, "t")
        first, second = activated_contract(stand, "КОПИЯ-1"), activated_contract(stand, "КОПИЯ-2")
        terminals.fetch_due_batches()
        store("501", first)
        store("502", second)
        db.session.remove()

    # One register after another, as cash registers come up in the stores: numbers are claimed in order.
    asked, answers, stop = [], [], threading.Event()

    def stream():
        client = app.test_client()
        for cash_number in range(1, 41):
            if stop.is_set():
                return
            for store_code in ("501", "502"):
                asked.append((store_code, cash_number))
                response = register(client, store_code, cash_number)
                answers.append(((store_code, cash_number), response.status_code, response.get_json()))

    streaming = threading.Thread(target=stream)
    streaming.start()
    try:
        wait_for(lambda: len(answers) >= 10, 60, "registrations to stream in")
        claimed_before = {register_: body["terminal_number"] for register_, status, body in list(answers)
                          if status == 200}
        archive = tmp_path / "sis.tar.gz"
        made = cli(app, "backup", str(archive))
    finally:
        stop.set()
        streaming.join(120)
    assert made.exit_code == 0, made.output
    assert f"Резервная копия записана в {archive}" in made.output
    assert "SECRET_KEY задан переменной окружения и в копию не вошёл." in made.output  # the tests' app sets it
    assert all(status == 200 for _, status, _ in answers), answers
    with tarfile.open(archive) as opened:
        manifest = json.load(opened.extractfile("manifest.json"))
    with app.app_context():
        migrated_to = db.session.scalar(text("SELECT version_num FROM alembic_version"))
    assert manifest["migration"] == migrated_to and manifest["counts"]["contracts"] == 2
    assert manifest["counts"]["terminals"] == 120 and manifest["counts"]["cash_registers"] >= len(claimed_before)

    restored_instance = tmp_path / "restored-instance"
    empty = fresh_app(target, restored_instance)
    restored = cli(empty, "restore", str(archive))
    close(empty)
    assert restored.exit_code == 0, restored.output
    counts = manifest["counts"]
    assert (f"договоров: 2, магазинов: 2, касс: {counts['cash_registers']}, номеров терминалов: 120 — "
            "как в манифесте") in restored.output
    assert "Закрытых ключей договоров расшифровано: 2." in restored.output
    key_file = restored_instance / "key_encryption_key"
    assert key_file.read_text() == TEST_KEY_ENCRYPTION_KEY + "\n"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    settings.forget()
    gateway.forget_clients()  # the keys must be opened from the restored database with the restored key
    sis = fresh_app(target, restored_instance)
    try:
        with sis.app_context():
            kept = numbers_by_register()
        assert {r: kept.get(r) for r in claimed_before} == claimed_before
        assert Browser(sis.test_client()).login(accounts["admin"]).status_code == 302
        client = sis.test_client()
        # The registers that came after the backup ask again, in the same order, and get the same numbers:
        # nothing the restored instance hands out is bound at Stoloto to another register.
        for register_, _status, body in answers:
            again = register(client, *register_)
            assert again.status_code == 200 and again.get_json() == body, (register_, again.get_json())
        for store_code, number in (("501", "КОПИЯ-1"), ("502", "КОПИЯ-2")):  # over each contract's mutual TLS
            new = register(client, store_code, 900)
            assert new.status_code == 200, new.get_json()
            assert new.get_json()["status"] == "REGISTERED" and new.get_json()["contract_number"] == number
            assert new.get_json()["terminal_number"] in stand.issued(number)
        with sis.app_context():
            journal = db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "backup")).all()
            assert [(e.action, e.result) for e in journal] == [("Восстановление из резервной копии", "ok")]
    finally:
        close(sis)
    with app.app_context():
        journal = db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "backup")).all()
        assert [(e.actor, e.action, e.result) for e in journal] == [("командная строка", "Резервная копия", "ok")]


def test_backup_archive_is_created_private(app, tmp_path):
    archive = tmp_path / "private.tar.gz"
    previous = os.umask(0)  # a careless umask must not make the keys world-readable
    try:
        made = cli(app, "backup", str(archive))
    finally:
        os.umask(previous)
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as opened:
        assert opened.extractfile("key_encryption_key").read().decode() == TEST_KEY_ENCRYPTION_KEY + "\n"
    assert [name for name in os.listdir(tmp_path)] == ["private.tar.gz"]  # no temporary file left behind


def test_backup_into_a_folder_that_does_not_exist_yet_makes_it_private(app, tmp_path):
    archive = tmp_path / "backups" / "daily" / "sis.tar.gz"
    made = cli(app, "backup", str(archive))
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(archive.parent.stat().st_mode) == 0o700 and archive.exists()


def test_keys_kept_in_the_instance_folder_come_back_into_the_new_one(tmp_path, caches):
    source = fresh_app(f"sqlite:///{tmp_path / 'source.db'}", tmp_path / "source")
    target_app = fresh_app(f"sqlite:///{tmp_path / 'target.db'}", tmp_path / "target")
    try:
        assert cli(source, "db", "upgrade").exit_code == 0
        with source.app_context():
            new_contract("ФАЙЛ-1")
            contracts.prepare_activation(db.session.scalar(select(Contract.id)), "t")  # a sealed private key
        archive = tmp_path / "sis.tar.gz"
        assert cli(source, "backup", str(archive)).exit_code == 0
        restored = cli(target_app, "restore", str(archive))
        assert restored.exit_code == 0, restored.output
        assert "Закрытых ключей договоров расшифровано: 1." in restored.output
        for name in ("secret_key", "key_encryption_key"):
            copy = tmp_path / "target" / name
            assert copy.read_text() == (tmp_path / "source" / name).read_text(), name
            assert stat.S_IMODE(copy.stat().st_mode) == 0o600
            assert f"записан в {copy}" in restored.output
    finally:
        close(source)
        close(target_app)


def new_contract(number: str) -> None:
    contracts.create_contract(ContractInput(number=number, contract_date="15.01.2026", agent_inn="7707083893"), "t")


def contract_numbers() -> list[str]:
    return sorted(db.session.scalars(select(Contract.number)))


def test_restore_refuses_a_non_empty_database_unless_forced(app, tmp_path, caches):
    archive = tmp_path / "sis.tar.gz"
    with app.app_context():
        new_contract("ДО-КОПИИ")
    assert cli(app, "backup", str(archive)).exit_code == 0
    with app.app_context():
        new_contract("ПОСЛЕ-КОПИИ")

    refused = cli(app, "restore", str(archive))
    assert refused.exit_code == 1
    assert "База данных не пуста (договоров: 2, магазинов: 0, касс: 0, номеров терминалов: 0)" in refused.output
    assert "--force" in refused.output
    with app.app_context():
        assert contract_numbers() == ["ДО-КОПИИ", "ПОСЛЕ-КОПИИ"]
        journal = db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "backup")).all()
        assert [(e.action, e.result) for e in journal][-1] == ("Восстановление из резервной копии", "error")
        db.session.remove()

    forced = cli(app, "restore", "--force", str(archive))
    assert forced.exit_code == 0, forced.output
    assert "договоров: 1" in forced.output
    with app.app_context():
        assert contract_numbers() == ["ДО-КОПИИ"]


def _truncated(valid: bytes) -> bytes:
    return valid[:len(valid) // 2]


def _altered(valid: bytes) -> bytes:
    middle = len(valid) // 2
    return valid[:middle] + bytes([valid[middle] ^ 0xFF]) + valid[middle + 1:]


def _foreign(valid: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        content = json.dumps({"name": "something else"}).encode()
        member = tarfile.TarInfo("manifest.json")
        member.size = len(content)
        archive.addfile(member, io.BytesIO(content))
    return buffer.getvalue()


def _database_swapped(valid: bytes) -> bytes:
    """The manifest kept, one byte of the database changed: the checksum gives it away."""
    source, buffer = tarfile.open(fileobj=io.BytesIO(valid)), io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for member in source.getmembers():
            content = source.extractfile(member).read()
            if member.name.startswith("database"):
                content = content[:-1] + bytes([content[-1] ^ 0x01])
            member.size = len(content)
            archive.addfile(member, io.BytesIO(content))
    return buffer.getvalue()


@pytest.mark.parametrize("damage", [_truncated, _altered, _foreign, _database_swapped, lambda valid: b"not a backup\n"],
                         ids=["truncated", "altered", "foreign", "database-swapped", "not-an-archive"])
def test_restore_refuses_a_damaged_or_foreign_archive_and_changes_nothing(app, tmp_path, damage, caches):
    archive = tmp_path / "sis.tar.gz"
    with app.app_context():
        new_contract("ДО-КОПИИ")
    assert cli(app, "backup", str(archive)).exit_code == 0
    with app.app_context():
        new_contract("ПОСЛЕ-КОПИИ")
    archive.write_bytes(damage(archive.read_bytes()))

    refused = cli(app, "restore", "--force", str(archive))
    assert refused.exit_code == 1
    assert DAMAGED in refused.output
    with app.app_context():
        assert contract_numbers() == ["ДО-КОПИИ", "ПОСЛЕ-КОПИИ"]


def test_restore_refuses_when_the_environment_gives_another_key_encryption_key(app, target, tmp_path, caches):
    archive = tmp_path / "sis.tar.gz"
    with app.app_context():
        new_contract("ДО-КОПИИ")
    assert cli(app, "backup", str(archive)).exit_code == 0

    other = fresh_app(target, tmp_path / "other-instance", key_encryption_key=OTHER_KEY)
    try:
        refused = cli(other, "restore", str(archive))
        assert refused.exit_code == 1
        assert "В окружении задан SIS_KEY_ENCRYPTION_KEY, отличный от ключа шифрования ключей в копии" \
            in refused.output
        assert "Уберите SIS_KEY_ENCRYPTION_KEY из окружения" in refused.output
        with other.app_context():
            assert not inspect(db.engine).has_table("contracts")  # nothing restored
    finally:
        close(other)


def test_restore_with_the_same_key_in_the_environment_keeps_it_there(app, target, tmp_path, caches):
    archive = tmp_path / "sis.tar.gz"
    with app.app_context():
        new_contract("ДО-КОПИИ")
    assert cli(app, "backup", str(archive)).exit_code == 0

    same = fresh_app(target, tmp_path / "same-instance", key_encryption_key=TEST_KEY_ENCRYPTION_KEY)
    try:
        restored = cli(same, "restore", str(archive))
        assert restored.exit_code == 0, restored.output
        assert "задан переменной SIS_KEY_ENCRYPTION_KEY и совпадает с ключом копии" in restored.output
        assert not (tmp_path / "same-instance" / "key_encryption_key").exists()
        with same.app_context():
            assert contract_numbers() == ["ДО-КОПИИ"]
    finally:
        close(same)


def test_backup_without_pg_dump_says_so(app, tmp_path, monkeypatch):
    if make_url(app.config["SQLALCHEMY_DATABASE_URI"]).get_backend_name() != "postgresql":
        pytest.skip("pg_dump backs up PostgreSQL only; SQLite is copied through its backup API")
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))
    archive = tmp_path / "sis.tar.gz"
    made = cli(app, "backup", str(archive))
    assert made.exit_code == 1
    assert "Программа pg_dump не найдена" in made.output and "postgresql-client" in made.output
    assert not archive.exists()
    with app.app_context():
        journal = db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "backup")).all()
        assert [(e.action, e.result) for e in journal] == [("Резервная копия", "error")]
