"""SIS — Stoloto Integration Server: the application factory."""
import os
import sys
from pathlib import Path

from flask import Flask

from admin_views import register_admin
from jobs.scheduler import register_jobs
from stoloto import settings
from stoloto.api import SessionInterface, api
from stoloto.cli import register_commands
from stoloto.config import build_config
from stoloto.database import configure_engine
from stoloto.errors import SisError
from stoloto.errors_web import register_errorhandlers
from stoloto.extensions import babel, csrf, db, login_manager, migrate
from stoloto.health import health
from stoloto.logs import configure_logging
from stoloto.metrics import register_metrics
from stoloto.services.users import user_of_session
from stoloto.web_security import register_security


def create_app(overrides: dict | None = None) -> Flask:
    config = build_config(overrides)
    settings.check_environment(config)
    app = Flask(__name__, instance_path=config["SIS_INSTANCE_PATH"], static_folder="static",
                template_folder="templates")
    app.config.update(config)
    app.json.ensure_ascii = False  # Russian messages readable in API answers
    configure_logging(app)  # first: every later hook and log line already has the request id
    register_security(app)
    register_extensions(app)
    register_admin(app)
    app.register_blueprint(api)
    app.session_interface = SessionInterface()
    app.register_blueprint(health)
    register_metrics(app)
    register_errorhandlers(app)
    register_commands(app)
    register_jobs(app)
    bootstrap_admin(app)
    return app


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine)
    migrate.init_app(app, db, directory=str(app.root_path + "/migrations"))
    csrf.init_app(app)
    babel.init_app(app, locale_selector=lambda: "ru")  # the time zone is BABEL_DEFAULT_TIMEZONE = SIS_TIMEZONE
    login_manager.init_app(app)
    login_manager.login_view = "auth.login_view"
    login_manager.login_message = "Войдите, чтобы продолжить."
    # The session names a per-user token, not the id: logout, deactivation and a new password end it.
    login_manager.user_loader(user_of_session)


def bootstrap_admin(app: Flask) -> None:
    """The first start creates `admin`: with SIS_ADMIN_PASSWORD (or the file SIS_ADMIN_PASSWORD_FILE names,
    for container secrets) when set, else with a random password printed once."""
    if not app.config["SIS_BOOTSTRAP_ADMIN"]:
        return
    from stoloto.services.users import bootstrap_admin as create_first_admin
    given, source = _given_admin_password()
    with app.app_context():
        password = create_first_admin(given, source)
    if password and given is None:
        print(f"\n*** СИ Столото: создан пользователь admin, пароль: {password}\n"
              "*** Сохраните его: повторно он показан не будет.\n", file=sys.stderr, flush=True)


def _given_admin_password() -> tuple[str | None, str]:
    # Empty counts as unset: compose files pass `SIS_ADMIN_PASSWORD: ${SIS_ADMIN_PASSWORD:-}`.
    from_env = os.environ.get("SIS_ADMIN_PASSWORD") or None
    file_name = os.environ.get("SIS_ADMIN_PASSWORD_FILE") or None
    if from_env is not None and file_name is not None:
        raise SisError("CONFIG_INVALID", "Задайте только одну из переменных SIS_ADMIN_PASSWORD и "
                                         "SIS_ADMIN_PASSWORD_FILE.")
    if file_name is None:
        return from_env, "SIS_ADMIN_PASSWORD"
    try:
        # A secret file usually ends with a newline that is not part of the password.
        return Path(file_name).read_text(encoding="utf-8").rstrip("\r\n"), f"SIS_ADMIN_PASSWORD_FILE ({file_name})"
    except (OSError, UnicodeDecodeError) as error:
        raise SisError("CONFIG_INVALID", f"SIS_ADMIN_PASSWORD_FILE: файл {file_name} не прочитан: {error}.") from None


def create_app_or_exit() -> Flask:
    """create_app() for a process's entry point: a configuration error ends it with the Russian message."""
    try:
        return create_app()
    except SisError as error:
        raise SystemExit(f"*** СИ Столото не запущен: {error}") from None


_app: Flask | None = None


def __getattr__(name: str):
    # `flask --app app` and `gunicorn app:app` get a lazily built app; importing create_app alone
    # (as the tests do) touches no database.
    global _app
    if name == "app":
        if _app is None:
            _app = create_app_or_exit()
        return _app
    raise AttributeError(name)
