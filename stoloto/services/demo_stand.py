"""The built-in Stoloto test stand seen from SIS: its side of each contract, and what Stoloto's operator does there."""
from dataclasses import dataclass

import requests
from flask import current_app
from sqlalchemy import select

from .. import audit, crypto, errors
from ..certificate_lifecycle import CertificateState
from ..extensions import db
from ..lifecycle import ContractStatus
from ..models import Contract
from ..plural import plural_form
from ..stands.stoloto_stand import contract_key
from .gateway import FIELD_LABELS

TIMEOUT = (3, 10)
RESTART = "Перезапустите СИ Столото командой make run."
UNAVAILABLE = errors.SisError("STAND_UNAVAILABLE", "Тестовый стенд Столото недоступен.", RESTART)
BAD_ANSWER = errors.SisError("STAND_ERROR", "Тестовый стенд ответил не так, как описано в docs/protocols.md §4.",
                             RESTART)


@dataclass(frozen=True)
class StandAction:
    """A button of the page: its form value, its title, and what the success message says."""
    value: str
    title: str
    done: str


REGISTER = StandAction("register", "Зарегистрировать договор на стенде",
                       "Договор № {number} зарегистрирован на тестовом стенде.")
UPDATE = StandAction("update", "Обновить реквизиты на стенде",
                     "Реквизиты договора № {number} на тестовом стенде обновлены.")
CONFIRM = StandAction("confirm", "Подтвердить ключ",
                      "Ключ договора № {number} подтверждён на тестовом стенде. Теперь нажмите «Активировать договор».")
ACTIONS = {action.value: action for action in (REGISTER, UPDATE, CONFIRM)}


@dataclass(frozen=True)
class StandSide:
    """A contract as the stand knows it (GET /control/contracts and /control/keys)."""
    registered: bool
    mismatched: tuple[str, ...] = ()  # labels of the requisites that differ from SIS's
    key_confirmed: bool = False  # SIS's current key
    activated: bool = False
    activated_with_other_key: bool = False
    terminals_issued: int = 0


@dataclass(frozen=True)
class StandRow:
    contract: Contract
    fingerprint: str  # as on the contract page, or "" without a key
    side: StandSide | None  # None: the stand could not be asked
    actions: tuple[StandAction, ...]
    next_step: str


def enabled() -> bool:
    return bool(current_app.config.get("SIS_STOLOTO_STAND_URL"))


def _call(method: str, path: str, body: dict | None = None):
    base = current_app.config["SIS_STOLOTO_STAND_URL"].rstrip("/")
    try:
        response = requests.request(method, base + path, json=body, timeout=TIMEOUT, allow_redirects=False,
                                    verify=current_app.config.get("SIS_STOLOTO_STAND_CA") or True)
    except requests.RequestException:
        raise UNAVAILABLE from None
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code >= 400:
        error = data.get("error") if isinstance(data, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        raise errors.SisError("STAND_ERROR", f"Тестовый стенд ответил ошибкой {response.status_code}"
                                             + (f": {message}." if message else "."))
    if not isinstance(data, dict):
        raise BAD_ANSWER
    return data


def _read_stand() -> tuple[dict[str, dict], set[str]]:
    """The stand's contracts by lookup key, and its confirmed fingerprints."""
    try:
        listed = {contract_key(c["contract_number"]): {**c, "terminals_issued": int(c["terminals_issued"])}
                  for c in _call("GET", "/control/contracts")["contracts"]}
        keys = {k["fingerprint"] for k in _call("GET", "/control/keys")["keys"]}
    except (KeyError, TypeError, ValueError):
        raise BAD_ANSWER from None
    return listed, keys


def _side(contract: Contract, listed: dict[str, dict], keys: set[str]) -> StandSide:
    at_stand = listed.get(contract_key(contract.number))
    if at_stand is None:
        return StandSide(registered=False)
    ours = {"contract_number": contract.number, "contract_date": contract.contract_date.isoformat(),
            "agent_inn": contract.agent_inn}
    fingerprint = key_to_register(contract)
    stand_key = at_stand.get("key_fingerprint")
    rekeying = contract.certificate_state == CertificateState.REKEYING.value
    return StandSide(
        registered=True,
        mismatched=tuple(FIELD_LABELS[name] for name, value in ours.items() if at_stand.get(name) != value),
        key_confirmed=bool(fingerprint) and fingerprint in keys,
        activated=bool(at_stand.get("activated")),
        # After «Перевыпустить ключ» the stand holds the old key until it activates the new one.
        activated_with_other_key=bool(stand_key and fingerprint and stand_key != fingerprint and not rekeying),
        terminals_issued=at_stand["terminals_issued"],
    )


def key_to_register(contract: Contract) -> str | None:
    """The key Stoloto's operator registers from «Приложение №5»: after «Перевыпустить ключ» the new one."""
    if contract.certificate_state == CertificateState.REKEYING.value:
        return crypto.public_key_fingerprint(crypto.load_csr(contract.pending_csr_pem).public_key())
    return contract.public_key_fingerprint


def next_actions(contract: Contract, side: StandSide | None) -> tuple[StandAction, ...]:
    """What makes sense at the stand now: one step after the other, as Stoloto takes them."""
    if side is None or contract.status == ContractStatus.DRAFT.value:
        return ()
    if not side.registered:
        return (REGISTER,)
    actions = []
    if side.mismatched and not side.activated:
        actions.append(UPDATE)
    if key_to_register(contract) and not side.key_confirmed and not side.activated_with_other_key:
        actions.append(CONFIRM)
    return tuple(actions)


def next_step(contract: Contract, side: StandSide | None) -> str:
    """What to do next for the contract, in a sentence."""
    if side is None:
        return "Неизвестно: тестовый стенд не ответил."
    if not side.registered:
        return "Зарегистрируйте договор на стенде: так Столото узнаёт о подписанном договоре."
    if side.mismatched and not side.activated:
        return ("Реквизиты на стенде отличаются от реквизитов в СИ: обновите их на стенде или исправьте договор "
                "в «Договорах».")
    if side.activated_with_other_key:
        return ("Договор активирован на стенде с другим ключом, а стенд не меняет ключ активированного договора: "
                "с ключом СИ его не активировать.")
    if not contract.public_key_fingerprint:
        return ("Нажмите «Активировать договор» в «Договорах»: СИ создаст ключ и «Приложение №5» для передачи "
                "в Столото.")
    if not side.key_confirmed:
        return "Подтвердите ключ: так оператор Столото регистрирует ключ из «Приложения №5»."
    if contract.certificate_state == CertificateState.REKEYING.value:
        return "Новый ключ подтверждён: нажмите «Активировать договор» в «Договорах»."
    if contract.status in (ContractStatus.CREATED.value, ContractStatus.AWAITING_ACTIVATION.value):
        return "Ключ подтверждён: нажмите «Активировать договор» в «Договорах»."
    if contract.status == ContractStatus.AWAITING_TERMINALS.value:
        return "Договор активирован: СИ само запросит номера терминалов при следующем запуске задания."
    return "Ничего делать не нужно: договор активирован, номера терминалов выданы."


def registered_label(side: StandSide) -> str:
    if not side.registered:
        return "нет"
    if not side.mismatched:
        return "да"
    verb = plural_form(len(side.mismatched), "отличается", "отличаются", "отличаются")
    return f"да, но {verb} {' и '.join(side.mismatched)}"


def overview() -> tuple[list[StandRow], errors.SisError | None]:
    """Every contract past «Черновик» with the stand's side of it; the error instead when the stand cannot say."""
    # A draft lacks the date or the INN the stand registers a contract by.
    listed = db.session.scalars(select(Contract).where(Contract.status != ContractStatus.DRAFT.value)
                                .order_by(Contract.id)).all()
    problem = None
    try:
        stand_contracts, keys = _read_stand() if listed else ({}, set())
    except errors.SisError as error:
        stand_contracts, keys, problem = None, None, error
    rows = []
    for contract in listed:
        side = None if problem else _side(contract, stand_contracts, keys)
        fingerprint = crypto.format_fingerprint(key_to_register(contract)) if key_to_register(contract) else ""
        rows.append(StandRow(contract, fingerprint, side, next_actions(contract, side), next_step(contract, side)))
    return rows, problem


def _why_not(action: StandAction, contract: Contract, side: StandSide) -> str:
    if action is REGISTER:
        return "договор уже зарегистрирован на тестовом стенде."
    if not side.registered:
        return "договор ещё не зарегистрирован на тестовом стенде."
    if action is UPDATE:
        return "договор уже активирован на стенде." if side.activated else \
            "реквизиты на стенде совпадают с реквизитами в СИ."
    if side.activated_with_other_key:
        return "договор уже активирован на стенде с другим ключом."
    if not contract.public_key_fingerprint:
        return "у договора ещё нет ключа. Сначала нажмите «Активировать договор» в «Договорах»."
    return "ключ уже подтверждён."


def perform(contract: Contract, what, actor: str) -> str:
    """Does `what` at the stand for the contract if it is a next step; returns the message to show."""
    action = ACTIONS.get(what)
    if action is None:
        raise errors.SisError("BAD_ACTION", "Неизвестное действие на тестовом стенде.",
                              "Обновите страницу и выберите действие снова.")
    if contract.status == ContractStatus.DRAFT.value:  # no date or INN to tell
        raise errors.draft_refused(action.title)
    side = _side(contract, *_read_stand())
    if action not in next_actions(contract, side):
        raise errors.SisError("STAND_ACTION_NOT_POSSIBLE", f"Действие «{action.title}» для договора "
                              f"№ {contract.number} сейчас невозможно: {_why_not(action, contract, side)}")
    if action is CONFIRM:
        _call("POST", "/control/keys/confirm", {"fingerprint": key_to_register(contract)})
        audit.record(actor, "contract", contract.id, "Тестовый стенд: ключ подтверждён")
    else:
        _call("POST", "/control/contracts", {"contract_number": contract.number,
                                             "contract_date": contract.contract_date.isoformat(),
                                             "agent_inn": contract.agent_inn})
        audit.record(actor, "contract", contract.id, "Тестовый стенд: договор зарегистрирован"
                     if action is REGISTER else "Тестовый стенд: реквизиты договора обновлены")
    db.session.commit()
    return action.done.format(number=contract.number)
