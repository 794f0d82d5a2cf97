"""Managing users: the last administrator stays, CLI enable/list, own password change, forced change."""
import pytest
from sqlalchemy import select

from stoloto.extensions import db
from stoloto.models import AuditEvent, User
from tests.conftest import PASSWORD, Browser

LAST_ADMIN = "Это последний активный администратор"


def _user(app, login: str) -> User:
    with app.app_context():
        return db.session.scalar(select(User).where(User.login == login))


def _journal(app) -> list[AuditEvent]:
    with app.app_context():
        return db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()


def _edit_user(admin: Browser, login: str, **fields):
    user = _user(admin.client.application, login)
    form = {"role": user.role, "password": "", **fields}
    if form.pop("active", True):
        form["active"] = "y"
    return admin.post(f"/users/edit/?id={user.id}", data=form)


def test_the_last_active_administrator_cannot_be_deactivated_or_demoted_in_the_panel(app, web):
    admin = web("admin")
    for change in ({"active": False}, {"role": "operator"}):
        response = _edit_user(admin, "admin1", **change)
        assert response.status_code == 200 and LAST_ADMIN in response.get_data(as_text=True)
        user = _user(app, "admin1")
        assert (user.role, user.active) == ("admin", True)
    assert admin.get("/users/").status_code == 200  # the session went on


def test_an_administrator_can_be_demoted_while_another_is_active(app, web):
    admin = web("admin")
    assert app.test_cli_runner().invoke(args=["users", "create", "admin2", "--role", "admin", "--password-stdin"],
                                        input=f"{PASSWORD}\n").exit_code == 0
    assert _edit_user(admin, "admin2", role="operator").status_code == 302
    assert _user(app, "admin2").role == "operator"


def test_the_cli_cannot_disable_the_last_active_administrator(app, accounts):
    result = app.test_cli_runner().invoke(args=["users", "disable", "admin1"])
    assert result.exit_code != 0 and LAST_ADMIN in result.output
    assert _user(app, "admin1").active


def test_cli_enable_lets_a_disabled_user_log_in_again_and_is_journaled(app, accounts):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["users", "disable", "operator1"]).exit_code == 0
    assert Browser(app.test_client()).login("operator1").status_code == 200
    result = runner.invoke(args=["users", "enable", "operator1"])
    assert result.exit_code == 0, result.output
    assert Browser(app.test_client()).login("operator1").status_code == 302
    changes = [row.details for row in _journal(app)
               if row.actor == "командная строка" and row.action == "Изменение пользователя"]
    assert changes == ["operator1: отключён, сеансы завершены", "operator1: активен"]
    assert runner.invoke(args=["users", "enable", "nobody"]).exit_code != 0


def test_cli_create_names_the_role_in_russian(app):
    result = app.test_cli_runner().invoke(args=["users", "create", "ivanov", "--role", "operator", "--password-stdin"],
                                          input=f"{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Пользователь ivanov создан, роль «Оператор»."


BAD_ROLE = "Роль: «Администратор» (admin), «Оператор» (operator) или «Наблюдатель» (viewer)."


def test_cli_create_refuses_an_unknown_role_naming_the_roles_in_russian(app):
    result = app.test_cli_runner().invoke(args=["users", "create", "ivanov", "--role", "junk", "--password-stdin"],
                                          input=f"{PASSWORD}\n")
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"Error: {BAD_ROLE}"]  # no English usage text
    assert _user(app, "ivanov") is None


def test_cli_list_shows_login_role_in_russian_activity_and_creation(app, accounts):
    runner = app.test_cli_runner()
    runner.invoke(args=["users", "disable", "viewer1"])
    result = runner.invoke(args=["users", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["Логин", "Роль", "Активен", "Создан", "(UTC)"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["admin1", "Администратор", "да"], ["operator1", "Оператор", "да"], ["viewer1", "Наблюдатель", "нет"]]


def _change_own(browser: Browser, current: str, new: str, repeated: str | None = None):
    return browser.post("/password/", data={"current": current, "new": new,
                                            "repeated": new if repeated is None else repeated})


def test_a_user_changes_their_own_password_and_only_their_other_sessions_end(app, web):
    here, elsewhere, admin = web("operator"), web("operator"), web("admin")
    assert 'href="/password/"' in here.get("/").get_data(as_text=True)
    response = _change_own(here, PASSWORD, "my-own-password")
    assert response.status_code == 302
    assert here.get("/contracts/").status_code == 200
    assert elsewhere.get("/contracts/").status_code == 302
    assert admin.get("/contracts/").status_code == 200
    assert Browser(app.test_client()).login("operator1", "my-own-password").status_code == 302
    assert [row.details for row in _journal(app) if row.action == "Смена своего пароля"] == [
        "другие сеансы завершены"]


def test_a_wrong_current_password_is_refused_in_russian_and_journaled(app, web):
    viewer = web("viewer")
    response = _change_own(viewer, "not-my-password", "my-own-password")
    assert response.status_code == 200 and "Текущий пароль неверен." in response.get_data(as_text=True)
    assert Browser(app.test_client()).login("viewer1").status_code == 302
    rows = [row for row in _journal(app) if row.action == "Смена своего пароля"]
    assert [(row.actor, row.result) for row in rows] == [("viewer1", "error")]
    assert "not-my-password" not in rows[0].details


def test_a_short_or_mistyped_new_password_is_refused_and_changes_nothing(app, web):
    viewer = web("viewer")
    assert "Пароль не короче 8 символов." in _change_own(viewer, PASSWORD, "short").get_data(as_text=True)
    text = _change_own(viewer, PASSWORD, "my-own-password", "my-own-passw0rd").get_data(as_text=True)
    assert "Новый пароль и повтор не совпадают." in text
    assert Browser(app.test_client()).login("viewer1").status_code == 302


def _login(app, login: str, password: str):
    browser = Browser(app.test_client())
    response = browser.login(login, password)
    return browser, response


def test_a_password_set_by_the_administrator_must_be_changed_at_the_next_login(app, web):
    admin = web("admin")
    assert _edit_user(admin, "operator1", password="given-by-admin").status_code == 302
    operator, response = _login(app, "operator1", "given-by-admin")
    assert response.status_code == 302
    for page in ("/", "/contracts/", "/registers/", "/journal/"):
        moved = operator.get(page)
        assert moved.status_code == 302 and moved.headers["Location"].endswith("/password/"), page
    assert "Пароль задан администратором" in operator.get("/password/").get_data(as_text=True)
    assert _change_own(operator, "given-by-admin", "chosen-by-me").status_code == 302
    assert operator.get("/contracts/").status_code == 200
    assert _login(app, "operator1", "chosen-by-me")[0].get("/contracts/").status_code == 200


def test_a_password_set_with_the_cli_must_be_changed_too(app, accounts):
    result = app.test_cli_runner().invoke(args=["users", "set-password", "viewer1", "--password-stdin"],
                                          input="given-by-cli\n")
    assert result.exit_code == 0, result.output
    viewer, response = _login(app, "viewer1", "given-by-cli")
    assert response.status_code == 302
    assert viewer.get("/registers/").headers["Location"].endswith("/password/")
    assert viewer.post("/auth/logout").status_code == 302


@pytest.mark.parametrize("command", [["enable"], ["disable"], ["set-password", "--password-stdin"]])
def test_a_cli_login_with_a_nul_byte_names_no_user(app, accounts, command):
    result = app.test_cli_runner().invoke(args=["users", command[0], "оп\x00ер", *command[1:]],
                                          input="password-123456\n")
    assert result.exit_code == 1 and "не найден" in result.output
