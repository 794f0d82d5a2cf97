"""The scheduled SET import («Загружать магазины из SET каждые N часов»), run by the job runner against the stand."""
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from jobs import lease
from jobs.scheduler import LEASE, JobRunner
from stoloto import settings
from stoloto.extensions import db
from stoloto.models import AuditEvent, SetImport, Store
from stoloto.services import stores

HOURS = settings.SET_IMPORT_HOURS


def run_jobs(app) -> None:
    """One run of the background jobs, as the process holding the lease makes it."""
    JobRunner(app).tick()


def count_stores(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Store))


def set_hours(app, hours) -> None:
    with app.app_context():
        settings.save({HOURS: str(hours)}, "admin1")


def age_last_import(app, hours: float) -> None:
    """Moves the last import back in time, as if it had run `hours` ago."""
    with app.app_context():
        last = db.session.scalar(select(SetImport).order_by(SetImport.id.desc()).limit(1))
        last.finished_at -= timedelta(hours=hours)
        db.session.commit()


def import_journal(app) -> list[tuple]:
    with app.app_context():
        return [tuple(row) for row in db.session.execute(
            select(AuditEvent.actor, AuditEvent.result, AuditEvent.details)
            .where(AuditEvent.action == stores.ACTION_IMPORT).order_by(AuditEvent.id))]


def test_the_schedule_is_off_by_default(app, setcentrum):
    with app.app_context():
        assert settings.get(HOURS) == 0
    run_jobs(app)
    assert count_stores(app) == 0
    assert import_journal(app) == []


def test_scheduled_import_adds_only_new_stores_and_journals_the_count(app, setcentrum):
    set_hours(app, 6)
    run_jobs(app)
    assert count_stores(app) == 40
    assert import_journal(app) == [(stores.SCHEDULE_ACTOR, "ok", "Загружено 40 магазинов; в SET Centrum 40 магазинов")]
    with app.app_context():
        last = stores.last_set_import()
        assert (last.ok, last.added, last.scheduled, last.error_code) == (True, 40, True, None)

    setcentrum.shops(45)
    run_jobs(app)  # not due yet: 6 hours have not passed
    assert count_stores(app) == 40
    age_last_import(app, 6)
    run_jobs(app)
    assert count_stores(app) == 45
    assert import_journal(app)[-1] == (stores.SCHEDULE_ACTOR, "ok",
                                       "Загружено 5 магазинов; в SET Centrum 45 магазинов")


def test_the_interval_follows_the_setting_without_a_restart(app, setcentrum):
    set_hours(app, 6)
    run_jobs(app)
    setcentrum.shops(45)
    age_last_import(app, 2)
    runner = JobRunner(app)  # one process, kept running while the setting changes
    runner.tick()
    assert count_stores(app) == 40
    set_hours(app, 1)
    with app.app_context():
        lease.nudge(LEASE)  # the runner's next tick runs the jobs at once instead of after the job interval
    runner.tick()
    assert count_stores(app) == 45
    set_hours(app, 0)
    setcentrum.shops(50)
    age_last_import(app, 100)
    JobRunner(app).tick()
    assert count_stores(app) == 45


def test_a_button_import_does_not_move_the_schedule(app, setcentrum):
    set_hours(app, 1)
    with app.app_context():
        stores.import_from_set("operator1")
    setcentrum.shops(45)
    run_jobs(app)
    assert count_stores(app) == 45


def test_set_failing_is_journaled_and_recorded_for_an_alert(app, web, setcentrum):
    set_hours(app, 1)
    setcentrum.fault("status", status=503, count=1)
    run_jobs(app)
    assert count_stores(app) == 0
    actor, result, details = import_journal(app)[-1]
    assert (actor, result) == (stores.SCHEDULE_ACTOR, "error")
    assert "вернул ошибку HTTP 503" in details
    with app.app_context():
        last = stores.last_set_import()
        assert (last.ok, last.scheduled, last.added, last.error_code) == (False, True, 0, "HTTP_503")
        assert "вернул ошибку HTTP 503" in last.error_message
    page = web("viewer").get("/stores/").get_data(as_text=True)
    assert "Загрузка магазинов из SET по расписанию не удалась" in page
    assert "вернул ошибку HTTP 503" in page

    age_last_import(app, 1)
    run_jobs(app)  # SET is back: the next scheduled run loads the stores and the failure clears
    assert count_stores(app) == 40
    with app.app_context():
        assert stores.last_set_import().ok
    page = web("viewer").get("/stores/").get_data(as_text=True)
    assert "не удалась" not in page
    assert "Последняя загрузка" in page and "добавлено 40 магазинов" in page


def test_set_unreachable_from_the_schedule_is_a_recorded_failure(app, setcentrum):
    set_hours(app, 1)
    with app.app_context():
        settings.save({settings.SET_CENTRUM_URL: "http://127.0.0.1:9"}, "admin1")
    run_jobs(app)
    with app.app_context():
        last = stores.last_set_import()
        assert not last.ok and last.error_code == "CONNECTION"
    assert import_journal(app)[-1][1] == "error"


def test_imports_older_than_90_days_are_forgotten_when_an_import_is_recorded(app, setcentrum):
    def import_at(moment) -> int:
        with time_machine.travel(moment, tick=False):
            return app.test_cli_runner().invoke(args=["stores", "import"]).exit_code

    def kept() -> list[tuple[bool, int]]:
        with app.app_context():
            return [tuple(row) for row in db.session.execute(
                select(SetImport.ok, SetImport.added).order_by(SetImport.id))]

    now = datetime.now(UTC)
    assert import_at(now - timedelta(days=200)) == 0
    assert kept() == [(True, 40)]
    setcentrum.shops(45)
    assert import_at(now - timedelta(days=91)) == 0
    assert kept() == [(True, 5)]  # the import 109 days before it is forgotten
    setcentrum.shops(47)
    assert import_at(now - timedelta(days=89)) == 0
    assert kept() == [(True, 5), (True, 2)]
    setcentrum.fault("status", status=503, count=1)
    assert import_at(now) != 0
    assert kept() == [(True, 2), (False, 0)]  # a failed import forgets too; the one 89 days old is kept


@pytest.mark.parametrize("value, message", [
    ("-1", "Допустимые значения: от 0 до 720."),
    ("721", "Допустимые значения: от 0 до 720."),
    ("2147483648", "Допустимые значения: от 0 до 720."),
    ("1.5", "Введите целое число."),
    ("шесть", "Введите целое число."),
])
def test_the_setting_is_validated_in_russian(app, web, value, message):
    response = web("admin").post("/settings/", {HOURS: value})
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert settings.get(HOURS) == 0


def test_the_setting_is_on_the_settings_page(app, web):
    page = web("admin").get("/settings/").get_data(as_text=True)
    assert "Загружать магазины из SET каждые N часов" in page
    response = web("admin").post("/settings/", {HOURS: "12"}, follow_redirects=True)
    assert "Настройки сохранены" in response.get_data(as_text=True)
    with app.app_context():
        assert settings.get(HOURS) == 12


def test_set_failing_on_schedule_is_an_alert_told_once_and_cleared_by_the_next_import(app, setcentrum, webhook):
    with app.app_context():
        settings.save({settings.WEBHOOK_URL: webhook.url}, "admin1")
    set_hours(app, 1)
    setcentrum.fault("status", status=503, count=1)
    run_jobs(app)  # the import fails, and the same run's alert check tells it
    age_last_import(app, 0.5)
    run_jobs(app)  # still failing, not told again
    assert [(call["kind"], call["state"]) for call in webhook.bodies] == [("set_failing", "firing")]
    assert webhook.bodies[0]["title"] == "СИ Столото: загрузка магазинов из SET Centrum не удалась"
    assert "вернул ошибку HTTP 503" in webhook.bodies[0]["message"]

    age_last_import(app, 1)
    run_jobs(app)  # SET answers again: the stores come and the alert clears
    assert count_stores(app) == 40
    assert [(call["kind"], call["state"]) for call in webhook.bodies] == [("set_failing", "firing"),
                                                                         ("set_failing", "resolved")]
