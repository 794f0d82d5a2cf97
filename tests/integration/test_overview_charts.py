"""«Обзор» charts and forecasts: registers registered through the API against the stand, numbers fetched by the
job, days moved by time_machine; the page's SVG tells the figures in its <title> tooltips."""
import os
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from flask_migrate import downgrade, upgrade
from sqlalchemy import select

from jobs.scheduler import JobRunner
from jobs.terminals import fetch_terminal_batches
from stoloto import settings
from stoloto.extensions import db
from stoloto.models import Contract, Store, Terminal, TerminalBatch
from stoloto.services import contracts
from stoloto.services.contracts import ContractInput
from tests.conftest import TOKEN, cell, titles
from tests.factories import activated_contract

MOSCOW = ZoneInfo("Europe/Moscow")


@pytest.fixture
def api(app, stand):
    with app.app_context():
        settings.save({settings.CASH_API_TOKEN: TOKEN, settings.BATCH_SIZE: 20}, "t")
    client = app.test_client()

    def register(store_code: str, cash_number: int):
        response = client.post("/api/v1/cash-registers/registration", json={
            "store_code": store_code, "cash_number": cash_number}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == {"REGISTERED": 200, "PENDING": 202}[response.json["status"]], response.json
        return response.json
    return register


def noon(days_from_today: int) -> datetime:
    """Noon in Moscow, days ahead of the real today (never before it: the stand's certificates begin today)."""
    today = datetime.now(MOSCOW).date()
    return datetime.combine(today + timedelta(days=days_from_today), time(12, 0), tzinfo=MOSCOW)


def add_store(code: str, contract_id: int) -> None:
    db.session.add(Store(code=code, contract_id=contract_id, name=f"Магазин {code}", source="manual"))
    db.session.commit()


def test_registrations_per_day_and_the_pool_forecast_follow_the_days(app, api, stand, web):
    with app.app_context():
        contract_id = activated_contract(stand, "FC-1")
        fetch_terminal_batches()  # the job: 20 numbers
        add_store("501", contract_id)
    day = {offset: noon(offset) for offset in (0, 1, 2, 3, 10)}  # before time moves
    with time_machine.travel(day[1], tick=False):
        for cash in (1, 2, 3):
            assert api("501", cash)["status"] == "REGISTERED"
    with time_machine.travel(day[3], tick=False) as clock:
        for cash in (4, 5, 6, 7):
            assert api("501", cash)["status"] == "REGISTERED"
        page = web("viewer").get("/").get_data(as_text=True)
        bars = titles(page, "registrations-chart")
        assert f"{day[1]:%d.%m}: зарегистрированы — 3" in bars
        assert f"{day[3]:%d.%m}: зарегистрированы — 4" in bars
        assert f"{day[2]:%d.%m}: зарегистрированы — 0; отказ столото — 0; начали ожидать — 0" in bars
        # 20 numbers, 7 used in the last 7 days: one a day, 13 days left.
        assert cell(page, "pool-free") == ["13"] and cell(page, "pool-rate") == ["1,0"]
        assert cell(page, "pool-forecast") == ["Хватит примерно на 13 дней."]
        pool = titles(page, "free-terminals")
        assert f"{day[0]:%d.%m}: свободно 20" in pool and f"{day[1]:%d.%m}: свободно 17" in pool
        assert f"{day[3]:%d.%m}: свободно 13" in pool
        calls = titles(page, "calls-chart")
        assert f"{day[3]:%d.%m %H}:00 (регистрация касс 4): успешно — 4" in calls

        clock.move_to(day[10])  # the last use was seven days ago: none in the window
        page = web("viewer").get("/").get_data(as_text=True)
        assert cell(page, "pool-forecast") == ["Расхода за 7 дней не было."]
        assert f"{day[3]:%d.%m}: зарегистрированы — 4" in titles(page, "registrations-chart")
        assert not [t for t in titles(page, "calls-chart")[1:] if "успешно — 0" not in t]  # a week on: no calls


def test_refusals_waits_and_unanswered_calls_are_counted_apart(app, api, stand, web):
    with app.app_context():  # in real time: the contract's certificate begins now
        contract_id = activated_contract(stand, "FC-2")
        fetch_terminal_batches()
        add_store("502", contract_id)
        draft = contracts.create_contract(ContractInput(number="FC-3", contract_date="15.01.2026",
                                                        agent_inn="7707083893"), "t")
        add_store("503", draft.id)
    moment = noon(1)
    with time_machine.travel(moment):  # time goes on from noon: every call falls in one hour
        stand.fault("registration", "error", code="UNAUTHORIZED", count=1)
        assert api("502", 1)["status"] == "PENDING"  # refused
        stand.fault("registration", "html502", count=1)
        assert api("502", 2)["status"] == "PENDING"  # unanswered
        assert api("503", 1)["status"] == "PENDING"  # contract not active: waits, Stoloto not asked
        assert api("503", 1)["status"] == "PENDING"  # the same wait again is not counted twice
        page = web("viewer").get("/").get_data(as_text=True)
        assert f"{moment:%d.%m}: зарегистрированы — 0; отказ столото — 1; начали ожидать — 2" in \
            titles(page, "registrations-chart")
        hour = [t for t in titles(page, "calls-chart") if t.startswith(f"{moment:%d.%m %H}:00")]
        assert hour[0] == f"{moment:%d.%m %H}:00 (регистрация касс 2): успешно — 0; отказ столото — 1; без ответа — 1"
        # Two numbers claimed of 20 (a refused or unanswered register keeps its number); the draft has no pool.
        assert cell(page, "pool-free") == ["18"] and cell(page, "pool-forecast") == ["Хватит примерно на 63 дня."]


def test_the_job_status_names_its_last_run_next_run_and_process(app, web):
    with app.app_context():
        settings.save({settings.JOB_INTERVAL: 600}, "t")
    page = web("viewer").get("/").get_data(as_text=True)
    assert cell(page, "job-last-run") == ["Ещё не запускалось."]
    assert cell(page, "job-holder") == ["Ни один процесс СИ."]
    with time_machine.travel(datetime(2026, 12, 1, 9, 0, 0, tzinfo=MOSCOW), tick=False):
        JobRunner(app).tick()  # the job's entry point: takes the lease and runs
        page = web("viewer").get("/").get_data(as_text=True)
    assert cell(page, "job-last-run") == ["01.12.2026 09:00:00 (МСК)."]
    assert cell(page, "job-next-run") == ["01.12.2026 09:10:00 (МСК)."]
    assert cell(page, "job-holder")[0].startswith(f"Процесс {os.getpid()} на сервере ")


def test_an_empty_system_renders_every_chart_without_data(app, web):
    response = web("viewer").get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert page.count('data-testid="chart-empty">Данных за этот период нет.') == 2
    assert "Номеров пока нет: ни один договор ещё не активирован." in page
    assert 'data-testid="bar"' not in page


def test_a_contract_awaiting_its_numbers_has_none(app, web, stand):
    with app.app_context():
        contract_id = activated_contract(stand, "FC-4")  # awaiting its numbers: the job has not run
        assert db.session.scalar(select(Contract.status).where(Contract.id == contract_id)) == "awaiting_terminals"
    page = web("viewer").get("/").get_data(as_text=True)
    assert cell(page, "pool-forecast") == ["Номеров нет."] and cell(page, "pool-free") == ["0"]


def test_the_migration_counts_in_the_registers_and_numbers_recorded_before_it(app, api, stand, web):
    with app.app_context():
        contract_id = activated_contract(stand, "FC-5")
        fetch_terminal_batches()
        add_store("505", contract_id)
    moment = noon(1)
    with time_machine.travel(moment):  # from noon: the day stays the same throughout
        for cash in (1, 2, 3):
            assert api("505", cash)["status"] == "REGISTERED"
        stand.fault("registration", "error", code="UNAUTHORIZED", count=1)
        assert api("505", 4)["status"] == "PENDING"
        before = web("viewer").get("/").get_data(as_text=True)
        with app.app_context():
            downgrade(revision="0017")  # the counters go; the registers, their history and the numbers stay
            upgrade()
        after = web("viewer").get("/").get_data(as_text=True)
        counted = f"{moment:%d.%m}: зарегистрированы — 3; отказ столото — 1; начали ожидать — 0"
        assert counted in titles(before, "registrations-chart")
        assert titles(after, "registrations-chart") == titles(before, "registrations-chart")
        assert titles(after, "free-terminals") == titles(before, "free-terminals")
        assert cell(after, "pool-forecast") == cell(before, "pool-forecast") == ["Хватит примерно на 28 дней."]


def test_numbers_never_counted_and_an_odd_contract_number_render_as_they_are(app, web):
    with app.app_context():  # rows as an older SIS left them: numbers, but no counters for them
        contract = Contract(number='ODD<1>&"', status="active", agent_inn="7707083893")
        db.session.add(contract)
        db.session.flush()
        batch = TerminalBatch(contract_id=contract.id, request_id="00000000-0000-4000-8000-000000000001",
                              requested_count=3, status="done")
        db.session.add(batch)
        db.session.flush()
        db.session.add_all(Terminal(number=f"555{n}", contract_id=contract.id, batch_id=batch.id) for n in range(3))
        db.session.commit()
    response = web("viewer").get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'ODD<1>&"' not in page and "ODD&lt;1&gt;&amp;" in page
    assert cell(page, "pool-free") == ["3"] and cell(page, "pool-forecast") == ["Расхода за 7 дней не было."]
    assert [t.rpartition(": ")[2] for t in titles(page, "free-terminals")[1:]] == ["свободно 3"] * 30
