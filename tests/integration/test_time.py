"""Time as users see it: SIS_TIMEZONE (Moscow by default) on every page, UTC in the database."""
import io
import json
import re
import subprocess
import time
from datetime import UTC, date, datetime

import pytest
import time_machine
from docx import Document
from sqlalchemy import select

from app import create_app
from stoloto.errors import SisError
from stoloto.extensions import db
from stoloto.models import (
    ROLE_VIEWER,
    AuditEvent,
    CashRegister,
    Contract,
    RegistrationAttempt,
    Store,
    TerminalBatch,
    User,
)
from tests.conftest import TEST_SECRET, Browser
from tests.processes import FLASK, ROOT, sis_env

# One moment as the database keeps it (naive UTC) and as a Moscow user reads it.
STORED = datetime(2026, 1, 14, 22, 0, 5)
SHOWN = "15.01.2026 01:00:05"
SHOWN_AS_UTC = "14.01.2026 22:00:05"
# 01:00 in Moscow on 15 January 2026 is still 14 January on a server that keeps UTC.
ONE_AM_IN_MOSCOW = datetime(2026, 1, 14, 22, 0, tzinfo=UTC)
FORM = {"number": "СТ-2026/001", "agent_inn": "7707083893", "agent_name": "", "comment": ""}


@pytest.fixture
def utc_server(monkeypatch):
    """The process's own local time is UTC, as on a server."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def stored_rows(app):
    """One row of everything the panel shows a time of, all stamped STORED."""
    with app.app_context():
        contract = Contract(number="СТ-ВРЕМЯ", contract_date=date(2026, 1, 10), agent_inn="7707083893",
                            status="awaiting_terminals", created_at=STORED, updated_at=STORED,
                            appendix_generated_at=STORED)
        db.session.add(contract)
        db.session.flush()
        store = Store(code="101", contract_id=contract.id, created_at=STORED, updated_at=STORED)
        db.session.add_all([
            store,
            TerminalBatch(contract_id=contract.id, request_id="r-1", requested_count=5, status="done",
                          created_at=STORED, completed_at=STORED),
            AuditEvent(created_at=STORED, actor="t", object_type="contract", object_id=contract.id,
                       action="Активация", result="error", details="пример ошибки"),
            User(login="time-viewer", password_hash="-", role=ROLE_VIEWER, created_at=STORED),
        ])
        db.session.flush()
        register = CashRegister(store_id=store.id, cash_number=1, state="pending", reason="STOLOTO_UNAVAILABLE",
                                contract_id=contract.id, last_attempt_at=STORED, created_at=STORED,
                                updated_at=STORED)
        db.session.add(register)
        db.session.flush()
        db.session.add(RegistrationAttempt(cash_register_id=register.id, created_at=STORED, state="pending",
                                           reason="STOLOTO_UNAVAILABLE"))
        db.session.commit()
        return {"contract": contract.id, "store": store.id, "register": register.id}


PAGES = ["/", "/contracts/", "/contracts/details/?id={contract}", "/stores/", "/stores/details/?id={store}",
         "/registers/", "/registers/details/?id={register}", "/users/", "/journal/"]


@pytest.mark.parametrize("url", PAGES)
def test_every_page_shows_moscow_time_labelled_msk(web, stored_rows, url):
    page = web("admin").get(url.format(**stored_rows)).get_data(as_text=True)
    shown = SHOWN[:-3] if url == "/" else SHOWN  # «Обзор» shows minutes
    assert shown in page
    assert SHOWN_AS_UTC[:-3] not in page
    assert "(МСК)" in page
    assert "UTC" not in page


def test_journal_header_says_msk(web, stored_rows):
    page = web("admin").get("/journal/").get_data(as_text=True)
    assert "Время (МСК)" in page


def test_journal_filter_takes_moscow_time(web, stored_rows):
    admin = web("admin")
    # Flask-Admin's "between" filter on the journal's time column: the typed times are Moscow time.
    index = _filter_index(admin, "Время (МСК)", "между")
    found = admin.get(f"/journal/?flt0_{index}=2026-01-15+01:00:00+to+2026-01-15+01:00:10").get_data(as_text=True)
    assert "пример ошибки" in found
    missed = admin.get(f"/journal/?flt0_{index}=2026-01-14+22:00:00+to+2026-01-14+22:00:10").get_data(as_text=True)
    assert "пример ошибки" not in missed


def _filter_index(browser, column: str, operation: str) -> int:
    page = browser.get("/journal/").get_data(as_text=True)
    groups = json.loads(re.search(r'id="filter-groups-data"[^>]*>(.*?)</', page, re.S).group(1))
    for option in groups[column]:
        if option["operation"] == operation:
            return option["index"]
    raise AssertionError(f"no filter «{column}» {operation}")


def test_another_zone_is_shown_with_its_offset(app, stored_rows, accounts, tmp_path):
    other = create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "SECRET_KEY": TEST_SECRET,
                        "TESTING": True, "SIS_BOOTSTRAP_ADMIN": False, "SIS_INSTANCE_PATH": str(tmp_path),
                        "SIS_TIMEZONE": "Asia/Yekaterinburg"})
    browser = Browser(other.test_client())
    assert browser.login(accounts["admin"]).status_code == 302
    page = browser.get("/journal/").get_data(as_text=True)
    assert "15.01.2026 03:00:05" in page
    assert "Время (UTC+5)" in page


def test_contract_dated_today_in_moscow_is_accepted_at_one_in_the_morning(app, web, utc_server):
    # The whole visit happens at that moment: session and CSRF tokens signed later would be "from the future".
    with time_machine.travel(ONE_AM_IN_MOSCOW, tick=False):
        operator = web("operator")
        assert date.today() == date(2026, 1, 14)  # the server's own date is still yesterday
        response = operator.post("/contracts/new/", {**FORM, "contract_date": "15.01.2026"})
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        contract = db.session.scalar(select(Contract))
        assert (contract.contract_date, contract.status) == (date(2026, 1, 15), "created")


def test_contract_dated_tomorrow_in_moscow_is_refused(app, web, utc_server):
    with time_machine.travel(ONE_AM_IN_MOSCOW, tick=False):
        operator = web("operator")
        response = operator.post("/contracts/new/", {**FORM, "contract_date": "16.01.2026"})
    assert "Дата заключения договора не может быть в будущем." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Contract)) is None


def test_appendix_is_dated_in_moscow(app, web, utc_server):
    # 22:30 UTC on 15 January is 01:30 on 16 January in Moscow.
    with time_machine.travel(datetime(2026, 1, 15, 22, 30, tzinfo=UTC), tick=False):
        operator = web("operator")
        operator.post("/contracts/new/", {**FORM, "contract_date": "15.01.2026"})
        with app.app_context():
            contract_id = db.session.scalar(select(Contract.id))
        operator.post("/contracts/activate/", {"id": contract_id})  # «Создан» → key, CSR, appendix
        content = operator.get(f"/contracts/appendix/?id={contract_id}").data
        details = operator.get(f"/contracts/details/?id={contract_id}").get_data(as_text=True)
    document = Document(io.BytesIO(content))
    rows = {row.cells[0].text: row.cells[1].text for table in document.tables for row in table.rows}
    assert rows["Дата формирования"] == "16.01.2026"
    assert "16.01.2026 01:30:00" in details


def test_an_unknown_time_zone_stops_start_up(tmp_path):
    with pytest.raises(SisError) as error:
        create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}", "SECRET_KEY": TEST_SECRET,
                    "TESTING": True, "SIS_BOOTSTRAP_ADMIN": False, "SIS_INSTANCE_PATH": str(tmp_path),
                    "SIS_TIMEZONE": "Europe/Atlantis"})
    assert error.value.code == "CONFIG_INVALID"
    assert "SIS_TIMEZONE" in str(error.value) and "Europe/Atlantis" in str(error.value)


def test_cli_with_an_unknown_time_zone_exits_with_the_russian_message(app, tmp_path):
    done = subprocess.run(FLASK + ["users", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=sis_env(app, tmp_path, SIS_TIMEZONE="Europe/Atlantis"))
    assert done.returncode != 0
    assert "SIS_TIMEZONE" in done.stderr and "часовой пояс" in done.stderr
    assert "Traceback" not in done.stderr
