"""«Выгрузить» on every list: CSV and XLSX of what the list shows — its filters and search, Russian headers,
dates as ДД.ММ.ГГГГ, times in SIS_TIMEZONE — for whoever may see the list."""
import codecs
import csv
import io
from datetime import UTC, date, datetime

import openpyxl
import pytest
import time_machine
from sqlalchemy import insert, select

from stoloto import audit
from stoloto.extensions import db
from stoloto.models import CashRegister, Contract, Store
from tests.conftest import count_queries
from tests.factories import active_contract_with_a_used_number

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# 21:30 UTC is half past midnight of the next day in Moscow (SIS_TIMEZONE's default).
LATE_EVENING_UTC = datetime(2026, 11, 30, 21, 30, 15)


def read_csv(response) -> list[list[str]]:
    body = response.get_data()
    assert body.startswith(codecs.BOM_UTF8), "Excel reads UTF-8 only after a BOM"
    return list(csv.reader(io.StringIO(body[len(codecs.BOM_UTF8):].decode("utf-8"), newline=""), delimiter=";"))


def read_xlsx(response):
    """The first sheet's cells, row by row (values, types and formats)."""
    workbook = openpyxl.load_workbook(io.BytesIO(response.get_data()))
    return workbook.active, [list(row) for row in workbook.active.iter_rows()]


def values(rows) -> list[list]:
    return [[cell.value for cell in row] for row in rows]


@pytest.fixture
def cash_registers(app):
    """Store 101 «Магазин «Север»» with registers 1 (registered) and 2 (waiting for a terminal); store 102 with
    register 1 waiting for its contract."""
    with app.app_context():
        contract, terminal = active_contract_with_a_used_number("К-1", "0500001")
        north = Store(code="101", name="Магазин «Север»", contract_id=contract.id, source="set")
        south = Store(code="102", name="Магазин «Юг»", source="manual")
        db.session.add_all([north, south])
        db.session.flush()
        db.session.add_all([
            CashRegister(store_id=north.id, cash_number=1, serial_number="SN-1", state="registered",
                         terminal_id=terminal.id, contract_id=contract.id, last_attempt_at=LATE_EVENING_UTC,
                         registered_at=LATE_EVENING_UTC, created_at=LATE_EVENING_UTC),
            CashRegister(store_id=north.id, cash_number=2, serial_number="SN-2", state="pending",
                         reason="NO_FREE_TERMINALS", contract_id=contract.id, created_at=LATE_EVENING_UTC),
            CashRegister(store_id=south.id, cash_number=1, serial_number="AB-3", state="pending",
                         reason="CONTRACT_NOT_ACTIVE", created_at=LATE_EVENING_UTC),
        ])
        db.session.commit()
        return contract.id


REGISTER_HEADERS = ["Магазин", "Наименование магазина", "Номер кассы", "Серийный номер", "Фискальный номер",
                    "Тип кассы", "Номер терминала", "Состояние", "Причина ожидания", "Зарегистрирована (МСК)",
                    "Последняя попытка (МСК)", "Последняя ошибка", "Впервые обратилась (МСК)"]


def test_registers_export_as_csv_with_the_lists_filter_russian_headers_and_words(web, cash_registers):
    response = web("viewer").get("/registers/export/csv/?flt0_0=pending")

    assert response.status_code == 200
    assert response.mimetype == "text/csv" and response.mimetype_params == {"charset": "utf-8"}
    rows = read_csv(response)
    assert rows[0] == REGISTER_HEADERS
    assert sorted((row[0], row[2], row[7], row[8]) for row in rows[1:]) == [
        ("101", "2", "Ожидает регистрации", "Нет свободных терминалов"),
        ("102", "1", "Ожидает регистрации", "Договор не активен"),
    ]


def test_registers_export_shows_times_in_sis_timezone_and_states_as_plain_words(web, cash_registers):
    rows = read_csv(web("viewer").get("/registers/export/csv/?search=SN-1"))

    assert len(rows) == 2
    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["Состояние"] == "Зарегистрирована"  # the list's badge, without its HTML
    assert record["Номер терминала"] == "0500001"
    assert record["Наименование магазина"] == "Магазин «Север»"
    assert record["Последняя попытка (МСК)"] == "01.12.2026 00:30"
    assert record["Причина ожидания"] == "" and record["Последняя ошибка"] == ""


def test_export_applies_the_lists_search(web, cash_registers):
    rows = read_csv(web("viewer").get("/registers/export/csv/?search=AB-3"))

    assert [row[3] for row in rows[1:]] == ["AB-3"]


def test_contracts_export_as_xlsx_has_dates_as_dates_and_statuses_in_russian(web, ctx):
    db.session.add_all([
        Contract(number="СТ-1", contract_date=date(2026, 11, 5), agent_inn="7707083893", agent_name="ООО «Ромашка»",
                 status="active", created_at=LATE_EVENING_UTC, updated_at=LATE_EVENING_UTC,
                 certificate_not_after=LATE_EVENING_UTC, certificate_state="valid"),
        Contract(number="СТ-2", contract_date=date(2026, 11, 6), agent_inn="7707083893", status="created"),
    ])
    db.session.commit()

    response = web("viewer").get("/contracts/export/xlsx/?flt0_0=active")

    assert response.status_code == 200 and response.mimetype == XLSX
    sheet, rows = read_xlsx(response)
    assert sheet.title == "Договоры"
    header = [cell.value for cell in rows[0]]
    assert header[:5] == ["Номер договора", "Дата заключения договора", "ИНН агента", "Наименование агента",
                          "Статус"]
    assert len(rows) == 2
    record = dict(zip(header, rows[1], strict=True))
    assert record["Номер договора"].value == "СТ-1"
    assert record["Статус"].value == "Активный"
    assert record["Дата заключения договора"].value == datetime(2026, 11, 5)
    assert record["Дата заключения договора"].number_format == "DD.MM.YYYY"
    assert record["Изменён (МСК)"].value == datetime(2026, 12, 1, 0, 30, 15)
    assert record["Изменён (МСК)"].number_format == "DD.MM.YYYY HH:MM"
    assert record["Сертификат до"].value == datetime(2026, 12, 1)  # the day in the zone, as the list shows it
    assert record["Сертификат до"].number_format == "DD.MM.YYYY"


def test_contracts_export_as_csv_writes_dates_as_dd_mm_yyyy(web, ctx):
    db.session.add_all([
        Contract(number="СТ-1", contract_date=date(2026, 11, 5), agent_inn="7707083893", status="active",
                 updated_at=LATE_EVENING_UTC, certificate_not_after=LATE_EVENING_UTC, certificate_state="valid"),
        Contract(number="СТ-2", contract_date=date(2026, 11, 6), agent_inn="7707083893", status="created"),
    ])
    db.session.commit()

    rows = read_csv(web("viewer").get("/contracts/export/csv/?sort=0"))

    certified, draft = (dict(zip(rows[0], row, strict=True)) for row in rows[1:])
    assert certified["Дата заключения договора"] == "05.11.2026"
    assert certified["Изменён (МСК)"] == "01.12.2026 00:30"
    assert certified["Сертификат до"] == "01.12.2026"
    assert draft["Сертификат до"] == ""


def test_stores_export_keeps_search_and_shows_contract_and_source_as_the_list_does(web, cash_registers):
    rows = read_csv(web("viewer").get("/stores/export/csv/?search=Север"))

    assert rows[0][:6] == ["Код магазина", "Наименование", "Адрес", "Договор", "Источник", "Комментарий"]
    assert [row[:5] for row in rows[1:]] == [["101", "Магазин «Север»", "", "К-1", "SET"]]


@pytest.mark.parametrize(("query", "codes"), [("?sort=1", ["101", "102"]), ("?sort=1&desc=1", ["102", "101"])])
def test_export_keeps_the_lists_order(web, cash_registers, query, codes):
    rows = read_csv(web("viewer").get(f"/stores/export/csv/{query}"))  # by «Наименование»: «Север», «Юг»

    assert [row[0] for row in rows[1:]] == codes


def test_journal_export_keeps_search_and_shows_results_in_russian(web, ctx):
    audit.record("operator1", "contract", 7, "Договор заполнен", details="ИНН 7707083893")
    audit.record("operator1", "contract", 7, "Договор заполнен", result="error", details="Неверный ИНН")
    db.session.commit()

    rows = read_csv(web("viewer").get("/journal/export/csv/?search=Неверный"))

    header = rows[0]
    assert "Кто" in header and "Результат" in header and "Время (МСК)" in header
    assert len(rows) == 2
    record = dict(zip(header, rows[1], strict=True))
    assert record["Кто"] == "operator1" and record["Результат"] == "ошибка"
    assert record["Подробности"] == "Неверный ИНН"


def test_administrator_exports_users_with_roles_in_russian(web):
    sheet, rows = read_xlsx(web("admin").get("/users/export/xlsx/"))

    assert values(rows[:1]) == [["Логин", "Роль", "Активен", "Создан (МСК)"]]
    assert sorted(tuple(row[:3]) for row in values(rows[1:])) == [
        ("admin1", "Администратор", "да"), ("operator1", "Оператор", "да"), ("viewer1", "Наблюдатель", "да")]


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_only_administrators_export_users(web, role):
    assert web(role).get("/users/export/csv/").status_code == 403


def test_export_needs_a_login(app, cash_registers):
    response = app.test_client().get("/registers/export/csv/")

    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


@pytest.mark.parametrize("url", ["/contracts/", "/stores/", "/registers/", "/journal/"])
@pytest.mark.parametrize("export_type", ["csv", "xlsx"])
def test_a_viewer_exports_every_list_he_sees(web, cash_registers, url, export_type):
    response = web("viewer").get(f"{url}export/{export_type}/")

    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment")


@pytest.mark.parametrize(("url", "name"), [("/contracts/", "dogovory"), ("/stores/", "magaziny"),
                                           ("/registers/", "kassy"), ("/journal/", "zhurnal"),
                                           ("/users/", "polzovateli")])
def test_the_file_is_named_after_the_list_and_today_in_sis_timezone(web, url, name):
    with time_machine.travel(datetime(2026, 11, 30, 22, 30, tzinfo=UTC), tick=False):  # 01:30 on 1 Dec in Moscow
        response = web("admin").get(f"{url}export/xlsx/")

    assert response.headers["Content-Disposition"] == f"attachment; filename={name}-2026-12-01.xlsx"


def test_list_offers_both_formats_with_its_current_filters(web, cash_registers):
    html = web("viewer").get("/registers/?flt0_0=pending&search=SN").get_data(as_text=True)

    for export_type in ("csv", "xlsx"):
        assert f"Выгрузить {export_type.upper()}" in html
        link = html.split(f'href="/registers/export/{export_type}/?', 1)[1].split('"', 1)[0]
        assert "flt0_0=pending" in link and "search=SN" in link


def test_an_unknown_format_is_not_found(web, cash_registers):
    assert web("viewer").get("/registers/export/pdf/").status_code == 404


@pytest.mark.parametrize("query", ["?flt0_3=abc", "?flt0_3=99999999999999999999", "?flt0_3=-1", "?flt9_9=x",
                                   "?flt0_x=1", "?sort=99", "?sort=abc", "?page=-5&page_size=abc"])
@pytest.mark.parametrize("export_type", ["csv", "xlsx"])
def test_a_filter_value_no_row_can_have_is_dropped_as_the_list_does(web, cash_registers, query, export_type):
    response = web("viewer").get(f"/registers/export/{export_type}/{query}")

    assert response.status_code == 200
    if export_type == "csv":
        assert len(read_csv(response)) == 4
    else:
        assert len(read_xlsx(response)[1]) == 4


@pytest.mark.parametrize("query", ["?search=SN%00", "?flt0_0=pending%00"])
def test_a_nul_byte_gets_a_russian_message(web, cash_registers, query):
    response = web("viewer").get(f"/registers/export/csv/{query}")

    assert response.status_code == 400
    assert "нулевой байт" in response.get_data(as_text=True)


def test_text_a_spreadsheet_would_run_as_a_formula_stays_text(web, ctx):
    db.session.add_all([Store(code="201", name="=HYPERLINK(\"http://example.com\",\"x\")", source="manual"),
                        Store(code="202", name="+7 495", address="@SUM(A1)", source="manual")])
    db.session.commit()
    browser = web("viewer")

    csv_rows = read_csv(browser.get("/stores/export/csv/"))
    sheet, xlsx_rows = read_xlsx(browser.get("/stores/export/xlsx/"))

    assert [row[1:3] for row in csv_rows[1:]] == [["'=HYPERLINK(\"http://example.com\",\"x\")", ""],
                                                  ["'+7 495", "'@SUM(A1)"]]
    cell = xlsx_rows[1][1]
    assert cell.value == "=HYPERLINK(\"http://example.com\",\"x\")" and cell.data_type == "s"


def test_xlsx_takes_text_excel_cannot_hold(web, ctx):
    db.session.add(Store(code="201", name="Магазин\x07 №1", source="manual"))
    audit.record("admin1", "store", 1, "Импорт", details="д" * 40_000)
    db.session.commit()
    browser = web("viewer")

    store_rows = read_xlsx(browser.get("/stores/export/xlsx/"))[1]
    journal_rows = read_xlsx(browser.get("/journal/export/xlsx/?search=Импорт"))[1]

    assert store_rows[1][1].value == "Магазин №1"
    header = [cell.value for cell in journal_rows[0]]
    details = journal_rows[1][header.index("Подробности")].value
    assert len(details) == 32_767  # the most an Excel cell holds


def test_export_reads_registers_in_a_fixed_number_of_queries(app, web, many_registers):
    browser = web("viewer")

    def export(export_type):
        response = browser.get(f"/registers/export/{export_type}/")
        response.get_data()  # the whole file, streamed or not
        return response

    for export_type in ("csv", "xlsx"):
        response, queries = count_queries(app, lambda t=export_type: export(t))
        assert response.status_code == 200
        assert queries <= 2, queries  # the rows, read in chunks, and no count: a file has no pager


def test_csv_is_streamed(web, cash_registers):
    response = web("viewer").get("/registers/export/csv/", buffered=False)

    assert response.is_streamed
    response.close()


@pytest.mark.parametrize("export_type", ["csv", "xlsx"])
def test_an_export_longer_than_a_chunk_has_every_row(app, web, export_type):
    with app.app_context():  # not the test's own: the request must end its context as in production
        db.session.execute(insert(Store), [{"code": str(100 + i), "source": "set"} for i in range(50)])
        stores = db.session.scalars(select(Store.id)).all()
        db.session.execute(insert(CashRegister), [{"store_id": stores[i % 50], "cash_number": 1 + i // 50,
                                                   "serial_number": f"SN{i:05d}", "state": "pending"}
                                                  for i in range(2_500)])
        db.session.commit()

    response = web("viewer").get(f"/registers/export/{export_type}/")

    rows = read_csv(response) if export_type == "csv" else values(read_xlsx(response)[1])
    assert sorted(row[3] for row in rows[1:]) == [f"SN{i:05d}" for i in range(2_500)]


def test_journal_export_names_each_object_as_users_know_it_in_a_few_queries(app, web):
    with app.app_context():
        db.session.execute(insert(Store), [{"code": str(100 + i), "source": "set"} for i in range(30)])
        stores = db.session.scalars(select(Store.id).order_by(Store.id)).all()
        for i in range(2_500):  # more than one chunk of rows
            audit.record("operator1", "store", stores[i % 30], "Магазин изменён")
        db.session.commit()

    response, queries = count_queries(app, lambda: web("viewer").get("/journal/export/csv/"))

    rows = read_csv(response)
    column = rows[0].index("Объект")
    stores_named = [row[column] for row in rows[1:] if row[column].startswith("магазин")]
    assert len(stores_named) == 2_500
    assert sorted(set(stores_named)) == sorted(f"магазин {100 + i}" for i in range(30))
    assert queries <= 20, queries  # a look-up per chunk of rows (1,000), not one per row


def test_a_contract_waiting_for_numbers_exports_its_status_alone(web, ctx):
    db.session.add(Contract(number="СТ-3", contract_date=date(2026, 11, 7), agent_inn="7707083893",
                            status="awaiting_terminals"))
    db.session.commit()

    rows = read_csv(web("viewer").get("/contracts/export/csv/"))

    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["Статус"] == "Ожидание терминалов"
