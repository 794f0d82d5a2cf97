"""Database models of SIS."""
from datetime import date, datetime, timezone

from flask_login import UserMixin
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


ROLE_ADMIN, ROLE_OPERATOR, ROLE_VIEWER = "admin", "operator", "viewer"
ROLE_LABELS = {ROLE_ADMIN: "Администратор", ROLE_OPERATOR: "Оператор", ROLE_VIEWER: "Наблюдатель"}


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(db.String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(db.String(256))
    role: Mapped[str] = mapped_column(db.String(16))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN

    @property
    def can_act(self) -> bool:
        """Administrators and operators change things; viewers only look."""
        return self.role in (ROLE_ADMIN, ROLE_OPERATOR)

    def __str__(self) -> str:
        return self.login


class Contract(db.Model):
    __tablename__ = "contracts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # number, date and INN stay empty while the contract is a draft.
    number: Mapped[str | None] = mapped_column(db.String(64), unique=True)
    contract_date: Mapped[date | None]
    agent_inn: Mapped[str | None] = mapped_column(db.String(12))
    agent_name: Mapped[str | None] = mapped_column(db.String(255))
    comment: Mapped[str | None] = mapped_column(db.Text)
    status: Mapped[str] = mapped_column(db.String(32), default="draft", index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    key_algorithm: Mapped[str | None] = mapped_column(db.String(64))
    private_key_encrypted: Mapped[bytes | None] = mapped_column(db.LargeBinary)
    public_key_fingerprint: Mapped[str | None] = mapped_column(db.String(64))
    csr_pem: Mapped[str | None] = mapped_column(db.Text)
    appendix_docx: Mapped[bytes | None] = mapped_column(db.LargeBinary, deferred=True)
    appendix_generated_at: Mapped[datetime | None]

    @property
    def has_appendix(self) -> bool:
        return self.appendix_generated_at is not None

    def __str__(self) -> str:
        return self.number or f"Черновик #{self.id}"


class AuditEvent(db.Model):
    """Append-only journal of every contract change and action."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(db.String(64))
    object_type: Mapped[str] = mapped_column(db.String(32))
    object_id: Mapped[int | None]
    action: Mapped[str] = mapped_column(db.String(64))
    result: Mapped[str] = mapped_column(db.String(16))
    details: Mapped[str | None] = mapped_column(db.Text)


@event.listens_for(Session, "before_flush")
def _keep_audit_append_only(session, flush_context, instances) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEvent):
            raise ValueError("Журнал только дополняется: записи нельзя менять или удалять")
