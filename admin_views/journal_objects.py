"""What a journal row is about, as users know it («договор № СТ-1», «магазин 900», «касса 900/3», a login),
each a link to its page: the one place «Журнал» and «Обзор» take it from."""
from collections import defaultdict
from dataclasses import dataclass

from flask import url_for
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select

from stoloto.extensions import db
from stoloto.models import AuditEvent, CashRegister, Contract, Store, User

TYPE_NAMES = {"contract": "договор", "user": "пользователь", "store": "магазин", "setting": "настройки",
              "cash_register": "касса", "key_encryption_key": "ключ шифрования", "backup": "резервная копия",
              "alert": "уведомление"}
DELETED = {"contract": "договор (удалён)", "user": "пользователь (удалён)", "store": "магазин (удалён)",
           "cash_register": "касса (удалена)"}


@dataclass(frozen=True)
class ObjectLink:
    label: str
    url: str | None = None  # None: the object is gone, or has no page this user may open

    def __html__(self) -> str:
        if self.url is None:
            return str(Markup.escape(self.label))
        return Markup('<a href="{}">{}</a>').format(self.url, self.label)


def _contracts(ids):
    rows = db.session.execute(select(Contract.id, Contract.number).where(Contract.id.in_(ids)))
    return {i: f"договор № {number}" if number else f"черновик договора #{i}" for i, number in rows}


def _stores(ids):
    return {i: f"магазин {code}" for i, code in db.session.execute(select(Store.id, Store.code)
                                                                   .where(Store.id.in_(ids)))}


def _registers(ids):
    rows = db.session.execute(select(CashRegister.id, Store.code, CashRegister.cash_number).join(Store)
                              .where(CashRegister.id.in_(ids)))
    return {i: f"касса {code}/{number}" for i, code, number in rows}


def _users(ids):
    return {i: f"пользователь {login}" for i, login in db.session.execute(select(User.id, User.login)
                                                                          .where(User.id.in_(ids)))}


# object_type → (labels of the ids that still exist, the endpoint of an object's page, only for administrators)
_KINDS = {
    "contract": (_contracts, "contracts.details_view", False),
    "store": (_stores, "stores.details_view", False),
    "cash_register": (_registers, "registers.details_view", False),
    "user": (_users, "users.edit_view", True),
}


def _ids_of(event: AuditEvent) -> list[int]:
    if event.object_id is not None:
        return [event.object_id]
    return list(event.object_ids or [])


def object_links(events: list[AuditEvent]) -> dict[int, list[ObjectLink]]:
    """Event id → its objects as links, with one query per kind of object on the page."""
    wanted = defaultdict(set)
    for event in events:
        if event.object_type in _KINDS:
            wanted[event.object_type].update(_ids_of(event))
    labels = {kind: _KINDS[kind][0](ids) for kind, ids in wanted.items() if ids}
    admin = current_user.is_authenticated and current_user.is_admin
    links = {}
    for event in events:
        kind = event.object_type
        if kind not in _KINDS:
            links[event.id] = [_other(kind, admin)]
            continue
        # No id: a bulk action of old, or a failed login with an unknown login.
        links[event.id] = [_link(kind, i, labels.get(kind, {}), admin) for i in _ids_of(event)] or \
            [ObjectLink(TYPE_NAMES[kind])]
    return links


def _link(kind: str, object_id: int, known: dict[int, str], admin: bool) -> ObjectLink:
    if object_id not in known:
        return ObjectLink(DELETED[kind])
    _, endpoint, admin_only = _KINDS[kind]
    return ObjectLink(known[object_id], url_for(endpoint, id=object_id) if admin or not admin_only else None)


def _other(kind: str, admin: bool) -> ObjectLink:
    if kind == "setting":
        return ObjectLink(TYPE_NAMES[kind], url_for("settings.index") if admin else None)
    return ObjectLink(TYPE_NAMES.get(kind, kind))
