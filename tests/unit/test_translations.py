"""Our wording over Flask-Admin's: the committed .mo must be compiled from the .po beside it."""
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

CATALOGUE = Path(__file__).resolve().parents[2] / "translations" / "ru" / "LC_MESSAGES"


def _entries(catalogue) -> dict:
    # A plural message's id and strings come back as a tuple from the .po and as a list from the .mo.
    def same(value):
        return value if isinstance(value, str) else tuple(value)
    return {same(m.id): same(m.string) for m in catalogue if m.id}


def test_compiled_catalogue_matches_its_source():
    """After editing admin.po: `.venv/bin/pybabel compile -d translations -D admin -l ru`."""
    with open(CATALOGUE / "admin.po", "rb") as source, open(CATALOGUE / "admin.mo", "rb") as compiled:
        po, mo = read_po(source), read_mo(compiled)
    assert _entries(po) == _entries(mo)
    assert po["Create"].string == "Добавить"
