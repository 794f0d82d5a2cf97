"""Writing the journal ("Журнал"): who did what to which object, and with what result."""
from collections.abc import Iterable

from sqlalchemy import Connection, insert

from .errors import SisError
from .extensions import db
from .models import AuditEvent

SYSTEM_ACTOR = "система"
# Commands run on the server (`flask --app app …`): in Cyrillic, so that no login (Latin only) can be taken for them.
CLI_ACTOR = "командная строка"
ANONYMOUS_ACTOR = "аноним"  # before a login succeeds nobody is known
# A bulk action's row keeps the ids of its first objects for «Журнал» to list; its details say how many in all.
LISTED_OBJECTS = 50
_INSERT = insert(AuditEvent.__table__)
# A row's result: a refusal that only asks the user to finish their input is a warning, not an error.
RESULT_LABELS = {"ok": "успешно", "warning": "предупреждение", "error": "ошибка"}


def result_label(result: str) -> str:
    return RESULT_LABELS.get(result, result)


def _row(actor: str, object_type: str, object_id: int | None, action: str, result: str,
         details: str | None, object_ids: Iterable[int] | None) -> dict:
    listed = list(object_ids)[:LISTED_OBJECTS] if object_ids is not None else None
    return {"actor": actor or SYSTEM_ACTOR, "object_type": object_type, "object_id": object_id,
            "action": action, "result": result, "details": details, "object_ids": listed or None}


def record(actor: str, object_type: str, object_id: int | None, action: str,
           result: str = "ok", details: str | None = None, object_ids: Iterable[int] | None = None) -> AuditEvent:
    """Adds a journal row to the current transaction; the caller commits.

    A bulk action passes object_id None and the ids of its objects as object_ids."""
    event = AuditEvent(**_row(actor, object_type, object_id, action, result, details, object_ids))
    db.session.add(event)
    return event


def record_in(connection: Connection, actor: str, object_type: str, object_id: int | None, action: str,
              result: str = "ok", details: str | None = None, object_ids: Iterable[int] | None = None) -> None:
    """The same row in the transaction of a Core connection (the cash registers' path has no ORM session)."""
    connection.execute(_INSERT, _row(actor, object_type, object_id, action, result, details, object_ids))


def record_now(actor: str, object_type: str, object_id: int | None, action: str,
               result: str, details: str | None = None) -> None:
    """Journal a failed action in its own commit, after the failed work was rolled back."""
    db.session.rollback()
    record(actor, object_type, object_id, action, result, details)
    db.session.commit()


def record_refusal(actor: str, object_type: str, object_id: int | None, action: str, error: SisError) -> None:
    """record_now for a SisError, at its level: a draft's refusal is a warning, not an error."""
    record_now(actor, object_type, object_id, action, error.level, str(error))


def field_names(labels: dict[str, str], names: Iterable[str]) -> str:
    """The changed fields by their form labels: «Наименование агента», «Комментарий»."""
    return ", ".join(f"«{labels.get(name, name)}»" for name in names)
