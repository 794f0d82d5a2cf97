"""Writing the journal ("Журнал"): who did what to which object, and with what result."""
from sqlalchemy import Connection, insert

from .extensions import db
from .models import AuditEvent

SYSTEM_ACTOR = "система"
ANONYMOUS_ACTOR = "аноним"  # before a login succeeds nobody is known
_INSERT = insert(AuditEvent.__table__)


def _row(actor: str, object_type: str, object_id: int | None, action: str, result: str,
         details: str | None) -> dict:
    return {"actor": actor or SYSTEM_ACTOR, "object_type": object_type, "object_id": object_id,
            "action": action, "result": result, "details": details}


def record(actor: str, object_type: str, object_id: int | None, action: str,
           result: str = "ok", details: str | None = None) -> AuditEvent:
    """Adds a journal row to the current transaction; the caller commits."""
    event = AuditEvent(**_row(actor, object_type, object_id, action, result, details))
    db.session.add(event)
    return event


def record_in(connection: Connection, actor: str, object_type: str, object_id: int | None, action: str,
              result: str = "ok", details: str | None = None) -> None:
    """The same row in the transaction of a Core connection (the cash registers' path has no ORM session)."""
    connection.execute(_INSERT, _row(actor, object_type, object_id, action, result, details))


def record_now(actor: str, object_type: str, object_id: int | None, action: str,
               result: str, details: str | None = None) -> None:
    """Journal a failed action in its own commit, after the failed work was rolled back."""
    db.session.rollback()
    record(actor, object_type, object_id, action, result, details)
    db.session.commit()
