"""Managing users: the last administrator stays, CLI enable/list, own password change, forced change."""
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
    changes = [row.details for row in _journal(app) if row.actor == "cli" and row.action == "Изменение пользователя"]
    assert changes == ["operator1: отключён, сеансы завершены", "operator1: активен"]
    assert runner.invoke(args=["users", "enable", "nobody"]).exit_code != 0


def test_cli_list_shows_login_role_in_russian_activity_and_creation(app, accounts):
    runner = app.test_cli_runner()
    runner.invoke(args=["users", "disable", "viewer1"])
    result = runner.invoke(args=["users", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["Логин", "Роль", "Активен", "Создан", "(UTC)"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["admin1", "Администратор", "да"], ["operator1", "Оператор", "да"], ["viewer1", "Наблюдатель", "нет"]]
