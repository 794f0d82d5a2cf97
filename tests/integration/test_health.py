"""/healthz and /readyz through the test client: no login, and 503 naming the part that fails."""
from datetime import timedelta

from sqlalchemy import text, update

from app import create_app
from jobs.scheduler import LEASE, JobRunner
from stoloto import settings
from stoloto.extensions import db
from stoloto.models import SchedulerLease, utcnow
from tests.conftest import TEST_KEY_ENCRYPTION_KEY, TEST_SECRET


def test_healthz_answers_without_login_or_database(app):
    response = app.test_client().get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    assert response.headers["X-Content-Type-Options"] == "nosniff"  # the security headers still apply


def test_readyz_is_ready_when_the_runner_renewed_the_lease(app):
    JobRunner(app).tick()  # one tick of the job: takes the lease (nothing is due on an empty database)
    response = app.test_client().get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"database": "ok", "migrations": "ok", "jobs": "ok"}


def test_readyz_fails_on_jobs_when_no_process_renewed_the_lease(app):
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"] == "ok" and body["migrations"] == "ok"
    assert "фоновые задания не запускались" in body["jobs"]


def test_readyz_fails_on_jobs_when_the_lease_is_older_than_three_intervals(app):
    JobRunner(app).tick()
    with app.app_context():
        interval = settings.get(settings.JOB_INTERVAL)
        db.session.execute(update(SchedulerLease).where(SchedulerLease.name == LEASE)
                           .values(renewed_at=utcnow() - timedelta(seconds=3 * interval + 1)))
        db.session.commit()
    response = app.test_client().get("/readyz")
    assert response.status_code == 503 and response.get_json()["jobs"] != "ok"


def test_readyz_fails_on_migrations_when_the_schema_is_behind(app):
    JobRunner(app).tick()
    with app.app_context():
        newest = db.session.scalar(text("SELECT version_num FROM alembic_version"))
        db.session.execute(text("UPDATE alembic_version SET version_num = '0006'"))
        db.session.commit()
    try:
        response = app.test_client().get("/readyz")
    finally:
        with app.app_context():
            db.session.execute(text("UPDATE alembic_version SET version_num = :newest"), {"newest": newest})
            db.session.commit()
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"] == "ok" and body["jobs"] == "ok"
    assert "0006" in body["migrations"] and newest in body["migrations"]


def test_readyz_fails_on_the_database_without_telling_where_it_is(tmp_path):
    url = "postgresql+psycopg://sis:secret-password@127.0.0.1:9/sis"  # nothing listens on port 9
    unreachable = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": TEST_SECRET, "TESTING": True,
                              "SIS_KEY_ENCRYPTION_KEY": TEST_KEY_ENCRYPTION_KEY, "SIS_BOOTSTRAP_ADMIN": False,
                              "SIS_INSTANCE_PATH": str(tmp_path)})
    response = unreachable.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"] == "база данных не отвечает"
    assert body["migrations"].startswith("не проверено") and body["jobs"].startswith("не проверено")
    assert "secret-password" not in response.get_data(as_text=True)
    assert "127.0.0.1" not in response.get_data(as_text=True)
