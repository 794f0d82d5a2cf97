"""«Выгрузить» on every list: what the list shows, with its filters, search and order, as CSV or XLSX, streamed."""
import csv
import io
import tempfile
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from functools import lru_cache
from itertools import islice

from flask import Response, abort, g, send_file, stream_with_context
from flask_admin import expose
from flask_admin.model import typefmt
from markupsafe import Markup
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlalchemy.orm import Session

from stoloto import clock
from stoloto.extensions import db

# Rows read per round trip (a server-side cursor on PostgreSQL) and written per CSV chunk.
CHUNK_ROWS = 1000
CSV_DATE, CSV_DATETIME = "%d.%m.%Y", "%d.%m.%Y %H:%M"
XLSX_DATE, XLSX_DATETIME = "DD.MM.YYYY", "DD.MM.YYYY HH:MM"
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_CELL_MAX = 32_767  # characters: Excel calls a file with a longer cell damaged
# A CSV cell starting so is a formula to Excel (CSV injection): a leading apostrophe keeps it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
YES_NO = {True: "да", False: "нет"}


class ExportMixin:
    """Put before SecureModelView; a view declares `export_name` and, if not its list's, `column_export_list`.

    Rows come from the list's own query (Flask-Admin's get_list: the same filters, search, order and
    access rules) read in chunks, never all at once. CSV is UTF-8 with a BOM and «;» between cells, as
    Russian Excel opens it by a double click; XLSX is an openpyxl write-only workbook (rows go to a
    temporary file as they come; tablib would hold every row, and its workbook every cell, in memory).
    """

    can_export = True
    export_types = ("csv", "xlsx")
    export_name = None  # the file's name in Latin letters, e.g. "kassy" → kassy-2026-11-30.csv
    column_export_days: tuple[str, ...] = ()  # moments the list shows as their day: exported as a date (ДД.ММ.ГГГГ)

    @expose("/export/<export_type>/")
    def export(self, export_type: str):
        if not self.can_export or export_type not in self.export_types:
            abort(404)
        header = [str(label) for _, label in self._export_columns]
        rows = self._export_rows()
        filename = self.get_export_name(export_type)
        if export_type == "csv":
            response = Response(stream_with_context(_started(_csv_chunks(header, rows))), mimetype="text/csv")
            response.headers.set("Content-Disposition", "attachment", filename=filename)
            return response
        return send_file(_xlsx_file(str(self.name), header, rows), mimetype=XLSX_MIMETYPE, as_attachment=True,
                         download_name=filename, max_age=0)

    def get_count_query(self):
        # A file has no pager: counting 1,000,000 rows first would only delay it.
        return None if g.get("sis_exporting") else super().get_count_query()

    def get_export_name(self, export_type: str = "csv") -> str:
        return f"{self.export_name or self.endpoint}-{clock.today():%Y-%m-%d}.{export_type}"

    def _export_rows(self) -> Iterator[list]:
        args = self._get_list_extra_args()
        sort = self._get_column_by_idx(args.sort)
        g.sis_exporting = True
        _, query = self.get_list(None, sort[0] if sort else None, args.sort_desc, args.search, args.filters,
                                 execute=False, page_size=0)
        getters = [self._export_getter(name) for name, _ in self._export_columns]
        # A session of its own: the request's is closed when the view returns, and the CSV streams on after.
        with Session(db.engine) as session:
            models = iter(query.with_session(session).yield_per(CHUNK_ROWS))
            while chunk := list(islice(models, CHUNK_ROWS)):
                self.prepare_export_chunk(chunk)
                for model in chunk:
                    yield [getter(model) for getter in getters]

    def prepare_export_chunk(self, models: list) -> None:
        """A hook: look up, once for a chunk of rows, what the export formatters need (one query, not one a row)."""

    def _export_getter(self, name: str):
        """model → the column's value: a date or a time as such (in SIS_TIMEZONE), anything else as the list
        shows it, without HTML. Flask-Admin's _get_list_value, with its look-ups done once per export."""
        path = name.split(".")
        formatter = self.column_formatters_export.get(name)
        choices = self._column_choices_map.get(name) or {}
        type_formatters = list((self.column_type_formatters_export or typefmt.EXPORT_FORMATTERS).items())
        as_day = name in self.column_export_days

        def value(model):
            raw = model
            for step in path:
                raw = getattr(raw, step, None)
            if isinstance(raw, datetime):
                local = clock.local(raw).replace(tzinfo=None)
                return local.date() if as_day else local
            if isinstance(raw, date):
                return raw
            if formatter is not None:
                shown = formatter(self, None, model, name)
                return _plain(shown) if isinstance(shown, Markup) else ("" if shown is None else shown)
            if isinstance(raw, bool):
                return YES_NO[raw]
            if choices and raw in choices:
                return choices[raw]
            if raw is None or isinstance(raw, str | int | float):
                return "" if raw is None else raw
            for kind, type_formatter in type_formatters:  # lists, dicts, enums as Flask-Admin shows them
                if isinstance(raw, kind):
                    return type_formatter(self, raw, name)
            return str(raw)
        return value


@lru_cache(maxsize=4096)
def _plain(shown: Markup) -> str:
    """A formatter's HTML (a badge, a link) as its text; the same few badges repeat on every row."""
    return shown.striptags()


def _started(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Makes the first chunk now, in the view: a query that fails is an error page, not a cut-off file."""
    first = next(chunks)

    def all_chunks():
        yield first
        yield from chunks  # closing the response closes the query's session too
    return all_chunks()


def _csv_text(value) -> str:
    if isinstance(value, datetime):
        return value.strftime(CSV_DATETIME)
    if isinstance(value, date):
        return value.strftime(CSV_DATE)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _csv_chunks(header: list[str], rows: Iterable[list]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    buffer.write("\ufeff")
    writer.writerow(header)
    for number, row in enumerate(rows, 1):
        writer.writerow([_csv_text(value) for value in row])
        if number % CHUNK_ROWS == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _xlsx_cell(sheet, value):
    if isinstance(value, date):
        cell = WriteOnlyCell(sheet, value)
        cell.number_format = XLSX_DATETIME if isinstance(value, datetime) else XLSX_DATE
        return cell
    if not isinstance(value, str):
        return value
    value = ILLEGAL_CHARACTERS_RE.sub("", value)[:XLSX_CELL_MAX]
    if not value.startswith("="):
        return value or None  # an empty cell is not written at all
    cell = WriteOnlyCell(sheet, value)
    cell.data_type = "s"  # text that only looks like a formula
    return cell


def _xlsx_file(title: str, header: list[str], rows: Iterable[list]):
    """The workbook in a temporary file, deleted when the response closes it."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title[:31])
    for number, label in enumerate(header, 1):
        sheet.column_dimensions[get_column_letter(number)].width = max(12, len(label) + 2)
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    cells = []
    for label in header:
        cells.append(WriteOnlyCell(sheet, label))
        cells[-1].font = bold
    sheet.append(cells)
    for row in rows:
        sheet.append([_xlsx_cell(sheet, value) for value in row])
    file = tempfile.TemporaryFile()
    workbook.save(file)
    file.seek(0)
    return file
