"""Users and roles: administrator, operator, viewer."""
import re
import secrets

from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError

from .. import audit, errors
from ..extensions import db
from ..models import ROLE_ADMIN as ADMIN
from ..models import ROLE_LABELS, User
MIN_PASSWORD_LENGTH = 8


def create_user(login: str, role: str, password: str, actor: str = audit.SYSTEM_ACTOR) -> User:
    login = (login or "").strip()
    problems = {}
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", login):
        problems["login"] = "Логин: латинские буквы, цифры и символы _ . @ -, не длиннее 64."
    if role not in ROLE_LABELS:
        problems["role"] = "Роль: admin, operator или viewer."
    if len(password or "") < MIN_PASSWORD_LENGTH:
        problems["password"] = f"Пароль не короче {MIN_PASSWORD_LENGTH} символов."
    if problems:
        raise errors.invalid(problems)
    user = User(login=login, role=role)
    user.set_password(password)
    db.session.add(user)
    try:
        db.session.flush()
        audit.record(actor, "user", user.id, "Создание пользователя", details=f"{login}, роль {role}")
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise errors.invalid({"login": "Пользователь с таким логином уже есть."}) from None
    return user


def bootstrap_admin() -> str | None:
    """On the very first start creates `admin` with a random password and returns the password."""
    if not inspect(db.engine).has_table(User.__tablename__):
        return None  # schema not migrated yet
    if db.session.scalar(select(func.count()).select_from(User)):
        return None
    password = secrets.token_urlsafe(12)
    try:
        create_user("admin", ADMIN, password)
    except errors.SisError:
        return None  # another process created it first
    return password


def authenticate(login: str, password: str) -> User | None:
    user = db.session.scalar(select(User).where(User.login == (login or "").strip()))
    if user is None or not user.active or not user.check_password(password or ""):
        return None
    return user
