"""The container's entry point: migrations serialized across replicas, the demo stands with SIS_DEMO=1, then gunicorn.

`python -m stoloto.container` serves (the image's CMD); `python -m stoloto.container upgrade` only migrates.
"""
import os
import signal
import subprocess
import sys
from contextlib import contextmanager

from .config import PROJECT_ROOT

# Any fixed number: every SIS process on one PostgreSQL takes the same lock around the upgrade.
MIGRATION_LOCK_KEY = 0x5151_0011
GUNICORN_CONF = PROJECT_ROOT / "gunicorn.conf.py"


@contextmanager
def migrations_serialized(engine):
    """On PostgreSQL holds an advisory lock while the schema is upgraded: replicas starting at once take
    turns, and the later ones find the schema current. A SQLite file has one writer at a time anyway."""
    if engine.dialect.name != "postgresql":
        yield
        return
    from sqlalchemy import text
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()


def upgrade() -> None:
    """Brings the schema to the newest migration, then creates the first admin when there is none."""
    os.environ["SIS_SCHEDULER"] = "0"  # this process only migrates; gunicorn's workers run the jobs
    from flask_migrate import upgrade as upgrade_schema

    from app import bootstrap_admin, create_app_or_exit
    from stoloto.errors import SisError
    from stoloto.extensions import db
    app = create_app_or_exit()
    with app.app_context():
        with migrations_serialized(db.engine):
            upgrade_schema()
        db.engine.dispose()
    try:
        bootstrap_admin(app)  # before gunicorn: the password is printed once, not raced for by the workers
    except SisError as error:
        raise SystemExit(f"*** СИ Столото не запущен: {error}") from None


def serve() -> int:
    """Migrates, starts the demo stands if asked, then runs gunicorn until it ends; returns its exit code.

    This process is the container's PID 1: it passes SIGTERM/SIGINT to gunicorn (which finishes the requests
    in flight within its graceful timeout) and the stands, living in this process, end with it."""
    migrated = subprocess.run([sys.executable, "-m", "stoloto.container", "upgrade"])
    if migrated.returncode:
        return migrated.returncode
    if os.environ.get("SIS_DEMO", "0") == "1":
        from .serve import start_stands
        for line in start_stands(int(os.environ.get("STOLOTO_STAND_PORT", "5443")),
                                 int(os.environ.get("SET_STAND_PORT", "5081"))):
            print(f" * {line}", flush=True)
    gunicorn = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF)],
                                cwd=str(PROJECT_ROOT))

    def forward(signum, _frame):
        gunicorn.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    code = gunicorn.wait()
    return 128 - code if code < 0 else code  # killed by a signal: the shell's convention


def main(argv: list[str]) -> None:
    if argv[1:] == ["upgrade"]:
        upgrade()
    elif argv[1:]:
        raise SystemExit("usage: python -m stoloto.container [upgrade]")
    else:
        sys.exit(serve())


if __name__ == "__main__":
    main(sys.argv)
