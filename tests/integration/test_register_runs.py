"""«Зарегистрировать сейчас» on ticked registers runs in the background; «Кассы» shows its progress (issue 14)."""
import re
import signal
from datetime import timedelta

import requests
from sqlalchemy import select

from jobs.registers import finish_pending_registrations
from stoloto import settings
from stoloto.extensions import db
from stoloto.models import AuditEvent, RegisterRun, utcnow
from stoloto.services import contracts
from stoloto.services.contracts import ContractInput
from tests.conftest import FORBIDDEN, PASSWORD, csrf_token_from
from tests.factories import stocked_contract, waiting_registers
from tests.integration.register_runs import (
    STARTED,
    finished,
    press,
    progress,
    registered_each_once,
    set_latency,
    started_run,
)
from tests.processes import FLASK, Server, sis_env, wait_for

CONCURRENCY = settings.STOLOTO_CONCURRENCY


def journal(app) -> list[tuple[str, str]]:
    with app.app_context():
        return db.session.execute(select(AuditEvent.actor, AuditEvent.details)
                                  .where(AuditEvent.action == "Регистрация касс вручную")).all()


def test_a_run_shows_its_progress_and_then_its_counts(app, stand, web):
    with app.app_context():
        active = stocked_contract(stand, "RUN-A", 12)
        not_active = contracts.create_contract(ContractInput(number="RUN-N", contract_date="15.01.2026",
                                                             agent_inn="7707083893"), "t").id
        ids = waiting_registers(active, "351", 12) + waiting_registers(not_active, "352", 2)
        settings.save({CONCURRENCY: 2}, "t")
    set_latency(stand, 300)  # 12 registers two at a time: about two seconds
    operator = web("operator")
    run = started_run(press(operator, ids))
    first = progress(operator, run)
    assert first["waiting"] and re.fullmatch(r"Регистрация касс: \d+ из 14…", first["notice"]), first
    page = operator.get(f"/registers/?run={run}").get_data(as_text=True)
    assert f'data-sis-progress="/registers/progress/?id={run}"' in page and "Регистрация касс: " in page
    final = "Регистрация касс: зарегистрировано 12, ожидают 0, не тронуто 2 (договор магазина не «Активный»)."
    assert finished(operator, run)["notice"] == final
    set_latency(stand, 0)
    registered_each_once(app, stand, "RUN-A", 12)
    page = operator.get(f"/registers/?run={run}").get_data(as_text=True)
    assert final in page and "data-sis-progress" not in page
    assert journal(app) == [("operator1", final)]


def test_the_final_counts_say_why_registers_still_wait(app, stand, web):
    with app.app_context():
        ids = waiting_registers(stocked_contract(stand, "RUN-F", 4), "361", 4)
        settings.save({CONCURRENCY: 4}, "t")
    stand.fault("registration", "html502", count=1)  # the contract's probe fails: the run leaves the others
    admin = web("admin")
    run = started_run(press(admin, ids))
    assert finished(admin, run)["notice"] == \
        "Регистрация касс: зарегистрировано 0, ожидают 4 («Договор не активен» — 3, «Столото недоступен» — 1)."


def test_pressing_twice_registers_nothing_twice(app, stand, web):
    with app.app_context():
        ids = waiting_registers(stocked_contract(stand, "RUN-2", 3), "371", 3)
        settings.save({CONCURRENCY: 1}, "t")
    set_latency(stand, 1000)  # three seconds: the second press comes while the first run goes on
    operator = web("operator")
    run = started_run(press(operator, ids))
    again = press(operator, ids[1:])
    assert started_run(again) == run  # the page shows the run already under way
    page = operator.get(again.headers["Location"]).get_data(as_text=True)
    assert "Отмеченные кассы уже регистрируются: дождитесь конца запуска, начатого operator1." in page
    assert finished(operator, run)["notice"] == "Регистрация касс: зарегистрировано 3, ожидают 0."
    set_latency(stand, 0)
    registered_each_once(app, stand, "RUN-2", 3)
    after = press(operator, ids)  # once it is over, a new run finds them registered
    assert finished(operator, started_run(after))["notice"] == "Регистрация касс: зарегистрировано 3, ожидают 0."
    registered_each_once(app, stand, "RUN-2", 3)
    assert len(journal(app)) == 2


def test_a_viewer_cannot_start_a_run(app, stand, web):
    with app.app_context():
        ids = waiting_registers(stocked_contract(stand, "RUN-V", 2), "381", 2)
    assert press(web("viewer"), ids).status_code == 403
    assert journal(app) == []
    assert stand.state()["executed"]["registration"] == 0


def test_bad_ids_get_a_russian_message(app, web):
    operator = web("operator")
    for ids, message in (["1; DROP TABLE", "Неверный список касс."], ["99999999999", "Неверный список касс."],
                         ["123456", "Отмеченные кассы не найдены: обновите страницу и отметьте их снова."]):
        response = operator.post("/registers/action/", {"action": "finish", "rowid": [ids], "url": "/registers/"},
                                 follow_redirects=True)
        assert response.status_code == 200 and message in response.get_data(as_text=True), ids
    nul = operator.post("/registers/action/", {"action": "finish", "rowid": ["1\x002"], "url": "/registers/"})
    assert nul.status_code == 400 and FORBIDDEN in nul.get_data(as_text=True)
    for run in ("x", "99999999999", "-1", "42"):
        response = operator.get(f"/registers/progress/?id={run}")
        assert response.status_code == 404 and response.get_json() == {"error": "Запуск регистрации касс не найден."}
        assert operator.get(f"/registers/?run={run}").status_code == 200
    assert journal(app) == []


def test_runs_older_than_a_week_are_deleted_when_a_run_starts(app, stand, web):
    with app.app_context():
        ids = waiting_registers(stocked_contract(stand, "RUN-OLD", 1), "391", 1)
        now = utcnow()
        old, recent = (RegisterRun(started_by="operator1", register_ids=ids, started_at=now - age,
                                   alive_until=now - age, finished_at=now - age, waiting_by_reason={})
                       for age in (timedelta(days=8), timedelta(days=6)))
        db.session.add_all([old, recent])
        db.session.commit()
        old_id, recent_id = old.id, recent.id
    operator = web("operator")
    assert progress(operator, old_id)["notice"].startswith("Регистрация касс: зарегистрировано 0")
    run = started_run(press(operator, ids))
    assert operator.get(f"/registers/progress/?id={old_id}").status_code == 404
    assert progress(operator, recent_id)["notice"].startswith("Регистрация касс: зарегистрировано 0")
    assert finished(operator, run)["notice"] == "Регистрация касс: зарегистрировано 1, ожидают 0."


def logged_in(server: Server, login: str) -> requests.Session:
    """A session of the server's own login form, and the CSRF token of its pages."""
    session = requests.Session()
    page = session.get(server.url + "/auth/login", timeout=30).text
    session.post(server.url + "/auth/login", timeout=30, allow_redirects=False,
                 data={"login": login, "password": PASSWORD, "csrf_token": csrf_token_from(page)})
    session.headers["X-CSRFToken"] = csrf_token_from(session.get(server.url + "/contracts/", timeout=30).text)
    return session


def test_a_run_whose_process_died_is_reported_interrupted_and_the_job_takes_its_registers(
        app, stand, web, tmp_path):
    with app.app_context():
        ids = waiting_registers(stocked_contract(stand, "RUN-K", 4), "392", 4)
        # One register at a time, each call 2 s: the process dies in the middle of the run. The claims
        # then last 3 × (1 + 5) + 60 s = 78 s (the longest a register can take, and a margin).
        settings.save({CONCURRENCY: 1, settings.CONNECT_TIMEOUT: 1, settings.READ_TIMEOUT: 5}, "t")
    set_latency(stand, 2000)
    server = Server(FLASK, sis_env(app, tmp_path, SIS_SCHEDULER="0"))
    try:
        wait_for(server.serving, 90, "the server to start")
        session = logged_in(server, "operator1")
        answer = session.post(server.url + "/registers/action/", timeout=30, allow_redirects=False,
                              data={"action": "finish", "rowid": [str(i) for i in ids], "url": "/registers/",
                                    "csrf_token": session.headers["X-CSRFToken"]})
        run = int(STARTED.search(answer.headers["Location"]).group(1))
        operator = web("operator")
        wait_for(lambda: progress(operator, run)["notice"] == "Регистрация касс: 1 из 4…", 60,
                 "the run to register its first register")
    finally:
        server.stop(signal.SIGKILL)
    set_latency(stand, 0)
    still = progress(operator, run)
    assert still == {"waiting": True, "notice": "Регистрация касс: 1 из 4…"}  # nobody knows yet that it died
    interrupted = ("Регистрация касс прервалась на 1 из 4 (зарегистрировано 1): процесс СИ остановился. "
                   "Остальные кассы зарегистрирует фоновое задание.")
    wait_for(lambda: progress(operator, run) == {"waiting": False, "notice": interrupted}, 120,
             "the run's claims to expire")
    assert interrupted in operator.get(f"/registers/?run={run}").get_data(as_text=True)
    with app.app_context():
        finish_pending_registrations()
    registered_each_once(app, stand, "RUN-K", 4, crashed=True)
