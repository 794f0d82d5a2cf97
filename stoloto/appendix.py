"""The document "Приложение №5 к договору на оказание услуг по распространению лотерей" (.docx)."""
import io
import re
from dataclasses import dataclass
from datetime import date, datetime

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Pt

TITLE = "Приложение №5 к договору на оказание услуг по распространению лотерей"
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
    generated_at: datetime


def build_appendix(data: AppendixData) -> bytes:
    document = Document()
    style = document.styles["Normal"]
    style.font.name = "Times New Roman"
    style.font.size = Pt(11)

    heading = document.add_paragraph()
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = heading.add_run(TITLE)
    run.bold = True
    run.font.size = Pt(13)
    subtitle = document.add_paragraph(
        f"к договору № {data.contract_number} от {data.contract_date:%d.%m.%Y}")
    subtitle.alignment = WD_ALIGN_PARAGRAPH.CENTER

    document.add_paragraph(
        "Параметры доступа сервера интеграции (СИ) агента к процессингу Столото. "
        "Агент просит зарегистрировать указанный ниже открытый ключ и выдать сертификат "
        "по приложенному запросу.")

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
    for label, value in rows:
        cells = table.add_row().cells
        cells[0].text = label
        cells[1].text = value

    document.add_paragraph()
    document.add_paragraph("Запрос на сертификат (PKCS#10, PEM):").runs[0].bold = True
    csr_paragraph = document.add_paragraph()
    csr_run = csr_paragraph.add_run(data.csr_pem.strip())
    csr_run.font.name = "Courier New"
    csr_run.font.size = Pt(9)

    document.add_paragraph()
    document.add_paragraph("От Агента:")
    document.add_paragraph("______________________ / ______________________ /")
    document.add_paragraph("        (подпись)                         (Ф.И.О.)")
    document.add_paragraph("М.П.")
    document.add_paragraph("Дата: «____» ______________ 20___ г.")

    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def appendix_filename(contract_number: str) -> str:
    safe_number = re.sub(r'[\\/:*?"<>|\s]+', "_", contract_number).strip("_")
    return f"Приложение_5_к_договору_{safe_number}.docx"
