"""Every list's pager: «1–50 из 1 200» with Russian digit grouping, and «Перейти к странице» that never fails."""
import re

import pytest
from sqlalchemy import func, insert, select

from stoloto.extensions import db
from stoloto.models import AuditEvent, CashRegister, Store
from stoloto.services import contracts, stores
from stoloto.services.contracts import ContractInput
from stoloto.services.stores import StoreInput
from tests.conftest import statements_run

TOTAL = 1_200  # 24 pages of 50
BAD_PAGE = "Номер страницы — целое число от 1 до 24."
PAST_THE_END = "Всего 24 страницы: показана последняя."


@pytest.fixture
def many_stores(app):
    with app.app_context():
        db.session.execute(insert(Store), [{"code": str(1000 + i), "source": "set"} for i in range(TOTAL)])
        db.session.commit()


def summary(response) -> str:
    assert response.status_code == 200
    found = re.findall(r'data-testid="pager-summary"[^>]*>\s*(.*?)\s*<', response.get_data(as_text=True), re.S)
    assert len(found) == 1, found
    return found[0]


def current_page(response) -> str:
    return re.search(r'<li class="page-item active">\s*<a[^>]*>(\d+)</a>', response.get_data(as_text=True)).group(1)


def flashed(response) -> list[str]:
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>|&times;", "", text)).strip()
            for text in re.findall(r'<div class="alert[^"]*"[^>]*>(.*?)</div>',
                                   response.get_data(as_text=True), re.S)]


def test_the_pager_shows_the_rows_shown_and_the_total_grouped_as_russians_write(web, many_stores):
    browser = web("viewer")
    assert summary(browser.get("/stores/")) == "1–50 из 1\u00a0200"
    assert summary(browser.get("/stores/?page=1")) == "51–100 из 1\u00a0200"
    assert summary(browser.get("/stores/?page=23")) == "1\u00a0151–1\u00a0200 из 1\u00a0200"
    assert summary(browser.get("/stores/?page_size=100&page=2")) == "201–300 из 1\u00a0200"
    # The tab above the list counts the same way: «Список (1 200)».
    assert re.search(r'class="nav-link active">[^<]*\(1\u00a0200\)</a>', browser.get("/stores/").get_data(as_text=True))


def test_every_list_shows_its_total(app, web):
    browser = web("admin")
    with app.app_context():
        contract = contracts.create_contract(ContractInput(number="СТ-1"), "tester")
        for code in ("101", "102"):
            store = stores.create_store(StoreInput(code=code, contract_id=contract.id), "tester")
        db.session.add(CashRegister(store_id=store.id, cash_number=1, contract_id=contract.id))
        db.session.commit()
        events = db.session.scalar(select(func.count()).select_from(AuditEvent))
    assert summary(browser.get("/contracts/")) == "1–1 из 1"
    assert summary(browser.get("/stores/")) == "1–2 из 2"
    assert summary(browser.get("/registers/")) == "1–1 из 1"
    assert summary(browser.get("/users/")) == "1–3 из 3"
    assert summary(browser.get("/journal/")) == f"1–{events} из {events}"


def test_an_empty_list_shows_no_pager(web):
    page = web("viewer").get("/registers/").get_data(as_text=True)
    assert "pager-summary" not in page and "pager-jump" not in page


def test_jumping_to_a_page_shows_it(web, many_stores):
    response = web("viewer").get("/stores/?goto=3")
    assert summary(response) == "101–150 из 1\u00a0200" and current_page(response) == "3"
    assert BAD_PAGE not in flashed(response) and PAST_THE_END not in flashed(response)


def test_the_jump_keeps_the_search_filters_and_page_size(web, many_stores):
    response = web("viewer").get("/stores/?search=10&page_size=20&flt0_1=set&goto=2")
    # 131 of the codes 1000–2199 contain «10» (1000–1099, 1100–1109, 1210, …): page 2 of 20 is rows 21–40.
    assert summary(response) == "21–40 из 131" and current_page(response) == "2"


@pytest.mark.parametrize("typed", ["0", "-1", "abc", "", " ", "2.5", "9" * 25, "1e3", "３"])
def test_a_page_number_that_is_no_page_says_so_and_stays(web, many_stores, typed):
    response = web("viewer").get("/stores/", query_string={"page": "4", "goto": typed})
    assert summary(response) == "201–250 из 1\u00a0200"
    assert BAD_PAGE in flashed(response)


@pytest.mark.parametrize("typed", ["25", "99999", str(2 ** 31 - 1)])
def test_a_page_past_the_last_shows_the_last_and_says_so(web, many_stores, typed):
    response = web("viewer").get("/stores/", query_string={"goto": typed})
    assert summary(response) == "1\u00a0151–1\u00a0200 из 1\u00a0200" and current_page(response) == "24"
    assert PAST_THE_END in flashed(response)


def test_a_page_address_past_the_last_shows_the_last(web, many_stores):
    # An old bookmark after stores were deleted: the last page, not an empty list.
    assert summary(web("viewer").get("/stores/?page=40")) == "1\u00a0151–1\u00a0200 из 1\u00a0200"


def test_the_jump_form_keeps_the_current_list_and_page(web, many_stores):
    page = web("viewer").get("/stores/?search=10&page=1&sort=0&desc=1&page_size=20").get_data(as_text=True)
    form = re.search(r'<form[^>]*data-testid="pager-jump".*?</form>', page, re.S).group(0)
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    assert hidden == {"search": "10", "page": "1", "sort": "0", "desc": "1", "page_size": "20"}
    assert re.search(r'<input[^>]*name="goto"[^>]*min="1"[^>]*max="7"', form)  # 131 stores, 20 a page


def test_a_jump_costs_one_count(app, web, many_stores):
    browser = web("viewer")
    response, statements = statements_run(app, lambda: browser.get("/stores/?goto=20"))
    assert summary(response) == "951–1\u00a0000 из 1\u00a0200"
    assert sum("count(" in statement.lower() for statement in statements) == 1
