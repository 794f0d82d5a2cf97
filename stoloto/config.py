"""Configuration: defaults, the environment and the instance/ folder."""
import os
import secrets
from pathlib import Path

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


def build_config(overrides: dict | None = None) -> dict:
    folder = instance_path()
    behind_proxy = os.environ.get("SIS_BEHIND_PROXY", "0") == "1"
    config = {
        "SQLALCHEMY_DATABASE_URI": os.environ.get("DATABASE_URL") or f"sqlite:///{folder / 'sis.db'}",
        # Threaded servers and the job share the pool; size it for a busy server, not the default 5.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 10, "max_overflow": 30},
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
        "BABEL_DEFAULT_TIMEZONE": "Europe/Moscow",
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
    }
    config.update(overrides or {})
    if not config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # A database server may restart under us; a SQLite file cannot drop a connection.
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True, **config["SQLALCHEMY_ENGINE_OPTIONS"]}
    if not config["SECRET_KEY"]:
        config["SECRET_KEY"] = load_secret_key(folder)
    return config
