"""Configuration: defaults, the environment and the instance/ folder."""
import os
import secrets
import tempfile
from pathlib import Path

from .clock import DEFAULT_ZONE, load_zone
from .crypto import parse_key_encryption_key
from .logs import check_log_format

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE_PATH = PROJECT_ROOT / "instance"


def instance_path() -> Path:
    path = Path(os.environ.get("SIS_INSTANCE_PATH", DEFAULT_INSTANCE_PATH))
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_secret_key(folder: Path) -> str:
    """SECRET_KEY from the environment, or one generated once into instance/ (mode 0600)."""
    from_env = os.environ.get("SECRET_KEY")
    if from_env:
        return from_env
    key_file = folder / "secret_key"
    try:
        # O_EXCL: two processes starting together must not each write their own key.
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    return key_file.read_text().strip()


KEY_ENCRYPTION_KEY_FILE = "key_encryption_key"


def new_key_encryption_key() -> str:
    """32 random bytes in base64url without padding: 43 characters, safe in a file or an environment variable."""
    return secrets.token_urlsafe(32)


def key_encryption_keys(from_env: str, folder: Path) -> list[str]:
    """The key-encryption keys as written, the sealing one first.

    SIS_KEY_ENCRYPTION_KEY when set; else the lines of instance/key_encryption_key, generated once
    (mode 0600). The file holds a second line only while `flask keys rotate` runs: the old key,
    still accepted for opening.
    """
    if from_env:
        return [from_env.strip()]
    path = folder / KEY_ENCRYPTION_KEY_FILE
    if not path.exists():
        written = _write_private(folder, new_key_encryption_key() + "\n")
        try:
            # A link fails when the file exists: two processes starting together keep one key, and
            # no process ever reads a half-written file.
            os.link(written, path)
        except FileExistsError:
            pass
        finally:
            written.unlink()
    return path.read_text().split()


def write_key_encryption_keys(folder: Path, keys: list[str]) -> None:
    """Replaces instance/key_encryption_key at once: a reader sees the old lines or the new, never a part."""
    os.replace(_write_private(folder, "".join(key + "\n" for key in keys)), folder / KEY_ENCRYPTION_KEY_FILE)
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _write_private(folder: Path, content: str) -> Path:
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{KEY_ENCRYPTION_KEY_FILE}.")  # mode 0600
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(name)


def check_key_encryption_keys(from_env: str, folder: Path) -> None:
    """Stops the start with a clear message when the key-encryption key cannot be used."""
    where = "SIS_KEY_ENCRYPTION_KEY" if from_env else str(folder / KEY_ENCRYPTION_KEY_FILE)
    keys = key_encryption_keys(from_env, folder)
    if not keys:
        raise SystemExit(f"{where}: файл пуст. Верните ключ шифрования ключей из резервной копии.")
    for key in keys:
        try:
            parse_key_encryption_key(key)
        except ValueError as error:
            raise SystemExit(f"{where}: {error}.") from None


def build_config(overrides: dict | None = None) -> dict:
    folder = instance_path()
    behind_proxy = os.environ.get("SIS_BEHIND_PROXY", "0") == "1"
    config = {
        "SQLALCHEMY_DATABASE_URI": os.environ.get("DATABASE_URL") or f"sqlite:///{folder / 'sis.db'}",
        # Threaded servers and the job share the pool; size it for a busy server, not the default 5, plus
        # one connection for each of up to 64 workers of a run draining waiting registers (services/registers.py).
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 10, "max_overflow": 30 + 64},
        "SECRET_KEY": None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Behind a TLS proxy browsers speak HTTPS only: the session cookie must never travel in clear.
        "SIS_BEHIND_PROXY": behind_proxy,
        "SESSION_COOKIE_SECURE": behind_proxy,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,
        "BABEL_DEFAULT_LOCALE": "ru",
        # Every time the panel shows is in this zone; the database keeps UTC.
        "SIS_TIMEZONE": os.environ.get("SIS_TIMEZONE") or DEFAULT_ZONE,
        # Server logs: "text" (one line per event) or "json" (one JSON object per line); see stoloto/logs.py.
        "SIS_LOG_FORMAT": os.environ.get("SIS_LOG_FORMAT") or "text",
        "FLASK_ADMIN_SWATCH": "default",
        "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
        "SIS_BOOTSTRAP_ADMIN": os.environ.get("SIS_BOOTSTRAP_ADMIN", "1") != "0",
        # Set by `make run` when it starts the built-in Stoloto test stand.
        "SIS_STOLOTO_STAND_URL": os.environ.get("SIS_STOLOTO_STAND_URL", ""),
        "SIS_STOLOTO_STAND_CA": os.environ.get("SIS_STOLOTO_STAND_CA", ""),
        "SIS_INSTANCE_PATH": str(folder),
        "STOLOTO_URL": os.environ.get("STOLOTO_URL", ""),
        "STOLOTO_CA_BUNDLE": os.environ.get("STOLOTO_CA_BUNDLE", ""),
        "SET_CENTRUM_URL": os.environ.get("SET_CENTRUM_URL", ""),
        "CASH_API_TOKEN": os.environ.get("CASH_API_TOKEN", ""),
        # Seals contracts' private keys and the cash API token at rest; see key_encryption_keys().
        "SIS_KEY_ENCRYPTION_KEY": os.environ.get("SIS_KEY_ENCRYPTION_KEY", ""),
    }
    config.update(overrides or {})
    load_zone(config["SIS_TIMEZONE"])  # an unknown zone stops the start, not the first page that shows a time
    config["BABEL_DEFAULT_TIMEZONE"] = config["SIS_TIMEZONE"]
    check_log_format(config["SIS_LOG_FORMAT"])
    if not config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # A database server may restart under us; a SQLite file cannot drop a connection.
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True, **config["SQLALCHEMY_ENGINE_OPTIONS"]}
    folder = Path(config["SIS_INSTANCE_PATH"])  # the folder given, not the default
    folder.mkdir(parents=True, exist_ok=True)
    if not config["SECRET_KEY"]:
        config["SECRET_KEY"] = load_secret_key(folder)
    check_key_encryption_keys(config["SIS_KEY_ENCRYPTION_KEY"], folder)
    return config
