"""«Выгрузить» in a real browser: every list offers CSV and XLSX, and the file downloads with the list's filters."""
import codecs
import csv
import io

import openpyxl
import pytest

from stoloto import audit
from stoloto.extensions import db
from stoloto.models import CashRegister, Contract, Store
from stoloto.services import contracts
from stoloto.services.contracts import ContractInput
from tests.e2e.browser import log_in

pytestmark = pytest.mark.browser

LISTS = [("/contracts/", "dogovory", "Номер договора"), ("/stores/", "magaziny", "Код магазина"),
         ("/registers/", "kassy", "Магазин"), ("/journal/", "zhurnal", "Время"), ("/users/", "polzovateli", "Логин")]


@pytest.fixture
def one_of_each(app):
    with app.app_context():
        contract = Contract(number="ВЫГР-1", status="active", agent_inn="7707083893")
        db.session.add(contract)
        db.session.flush()
        stores = [Store(code="401", name="Магазин «Восток»", contract_id=contract.id, source="manual"),
                  Store(code="402", name="Магазин «Запад»", source="manual")]
        db.session.add_all(stores)
        db.session.flush()
        db.session.add(CashRegister(store_id=stores[0].id, cash_number=1, serial_number="SN-401", state="pending",
                                    reason="NO_FREE_TERMINALS", contract_id=contract.id))
        audit.record("admin1", "contract", contract.id, "Договор заполнен")
        db.session.commit()


def download(page, export_type: str):
    page.click("a.dropdown-toggle:has-text('Выгрузить')")
    with page.expect_download() as info:
        page.click(f"a.dropdown-item:has-text('Выгрузить {export_type.upper()}')")
    return info.value


def test_every_list_downloads_as_xlsx(page, live_server, accounts, one_of_each):
    log_in(page, live_server, accounts["admin"])
    for url, name, first_header in LISTS:
        page.goto(live_server + url)
        file = download(page, "xlsx")
        assert file.suggested_filename.startswith(name + "-") and file.suggested_filename.endswith(".xlsx")
        with open(file.path(), "rb") as handle:
            sheet = openpyxl.load_workbook(io.BytesIO(handle.read())).active
        assert sheet.cell(1, 1).value.startswith(first_header), url
        assert sheet.max_row >= 2, url


def test_a_searched_list_downloads_as_csv_with_only_what_it_shows(page, live_server, accounts, one_of_each):
    log_in(page, live_server, accounts["viewer"])
    page.goto(live_server + "/stores/")
    page.fill("input[name=search]", "Запад")
    page.press("input[name=search]", "Enter")
    page.wait_for_url("**search=*")
    assert page.locator("table.model-list tbody tr").count() == 1

    file = download(page, "csv")

    assert file.suggested_filename.startswith("magaziny-") and file.suggested_filename.endswith(".csv")
    with open(file.path(), "rb") as handle:
        body = handle.read()
    rows = list(csv.reader(io.StringIO(body[len(codecs.BOM_UTF8):].decode("utf-8")), delimiter=";"))
    assert [row[:2] for row in rows[1:]] == [["402", "Магазин «Запад»"]]


def test_a_filtered_list_downloads_as_csv_with_russian_headers_and_dates(app, page, live_server, accounts):
    with app.app_context():
        contracts.create_contract(ContractInput(number="ВЫГР-2", contract_date="15.01.2026", agent_inn="7707083893"),
                                  "tester")
        contracts.create_contract(ContractInput(number="ВЫГР-3"), "tester")  # a draft: the filter leaves it out
    log_in(page, live_server, accounts["viewer"])
    page.goto(live_server + "/contracts/")
    page.click("a.dropdown-toggle:has-text('Добавить фильтр')")
    page.locator(".dropdown-menu.show a", has_text="Статус").click()
    page.locator("select.filter-val").select_option(label="Создан", force=True)  # select2 hides it
    page.click("button:has-text('Применить')")
    page.wait_for_url("**flt*")

    file = download(page, "csv")

    with open(file.path(), "rb") as handle:
        rows = list(csv.reader(io.StringIO(handle.read().decode("utf-8-sig")), delimiter=";"))
    header = rows[0]
    assert header[:3] == ["Номер договора", "Дата заключения договора", "ИНН агента"]
    assert [(row[0], row[1], row[header.index("Статус")]) for row in rows[1:]] == [("ВЫГР-2", "15.01.2026", "Создан")]
