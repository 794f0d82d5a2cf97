"""The SET Centrum answer (docs/protocols.md §2) checked shop by shop, without HTTP."""
import pytest

from stoloto.clients.setcentrum import SetCentrumError, Shop, parse_shops


def test_shops_with_missing_or_null_name_and_address_are_fine():
    shops = parse_shops({"shops": [{"number": 101, "name": "Универсам", "address": " г. Тверь "},
                                   {"number": 102, "name": None, "address": None}, {"number": 103}]})
    assert shops == [Shop("101", "Универсам", "г. Тверь"), Shop("102", None, None), Shop("103", None, None)]


def test_duplicate_numbers_count_once_and_the_first_wins():
    shops = parse_shops({"shops": [{"number": 7, "address": "первый"}, {"number": 7, "address": "второй"}]})
    assert shops == [Shop("7", None, "первый")]


def test_an_empty_list_is_an_answer():
    assert parse_shops({"shops": []}) == []


def test_numbers_past_the_int4_range_are_store_codes_like_any_other():
    assert parse_shops({"shops": [{"number": 2 ** 31}, {"number": 10 ** 16 - 1}]}) == [
        Shop("2147483648", None, None), Shop("9999999999999999", None, None)]


@pytest.mark.parametrize("number", ["101", 0, -5, 101.5, 101.0, True, False, None, [101], 10 ** 16, 2 ** 63,
                                    10 ** 30, float("inf")])
def test_a_shop_without_a_valid_integer_number_fails_the_whole_answer(number):
    with pytest.raises(SetCentrumError) as caught:
        parse_shops({"shops": [{"number": 101}, {"number": number}]})
    assert caught.value.code == "BAD_SHOP"
    assert "у 2-го магазина в списке некорректный номер" in str(caught.value)


def test_a_shop_without_number_fails():
    with pytest.raises(SetCentrumError, match="нет номера"):
        parse_shops({"shops": [{"name": "Без номера"}]})


@pytest.mark.parametrize("data", [[], {}, {"shops": None}, {"shops": {"101": {}}}, "shops", None])
def test_not_the_documented_shape_fails(data):
    with pytest.raises(SetCentrumError, match="нет списка магазинов"):
        parse_shops(data)


@pytest.mark.parametrize("shop, message", [
    ("101", "неверный формат записи"),
    ({"number": 101, "name": 5}, "поле name не строка"),
    ({"number": 101, "address": "д" * 501}, "поле address длиннее 500 символов"),
    ({"number": 101, "name": "Магазин\u0000"}, "поле name содержит нулевой байт"),
    ({"number": 101, "address": "\u0000"}, "поле address содержит нулевой байт"),
    ({"number": 101, "address": "г. Тверь \udfff"}, "поле address содержит недопустимый символ"),
])
def test_malformed_shop_fails(shop, message):
    with pytest.raises(SetCentrumError, match=message):
        parse_shops({"shops": [shop]})
