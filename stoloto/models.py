"""Database models of SIS."""
from datetime import UTC, date, datetime

from flask_login import UserMixin
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column
from werkzeug.security import generate_password_hash

from .extensions import db


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


ROLE_ADMIN, ROLE_OPERATOR, ROLE_VIEWER = "admin", "operator", "viewer"
ROLE_LABELS = {ROLE_ADMIN: "Администратор", ROLE_OPERATOR: "Оператор", ROLE_VIEWER: "Наблюдатель"}
# The form labels of the fields a journal row names as changed.
CONTRACT_FIELD_LABELS = {"number": "Номер договора", "contract_date": "Дата заключения договора",
                         "agent_inn": "ИНН агента", "agent_name": "Наименование агента", "comment": "Комментарий"}
STORE_FIELD_LABELS = {"code": "Код магазина", "contract_id": "Договор", "name": "Наименование", "address": "Адрес",
                      "comment": "Комментарий"}


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(db.String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(db.String(256))
    role: Mapped[str] = mapped_column(db.String(16))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when an administrator (panel or CLI) sets the password; the panel then asks for a new one.
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=db.false())
    # The UserSession this request came with (set at login and by the user loader), not a column.
    session_token = None

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def get_id(self) -> str | None:
        # The session cookie names the login's own session row, never the user's id: deleting the row
        # ends that session, copies of the cookie included.
        return self.session_token

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


class UserSession(db.Model):
    """One login of a user: the session cookie names its token; logout deletes it, and deactivation
    or a new password deletes all of the user's."""

    __tablename__ = "user_sessions"

    token: Mapped[str] = mapped_column(db.String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(db.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class LoginFailure(db.Model):
    """A failed login in the last minutes: counted per login and per address to throttle guessing."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(db.String(64), index=True)
    address: Mapped[str] = mapped_column(db.String(64), index=True)
    failed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


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

    # Filled by "Активация" (docs/protocols.md §1.1).
    activation_request_id: Mapped[str | None] = mapped_column(db.String(36))
    agent_id: Mapped[str | None] = mapped_column(db.String(64))
    certificate_pem: Mapped[str | None] = mapped_column(db.Text)
    ca_certificate_pem: Mapped[str | None] = mapped_column(db.Text)
    activated_at: Mapped[datetime | None]

    # The certificate's end, read from certificate_pem when it is stored: every page's header finds the
    # contracts whose certificate ends soon with one indexed query.
    certificate_not_after: Mapped[datetime | None] = mapped_column(index=True)
    certificate_state: Mapped[str | None] = mapped_column(db.String(16))  # certificate_lifecycle.CertificateState
    # The key waiting for its certificate: by renewal (§1.4) or, after an expiry, by re-keying (a new
    # «Приложение №5», then §1.1); sealed as the current key is. The request id is committed before the call.
    pending_private_key_encrypted: Mapped[bytes | None] = mapped_column(db.LargeBinary)
    pending_csr_pem: Mapped[str | None] = mapped_column(db.Text)
    renewal_request_id: Mapped[str | None] = mapped_column(db.String(36))
    # The last refused or failed renewal: shown on the contract's page; the job waits a while before trying again.
    renewal_error: Mapped[str | None] = mapped_column(db.Text)
    renewal_failed_at: Mapped[datetime | None]
    # The key and certificate before the last renewal, kept until the new certificate has worked once.
    previous_private_key_encrypted: Mapped[bytes | None] = mapped_column(db.LargeBinary)
    previous_certificate_pem: Mapped[str | None] = mapped_column(db.Text)

    @property
    def has_appendix(self) -> bool:
        return self.appendix_generated_at is not None

    def __str__(self) -> str:
        return self.number or f"Черновик #{self.id}"


class TerminalBatch(db.Model):
    """One request for terminal numbers (docs/protocols.md §1.2); its request id is committed before the call."""

    __tablename__ = "terminal_batches"
    __table_args__ = (
        # At most one batch in flight per contract, whichever process creates it.
        db.Index("uq_terminal_batches_pending", "contract_id", unique=True,
                 sqlite_where=db.text("status = 'pending'"), postgresql_where=db.text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(db.ForeignKey("contracts.id"), index=True)
    request_id: Mapped[str] = mapped_column(db.String(36), unique=True)
    requested_count: Mapped[int]
    status: Mapped[str] = mapped_column(db.String(16), default="pending")  # pending, done, failed
    stoloto_batch_id: Mapped[str | None] = mapped_column(db.String(64))
    received_count: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(db.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]

    contract = db.relationship("Contract", backref=db.backref("batches", lazy="dynamic"))


class Terminal(db.Model):
    """A Stoloto terminal number issued to a contract; free until a cash register claims it."""

    __tablename__ = "terminals"
    __table_args__ = (
        db.Index("ix_terminals_contract_status", "contract_id", "status"),
        # The free numbers only (a few per cent of them all): a claim takes a contract's lowest id, «Обзор»
        # counts them per contract, neither reading the registered ones.
        db.Index("ix_terminals_free", "contract_id", "id", postgresql_where=db.text("status = 'free'"),
                 sqlite_where=db.text("status = 'free'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(db.String(32), unique=True)
    contract_id: Mapped[int] = mapped_column(db.ForeignKey("contracts.id"))
    batch_id: Mapped[int] = mapped_column(db.ForeignKey("terminal_batches.id"))
    status: Mapped[str] = mapped_column(db.String(16), default="free")  # free, claimed, registered, retired
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Store(db.Model):
    """A store of the chain ("Магазины"); its code is the store number in SET Centrum."""

    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(db.String(16), unique=True)
    contract_id: Mapped[int | None] = mapped_column(db.ForeignKey("contracts.id"), index=True)
    name: Mapped[str | None] = mapped_column(db.String(255))
    address: Mapped[str | None] = mapped_column(db.String(500))
    comment: Mapped[str | None] = mapped_column(db.Text)
    source: Mapped[str] = mapped_column(db.String(16), default="manual")  # set, manual
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    contract = db.relationship("Contract", backref=db.backref("stores", lazy="dynamic"))

    def __str__(self) -> str:
        return f"{self.code} {self.name or ''}".strip()


class CashRegister(db.Model):
    """A cash register of a store that registers itself as a Stoloto terminal (docs/protocols.md §3)."""

    __tablename__ = "cash_registers"
    __table_args__ = (
        db.UniqueConstraint("store_id", "cash_number", name="uq_cash_registers_store_cash"),
        # «Кассы»'s filter «Причина ожидания» and its count; only waiting registers have a reason.
        db.Index("ix_cash_registers_reason", "reason", postgresql_where=db.text("reason IS NOT NULL"),
                 sqlite_where=db.text("reason IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(db.ForeignKey("stores.id"))
    # Indexed for «Кассы»'s search (stoloto/services/register_search.py).
    cash_number: Mapped[int] = mapped_column(index=True)
    serial_number: Mapped[str | None] = mapped_column(db.String(64), index=True)
    fiscal_number: Mapped[str | None] = mapped_column(db.String(64))
    cash_type: Mapped[str | None] = mapped_column(db.String(32))
    state: Mapped[str] = mapped_column(db.String(16), default="pending", index=True)  # pending, registered
    reason: Mapped[str | None] = mapped_column(db.String(32))  # why pending: register_lifecycle.Reason
    # The contract it is being (or was) registered under, and its terminal; when the store is
    # re-bound, the register starts over under the store's new contract once that one is «Активный».
    contract_id: Mapped[int | None] = mapped_column(db.ForeignKey("contracts.id"), index=True)
    terminal_id: Mapped[int | None] = mapped_column(db.ForeignKey("terminals.id"), unique=True)
    registration_request_id: Mapped[str | None] = mapped_column(db.String(36))
    last_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    last_error: Mapped[str | None] = mapped_column(db.Text)
    # Stoloto's own code and text while it refuses the registration (reason STOLOTO_REFUSED).
    stoloto_error_code: Mapped[str | None] = mapped_column(db.String(64))
    stoloto_error_message: Mapped[str | None] = mapped_column(db.Text)
    registered_at: Mapped[datetime | None]
    # Set while a job run, «Зарегистрировать сейчас» or `registers finish` advances the register
    # (services/registers.py claims it): no other run takes it until then, nor twice at once.
    claimed_until: Mapped[datetime | None]
    # Its store is bound to another contract than `contract_id`: the job moves it once that one is «Активный».
    # Kept with every write of either side (register_lifecycle.move, services/stores.py), so the job finds
    # such registers through ix_cash_registers_waiting instead of comparing every register with its store.
    store_moved: Mapped[bool] = mapped_column(default=False, server_default=db.false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    store = db.relationship("Store")
    contract = db.relationship("Contract")
    terminal = db.relationship("Terminal")


# The job's selection: registers that wait or whose store moved, never tried first, then the longest
# waiting (ORDER BY last_attempt_at NULLS FIRST, id); only those are in it, a tenth of the table or less.
# The job's query (services/registers.py) takes WAITING_OR_MOVED as its condition, so the database proves
# the index covers it; the state is a literal, since a prepared statement's generic plan could prove
# nothing from a parameter. Migration 0014 gives SQLite the same index as SQLite renders the condition
# (`store_moved = 1`), without NULLS FIRST, which SQLite refuses in an index and sorts so anyway (alembic
# compares no expression index on SQLite).
WAITING_OR_MOVED = db.or_(CashRegister.state == db.literal_column("'pending'"), CashRegister.store_moved)
db.Index("ix_cash_registers_waiting", CashRegister.last_attempt_at.nulls_first(), CashRegister.id,
         postgresql_where=WAITING_OR_MOVED).ddl_if(dialect="postgresql")


class DailyRegistrations(db.Model):
    """Registers that changed state, per day (in SIS_TIMEZONE), contract and outcome: «Обзор» charts these
    instead of scanning cash_registers. Counted by register_lifecycle.move in the move's own transaction.

    These counters are spread over stats.SLOTS rows per key (`slot`), added up when read: one row that every
    registration updated would make each wait for the one before it to commit (stoloto/stats.py)."""

    __tablename__ = "daily_registrations"

    day: Mapped[date] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(db.ForeignKey("contracts.id", ondelete="CASCADE"), primary_key=True)
    outcome: Mapped[str] = mapped_column(db.String(16), primary_key=True)  # stats.OUTCOMES
    slot: Mapped[int] = mapped_column(db.SmallInteger, primary_key=True, default=0, server_default="0")  # stats.SLOTS
    count: Mapped[int] = mapped_column(default=0)


class DailyTerminals(db.Model):
    """Terminal numbers a contract received and used (claimed) per day (in SIS_TIMEZONE): its pool's history
    and the forecast's rate, counted where numbers arrive (services/terminals.py) and are claimed."""

    __tablename__ = "daily_terminals"

    day: Mapped[date] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(db.ForeignKey("contracts.id", ondelete="CASCADE"), primary_key=True)
    slot: Mapped[int] = mapped_column(db.SmallInteger, primary_key=True, default=0, server_default="0")
    issued: Mapped[int] = mapped_column(default=0)
    used: Mapped[int] = mapped_column(default=0)


class HourlyStolotoCalls(db.Model):
    """Calls to Stoloto per hour (UTC) and endpoint, with those refused and those left unanswered."""

    __tablename__ = "hourly_stoloto_calls"

    hour: Mapped[datetime] = mapped_column(primary_key=True)
    endpoint: Mapped[str] = mapped_column(db.String(32), primary_key=True)  # a name of stoloto_services.py
    slot: Mapped[int] = mapped_column(db.SmallInteger, primary_key=True, default=0, server_default="0")
    calls: Mapped[int] = mapped_column(default=0)
    # Stoloto answered no (401, TERMINAL_LIMIT_EXCEEDED…): a protocol answer, not an outage.
    refusals: Mapped[int] = mapped_column(default=0)
    # No answer: timeout, no connection, TLS, 5xx, an unreadable body.
    failures: Mapped[int] = mapped_column(default=0)


class RegisterRun(db.Model):
    """«Зарегистрировать сейчас» on ticked registers, run in the background: its progress, seen by every process."""

    __tablename__ = "register_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_by: Mapped[str] = mapped_column(db.String(64))
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # runs older than a week go
    register_ids: Mapped[list[int]] = mapped_column(db.JSON)  # the ticked registers found
    done: Mapped[int] = mapped_column(default=0)        # of them: advanced, or with nothing to do
    registered: Mapped[int] = mapped_column(default=0)  # registered now or before
    not_active: Mapped[int] = mapped_column(default=0)  # left alone: the store's contract is not «Активный»
    # At the end: the registers still waiting, by reason (register_lifecycle.Reason).
    waiting_by_reason: Mapped[dict[str, int] | None] = mapped_column(db.JSON)
    # Pushed on while registers advance, as far as their claims reach: a run not finished by then
    # died with its process, and the job takes its registers once their claims expire.
    alive_until: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class SetImport(db.Model):
    """One import of stores from SET Centrum (the button, the CLI or the schedule) and how it ended."""

    __tablename__ = "set_imports"
    __table_args__ = (db.Index("ix_set_imports_scheduled", "scheduled", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(db.String(64))
    scheduled: Mapped[bool] = mapped_column(default=False)
    finished_at: Mapped[datetime] = mapped_column(default=utcnow)
    ok: Mapped[bool]
    added: Mapped[int] = mapped_column(default=0)
    error_code: Mapped[str | None] = mapped_column(db.String(64))
    error_message: Mapped[str | None] = mapped_column(db.Text)


class StoreUpload(db.Model):
    """A parsed «Загрузка из файла» between its preview and «Загрузить»: any worker process can confirm it."""

    __tablename__ = "store_uploads"

    token: Mapped[str] = mapped_column(db.String(64), primary_key=True)
    actor: Mapped[str] = mapped_column(db.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    filename: Mapped[str] = mapped_column(db.String(255))
    total: Mapped[int]  # rows in the file, the header and empty rows left out
    rows: Mapped[list] = mapped_column(db.JSON)     # to add: [line, code, name, address, contract_id, number]
    skipped: Mapped[list] = mapped_column(db.JSON)  # [line, code, reason]


class RegistrationAttempt(db.Model):
    """One step in a cash register's registration history, shown on its detail page."""

    __tablename__ = "registration_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    cash_register_id: Mapped[int] = mapped_column(db.ForeignKey("cash_registers.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    state: Mapped[str] = mapped_column(db.String(16))
    reason: Mapped[str | None] = mapped_column(db.String(32))
    terminal_number: Mapped[str | None] = mapped_column(db.String(32))
    details: Mapped[str | None] = mapped_column(db.Text)


class Setting(db.Model):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(db.String(64), primary_key=True)
    value: Mapped[str] = mapped_column(db.Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SchedulerLease(db.Model):
    """Who runs the background jobs: one holder at a time across every process."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(db.String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(db.String(128))
    expires_at: Mapped[datetime]
    # When the holder last renewed it (every tick): /readyz tells a live runner from a stale lease.
    renewed_at: Mapped[datetime | None]
    # Counted up by any process that has work for the runner now (a register waiting for terminals).
    nudges: Mapped[int] = mapped_column(default=0, server_default="0")
    # When the holder last ran the jobs: any process can tell when they run next (the panel shows it).
    last_run_at: Mapped[datetime | None]


class StolotoEndpoint(db.Model):
    """Whether calls to one Stoloto service succeed (services/stoloto_status.py); written when that changes,
    not on every call, and read by the alerts (services/alerts.py)."""

    __tablename__ = "stoloto_endpoints"

    endpoint: Mapped[str] = mapped_column(db.String(32), primary_key=True)  # a name of stoloto_services.py
    state: Mapped[str] = mapped_column(db.String(16))  # ok, failing
    last_ok_at: Mapped[datetime | None]
    # The first failure since the last success; NULL while the calls succeed.
    failing_since: Mapped[datetime | None]
    last_failed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(db.Text)


class AlertEpisode(db.Model):
    """One alert from the moment its condition holds until it clears: told once at each end (services/alerts.py)."""

    __tablename__ = "alert_episodes"
    __table_args__ = (
        # One open episode per kind and subject, whichever process opens it.
        db.Index("uq_alert_episodes_open", "kind", "subject", unique=True,
                 sqlite_where=db.text("resolved_at IS NULL"), postgresql_where=db.text("resolved_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(db.String(32))
    subject: Mapped[str] = mapped_column(db.String(64))  # stoloto_down's: a name of stoloto_services.py
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    title: Mapped[str] = mapped_column(db.Text)    # the e-mail's subject line when it started
    message: Mapped[str] = mapped_column(db.Text)  # what was the matter when it started
    resolved_title: Mapped[str | None] = mapped_column(db.Text)
    resolved_message: Mapped[str | None] = mapped_column(db.Text)


class AlertNotice(db.Model):
    """One message to one channel (e-mail or webhook): an episode's start or end, or a test; sent at most once."""

    __tablename__ = "alert_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int | None] = mapped_column(db.ForeignKey("alert_episodes.id"), index=True)  # NULL: a test
    state: Mapped[str] = mapped_column(db.String(16))    # firing, resolved, test
    channel: Mapped[str] = mapped_column(db.String(16))  # email, webhook
    status: Mapped[str] = mapped_column(db.String(16), default="pending", index=True)  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(default=0)
    # Taken by one sender until then; after a failed attempt, the next attempt waits until then.
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempted_at: Mapped[datetime | None] = mapped_column(index=True)
    result: Mapped[str | None] = mapped_column(db.Text)  # the last attempt's outcome, in Russian


class AuditEvent(db.Model):
    """Append-only journal of every contract change and action."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(db.String(64))
    object_type: Mapped[str] = mapped_column(db.String(32))
    object_id: Mapped[int | None]
    # A bulk action's objects (object_id is NULL then): the first audit.LISTED_OBJECTS ids of them.
    object_ids: Mapped[list[int] | None] = mapped_column(db.JSON)
    action: Mapped[str] = mapped_column(db.String(64))
    result: Mapped[str] = mapped_column(db.String(16))
    details: Mapped[str | None] = mapped_column(db.Text)


@event.listens_for(Session, "before_flush")
def _keep_audit_append_only(session, flush_context, instances) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEvent):
            raise ValueError("Журнал только дополняется: записи нельзя менять или удалять")
