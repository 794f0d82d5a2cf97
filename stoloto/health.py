"""Probes for an orchestrator: /healthz (the process serves) and /readyz (database, schema, job runner)."""
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from jobs import scheduler

from .extensions import csrf, db, migrate

health = Blueprint("health", __name__)
csrf.exempt(health)
OK = "ok"


@health.get("/healthz")
def healthz():
    """Alive: answers while the process serves requests; touches neither the database nor the session."""
    return jsonify({"status": OK})


@health.get("/readyz")
def readyz():
    """Ready: 200 only when every part is fine; a 503 names the failing part in Russian. No secrets."""
    database = _database()
    if database[0]:
        checks = {"database": database, "migrations": _migrations(), "jobs": _jobs()}
    else:
        skipped = (False, "не проверено: база данных недоступна")
        checks = {"database": database, "migrations": skipped, "jobs": skipped}
    db.session.remove()
    ready = all(fine for fine, _ in checks.values())
    return jsonify({part: said for part, (fine, said) in checks.items()}), 200 if ready else 503


Check = tuple[bool, str]  # (fine, what to say)


def _database() -> Check:
    try:
        db.session.execute(text("SELECT 1"))
        return True, OK
    except Exception:  # any driver error means the same to a probe; its text may name hosts, so it goes to the log
        db.session.rollback()
        current_app.logger.exception("readyz: the database does not answer")
        return False, "база данных не отвечает"


def _migrations() -> Check:
    newest = set(ScriptDirectory.from_config(migrate.get_config()).get_heads())
    current = set(MigrationContext.configure(db.session.connection()).get_current_heads())
    if current == newest:
        return True, OK
    return False, (f"схема базы данных в версии {', '.join(sorted(current)) or '(пусто)'}, ожидается "
                   f"{', '.join(sorted(newest))}: выполните flask --app app db upgrade")


def _jobs() -> Check:
    if scheduler.runner_alive():
        return True, OK
    if scheduler.grace_period(current_app):
        return True, "запуск: аренда фоновых заданий ещё не взята, процесс только что запущен"
    return False, "фоновые задания не запускались дольше трёх интервалов: ни один процесс СИ не держит их аренду"
