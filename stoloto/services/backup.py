"""«Резервное копирование» (`flask backup` / `flask restore`): the database and the instance's keys in one archive."""
import gzip
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alembic.script import ScriptDirectory
from cryptography.exceptions import InvalidTag
from flask import current_app
from sqlalchemy import Connection, create_engine, func, inspect, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from .. import audit, config, crypto
from ..database import SQLITE_BUSY_TIMEOUT_MS
from ..errors import SisError
from ..extensions import db
from ..models import CashRegister, Contract, Store, Terminal
from . import gateway

FORMAT = "sis-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
POSTGRESQL_FILE = "database.pgdump"  # pg_dump's custom format, read by pg_restore
SECRET_KEY_FILE = "secret_key"
KEY_FILE = config.KEY_ENCRYPTION_KEY_FILE
OBJECT_TYPE = "backup"
BACKUP_ACTION = "Резервная копия"
RESTORE_ACTION = "Восстановление из резервной копии"
# What the manifest counts and restore checks: the rows a lost backup would cost the chain.
COUNTED = {"contracts": Contract, "stores": Store, "cash_registers": CashRegister, "terminals": Terminal}
COUNT_LABELS = {"contracts": "договоров", "stores": "магазинов", "cash_registers": "касс",
                "terminals": "номеров терминалов"}


@dataclass(frozen=True)
class Backup:
    path: Path
    manifest: dict


@dataclass(frozen=True)
class Restoration:
    manifest: dict
    counts: dict[str, int]
    private_keys: int  # contracts' private keys opened with the restored key-encryption key
    key_file: Path | None  # where the key-encryption key was written; None when the environment gives it
    secret_key_file: Path | None  # None when SECRET_KEY comes from the environment (or the copy had none)
    needs_upgrade: bool  # the copy's migration is older than this SIS's


def describe_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{COUNT_LABELS[name]}: {counts[name]}" for name in COUNTED)


# --- backup -----------------------------------------------------------------------------------

def backup(destination: str, actor: str) -> Backup:
    """Writes a consistent copy of the running instance to `destination` (mode 0600, replaced at once)."""
    path = Path(destination).resolve()
    try:
        with tempfile.TemporaryDirectory(prefix="sis-backup-") as work:  # mode 0700
            work_dir = Path(work)
            if _dialect() == "sqlite":
                database_file, counts, revision = _copy_sqlite(work_dir / SQLITE_FILE)
            else:
                database_file, counts, revision = _dump_postgresql(work_dir / POSTGRESQL_FILE)
            files = {database_file.name: database_file.read_bytes()}
            secret_key = _secret_key_file()
            if secret_key:
                files[SECRET_KEY_FILE] = secret_key
            from_env = current_app.config["SIS_KEY_ENCRYPTION_KEY"]
            # The key goes into the copy wherever it lives: without it the copy's private keys are lost.
            files[KEY_FILE] = "".join(k + "\n" for k in config.key_encryption_keys(from_env, _instance())).encode()
            manifest = {
                "format": FORMAT, "format_version": FORMAT_VERSION,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "sis_version": _sis_version(), "migration": revision, "database": _dialect(),
                "counts": counts, "secret_key": "file" if secret_key else "environment",
                "key_encryption_key": "environment" if from_env else "file",
                "files": {name: hashlib.sha256(content).hexdigest() for name, content in files.items()},
            }
            _write_archive(path, manifest, files)
    except (SisError, OSError, sqlite3.Error, SQLAlchemyError) as error:
        failure = error if isinstance(error, SisError) else SisError(
            "BACKUP_FAILED", f"Резервная копия не создана: {error}.")
        _journal_now(actor, BACKUP_ACTION, "error", f"{path}: {failure}")
        raise failure from None
    _journal_now(actor, BACKUP_ACTION, "ok", f"{path}; {describe_counts(counts)}; миграция {revision}")
    return Backup(path, manifest)


def _copy_sqlite(target: Path) -> tuple[Path, dict[str, int], str | None]:
    """SQLite's online backup API: a consistent copy while writers go on (a file copy of a WAL database is not)."""
    source = sqlite3.connect(db.engine.url.database, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()
    counts, revision = _read_state(_sqlite_url(target))
    return target, counts, revision


def _dump_postgresql(target: Path) -> tuple[Path, dict[str, int], str | None]:
    """pg_dump in a snapshot this transaction exports, so the manifest counts exactly what was dumped."""
    pg_dump = _program("pg_dump")
    with db.engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection:
        with connection.begin():
            snapshot = connection.scalar(text("SELECT pg_export_snapshot()"))
            counts, revision = _count(connection), _revision(connection)
            _run([pg_dump, "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
                  f"--file={target}", "--dbname", _libpq_url()], "pg_dump")
    return target, counts, revision


def _write_archive(path: Path, manifest: dict, files: dict[str, bytes]) -> None:
    # mkstemp creates the file 0600 beside its final place; the archive appears under its name only when complete.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new folder for backups holds keys too
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            with tarfile.open(fileobj=handle, mode="w:gz") as archive:
                for name, content in [(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2).encode()),
                                      *files.items()]:
                    member = tarfile.TarInfo(name)
                    member.size, member.mode, member.mtime = len(content), 0o600, int(datetime.now().timestamp())
                    archive.addfile(member, io.BytesIO(content))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _secret_key_file() -> bytes | None:
    """instance/secret_key when it is the key in use; None when SECRET_KEY is given from outside."""
    path = _instance() / SECRET_KEY_FILE
    if not path.exists() or path.read_text().strip() != current_app.config["SECRET_KEY"]:
        return None
    return path.read_bytes()


def _sis_version() -> str | None:
    """The git commit SIS runs from, when it runs from a checkout."""
    try:
        done = subprocess.run(["git", "-C", str(config.PROJECT_ROOT), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


# --- restore ----------------------------------------------------------------------------------

def restore(source: str, actor: str, force: bool = False) -> Restoration:
    """Restores a copy into the configured database and instance folder.

    Everything that can refuse (a damaged or foreign archive, another kind of database, a non-empty target,
    a different SIS_KEY_ENCRYPTION_KEY in the environment) refuses before anything changes.
    """
    with tempfile.TemporaryDirectory(prefix="sis-restore-") as work:
        manifest, files = _read_archive(Path(source), Path(work))
        keys = files[KEY_FILE].read_text().split()
        _check_target(manifest, keys, force, actor)
        db.session.remove()
        db.engine.dispose()
        if manifest["database"] == "sqlite":
            _restore_sqlite(files[SQLITE_FILE])
        else:
            _restore_postgresql(files[POSTGRESQL_FILE])
        db.engine.dispose()  # connections opened before the restore may hold the old schema
        from_env = current_app.config["SIS_KEY_ENCRYPTION_KEY"]
        key_file = None
        if not from_env:
            config.write_key_encryption_keys(_instance(), keys)
            key_file = _instance() / KEY_FILE
        secret_key_file = None
        if SECRET_KEY_FILE in files and not os.environ.get("SECRET_KEY"):
            secret_key_file = _replace_private(_instance() / SECRET_KEY_FILE, files[SECRET_KEY_FILE].read_bytes())
    gateway.forget_clients()
    with db.engine.connect() as connection:
        counts = _count(connection)
    if counts != manifest["counts"]:
        raise SisError("BACKUP_MISMATCH", "Восстановленная база не совпадает с манифестом копии: "
                       f"в манифесте {describe_counts(manifest['counts'])}; восстановлено {describe_counts(counts)}.",
                       "Копия повреждена или база изменилась во время восстановления: повторите восстановление.")
    private_keys = _open_private_keys([crypto.parse_key_encryption_key(k) for k in keys])
    head = _migrations().get_current_head()
    restoration = Restoration(manifest, counts, private_keys, key_file, secret_key_file,
                              needs_upgrade=manifest["migration"] != head)
    audit.record(actor, OBJECT_TYPE, None, RESTORE_ACTION, "ok",
                 f"{Path(source).resolve()} от {manifest['created_at']}; {describe_counts(counts)}; "
                 f"миграция {manifest['migration']}")
    db.session.commit()
    return restoration


def _read_archive(path: Path, work: Path) -> tuple[dict, dict[str, Path]]:
    """The manifest and the files it lists, each checked against its SHA-256."""
    damaged = SisError("BACKUP_DAMAGED", f"Файл {path} не является резервной копией СИ Столото или повреждён.",
                       "Возьмите другую копию, сделанную командой «flask --app app backup».")
    files = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            manifest = json.loads(_member(archive, MANIFEST))
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise damaged
            if manifest.get("format_version") != FORMAT_VERSION:
                raise SisError("BACKUP_VERSION", f"Копия {path} записана в формате версии "
                               f"{manifest.get('format_version')}, эта версия СИ Столото читает версию "
                               f"{FORMAT_VERSION}.")
            database_file = {"sqlite": SQLITE_FILE, "postgresql": POSTGRESQL_FILE}.get(manifest.get("database"))
            listed = manifest.get("files")
            if not database_file or not isinstance(listed, dict) or not {database_file, KEY_FILE} <= set(listed) \
                    or not isinstance(manifest.get("counts"), dict) or set(manifest["counts"]) != set(COUNTED):
                raise damaged
            for name, digest in listed.items():
                if name not in (database_file, KEY_FILE, SECRET_KEY_FILE):
                    raise damaged
                content = _member(archive, name)
                if hashlib.sha256(content).hexdigest() != digest:
                    raise damaged
                files[name] = work / name
                files[name].write_bytes(content)
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error, json.JSONDecodeError, UnicodeDecodeError,
            KeyError):
        raise damaged from None
    except OSError as error:
        raise SisError("BACKUP_UNREADABLE", f"Файл {path} не читается: {error.strerror or error}.") from None
    try:
        for key in files[KEY_FILE].read_text().split() or [""]:
            crypto.parse_key_encryption_key(key)
    except (ValueError, UnicodeDecodeError):
        raise damaged from None
    return manifest, files


def _member(archive: tarfile.TarFile, name: str) -> bytes:
    member = archive.getmember(name)  # KeyError when missing
    if not member.isfile():
        raise tarfile.TarError(name)
    return archive.extractfile(member).read()


def _check_target(manifest: dict, keys: list[str], force: bool, actor: str) -> None:
    if manifest["database"] != _dialect():
        names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
        raise SisError("BACKUP_OTHER_DATABASE", f"Копия сделана с базы {names[manifest['database']]}, а СИ Столото "
                       f"настроен на {names.get(_dialect(), _dialect())}.",
                       "Укажите в DATABASE_URL базу того же вида, что в копии.")
    if manifest["migration"] not in {script.revision for script in _migrations().walk_revisions()}:
        raise SisError("BACKUP_NEWER", f"Копия сделана версией СИ Столото с миграцией {manifest['migration']}, "
                       "которой эта версия не знает.", "Восстановите копию той же или более новой версией СИ Столото.")
    from_env = current_app.config["SIS_KEY_ENCRYPTION_KEY"].strip()
    if from_env and from_env not in keys:
        # The environment wins over instance/key_encryption_key: restored keys would open nothing.
        raise SisError("BACKUP_KEY_MISMATCH", "В окружении задан SIS_KEY_ENCRYPTION_KEY, отличный от ключа "
                       "шифрования ключей в копии: закрытые ключи договоров и токен API касс не расшифруются.",
                       "Уберите SIS_KEY_ENCRYPTION_KEY из окружения (ключ из копии будет записан в "
                       "instance/key_encryption_key) или задайте ему значение из файла key_encryption_key "
                       "в архиве, и повторите восстановление.")
    if force or not inspect(db.engine).has_table(Contract.__tablename__):
        return
    with db.engine.connect() as connection:
        counts = _count(connection)
    if any(counts.values()):
        _journal_now(actor, RESTORE_ACTION, "error", f"База не пуста: {describe_counts(counts)}")
        raise SisError("BACKUP_TARGET_NOT_EMPTY", f"База данных не пуста ({describe_counts(counts)}): "
                       "восстановление заменило бы её содержимое.",
                       "Укажите пустую базу в DATABASE_URL или добавьте --force, чтобы заменить её копией.")


def _restore_sqlite(copy: Path) -> None:
    """The backup API in the other direction: the target's pages are replaced in one transaction."""
    source = sqlite3.connect(copy)
    target = sqlite3.connect(db.engine.url.database, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


def _restore_postgresql(dump: Path) -> None:
    # --clean drops what the dump creates (a migrated empty database has the same tables); one transaction:
    # a failed restore leaves the target as it was.
    _run([_program("pg_restore"), "--clean", "--if-exists", "--single-transaction", "--exit-on-error",
          "--no-owner", "--no-privileges", "--dbname", _libpq_url(), str(dump)], "pg_restore")


def _open_private_keys(keks: list[bytes]) -> int:
    """Opens every contract's private key with the restored key: a copy whose keys do not open is no copy."""
    rows = db.session.execute(select(Contract.id, Contract.number, Contract.private_key_encrypted,
                                     Contract.pending_private_key_encrypted, Contract.previous_private_key_encrypted)
                              .where(Contract.private_key_encrypted.is_not(None))).all()
    for contract_id, number, *blobs in rows:
        try:
            for blob in blobs:
                if blob is not None:
                    crypto.unseal(bytes(blob), keks, gateway.key_context(contract_id))
        except (InvalidTag, ValueError):
            raise SisError("KEY_UNREADABLE", f"База восстановлена, но закрытый ключ договора № {number} "
                           "не расшифровывается ключом шифрования из копии.",
                           "Копия ключа сделана не вместе с базой: найдите ключ того же времени.") from None
    return len(rows)


def _replace_private(path: Path, content: bytes) -> Path:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path


# --- shared -----------------------------------------------------------------------------------

def _count(connection: Connection) -> dict[str, int]:
    return {name: connection.scalar(select(func.count()).select_from(model.__table__))
            for name, model in COUNTED.items()}


def _revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.scalar(text("SELECT version_num FROM alembic_version"))


def _read_state(url: str) -> tuple[dict[str, int], str | None]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return _count(connection), _revision(connection)
    finally:
        engine.dispose()


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _migrations() -> ScriptDirectory:
    return ScriptDirectory(current_app.extensions["migrate"].directory)


def _dialect() -> str:
    return db.engine.dialect.name


def _instance() -> Path:
    return Path(current_app.config["SIS_INSTANCE_PATH"])


def _libpq_url() -> str:
    """The database URL as libpq reads it, without the password (that goes in PGPASSWORD, never in argv)."""
    url: URL = db.engine.url
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)


def _program(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise SisError("PG_TOOL_MISSING", f"Программа {name} не найдена.",
                       "Установите клиент PostgreSQL (пакет postgresql-client) той же или более новой версии, "
                       "что и сервер, и повторите.")
    return found


def _run(command: list[str], name: str) -> None:
    environment = dict(os.environ)
    if db.engine.url.password:
        environment["PGPASSWORD"] = db.engine.url.password
    done = subprocess.run(command, env=environment, capture_output=True, text=True)
    if done.returncode != 0:
        raise SisError("PG_TOOL_FAILED", f"{name} завершился с ошибкой: {done.stderr.strip()}")


def _journal_now(actor: str, action: str, result: str, details: str) -> None:
    """Journals in the configured database when it has the journal (an unmigrated target has not)."""
    if inspect(db.engine).has_table("audit_events"):
        audit.record_now(actor, OBJECT_TYPE, None, action, result, details)
