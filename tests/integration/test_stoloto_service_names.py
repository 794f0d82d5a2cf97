"""Stoloto's services go by one set of names (activate, renew, batches, registration) in the metrics, the alerts and
«Обзор»; what an older SIS stored as `activation` and `renewal` reads under the new names after the upgrade."""
from datetime import UTC, datetime, timedelta

import time_machine
from flask_migrate import downgrade, upgrade
from sqlalchemy import delete, insert, select

from jobs.alerts import check_alerts
from stoloto import settings
from stoloto.extensions import db
from stoloto.models import AlertEpisode, HourlyStolotoCalls, StolotoEndpoint, utcnow
from stoloto.services import alerts, stoloto_status
from tests.conftest import titles
from tests.factories import activated_contract


def renew(app, number: str) -> None:
    renewed = app.test_cli_runner().invoke(args=["certificates", "renew", "--contract", number])
    assert renewed.exit_code == 0, renewed.output


def test_an_outage_stored_under_the_old_names_clears_under_the_new_ones_once_stoloto_answers(app, stand, webhook):
    with app.app_context(), time_machine.travel(datetime.now(UTC), tick=False):
        settings.save({settings.WEBHOOK_URL: webhook.url}, "t")
        activated_contract(stand, "ИМЕНА-1")
        db.session.remove()
        downgrade(revision="0020")
        now = utcnow()
        db.session.execute(delete(StolotoEndpoint))
        for old in ("activation", "renewal"):  # failing for half an hour, told as such by the older SIS
            db.session.execute(insert(StolotoEndpoint).values(
                endpoint=old, state="failing", failing_since=now - timedelta(minutes=30),
                last_failed_at=now - timedelta(minutes=1), last_error="HTTP_503: сервис Столото недоступен"))
            db.session.execute(insert(AlertEpisode).values(
                kind="stoloto_down", subject=old, started_at=now - timedelta(minutes=15),
                title=f"СИ Столото: сбой Столото ({old}) длится 15 мин.", message="Вызовы не удаются."))
        db.session.commit()
        db.session.remove()
        upgrade()
        stoloto_status.forget()  # SIS starts again on the upgraded database

        activated_contract(stand, "ИМЕНА-2")  # Stoloto answers both services again
        renew(app, "ИМЕНА-1")
        check_alerts()
        check_alerts()
        assert sorted((b["subject"], b["state"], b["title"]) for b in webhook.bodies) == [
            ("activate", "resolved", "СИ Столото: Столото снова работает (активация договоров)"),
            ("renew", "resolved", "СИ Столото: Столото снова работает (обновление сертификатов)")]
        assert alerts.open_episodes() == []

        db.session.remove()
        downgrade(revision="0020")  # the older SIS reads its own names again
        assert sorted(db.session.scalars(select(StolotoEndpoint.endpoint))) == ["activation", "renewal"]
        assert sorted(db.session.scalars(select(AlertEpisode.subject))) == ["activation", "renewal"]
        db.session.remove()
        upgrade()


def test_renewals_counted_under_the_old_name_add_up_with_those_after_the_upgrade(app, stand, web):
    with app.app_context(), time_machine.travel(datetime.now(UTC), tick=False):
        activated_contract(stand, "ИМЕНА-3")
        db.session.remove()
        downgrade(revision="0020")
        hour = utcnow().replace(minute=0, second=0, microsecond=0)
        for slot in range(8):  # whichever slot the next renewal is counted in holds an older count
            db.session.execute(insert(HourlyStolotoCalls).values(
                hour=hour, endpoint="renewal", slot=slot, calls=1, refusals=0, failures=0))
        # and one under the new name in a slot of the same hour (a newer SIS, upgraded while this one ran)
        db.session.execute(insert(HourlyStolotoCalls).values(
            hour=hour, endpoint="renew", slot=3, calls=1, refusals=1, failures=0))
        db.session.commit()
        db.session.remove()
        upgrade()
        renew(app, "ИМЕНА-3")
        page = web("viewer").get("/").get_data(as_text=True)
        # The hour's bar: its time, then the calls per service (the eight slots and the new call under one name).
        hour = {title.split(" ", 2)[2] for title in titles(page, "calls-chart") if "обновление" in title}
        assert ("(активация договоров 1, обновление сертификатов 10): успешно — 10; отказ столото — 1; без ответа — 0"
                in hour)

        db.session.remove()
        downgrade(revision="0020")
        assert sum(db.session.scalars(select(HourlyStolotoCalls.calls)
                                      .where(HourlyStolotoCalls.endpoint == "renewal"))) == 10
        db.session.remove()
        upgrade()
