"""«Загрузка из файла» in «Магазины»: a CSV or XLSX, a preview of what is added and skipped, then one transaction."""
import io
import os
import re
import zipfile
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, insert, select, update

from stoloto import store_file
from stoloto.extensions import db
from stoloto.models import AuditEvent, Store, StoreUpload, utcnow
from stoloto.services import contracts, store_uploads, stores
from stoloto.services.contracts import ContractInput
from tests.conftest import flashed

NUMBER, OTHER = "СТ-2026/001", "СТ-2026/002"
HEADER = ["Код магазина", "Наименование", "Адрес", "Договор"]


def make_contract(app, number: str = NUMBER) -> int:
    with app.app_context():
        return contracts.create_contract(ContractInput(number=number, contract_date="15.01.2026",
                                                       agent_inn="7707083893"), "tester").id


def csv_bytes(rows, separator=";", bom=True, header=HEADER) -> bytes:
    lines = [separator.join(header)] + [separator.join(row) for row in rows]
    return ("\ufeff" if bom else "").encode() + "\r\n".join(lines).encode()


def upload(browser, data: bytes, filename: str = "stores.csv", **kwargs):
    return browser.post("/stores/upload/", {"file": (io.BytesIO(data), filename)},
                        content_type="multipart/form-data", follow_redirects=True, **kwargs)


def confirm(browser, page: str):
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    return browser.post("/stores/upload/confirm/", {"token": token}, follow_redirects=True)


def stored(app) -> dict[str, tuple]:
    with app.app_context():
        return {row.code: (row.name, row.address, row.contract_id, row.source)
                for row in db.session.scalars(select(Store))}


def pending_uploads(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(StoreUpload))


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def test_a_csv_is_previewed_then_exactly_the_previewed_rows_are_added(app, web):
    contract = make_contract(app)
    with app.app_context():
        stores.create_store(stores.StoreInput(code="101", contract_id=contract), "tester")
    rows = [
        ["201", "Гастроном у вокзала", "г. Москва, ул. Ленина, д. 1", NUMBER],
        ["202", "", "", ""],
        ["101", "Уже есть", "", NUMBER],
        ["201", "Повтор", "", NUMBER],
        ["203", "Чужой договор", "", "СТ-1999/999"],
        ["12б", "Буква в коде", "", NUMBER],
        ["0123", "Ноль впереди", "", NUMBER],
        ["12345678901234567", "Семнадцать цифр", "", NUMBER],
        ["204", "Я" * 256, "", NUMBER],
        ["205", "", "А" * 501, NUMBER],
        ["206", "Нулевой\x00байт", "", NUMBER],
        ["", "Без кода", "", NUMBER],
        ["2147483648", "Больше int4", "", NUMBER],
        ["", "", "", ""],
    ]
    browser = web("operator")
    response = upload(browser, csv_bytes(rows))
    assert response.status_code == 200
    page = text(response)
    assert "Будет добавлено: 3 магазина" in page
    assert "Пропущено: 10 строк" in page
    for reason in ("Магазин с кодом 101 уже есть.", "Код 201 повторяется в файле: он уже есть в строке 2.",
                   "Договора № СТ-1999/999 нет в СИ.", "Код магазина — только цифры, как номер магазина в SET.",
                   "Код магазина не может начинаться с нуля", "Код магазина — не длиннее 16 цифр.",
                   "Наименование: не длиннее 255 символов.", "Адрес: не длиннее 500 символов.",
                   "Наименование содержит нулевой байт", "Укажите код магазина."):
        assert reason in page, reason
    assert "Гастроном у вокзала" in page
    assert set(stored(app)) == {"101"}  # the preview saves nothing

    done = confirm(browser, response.get_data(as_text=True))
    assert "Загружено 3 магазина из файла «stores.csv»." in flashed(done)
    saved = stored(app)
    assert saved == {
        "101": (None, None, contract, "manual"),
        "201": ("Гастроном у вокзала", "г. Москва, ул. Ленина, д. 1", contract, "file"),
        "202": (None, None, None, "file"),
        "2147483648": ("Больше int4", None, contract, "file"),
    }
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == store_uploads.ACTION_UPLOAD))
        assert (event.actor, event.result) == ("operator1", "ok")
        assert event.details == "Загружено 3 магазина из файла «stores.csv»; пропущено 10 строк"
        assert len(event.object_ids) == 3
    assert pending_uploads(app) == 0


def test_a_comma_separated_csv_without_bom_is_read(app, web):
    make_contract(app)
    data = csv_bytes([["301", "Магазин, у дома", "ул. Мира", NUMBER]], separator=",", bom=False)
    data = data.replace("Магазин, у дома".encode(), '"Магазин, у дома"'.encode())
    browser = web("operator")
    response = upload(browser, data, "магазины.CSV")
    assert "Будет добавлено: 1 магазин" in text(response)
    confirm(browser, response.get_data(as_text=True))
    assert stored(app)["301"][:2] == ("Магазин, у дома", "ул. Мира")


def test_an_xlsx_with_numbers_in_cells_is_read(app, web):
    contract = make_contract(app)
    browser = web("admin")
    data = store_file.table("xlsx", [
        [401, "Число в коде", "ул. Мира", NUMBER], [402.0, "Дробь с нулём", None, None],
        [2 ** 31, "Большое число", None, NUMBER], [1e20, "Слишком большое", None, NUMBER],
        [403.5, "Дробь", None, NUMBER], ["404", 12345, None, NUMBER], [None, None, None, None]])
    response = upload(browser, data, "stores.xlsx")
    page = text(response)
    assert "Будет добавлено: 4 магазина" in page and "Пропущено: 2 строки" in page
    assert "Код магазина — не длиннее 16 цифр." in page and "Код магазина — только цифры" in page
    confirm(browser, response.get_data(as_text=True))
    assert stored(app) == {"401": ("Число в коде", "ул. Мира", contract, "file"),
                           "402": ("Дробь с нулём", None, None, "file"),
                           "2147483648": ("Большое число", None, contract, "file"),
                           "404": ("12345", None, contract, "file")}


def junk_xlsx() -> bytes:
    return b"PK\x03\x04" + os.urandom(3000)


@pytest.mark.parametrize("data, filename, message", [
    (b"", "stores.csv", "Файл пустой."),
    ("\ufeff".encode(), "stores.csv", "Файл пустой."),
    (csv_bytes([]), "stores.csv", "В файле нет ни одного магазина"),
    (csv_bytes([["1", "2", "3", "4"]], header=["code", "name", "address", "contract"]), "stores.csv",
     "Первая строка файла должна быть заголовком «Код магазина; Наименование; Адрес; Договор»"),
    (csv_bytes([["1", "2"]], header=["Код магазина", "Наименование"]), "stores.csv",
     "Первая строка файла должна быть заголовком"),
    (os.urandom(4000), "stores.csv", "Файл не в кодировке UTF-8"),
    ("Код магазина;Наименование;Адрес;Договор\r\n101;Магазин;;".encode("cp1251"), "stores.csv",
     "Файл не в кодировке UTF-8"),
    (b"\x00" * 100, "stores.csv", "нулевой байт"),
    (junk_xlsx(), "stores.xlsx", "Файл не удалось прочитать как таблицу Excel (XLSX)"),
    (csv_bytes([["101", "", "", ""]]), "stores.xlsx", "Файл не удалось прочитать как таблицу Excel (XLSX)"),
    (store_file.table("xlsx", [[101, "", "", ""]], header=["Код", "Имя"]), "stores.xlsx",
     "Первая строка файла должна быть заголовком"),
    (b"101;x;y;z", "stores.txt", "Выберите файл CSV или XLSX"),
])
def test_a_bad_file_is_refused_in_russian_and_nothing_is_kept(app, web, data, filename, message):
    response = upload(web("operator"), data, filename)
    assert response.status_code == 200
    assert any(message in shown for shown in flashed(response)), flashed(response)
    assert stored(app) == {} and pending_uploads(app) == 0


def zip_bomb() -> bytes:
    """A small XLSX-looking zip whose one part unpacks to more than a worker should hold."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("xl/sharedStrings.xml", "w") as part:
        chunk = b"\0" * 2 ** 20
        for _ in range(store_file.XLSX_MAX_UNPACKED // len(chunk) + 1):
            part.write(chunk)
    return out.getvalue()


def test_an_xlsx_that_unpacks_too_large_is_refused_unread(app, web):
    response = upload(web("operator"), zip_bomb(), "stores.xlsx")
    assert "Таблица Excel в файле слишком велика." in " ".join(flashed(response))
    assert pending_uploads(app) == 0


def test_a_cell_too_long_for_csv_is_refused_in_russian(app, web):
    data = csv_bytes([["101", "", "", ""], ["102", '"' + "x" * 200_000, "", ""]])
    response = upload(web("operator"), data)
    shown = " ".join(flashed(response))
    assert "Файл не удалось прочитать как CSV: в строке 3 ячейка длиннее 131 072 символов" in shown, shown
    assert "field" not in shown
    header = upload(web("operator"), ('"' + "x" * 200_000).encode())
    assert "Файл не удалось прочитать как CSV: в строке 1 ячейка длиннее" in " ".join(flashed(header))
    assert pending_uploads(app) == 0


def test_no_file_chosen_is_explained(app, web):
    response = web("operator").post("/stores/upload/", {}, content_type="multipart/form-data", follow_redirects=True)
    assert response.status_code == 200
    assert "Выберите файл для загрузки." in flashed(response)


def test_a_file_over_the_limit_is_refused_with_its_size(app, web):
    big = csv_bytes([["101", "x" * 200, "", ""]]) + b"\r\n" * (store_uploads.UPLOAD_MAX_BYTES // 2)
    response = upload(web("operator"), big)
    assert response.status_code == 200
    assert "Файл больше 10 МБ" in " ".join(flashed(response))
    assert pending_uploads(app) == 0


def test_a_request_over_the_server_limit_gets_a_russian_page(app, web):
    response = upload(web("operator"), b"1" * (app.config["MAX_CONTENT_LENGTH"] + 1))
    assert response.status_code == 413
    assert "Размер запроса превышает допустимый." in response.get_data(as_text=True)


def test_too_many_rows_are_refused(app, web):
    rows = [[str(1000 + i), "", "", ""] for i in range(store_uploads.UPLOAD_MAX_ROWS + 1)]
    response = upload(web("operator"), csv_bytes(rows))
    assert "В файле больше 100 000 строк" in " ".join(flashed(response))
    assert pending_uploads(app) == 0


def test_a_forged_or_used_token_adds_nothing(app, web):
    make_contract(app)
    browser = web("operator")
    response = upload(browser, csv_bytes([["501", "", "", NUMBER]]))
    page = response.get_data(as_text=True)
    forged = browser.post("/stores/upload/confirm/", {"token": "x" * 43}, follow_redirects=True)
    assert "Предпросмотр устарел или уже загружен: загрузите файл снова." in " ".join(flashed(forged))
    nul = browser.post("/stores/upload/confirm/", {"token": "\x00"}, follow_redirects=True)
    assert nul.status_code in (200, 400) and "Внутренняя ошибка" not in nul.get_data(as_text=True)
    assert stored(app) == {}
    # Another user cannot confirm what this one previewed, even knowing the token.
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    other = web("admin").post("/stores/upload/confirm/", {"token": token}, follow_redirects=True)
    assert "Предпросмотр устарел" in " ".join(flashed(other))
    assert stored(app) == {}
    assert "Загружено 1 магазин" in " ".join(flashed(confirm(browser, page)))
    again = confirm(browser, page)
    assert "Предпросмотр устарел или уже загружен" in " ".join(flashed(again))
    assert len(stored(app)) == 1


def test_a_stale_preview_adds_nothing(app, web):
    make_contract(app)
    browser = web("operator")
    page = upload(browser, csv_bytes([["601", "", "", NUMBER]])).get_data(as_text=True)
    with app.app_context():
        expired = utcnow() - store_uploads.UPLOAD_KEPT - timedelta(seconds=1)
        db.session.execute(update(StoreUpload).values(created_at=expired))
        db.session.commit()
    response = confirm(browser, page)
    assert "Предпросмотр устарел" in " ".join(flashed(response))
    assert stored(app) == {}


def test_stores_changed_since_the_preview_add_nothing(app, web):
    make_contract(app)
    browser = web("operator")
    page = upload(browser, csv_bytes([["701", "", "", NUMBER], ["702", "", "", NUMBER]])).get_data(as_text=True)
    with app.app_context():
        now = utcnow()
        db.session.execute(insert(Store.__table__).values(code="702", name="чужой", source="manual",
                                                          created_at=now, updated_at=now))
        db.session.commit()
    response = confirm(browser, page)
    shown = " ".join(flashed(response))
    assert "С момента предпросмотра" in shown and "702" in shown
    assert set(stored(app)) == {"702"}


def test_a_contract_deleted_since_the_preview_adds_nothing(app, web):
    contract = make_contract(app)
    browser = web("operator")
    page = upload(browser, csv_bytes([["801", "", "", NUMBER]])).get_data(as_text=True)
    with app.app_context():
        from stoloto.models import Contract
        db.session.delete(db.session.get(Contract, contract))
        db.session.commit()
    response = confirm(browser, page)
    assert "С момента предпросмотра" in " ".join(flashed(response))
    assert stored(app) == {}


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_the_template_file_has_the_header_and_an_example_that_uploads(app, web, kind):
    make_contract(app)
    browser = web("operator")
    listing = browser.get("/stores/upload/").get_data(as_text=True)
    assert f"/stores/upload/template.{kind}" in listing
    response = browser.get(f"/stores/upload/template.{kind}")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    data = response.get_data()
    if kind == "csv":
        lines = data.decode("utf-8-sig").splitlines()
        assert lines[0] == ";".join(HEADER)
        assert lines[1].endswith(NUMBER) and len(lines) == 2
    else:
        sheet = load_workbook(io.BytesIO(data)).active
        assert [cell.value for cell in sheet[1]] == HEADER
        assert sheet.max_row == 2
    preview = upload(browser, data, f"template.{kind}")
    assert "Будет добавлено: 1 магазин" in text(preview)


def test_viewer_cannot_upload_and_the_upload_needs_csrf(app, web):
    viewer = web("viewer")
    assert "/stores/upload/" not in viewer.get("/stores/").get_data(as_text=True)
    assert viewer.get("/stores/upload/").status_code == 403
    assert upload(viewer, csv_bytes([["101", "", "", ""]])).status_code == 403
    assert viewer.post("/stores/upload/confirm/", {"token": "x"}).status_code == 403
    operator = web("operator")
    assert "/stores/upload/" in operator.get("/stores/").get_data(as_text=True)
    response = operator.client.post("/stores/upload/", data={"file": (io.BytesIO(csv_bytes([["101", "", "", ""]])),
                                                                      "s.csv")}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert pending_uploads(app) == 0
