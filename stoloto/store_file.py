"""The file of «Загрузка из файла»: a CSV or XLSX table «Код магазина; Наименование; Адрес; Договор», read and made."""
import csv
import io
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from openpyxl import Workbook
from python_calamine import CalamineWorkbook

from . import boundary, errors, plural

HEADER = ("Код магазина", "Наименование", "Адрес", "Договор")
FIELDS = ("code", "name", "address", "contract")
EXAMPLE = ("101", "Гастроном у вокзала", "г. Москва, ул. Ленина, д. 1", "СТ-2026/001")
KINDS = ("csv", "xlsx")
# An XLSX is a zip: its parts unpacked may not exceed this, so a small "zip bomb" cannot fill a worker's memory.
XLSX_MAX_UNPACKED = 200 * 1024 * 1024
CSV_HINT = "В Excel: «Файл» → «Сохранить как» → «CSV UTF-8 (разделитель — запятая)», или выберите XLSX."
TEMPLATE_HINT = "Скачайте шаблон на странице загрузки и заполните его."


@dataclass(frozen=True)
class Row:
    line: int  # the row's number in the table, the header being 1 (as Excel numbers rows)
    code: str | None
    name: str | None
    address: str | None
    contract: str | None


def bad_file(message: str, hint: str = "") -> errors.SisError:
    return errors.SisError("BAD_FILE", message, hint, level="warning")


def kind_of(filename: str) -> str:
    kind = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if kind not in KINDS:
        raise bad_file("Выберите файл CSV или XLSX (по расширению имени файла: .csv или .xlsx).", TEMPLATE_HINT)
    return kind


def read(data: bytes, filename: str, max_rows: int) -> list[Row]:
    """The rows of the table below its header, empty rows left out; raises SisError (BAD_FILE) with a Russian
    message when the file as a whole cannot be read: empty, not UTF-8 or not XLSX, a wrong header, too long."""
    kind = kind_of(filename)
    cells = _csv_cells(data) if kind == "csv" else _xlsx_cells(data)
    rows, line = [], 0  # line: the last row read whole
    try:
        header = next(cells, None)
        if header is None:
            raise bad_file("Файл пустой.", TEMPLATE_HINT)
        _check_header(header)
        line = 1
        for line, values in enumerate(cells, start=2):
            values = [_text(value) for value in values[:len(HEADER)]]
            if not any(values):
                continue  # Excel keeps formatted empty rows at the end of a sheet
            if len(rows) == max_rows:
                raise bad_file(f"В файле больше {max_rows:,} строк.".replace(",", " "),
                               "Разделите его на несколько файлов и загрузите их по очереди.")
            values += [None] * (len(HEADER) - len(values))
            rows.append(Row(line, *values))
    except csv.Error:
        # The one error csv raises here (newline="" and not strict): a cell past csv.field_size_limit(),
        # often a quote opened and never closed. Its English text is not shown.
        raise bad_file(f"Файл не удалось прочитать как CSV: в строке {line + 1} ячейка длиннее "
                       f"{csv.field_size_limit():,} символов (возможно, не закрыта кавычка).".replace(",", " "),
                       CSV_HINT) from None
    if not rows:
        raise bad_file("В файле нет ни одного магазина: под заголовком нет строк.", TEMPLATE_HINT)
    return rows


def _check_header(header: list) -> None:
    names = [_text(value) for value in header]
    while names and names[-1] is None:
        names.pop()
    given = [(name or "").casefold() for name in names]
    if given != [name.casefold() for name in HEADER]:
        if any(boundary.has_nul(name or "") for name in names):
            raise bad_file("Файл содержит нулевой байт (символ с кодом 0) в первой строке: это не текстовый CSV-файл.",
                           CSV_HINT)
        raise bad_file(f"Первая строка файла должна быть заголовком «{'; '.join(HEADER)}».", TEMPLATE_HINT)


def _text(value) -> str | None:
    """A cell as text, trimmed; None when empty. A whole number stored by Excel as 101.0 is "101"."""
    if type(value) is str:  # every CSV cell and most XLSX ones: 200,000 of them in a file of 50,000 stores
        return value.strip() or None
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _csv_cells(data: bytes) -> Iterator[list]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise bad_file("Файл не в кодировке UTF-8.", CSV_HINT) from None
    if not text.strip():
        raise bad_file("Файл пустой.", TEMPLATE_HINT)
    first_line = text.split("\n", 1)[0]
    # The header names hold neither separator, so the first line tells which one the file uses.
    separator = ";" if ";" in first_line or "," not in first_line else ","
    return csv.reader(io.StringIO(text, newline=""), delimiter=separator)


def _xlsx_cells(data: bytes) -> Iterator[list]:
    """The first sheet's rows. calamine holds the sheet's cells in memory, bounded by XLSX_MAX_UNPACKED."""
    if not data:
        raise bad_file("Файл пустой.", TEMPLATE_HINT)
    book = None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(info.file_size for info in archive.infolist()) > XLSX_MAX_UNPACKED:
                raise bad_file("Таблица Excel в файле слишком велика.", "Разделите её на несколько файлов.")
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        if not book.sheet_names:
            return
        yield from book.get_sheet_by_index(0).iter_rows()
    except errors.SisError:
        raise
    # calamine over a hostile file fails in many ways (zip, XML, its own checks); each means the same to the user.
    except Exception:
        raise bad_file("Файл не удалось прочитать как таблицу Excel (XLSX).",
                       "Сохраните его в Excel как «Книга Excel (*.xlsx)» или как CSV UTF-8.") from None
    finally:
        if book is not None:
            book.close()


def template(kind: str) -> bytes:
    """The template file: the header and one example row."""
    return table(kind, [EXAMPLE])


def table(kind: str, rows: Iterable[Sequence], header: Sequence = HEADER) -> bytes:
    """A file of `kind` with `header` and `rows` (the template; the tests and bench/upload_stores.py make theirs
    here too). CSV in UTF-8 with a BOM and «;», as Russian Excel opens it; XLSX as Excel writes it, with the
    sheet's size (<dimension>), which a write-only workbook leaves out."""
    if kind == "csv":
        out = io.StringIO()
        out.write("\ufeff")
        writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
        return out.getvalue().encode()
    book = Workbook()
    sheet = book.active
    sheet.title = "Магазины"
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def rows_message(count: int) -> str:
    return plural.plural(count, "строка", "строки", "строк")
