"""«Приложение №5» as downloaded from the panel, printed to PDF by LibreOffice: one A4 page, nothing cut."""
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from stoloto import appendix, crypto
from stoloto.extensions import db
from stoloto.models import Contract
from stoloto.services import contracts
from stoloto.services.contracts import ContractInput

TOOLS = ("libreoffice", "pdfinfo", "pdftotext", "pdftoppm")
A4_POINTS = (595.3, 841.9)  # 210 × 297 mm
# The longest requisites the contract form accepts: the number fills the certificate's name (60 bytes of UTF-8),
# the agent's name fills its 255 characters (and makes the request on the page as long as it gets).
LONGEST_NUMBER = "Д" * 25 + "-2026/0001"
LONGEST_NAME = ("Общество с ограниченной ответственностью «Торговый дом „Северо-Западная сеть универсальных "
                "магазинов шаговой доступности и гипермаркетов“» (филиал в г. Санкт-Петербург, "
                "Петроградский район, ул. Профессора Попова, д. 37, лит. Щ)")
LONGEST_NAME = (LONGEST_NAME + " " + "Я" * 255)[:255]


@pytest.fixture(scope="session")
def office():
    """LibreOffice and poppler-utils, as `make test` installs them (the `office` target)."""
    missing = [tool for tool in TOOLS if not shutil.which(tool)]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{', '.join(missing)} not installed (make test installs libreoffice-writer-nogui "
                        "and poppler-utils)")
        pytest.skip(f"{', '.join(missing)} not installed: apt-get install -y libreoffice-writer-nogui "
                    "poppler-utils")


def printed(docx: bytes, folder) -> tuple[str, str, list[tuple[float, float, float, float]]]:
    """The appendix printed by LibreOffice: pdfinfo's report, the text, and every word's box in points."""
    source = folder / "appendix.docx"
    source.write_bytes(docx)
    # A profile of its own: a LibreOffice already running (a desktop, another test run) would take the job.
    subprocess.run(["libreoffice", f"-env:UserInstallation=file://{folder}/profile", "--headless",
                    "--convert-to", "pdf", "--outdir", str(folder), str(source)],
                   check=True, capture_output=True, timeout=180)
    pdf = str(folder / "appendix.pdf")
    info = subprocess.run(["pdfinfo", pdf], check=True, capture_output=True, text=True).stdout
    text = subprocess.run(["pdftotext", pdf, "-"], check=True, capture_output=True, text=True).stdout
    boxes = subprocess.run(["pdftotext", "-bbox", pdf, "-"], check=True, capture_output=True, text=True).stdout
    return info, text, WordBoxes.of(boxes)


class WordBoxes(HTMLParser):
    """The <word xMin= yMin= xMax= yMax=> boxes of `pdftotext -bbox`."""

    def __init__(self):
        super().__init__()
        self.boxes = []

    def handle_starttag(self, tag, attrs):
        if tag == "word":
            values = dict(attrs)
            self.boxes.append(tuple(float(values[name]) for name in ("xmin", "ymin", "xmax", "ymax")))

    @classmethod
    def of(cls, html: str) -> list[tuple[float, float, float, float]]:
        parser = cls()
        parser.feed(html)
        return parser.boxes


def vertical_lines(pdf: str, folder, at_least: float = 50) -> list[float]:
    """Where the page has vertical lines at least `at_least` points long (a table's borders), in points from the
    left; read from the page printed at 4 dots per point, in grey."""
    dots_per_point = 4
    subprocess.run(["pdftoppm", "-gray", "-r", str(72 * dots_per_point), "-f", "1", "-l", "1", "-singlefile", pdf,
                    str(folder / "page")], check=True, capture_output=True, timeout=60)
    data = (folder / "page.pgm").read_bytes()
    magic, width, height, maximum, pixels = data.split(maxsplit=4)
    assert (magic, maximum) == (b"P5", b"255")
    width, height = int(width), int(height)
    found = []
    for x in range(width):
        run = longest = 0
        for y in range(height):
            run = run + 1 if pixels[y * width + x] < 128 else 0
            longest = max(longest, run)
        if longest >= at_least * dots_per_point:
            found.append(x / dots_per_point)
    return found


def squeezed(text: str) -> str:
    """Without whitespace: a table cell wraps a long value over lines where it pleases."""
    return "".join(text.split())


def test_the_appendix_prints_on_one_a4_page_with_every_requisite_and_signature_caption(app, web, office,
                                                                                       tmp_path):
    with app.app_context():
        contract_id = contracts.create_contract(ContractInput(
            number=LONGEST_NUMBER, contract_date="15.01.2026", agent_inn="500100732259",
            agent_name=LONGEST_NAME), "tester").id
    browser = web("operator")
    browser.post("/contracts/activate/", {"id": str(contract_id)})
    download = browser.get(f"/contracts/appendix/?id={contract_id}")
    assert download.status_code == 200

    info, text, boxes = printed(download.data, tmp_path)

    assert re.search(r"^Pages:\s+1$", info, re.M), info
    width, height = (float(n) for n in re.search(r"^Page size:\s+([\d.]+) x ([\d.]+) pts", info, re.M).groups())
    assert (round(width, 1), round(height, 1)) == A4_POINTS
    with app.app_context():
        contract = db.session.get(Contract, contract_id)
        expected = [LONGEST_NUMBER, "15.01.2026", "500100732259", LONGEST_NAME, contract.key_algorithm,
                    crypto.format_fingerprint(contract.public_key_fingerprint), *contract.csr_pem.split(),
                    "Приложение №5", "(подпись)", "(Ф.И.О.)", "М.П.", "Дата: «____» ______________ 20___ г."]
    page = squeezed(text)
    assert [value for value in expected if squeezed(value) not in page] == []
    assert boxes and all(0 <= x0 and 0 <= y0 and x1 <= width and y1 <= height for x0, y0, x1, y1 in boxes)


def test_the_requisites_table_keeps_within_the_text_margins(app, web, office, tmp_path):
    """Its borders on the margins, as the text above and below it; they were ~6 pt to the left in LibreOffice."""
    with app.app_context():
        contract_id = contracts.create_contract(ContractInput(
            number="СТ-2026/001", contract_date="15.01.2026", agent_inn="7707083893"), "tester").id
    browser = web("operator")
    browser.post("/contracts/activate/", {"id": str(contract_id)})
    printed(browser.get(f"/contracts/appendix/?id={contract_id}").data, tmp_path)

    lines = vertical_lines(str(tmp_path / "appendix.pdf"), tmp_path)

    left, right = appendix.MARGIN_LEFT.pt, appendix.PAGE_WIDTH.pt - appendix.MARGIN_RIGHT.pt
    assert lines, "no table borders found"
    assert abs(min(lines) - left) <= 1 and abs(max(lines) - right) <= 1, (min(lines), max(lines), left, right)
