"""«Обзор» in a real browser: its charts are drawn, say their figures in tooltips and show each pool's forecast."""
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from stoloto import settings
from stoloto.extensions import db
from stoloto.models import Store
from stoloto.services import terminals
from tests.e2e.browser import log_in
from tests.factories import activated_contract

pytestmark = pytest.mark.browser
TOKEN = "browser-test-token-0123456789"


@pytest.fixture
def one_registration(app, stand):
    """An «Активный» contract with its 5 numbers, one of them registered through the API."""
    with app.app_context():
        settings.save({settings.CASH_API_TOKEN: TOKEN}, "t")
        contract_id = activated_contract(stand, "OV-1")
        terminals.fetch_due_batches()
        db.session.add(Store(code="601", contract_id=contract_id, name="Магазин №601", source="manual"))
        db.session.commit()
    response = app.test_client().post("/api/v1/cash-registers/registration",
                                      json={"store_code": "601", "cash_number": 1},
                                      headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return datetime.now(ZoneInfo("Europe/Moscow"))


def test_the_overview_draws_registrations_calls_and_the_pool_forecast(page, live_server, accounts, one_registration,
                                                                      screenshot):
    log_in(page, live_server, accounts["viewer"])
    registrations = page.locator("[data-testid=registrations-chart] svg")
    assert registrations.bounding_box()["height"] > 100
    bar = page.locator("[data-testid=registrations-chart] rect[data-testid=bar]")
    assert bar.count() == 1
    assert bar.locator("title").text_content() == f"{one_registration:%d.%m}: зарегистрированы — 1"
    assert bar.bounding_box()["height"] > 0
    bar.hover()
    calls = page.locator("[data-testid=calls-chart] rect[data-testid=bar] title").all_text_contents()
    # Activation, the batch and the registration: in one hour, or two if the hour turned meanwhile.
    assert sum(int(title.rpartition("успешно — ")[2]) for title in calls) == 3
    pool = page.locator("[data-testid=pool]")
    assert pool.locator("[data-testid=pool-free]").inner_text() == "4"
    assert pool.locator("[data-testid=pool-forecast]").inner_text() == "Хватит примерно на 28 дней."
    assert pool.locator("[data-testid=pool-chart] svg").bounding_box()["width"] > 100
    screenshot("16-overview-charts")


def test_the_overview_without_any_data_says_so(page, live_server, accounts):
    log_in(page, live_server, accounts["viewer"])
    assert page.locator("[data-testid=chart-empty]").all_inner_texts() == ["Данных за этот период нет."] * 2
    assert page.locator("[data-testid=job-last-run]").inner_text() == "Ещё не запускалось."
    assert page.locator("[data-testid=free-terminals]").inner_text() == \
        "Номеров пока нет: ни один договор ещё не активирован."
