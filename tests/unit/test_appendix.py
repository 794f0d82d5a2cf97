""""Приложение №5" read back with python-docx."""
import io
from datetime import date, datetime

from docx import Document

from stoloto import appendix, crypto


def _document_text(content: bytes) -> str:
    document = Document(io.BytesIO(content))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return "\n".join(parts)


def test_appendix_holds_requisites_fingerprint_and_csr():
    key = crypto.generate_private_key()
    csr_pem = crypto.build_csr(key, "СТ-2026/001", "7707083893", "ООО Ромашка")
    csr = crypto.load_csr(csr_pem)
    fingerprint = crypto.public_key_fingerprint(csr.public_key())
    content = appendix.build_appendix(appendix.AppendixData(
        contract_number="СТ-2026/001", contract_date=date(2026, 1, 15), agent_inn="7707083893",
        agent_name="ООО Ромашка", key_algorithm=crypto.KEY_ALGORITHM,
        fingerprint=crypto.format_fingerprint(fingerprint), csr_subject=crypto.describe_subject(csr.subject),
        csr_pem=csr_pem, generated_at=datetime(2026, 11, 27, 10, 0)))
    text = _document_text(content)
    assert appendix.TITLE in text
    assert "№ СТ-2026/001 от 15.01.2026" in text
    assert "ИНН агента | 7707083893" in text
    assert "Наименование агента | ООО Ромашка" in text
    assert crypto.KEY_ALGORITHM in text
    assert crypto.format_fingerprint(fingerprint) in text
    assert "CN=SIS СТ-2026/001" in text
    assert csr_pem.strip() in text
    assert "27.11.2026" in text
    assert "(подпись)" in text and "М.П." in text


def test_appendix_filename_is_russian_and_safe():
    name = appendix.appendix_filename("СТ-2026/001")
    assert name == "Приложение_5_к_договору_СТ-2026_001.docx"
