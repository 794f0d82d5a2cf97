"""The built-in Stoloto test stand, seen from SIS: do at the stand what Stoloto's operator would do."""
import requests
from flask import current_app

from .. import audit, errors
from ..extensions import db
from ..lifecycle import ContractStatus
from ..models import Contract

TIMEOUT = (3, 10)


def enabled() -> bool:
    return bool(current_app.config.get("SIS_STOLOTO_STAND_URL"))


def _control(path: str, body: dict) -> dict:
    base = current_app.config["SIS_STOLOTO_STAND_URL"].rstrip("/")
    try:
        response = requests.post(base + path, json=body, timeout=TIMEOUT, allow_redirects=False,
                                 verify=current_app.config.get("SIS_STOLOTO_STAND_CA") or True)
    except requests.RequestException:
        raise errors.SisError("STAND_UNAVAILABLE", "Тестовый стенд Столото недоступен.",
                              "Перезапустите СИ Столото командой make run.") from None
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code >= 400:
        message = (data.get("error") or {}).get("message") if isinstance(data, dict) else None
        raise errors.SisError("STAND_ERROR", f"Тестовый стенд ответил ошибкой {response.status_code}: {message or ''}")
    return data


def register_contract(contract: Contract, actor: str) -> None:
    """Tells the stand about the contract, as if it had been signed with Stoloto."""
    if contract.status == ContractStatus.DRAFT.value:  # no date or INN to tell
        raise errors.draft_refused("Зарегистрировать договор на стенде")
    _control("/control/contracts", {"contract_number": contract.number,
                                     "contract_date": contract.contract_date.isoformat(),
                                     "agent_inn": contract.agent_inn})
    audit.record(actor, "contract", contract.id, "Тестовый стенд: договор зарегистрирован")
    db.session.commit()


def confirm_key(contract: Contract, actor: str) -> None:
    """Confirms the key by its fingerprint from "Приложение №5", as Stoloto's operator does."""
    if not contract.public_key_fingerprint:
        raise errors.SisError("NO_KEY", "У договора ещё нет ключа: сначала нажмите «Активировать договор».")
    _control("/control/keys/confirm", {"fingerprint": contract.public_key_fingerprint})
    audit.record(actor, "contract", contract.id, "Тестовый стенд: ключ подтверждён")
    db.session.commit()
