"""«Пользователи» and «Сменить пароль» in a real browser: an administrator changes a user's role and password,
the user must pick their own at the next login, and the last active administrator stays one."""
import pytest

from tests.conftest import PASSWORD
from tests.e2e.browser import log_in

pytestmark = pytest.mark.browser


def open_user(page, login):
    page.wait_for_load_state("load")  # the menu opens by Bootstrap's script
    page.click("a.dropdown-toggle:has-text('Администрирование')")
    page.click("a.dropdown-item:has-text('Пользователи')")
    page.locator("tr", has=page.locator("td", has_text=login)).locator("a[title='Изменить запись']").click()


def log_out(page):
    page.click("button:has-text('Выйти')")
    page.wait_for_selector("input[name=login]")


def test_an_administrator_sets_a_role_and_a_password_the_user_then_replaces(page, live_server, accounts):
    log_in(page, live_server, accounts["admin"])
    open_user(page, accounts["operator"])
    page.select_option("select[name=role]", label="Наблюдатель")
    page.fill("input[name=password]", "given-by-admin")
    page.click("input[type=submit][value='Сохранить']")
    row = page.locator("tr", has=page.locator("td", has_text=accounts["operator"]))
    assert row.locator("td", has_text="Наблюдатель").count() == 1
    log_out(page)

    page.fill("input[name=login]", accounts["operator"])
    page.fill("input[name=password]", "given-by-admin")
    page.click("button:has-text('Войти')")
    assert "Пароль задан администратором: придумайте свой" in page.locator(".alert-info").inner_text()
    assert page.locator("h4", has_text="Сменить пароль").count() == 1  # the page's title, once
    page.goto(live_server + "/contracts/")  # every page leads here until the user picks a password
    assert page.url.endswith("/password/")

    page.fill("input[name=current]", "given-by-admin")
    page.fill("input[name=new]", "my-own-password")
    page.fill("input[name=repeated]", "my-own-password")
    page.click("button[type=submit]:has-text('Сменить пароль')")
    assert "Пароль изменён." in page.locator(".alert-success").inner_text()
    assert page.locator("[data-testid=current-user]").inner_text().strip() == f"{accounts['operator']} (наблюдатель)"


def test_a_user_changes_their_own_password_after_giving_the_current_one(page, live_server, accounts):
    log_in(page, live_server, accounts["viewer"])
    page.click("[data-testid=change-password]")
    assert page.locator("[data-testid=help-link]").get_attribute("href").endswith("#пользователи")
    page.fill("input[name=current]", "not-my-password")
    page.fill("input[name=new]", "my-own-password")
    page.fill("input[name=repeated]", "my-own-password")
    page.click("button[type=submit]:has-text('Сменить пароль')")
    assert page.locator(".invalid-feedback:visible").count() == 1
    assert page.url.endswith("/password/")

    page.fill("input[name=current]", PASSWORD)
    page.fill("input[name=new]", "my-own-password")
    page.fill("input[name=repeated]", "my-own-password")
    page.click("button[type=submit]:has-text('Сменить пароль')")
    assert "Пароль изменён. Другие ваши сеансы завершены, этот продолжается." in \
        page.locator(".alert-success").inner_text()
    log_out(page)
    page.fill("input[name=login]", accounts["viewer"])
    page.fill("input[name=password]", "my-own-password")
    page.click("button:has-text('Войти')")
    page.wait_for_selector("[data-testid=current-user]")


def test_the_last_active_administrator_can_be_neither_deactivated_nor_demoted(page, live_server, accounts):
    log_in(page, live_server, accounts["admin"])
    open_user(page, accounts["admin"])
    page.uncheck("input[name=active]")
    page.click("input[type=submit][value='Сохранить']")
    assert "Это последний активный администратор: его нельзя отключить или лишить роли администратора." in \
        page.locator("form.admin-form").inner_text()

    open_user(page, accounts["admin"])
    page.select_option("select[name=role]", label="Оператор")
    page.click("input[type=submit][value='Сохранить']")
    assert "Это последний активный администратор" in page.locator("form.admin-form").inner_text()
    page.goto(live_server + "/users/")
    row = page.locator("tr", has=page.locator("td", has_text=accounts["admin"]))
    assert row.locator("td", has_text="Администратор").count() == 1


def test_a_new_users_form_marks_login_and_password_required_and_offers_the_least_role(page, live_server, accounts):
    log_in(page, live_server, accounts["admin"])
    page.goto(live_server + "/users/new/")
    for name in ("login", "password"):
        assert page.locator(f"label[for={name}] strong.text-danger").count() == 1, name
    assert page.locator("label[for=role] strong.text-danger").count() == 0  # a choice always has a value
    assert "Не короче 8 символов." in page.locator("form.admin-form").inner_text()
    assert page.locator("select[name=role] option:checked").inner_text() == "Наблюдатель"
