"""Users and roles (administrator, operator, viewer), their logins and sessions."""
import math
import re
import secrets
from datetime import timedelta
from functools import cache

from sqlalchemy import delete, func, inspect, select
from sqlalchemy.exc import IntegrityError

# Called through the module so that every password check, real or dummy, is the same call.
from werkzeug import security

from .. import audit, errors
from ..boundary import is_storable
from ..extensions import db
from ..models import ROLE_ADMIN as ADMIN, ROLE_LABELS, LoginFailure, User, UserSession, utcnow

MIN_PASSWORD_LENGTH = 8
# After this many failed logins for one login, or from one address, within the window, logins wait.
FAILED_LOGIN_LIMIT = 10
FAILED_LOGIN_WINDOW = timedelta(minutes=15)
FAILED_LOGIN = "Неудачный вход"
# A login lasts this long at most, even in a browser that is never closed.
SESSION_LIFETIME = timedelta(days=7)
# «Роль: «Администратор» (admin), … или «Наблюдатель» (viewer).»: the command line takes the names in brackets.
_ROLE_NAMES = [f"«{label}» ({role})" for role, label in ROLE_LABELS.items()]
BAD_ROLE = f"Роль: {', '.join(_ROLE_NAMES[:-1])} или {_ROLE_NAMES[-1]}."
LAST_ADMIN = "Это последний активный администратор: его нельзя отключить или лишить роли администратора."


def _password_problems(password: str | None) -> dict[str, str]:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        return {"password": f"Пароль не короче {MIN_PASSWORD_LENGTH} символов."}
    return {}


def create_user(login: str, role: str, password: str, actor: str = audit.SYSTEM_ACTOR) -> User:
    login = (login or "").strip()
    problems = {}
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", login):
        problems["login"] = "Логин: латинские буквы, цифры и символы _ . @ -, не длиннее 64 символов."
    if role not in ROLE_LABELS:
        problems["role"] = BAD_ROLE
    problems.update(_password_problems(password))
    if problems:
        raise errors.invalid(problems)
    user = User(login=login, role=role)
    user.set_password(password)
    db.session.add(user)
    try:
        db.session.flush()
        audit.record(actor, "user", user.id, "Создание пользователя", details=f"{login}, роль «{ROLE_LABELS[role]}»")
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise errors.invalid({"login": "Пользователь с таким логином уже есть."}) from None
    return user


def bootstrap_admin(given_password: str | None = None, source: str = "SIS_ADMIN_PASSWORD") -> str | None:
    """On the very first start creates `admin` and returns its password: the given one, else a random one.

    A given password that breaks the password rules stops the start, even before the schema exists,
    so the mistake shows on the first start and not after someone tried to log in."""
    if given_password is not None:
        problems = _password_problems(given_password)
        if problems:
            raise errors.SisError("CONFIG_INVALID", f"{source}: {problems['password']}")
    if not inspect(db.engine).has_table(User.__tablename__):
        return None  # schema not migrated yet
    if db.session.scalar(select(func.count()).select_from(User)):
        return None
    password = given_password or secrets.token_urlsafe(12)
    try:
        create_user("admin", ADMIN, password)
    except errors.SisError:
        return None  # another process created it first
    return password


def update_user(user_id: int, role: str, active: bool, new_password: str | None, actor: str) -> User:
    """Changes a user's role, activity or password; deactivation and a new password end their sessions."""
    user = db.session.get(User, user_id)
    if user is None:
        raise errors.not_found("Пользователь")
    problems = {} if role in ROLE_LABELS else {"role": BAD_ROLE}
    if new_password:
        problems.update(_password_problems(new_password))
    if problems:
        raise errors.invalid(problems)
    if user.active and user.role == ADMIN and (role != ADMIN or not active) and not _other_active_admins(user.id):
        raise errors.invalid({"active" if role == ADMIN else "role": LAST_ADMIN})
    changes = []
    if role != user.role:
        changes.append(f"роль «{ROLE_LABELS[role]}»")
        user.role = role
    if active != user.active:
        changes.append("активен" if active else "отключён, сеансы завершены")
        user.active = active
        if not active:
            _end_every_session(user.id)
    if new_password:
        changes.append("пароль изменён, сеансы завершены")
        user.set_password(new_password)
        # A password someone else chose is known to them: the user replaces it at the next login.
        user.must_change_password = True
        _end_every_session(user.id)
    if changes:
        audit.record(actor, "user", user.id, "Изменение пользователя", details=f"{user.login}: {', '.join(changes)}")
    db.session.commit()
    return user


def _other_active_admins(user_id: int) -> list[int]:
    # Locks those rows on PostgreSQL, so two administrators demoting each other at once cannot both win.
    return db.session.scalars(select(User.id).where(User.role == ADMIN, User.active.is_(True), User.id != user_id)
                              .with_for_update()).all()


def _by_login(login: str) -> User:
    # A login the database cannot hold (a NUL byte) names no user; PostgreSQL would refuse the query.
    user = db.session.scalar(select(User).where(User.login == login)) if is_storable(login) else None
    if user is None:
        raise errors.not_found(f"Пользователь {login}")
    return user


def set_password(login: str, password: str, actor: str) -> User:
    """A new password from the command line; the user's sessions end."""
    user = _by_login(login)
    if problems := _password_problems(password):
        raise errors.invalid(problems)
    return update_user(user.id, user.role, user.active, password, actor)


def deactivate(login: str, actor: str) -> User:
    """The user can no longer log in; their sessions end."""
    user = _by_login(login)
    return update_user(user.id, user.role, False, None, actor)


def activate(login: str, actor: str) -> User:
    """The user can log in again, with the password they had."""
    user = _by_login(login)
    return update_user(user.id, user.role, True, None, actor)


def all_users() -> list[User]:
    return db.session.scalars(select(User).order_by(User.login)).all()


def change_own_password(user: User, current: str, new: str, repeated: str) -> None:
    """A user's own new password: needs the current one; their other sessions end, this one goes on."""
    if not security.check_password_hash(user.password_hash, current or ""):
        audit.record(user.login, "user", user.id, "Смена своего пароля", "error", details="неверный текущий пароль")
        db.session.commit()
        raise errors.invalid({"current": "Текущий пароль неверен."})
    problems = _password_problems(new)
    if not problems and new != repeated:
        problems = {"repeated": "Новый пароль и повтор не совпадают."}
    if problems:
        raise errors.invalid({"new" if key == "password" else key: text for key, text in problems.items()})
    user.set_password(new)
    user.must_change_password = False
    db.session.execute(delete(UserSession).where(UserSession.user_id == user.id,
                                                 UserSession.token != user.session_token))
    audit.record(user.login, "user", user.id, "Смена своего пароля", details="другие сеансы завершены")
    db.session.commit()


@cache
def _dummy_hash() -> str:
    return security.generate_password_hash(secrets.token_urlsafe(16))


def _must_wait(column, value: str, now) -> timedelta | None:
    """How long until fewer than the limit of failures remain in the window, or None if not over it."""
    recent = db.session.scalars(
        select(LoginFailure.failed_at).where(column == value, LoginFailure.failed_at > now - FAILED_LOGIN_WINDOW)
        .order_by(LoginFailure.failed_at.desc()).limit(FAILED_LOGIN_LIMIT)).all()
    return recent[-1] + FAILED_LOGIN_WINDOW - now if len(recent) == FAILED_LOGIN_LIMIT else None


def _journal_failure(user: User | None, login: str, address: str, note: str = "") -> None:
    # The login tried and the address, never the password; the actor is unknown until a login succeeds.
    details = f"логин «{login}», адрес {address}" + (f"; {note}" if note else "")
    audit.record(audit.ANONYMOUS_ACTOR, "user", user.id if user else None, FAILED_LOGIN, "error", details)


def authenticate(login: str, password: str, address: str) -> User:
    """The user these credentials belong to, with a session token; raises LOGIN_FAILED or LOGIN_THROTTLED.

    Failures are counted in the database, so the limit holds across every serving process.
    """
    login, address = (login or "").strip()[:64], (address or "")[:64]
    now = utcnow()
    waits = [wait for wait in (_must_wait(LoginFailure.login, login, now),
                               _must_wait(LoginFailure.address, address, now)) if wait]
    if waits:
        _journal_failure(None, login, address, "попытки приостановлены")
        db.session.commit()
        raise errors.login_throttled(max(1, math.ceil(max(waits).total_seconds() / 60)))
    user = db.session.scalar(select(User).where(User.login == login))
    # An unknown login costs the same hash check as a known one: timing must not tell which logins exist.
    password_matches = security.check_password_hash(user.password_hash if user else _dummy_hash(), password or "")
    if user is None or not user.active or not password_matches:
        db.session.execute(delete(LoginFailure).where(LoginFailure.failed_at <= now - FAILED_LOGIN_WINDOW))
        db.session.add(LoginFailure(login=login, address=address, failed_at=now))
        _journal_failure(user, login, address)
        db.session.commit()
        raise errors.login_failed()
    db.session.execute(delete(LoginFailure).where(LoginFailure.login == login))
    db.session.execute(delete(UserSession).where(UserSession.created_at <= now - SESSION_LIFETIME))
    user.session_token = secrets.token_urlsafe(32)
    db.session.add(UserSession(token=user.session_token, user_id=user.id, created_at=now))
    audit.record(user.login, "user", user.id, "Вход в систему", details=f"адрес {address}")
    db.session.commit()
    return user


def user_of_session(token: str) -> User | None:
    """The active user a session cookie names; None once that session was logged out, the user was
    deactivated or given a new password, or the session is older than SESSION_LIFETIME."""
    user = db.session.scalar(
        select(User).join(UserSession, UserSession.user_id == User.id)
        .where(UserSession.token == token, UserSession.created_at > utcnow() - SESSION_LIFETIME,
               User.active.is_(True)))
    if user is not None:
        user.session_token = token
    return user


def end_session(user: User, actor: str) -> None:
    """Logout: this session ends on the server, copies of its cookie included; the user's others go on."""
    db.session.execute(delete(UserSession).where(UserSession.token == user.session_token))
    audit.record(actor, "user", user.id, "Выход из системы")
    db.session.commit()


def _end_every_session(user_id: int) -> None:
    db.session.execute(delete(UserSession).where(UserSession.user_id == user_id))
