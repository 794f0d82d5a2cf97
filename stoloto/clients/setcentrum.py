"""Client of SET Centrum's store list (docs/protocols.md §2): GET /api/v1/shops, checked shop by shop."""
import json
import logging
import time
from dataclasses import dataclass
from typing import NamedTuple

import requests
from urllib3.exceptions import NewConnectionError, ReadTimeoutError

from .. import boundary

log = logging.getLogger(__name__)

SHOPS_PATH = "/api/v1/shops"
# A store code is stored as at most 16 digits (stores.code); SET numbers beyond that cannot be kept.
MAX_NUMBER = 10 ** 16 - 1
MAX_ADDRESS = 500
MAX_NAME = 255
# Tens of thousands of shops are a few megabytes; far more means the URL points at something else.
MAX_BODY_BYTES = 256 * 1024 * 1024


class Shop(NamedTuple):
    code: str
    name: str | None
    address: str | None


@dataclass
class SetCentrumError(Exception):
    """Why the store list could not be read: our code and a Russian reason for the user."""

    code: str
    reason: str

    def __str__(self) -> str:
        return self.reason


class SetCentrumClient:
    def __init__(self, base_url: str, connect_timeout: float = 5.0, read_timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        # No retries: a failed import changes nothing, and the user presses the button again.
        self.session = requests.Session()

    def shops(self) -> list[Shop]:
        """Every shop SET lists, each code once; raises SetCentrumError on any failure."""
        started = time.perf_counter()
        try:
            shops = self._shops()
        except SetCentrumError as error:
            _log_call(error.code, None, started)
            raise
        _log_call("ok", len(shops), started)
        return shops

    def _shops(self) -> list[Shop]:
        try:
            # No name holds the body: its bytes (20 MB for 200,000 shops) are freed once decoded.
            data = json.loads(_decoded(self._get(self.base_url + SHOPS_PATH)), object_hook=_compact)
        except ValueError:  # also UnicodeDecodeError
            raise SetCentrumError("BAD_RESPONSE", "ответ сервера SET Centrum не в формате JSON") from None
        return parse_shops(data)

    def _get(self, url: str) -> bytearray:
        try:
            with self.session.get(url, headers={"Accept": "application/json"}, timeout=self.timeout,
                                  allow_redirects=False, stream=True) as response:
                _check_status(response)
                return _read_body(response)
        except requests.exceptions.ConnectTimeout:
            raise SetCentrumError("TIMEOUT", f"сервер SET Centrum не отвечает ({self.base_url})") from None
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as error:
            raise _connection_error(error, self.base_url, self.timeout[1]) from None
        except requests.exceptions.RequestException as error:
            log.debug("SET Centrum request failed: %s", type(error).__name__)  # the call's own line follows
            raise SetCentrumError("CONNECTION", f"ошибка обмена с сервером SET Centrum ({self.base_url})") from None


def _log_call(result: str, shops: int | None, started: float) -> None:
    """The one line per call. SET's store list belongs to no contract, so none is named; nor is the URL,
    which may hold a password."""
    took = round((time.perf_counter() - started) * 1000)
    ok = result == "ok"
    log.log(logging.INFO if ok else logging.WARNING, "SET Centrum GET %s: %s, %d ms, shops %s", SHOPS_PATH,
            "200 ok" if ok else result, took, "-" if shops is None else shops,
            extra={"endpoint": SHOPS_PATH, "status": 200 if ok else None, "outcome": result, "duration_ms": took,
                   "shops": shops})


def _connection_error(error: Exception, base_url: str, read_timeout: float) -> SetCentrumError:
    log.debug("SET Centrum connection: %s", type(error).__name__)
    if _is_read_timeout(error):
        return SetCentrumError("TIMEOUT", f"сервер SET Centrum не ответил за {read_timeout:g} с")
    reason = getattr(error.args[0], "reason", None) if error.args else None
    if isinstance(reason, NewConnectionError):  # refused, no route, unknown host name
        return SetCentrumError("CONNECTION", f"сервер SET Centrum недоступен ({base_url})")
    return SetCentrumError("CONNECTION", f"сервер SET Centrum разорвал соединение, не ответив ({base_url})")


def _is_read_timeout(error: Exception) -> bool:
    if isinstance(error, requests.exceptions.ReadTimeout):
        return True
    # A timeout while the body streams in surfaces as ConnectionError wrapping urllib3's ReadTimeoutError.
    reason = error.args[0] if error.args else None
    return isinstance(reason, ReadTimeoutError) or isinstance(getattr(reason, "reason", None), ReadTimeoutError)


def _check_status(response: requests.Response) -> None:
    status = response.status_code
    if status == 200:
        return
    if 300 <= status < 400:
        raise SetCentrumError("BAD_RESPONSE", f"сервер SET Centrum ответил перенаправлением (HTTP {status}); "
                                              "проверьте «Адрес сервера SET Centrum» в «Настройки»")
    said = _error_text(response)
    raise SetCentrumError(f"HTTP_{status}", f"сервер SET Centrum вернул ошибку HTTP {status}{said}")


def _error_text(response: requests.Response) -> str:
    """SET's own error code and text (docs/protocols.md, common rules), when the body carries them."""
    try:
        error = json.loads(response.raw.read(64 * 1024, decode_content=True)).get("error")
    except (ValueError, AttributeError, requests.exceptions.RequestException):
        return ""
    if not isinstance(error, dict):
        return ""
    parts = [str(error[key]) for key in ("code", "message") if error.get(key)]
    return f": {' — '.join(parts)}" if parts else ""


def _read_body(response: requests.Response) -> bytearray:
    # One growing buffer, not chunks joined at the end: the body is never held twice.
    body = bytearray()
    for chunk in response.iter_content(chunk_size=1024 * 1024):
        if len(body) + len(chunk) > MAX_BODY_BYTES:
            raise SetCentrumError("BAD_RESPONSE", f"ответ сервера SET Centrum больше {MAX_BODY_BYTES // 2 ** 20} МБ")
        body += chunk
    return body


def _decoded(body: bytearray) -> str:
    """The body as text, as json.loads would decode it (UTF-8, or UTF-16/32 by its first bytes)."""
    return body.decode(json.detect_encoding(body), "surrogatepass")


class _Item(tuple):
    """A shop object of SET's answer as json.loads read it: (number, name, address)."""

    __slots__ = ()


def _compact(item: dict) -> dict | _Item:
    """json.loads' object_hook: an object with a number becomes an _Item at once. A dict is three times the
    size of a tuple, and an answer holds 200,000 of them: 30 MB less in a worker while it imports."""
    if "number" not in item or "shops" in item:
        return item
    return _Item((item["number"], item.get("name"), item.get("address")))


def parse_shops(data: object) -> list[Shop]:
    """Checks the documented shape; duplicate numbers count once (the first one's address is kept).

    Tens of thousands of shops go through this loop, so the common case is kept to a few type checks.
    Each parsed item is dropped from `data` as it is read: the JSON objects and the shops made of them
    are never all in memory at once (200,000 of each would be 150 MB).
    """
    shops = data.get("shops") if isinstance(data, dict) else None
    if not isinstance(shops, list):
        raise SetCentrumError("BAD_RESPONSE", "в ответе сервера SET Centrum нет списка магазинов (shops)")
    seen: dict[int, Shop] = {}
    for position, item in enumerate(shops, start=1):
        if type(item) is _Item:
            number, name, address = item
        elif type(item) is dict:
            if "number" not in item:
                raise _bad_shop(position, "нет номера (number)")
            number, name, address = item["number"], item.get("name"), item.get("address")
        else:
            raise _bad_shop(position, "неверный формат записи (не объект JSON)")
        # bool is an int subclass in Python, but `true` is not a store number.
        if type(number) is not int or not 0 < number <= MAX_NUMBER:
            raise _bad_number(number, position)
        if number not in seen:
            seen[number] = Shop(str(number), name if name is None else _text(name, "name", MAX_NAME, position),
                                address if address is None else _text(address, "address", MAX_ADDRESS, position))
        shops[position - 1] = None
    return list(seen.values())


def _bad_number(number: object, position: int) -> SetCentrumError:
    shown = json.dumps(number, ensure_ascii=False)[:40]
    return _bad_shop(position, f"некорректный номер (number = {shown}): нужно целое число от 1 до {MAX_NUMBER}")


def _text(value: object, key: str, limit: int, position: int) -> str | None:
    if type(value) is not str:
        raise _bad_shop(position, f"поле {key} не строка")
    value = value.strip()
    if len(value) > limit:
        raise _bad_shop(position, f"поле {key} длиннее {limit} символов")
    # Refused even in a name SIS does not keep: an answer carrying NUL bytes is not one to trust.
    problem = boundary.text_problem(value)
    if problem:
        raise _bad_shop(position, f"поле {key} {problem}")
    return value or None


def _bad_shop(position: int, what: str) -> SetCentrumError:
    return SetCentrumError("BAD_SHOP", f"в ответе сервера SET Centrum у {position}-го магазина в списке {what}")
