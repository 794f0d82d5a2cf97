""""Загружено X магазинов": the manual's wording with Russian plural forms."""
import pytest

from stoloto.plural import plural, plural_form
from stoloto.services.stores import loaded_message


@pytest.mark.parametrize("count, expected", [
    (0, "Загружено 0 магазинов"),
    (1, "Загружено 1 магазин"),
    (2, "Загружено 2 магазина"),
    (4, "Загружено 4 магазина"),
    (5, "Загружено 5 магазинов"),
    (11, "Загружено 11 магазинов"),
    (12, "Загружено 12 магазинов"),
    (14, "Загружено 14 магазинов"),
    (21, "Загружено 21 магазин"),
    (22, "Загружено 22 магазина"),
    (25, "Загружено 25 магазинов"),
    (40, "Загружено 40 магазинов"),
    (101, "Загружено 101 магазин"),
    (111, "Загружено 111 магазинов"),
    (112, "Загружено 112 магазинов"),
    (1001, "Загружено 1001 магазин"),
    (40000, "Загружено 40000 магазинов"),
])
def test_loaded_message_uses_the_right_plural(count, expected):
    assert loaded_message(count) == expected


def test_the_manual_wording_for_no_new_stores():
    assert loaded_message(0) == "Загружено 0 магазинов"


def test_plural_form_works_for_any_word():
    assert plural(3, "касса", "кассы", "касс") == "3 кассы"
    assert plural(13, "касса", "кассы", "касс") == "13 касс"
    assert plural_form(-1, "магазин", "магазина", "магазинов") == "магазин"
