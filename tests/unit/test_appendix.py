""""Приложение №5" read back with python-docx."""
import io
import zipfile
from datetime import UTC, date, datetime, timedelta, timezone

from docx import Document

from stoloto import appendix, crypto

MOSCOW = timezone(timedelta(hours=3))
GENERATED_AT = datetime(2026, 11, 27, 10, 0, tzinfo=MOSCOW)


def _document_text(content: bytes) -> str:
    document = Document(io.BytesIO(content))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return "\n".join(parts)


def _appendix_data() -> tuple[appendix.AppendixData, str]:
    key = crypto.generate_private_key()
    csr_pem = crypto.build_csr(key, "СТ-2026/001", "7707083893", "ООО Ромашка")
    csr = crypto.load_csr(csr_pem)
    fingerprint = crypto.format_fingerprint(crypto.public_key_fingerprint(csr.public_key()))
    return appendix.AppendixData(
        contract_number="СТ-2026/001", contract_date=date(2026, 1, 15), agent_inn="7707083893",
        agent_name="ООО Ромашка", key_algorithm=crypto.KEY_ALGORITHM,
        fingerprint=fingerprint, csr_subject=crypto.describe_subject(csr.subject),
        csr_pem=csr_pem, generated_at=GENERATED_AT), fingerprint


def test_appendix_holds_requisites_fingerprint_and_csr():
    data, fingerprint = _appendix_data()
    text = _document_text(appendix.build_appendix(data))
    assert "ИНН агента | 7707083893" in text
    assert "Наименование агента | ООО Ромашка" in text
    assert crypto.KEY_ALGORITHM in text
    assert fingerprint in text
    assert "CN=SIS СТ-2026/001" in text
    assert data.csr_pem.strip() in text
    assert "27.11.2026" in text
    assert "(подпись)" in text and "М.П." in text


def test_appendix_title_names_the_contract_once():
    data, _ = _appendix_data()
    paragraphs = [p.text for p in Document(io.BytesIO(appendix.build_appendix(data))).paragraphs]
    assert paragraphs[:2] == [
        "Приложение №5",
        "к договору № СТ-2026/001 от 15.01.2026 на оказание услуг по распространению лотерей"]
    assert "\n".join(paragraphs).count("к договору") == 1


def test_appendix_page_is_a4_with_office_margins():
    data, _ = _appendix_data()
    sections = Document(io.BytesIO(appendix.build_appendix(data))).sections
    assert len(sections) == 1
    section = sections[0]
    assert (round(section.page_width.mm), round(section.page_height.mm)) == (210, 297)
    margins = (section.left_margin, section.right_margin, section.top_margin, section.bottom_margin)
    assert [round(margin.mm) for margin in margins] == [30, 15, 20, 20]


def test_appendix_core_properties_are_its_own():
    data, _ = _appendix_data()
    content = appendix.build_appendix(data)
    properties = Document(io.BytesIO(content)).core_properties
    assert properties.title == ("Приложение №5 к договору № СТ-2026/001 от 15.01.2026 "
                                "на оказание услуг по распространению лотерей")
    assert properties.subject == "Параметры доступа сервера интеграции агента к процессингу Столото"
    assert properties.author == "СИ Столото"
    assert properties.last_modified_by == "СИ Столото"
    assert properties.comments == ""
    # 10:00 in Moscow is 07:00 UTC; python-docx's template says 2013-12-23.
    assert properties.created == properties.modified == datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    with zipfile.ZipFile(io.BytesIO(content)) as package:
        core = package.read("docProps/core.xml").decode()
    assert "python-docx" not in core and "2013" not in core


def test_appendix_filename_is_russian_and_safe():
    name = appendix.appendix_filename("СТ-2026/001")
    assert name == "Приложение_5_к_договору_СТ-2026_001.docx"
