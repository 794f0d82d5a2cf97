"""A contract's certificate: its states, the table of allowed moves, the one function that moves it, and
how its validity is shown (days left, warning, error)."""
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value

from . import audit, clock, errors, plural
from .extensions import db
from .models import Contract

# Below these many days left the certificate is shown as a warning, then as an error, on every page.
WARNING_DAYS, ERROR_DAYS = 30, 7


class CertificateState(str, Enum):
    VALID = "valid"        # Stoloto issued it; in use until its end
    RENEWING = "renewing"  # a new key waits for its certificate (§1.4); the current one stays in use
    EXPIRED = "expired"    # Stoloto refused the renewal: the certificate has lapsed, a new key must be registered
    REKEYING = "rekeying"  # a new key and «Приложение №5» are made: Stoloto must register the key, then §1.1

    @property
    def label(self) -> str:
        return STATE_LABELS[self]


STATE_LABELS = {
    CertificateState.VALID: "Действует",
    CertificateState.RENEWING: "Обновляется",
    CertificateState.EXPIRED: "Истёк",
    CertificateState.REKEYING: "Новый ключ ожидает регистрации в Столото",
}

# (from, to) -> what the journal calls the step.
MOVES: dict[tuple[CertificateState, CertificateState], str] = {
    (CertificateState.VALID, CertificateState.RENEWING): "Обновление сертификата начато",
    (CertificateState.RENEWING, CertificateState.VALID): "Обновление сертификата завершено",
    (CertificateState.RENEWING, CertificateState.EXPIRED): "Обновление сертификата отклонено",
    (CertificateState.VALID, CertificateState.EXPIRED): "Сертификат истёк",
    (CertificateState.EXPIRED, CertificateState.REKEYING): "Перевыпуск ключа",
    (CertificateState.REKEYING, CertificateState.VALID): "Активация с новым ключом",
}


def state_of(contract: Contract) -> CertificateState | None:
    return CertificateState(contract.certificate_state) if contract.certificate_state else None


def move(contract: Contract, target: CertificateState, actor: str, details: str | None = None,
         where: tuple = (), **values) -> None:
    """Moves the contract's certificate to `target` and sets `values`, inside the caller's transaction.

    The UPDATE is conditional on the state the caller saw (and on `where`), so of two concurrent requests
    exactly one wins; the other gets STATUS_CHANGED and must roll back.
    """
    current = state_of(contract)
    step = MOVES.get((current, target))
    if step is None:
        raise errors.SisError("ACTION_NOT_ALLOWED", f"Сертификат договора в состоянии «{label(current)}» нельзя "
                                                    f"перевести в состояние «{target.label}».")
    result = db.session.execute(
        update(Contract).where(Contract.id == contract.id, Contract.certificate_state == current.value, *where)
        .values(certificate_state=target.value, **values).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise errors.SisError("STATUS_CHANGED", "Состояние сертификата договора уже изменилось.",
                              "Обновите страницу и посмотрите его текущее состояние.")
    set_committed_value(contract, "certificate_state", target.value)
    for name, value in values.items():
        set_committed_value(contract, name, value)
    audit.record(actor, "contract", contract.id, step,
                 details=f"{current.label} → {target.label}" + (f"; {details}" if details else ""))


def label(state: CertificateState | None) -> str:
    return state.label if state else "Нет сертификата"


@dataclass(frozen=True)
class Validity:
    """How a contract's certificate looks to the user now."""

    state: CertificateState
    not_after: datetime  # naive UTC, as the database keeps it
    days_left: int       # whole days left; negative once it has ended
    level: str           # "success", "warning" or "danger" (Bootstrap's names)

    @property
    def ended(self) -> bool:
        return self.days_left < 0

    @property
    def left(self) -> str:
        """«осталось 12 дней», «осталось меньше суток», «истёк»."""
        if self.ended:
            return "истёк"
        if self.days_left == 0:
            return "осталось меньше суток"
        return "осталось " + plural.plural(self.days_left, "день", "дня", "дней")

    @property
    def until(self) -> str:
        """«до 30.11.2027 23:59 (осталось 365 дней)» in the users' zone."""
        return f"до {clock.local(self.not_after):%d.%m.%Y %H:%M} ({self.left})"

    @property
    def summary(self) -> str:
        """One sentence for the header and the page: what the certificate's state means for the contract."""
        if self.state is CertificateState.REKEYING:
            return ("сертификат истёк; новый ключ и «Приложение №5» сформированы — договор ждёт, пока Столото "
                    "зарегистрирует новый ключ, затем нажмите «Активировать договор».")
        if self.state is CertificateState.EXPIRED or self.ended:
            return ("сертификат Столото истёк: пакеты терминалов и регистрация касс не работают. "
                    "Нажмите «Перевыпустить ключ».")
        if self.state is CertificateState.RENEWING:
            return f"сертификат обновляется; текущий действует {self.until}."
        if self.level == "success":
            return f"сертификат действует {self.until}."
        return f"сертификат действует {self.until}: обновите его кнопкой «Обновить сертификат» на странице договора."


def validity(state: str | None, not_after: datetime | None, now: datetime) -> Validity | None:
    """The certificate's validity at `now` (naive UTC), or None while the contract has none."""
    if not state or not_after is None:
        return None
    left = not_after - now
    days = left.days if left >= timedelta(0) else -1
    certificate_state = CertificateState(state)
    if certificate_state in (CertificateState.EXPIRED, CertificateState.REKEYING) or days < ERROR_DAYS:
        level = "danger"
    elif days < WARNING_DAYS:
        level = "warning"
    else:
        level = "success"
    return Validity(certificate_state, not_after, days, level)
