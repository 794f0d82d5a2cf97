"""The document "Приложение №5 к договору на оказание услуг по распространению лотерей" (.docx)."""
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, Twips

TITLE = "Приложение №5"
CONTRACT_KIND = "на оказание услуг по распространению лотерей"
SUBJECT = "Параметры доступа сервера интеграции агента к процессингу Столото"
AUTHOR = "СИ Столото"
REKEYING = "Перевыпуск ключа"
REKEYING_REQUEST = ("Сертификат СИ по договору истёк. Агент просит зарегистрировать указанный ниже новый открытый "
                    "ключ взамен прежнего и выдать сертификат по приложенному запросу; договор, номера терминалов и "
                    "их привязки к кассам остаются прежними.")
# A4 with the margins of Russian office papers (ГОСТ Р 7.0.97): 30 mm left for binding, 15 right, 20 top and bottom.
PAGE_WIDTH, PAGE_HEIGHT = Mm(210), Mm(297)
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = Mm(30), Mm(15), Mm(20), Mm(20)
# The requisites table: narrow labels, wide values, so the longest name and request still leave the page one.
LABEL_WIDTH = Mm(55)
VALUE_WIDTH = PAGE_WIDTH - MARGIN_LEFT - MARGIN_RIGHT - LABEL_WIDTH
# The left cell margin of python-docx's "Table Grid" style (108 twentieths of a point, 5.4 pt).
CELL_MARGIN = Twips(108)
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@dataclass(frozen=True)
class AppendixData:
    contract_number: str
    contract_date: date
    agent_inn: str
    agent_name: str | None
    key_algorithm: str
    fingerprint: str  # formatted, e.g. "AB12 CD34 …"
    csr_subject: str
    csr_pem: str
    generated_at: datetime  # aware, in the users' zone: «Дата формирования» is their date
    # A new key for a contract already activated whose certificate has expired (docs/protocols.md §1.4).
    rekeying: bool = False


def contract_reference(data: AppendixData) -> str:
    return f"к договору № {data.contract_number} от {data.contract_date:%d.%m.%Y} {CONTRACT_KIND}"


def build_appendix(data: AppendixData) -> bytes:
    document = Document()
    _set_page(document)
    _set_properties(document, data)
    style = document.styles["Normal"]
    style.font.name = "Times New Roman"
    style.font.size = Pt(11)
    # python-docx's template spaces paragraphs 10 pt apart at 1.15 lines, table cells too: too airy for one page.
    style.paragraph_format.space_before = Pt(0)
    style.paragraph_format.space_after = Pt(4)
    style.paragraph_format.line_spacing = 1.0

    heading = document.add_paragraph()
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = heading.add_run(TITLE)
    run.bold = True
    run.font.size = Pt(13)
    subtitle = document.add_paragraph(contract_reference(data))
    subtitle.alignment = WD_ALIGN_PARAGRAPH.CENTER
    if data.rekeying:
        marked = document.add_paragraph()
        marked.alignment = WD_ALIGN_PARAGRAPH.CENTER
        marked.add_run(REKEYING).bold = True

    document.add_paragraph(
        "Параметры доступа сервера интеграции (СИ) агента к процессингу Столото. "
        + (REKEYING_REQUEST if data.rekeying else
           "Агент просит зарегистрировать указанный ниже открытый ключ и выдать сертификат "
           "по приложенному запросу."))

    rows = [
        ("Номер договора", data.contract_number),
        ("Дата заключения договора", f"{data.contract_date:%d.%m.%Y}"),
        ("ИНН агента", data.agent_inn),
        ("Наименование агента", data.agent_name or "—"),
        ("Алгоритм ключа", data.key_algorithm),
        ("Отпечаток открытого ключа (SHA-256, SubjectPublicKeyInfo)", data.fingerprint),
        ("Субъект запроса на сертификат", data.csr_subject),
        ("Дата формирования", f"{data.generated_at:%d.%m.%Y}"),
    ]
    table = document.add_table(rows=0, cols=2)
    table.style = "Table Grid"
    table.autofit = False
    _indent(table, CELL_MARGIN)
    for column, width in zip(table.columns, (LABEL_WIDTH, VALUE_WIDTH), strict=True):
        column.width = width
    for label, value in rows:
        cells = table.add_row().cells
        for cell, text, width in zip(cells, (label, value), (LABEL_WIDTH, VALUE_WIDTH), strict=True):
            cell.width = width
            cell.text = text
            cell.paragraphs[0].paragraph_format.space_after = Pt(0)

    csr_title = document.add_paragraph()
    csr_title.paragraph_format.space_before = Pt(10)
    csr_title.add_run("Запрос на сертификат (PKCS#10, PEM):").bold = True
    csr_paragraph = document.add_paragraph()
    csr_run = csr_paragraph.add_run(data.csr_pem.strip())
    csr_run.font.name = "Courier New"
    csr_run.font.size = Pt(9)

    document.add_paragraph("От Агента:").paragraph_format.space_before = Pt(10)
    _add_signature_lines(document)
    document.add_paragraph("М.П.")
    document.add_paragraph("Дата: «____» ______________ 20___ г.")

    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _indent(table, by) -> None:
    """Moves the table right by `by` (its tblInd).

    In Word 2010's layout (python-docx's template asks for it) and in LibreOffice a table's text starts at the
    margin and its left border sits a cell margin further left: indented by the cell margin, the borders lie on
    the page's margins, as the paragraphs above and below the table do."""
    indent = OxmlElement("w:tblInd")
    indent.set(qn("w:w"), str(by.twips))
    indent.set(qn("w:type"), "dxa")
    # Word reads a table's properties in the schema's order: tblInd goes before these.
    table._tbl.tblPr.insert_element_before(indent, "w:tblBorders", "w:shd", "w:tblLayout", "w:tblCellMar",
                                           "w:tblLook", "w:tblCaption", "w:tblDescription", "w:tblPrChange")


def _add_signature_lines(document) -> None:
    """Two lines with their captions centred under them: spaces cannot align them in every word processor."""
    table = document.add_table(rows=2, cols=2)  # the template's default table style draws no borders
    for column, caption in enumerate(("(подпись)", "(Ф.И.О.)")):
        line, below = table.cell(0, column).paragraphs[0], table.cell(1, column).paragraphs[0]
        line.text = "______________________________"
        below.add_run(caption).font.size = Pt(9)
        line.alignment = below.alignment = WD_ALIGN_PARAGRAPH.CENTER


def _set_page(document) -> None:
    section = document.sections[0]
    section.page_width, section.page_height = PAGE_WIDTH, PAGE_HEIGHT  # python-docx's template is US Letter
    section.left_margin, section.right_margin = MARGIN_LEFT, MARGIN_RIGHT
    section.top_margin, section.bottom_margin = MARGIN_TOP, MARGIN_BOTTOM


def _set_properties(document, data: AppendixData) -> None:
    """Every core property of our own: python-docx's template says «python-docx» and dates from 2013."""
    properties = document.core_properties
    properties.title = f"{TITLE} {contract_reference(data)}" + (f" ({REKEYING.lower()})" if data.rekeying else "")
    properties.subject = SUBJECT
    properties.author = properties.last_modified_by = AUTHOR
    properties.comments = properties.keywords = properties.category = ""
    properties.language = "ru-RU"
    properties.revision = 1
    # python-docx writes the time as it is with a «Z»: give it UTC.
    properties.created = properties.modified = data.generated_at.astimezone(UTC).replace(tzinfo=None)


def appendix_filename(contract_number: str) -> str:
    safe_number = re.sub(r'[\\/:*?"<>|\s]+', "_", contract_number).strip("_")
    return f"Приложение_5_к_договору_{safe_number}.docx"
