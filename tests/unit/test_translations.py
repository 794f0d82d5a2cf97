"""Our wording over Flask-Admin's: the committed .mo must be compiled from the .po beside it."""
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

CATALOGUE = Path(__file__).resolve().parents[2] / "translations" / "ru" / "LC_MESSAGES"


def test_compiled_catalogue_matches_its_source():
    with open(CATALOGUE / "admin.po", "rb") as source, open(CATALOGUE / "admin.mo", "rb") as compiled:
        po, mo = read_po(source), read_mo(compiled)
    assert {m.id: m.string for m in po if m.id} == {m.id: m.string for m in mo if m.id}
    assert po["Create"].string == "Добавить"
