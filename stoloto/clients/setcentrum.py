"""Client of SET Centrum's store list (docs/protocols.md §2): GET /api/v1/shops, checked shop by shop."""
import json
import logging
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import ijson
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
CHUNK_BYTES = 1024 * 1024
SHAPE_PIECE = 4096


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

    def shops(self) -> Iterator[Shop]:
        """Every shop SET lists, each code once, as the answer streams in (200,000 shops parsed at once would be
        100 MB of a worker's memory); raises SetCentrumError on any failure, also after shops were yielded."""
        started, count = time.perf_counter(), 0
        try:
            for shop in checked_shops(self._items()):
                count += 1
                yield shop
        except SetCentrumError as error:
            _log_call(error.code, None, started)
            raise
        _log_call("ok", count, started)

    def _items(self) -> Iterator[object]:
        """The items of the answer's "shops" list, parsed chunk by chunk."""
        url = self.base_url + SHOPS_PATH
        try:
            with self.session.get(url, headers={"Accept": "application/json"}, timeout=self.timeout,
                                  allow_redirects=False, stream=True) as response:
                _check_status(response)
                yield from _stream_items(response.iter_content(chunk_size=CHUNK_BYTES))
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


def _stream_items(chunks: Iterable[bytes]) -> Iterator[object]:
    """ijson's C parser fed chunk by chunk; the answer's shape is followed by a second parser of its top level
    only until the "shops" list opens (a few events in the first chunk)."""
    items, shape = ijson.sendable_list(), _Shape()
    parser = ijson.items_coro(items, "shops.item")
    guard, size = _SurrogateGuard(), 0
    try:
        for chunk in chunks:
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise SetCentrumError("BAD_RESPONSE",
                                      f"ответ сервера SET Centrum больше {MAX_BODY_BYTES // 2 ** 20} МБ")
            yield from _parse(guard.feed(chunk), shape, parser, guard, items)
        yield from _parse(guard.end(), shape, parser, guard, items)
        shape.end()
        parser.close()
    except ijson.JSONError:  # also a body that is not UTF-8
        raise SetCentrumError("BAD_RESPONSE", "ответ сервера SET Centrum не в формате JSON") from None
    yield from guard.restored(items)


def _parse(chunk: bytes, shape: "_Shape", parser, guard: "_SurrogateGuard", items: list) -> Iterator[object]:
    if chunk:  # an empty one would end ijson's parsers
        shape.feed(chunk)
        parser.send(chunk)
        yield from guard.restored(items)
        del items[:]


def _no_shops_list() -> SetCentrumError:
    return SetCentrumError("BAD_RESPONSE", "в ответе сервера SET Centrum нет списка магазинов (shops)")


class _Shape:
    """Checks that the answer is an object with a "shops" list, reading its top level until the list opens."""

    def __init__(self) -> None:
        self.events = ijson.sendable_list()
        self.parser = ijson.parse_coro(self.events)
        self.first, self.key, self.found = True, None, False

    def feed(self, chunk: bytes) -> None:
        # In small pieces: the list opens in the first few bytes, and its 9,000 shops in the rest of a chunk
        # would be 70,000 events to look at here.
        for start in range(0, len(chunk), SHAPE_PIECE):
            if self.found:
                return
            self.parser.send(chunk[start:start + SHAPE_PIECE])
            self._follow()

    def _follow(self) -> None:
        for prefix, event, value in self.events:
            if self.first and event != "start_map":
                raise _no_shops_list()
            self.first = False
            if prefix == "shops" and self.key == "shops":
                if event != "start_array":
                    raise _no_shops_list()
                self.found = True
                break
            if prefix == "" and event == "map_key":
                self.key = value
            elif prefix == "" and event == "end_map":
                raise _no_shops_list()
        del self.events[:]

    def end(self) -> None:
        if not self.found:
            self.parser.close()  # a JSON error first, if the answer is cut off
            raise _no_shops_list()


# A JSON escape of a UTF-16 surrogate, with the backslashes before it: an odd number of them makes it an escape.
_SURROGATE_ESCAPE = re.compile(rb"(\\+)u([dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
                               rb"|[dD][89a-fA-F][0-9a-fA-F]{2})")
# What a lone one is passed to the parser as: U+FDD0 and U+FDD1 are noncharacters, for a program's own use.
_MARKED = re.compile("\ufdd0([0-9a-fA-F]{4})\ufdd1")


class _SurrogateGuard:
    """ijson's parser (yajl) reads a lone surrogate escape ("\\ud800") as "?", where json.loads keeps it as the
    character no database can hold. Such an escape is passed to the parser marked, and turned back into the
    character in the parsed shop, to be refused by the same check (boundary.text_problem) as before."""

    def __init__(self) -> None:
        self.held, self.marked = b"", False

    def feed(self, chunk: bytes) -> bytes:
        data = self.held + chunk
        if b"\\u" not in data and b"\\" not in data[-12:]:
            self.held = b""
            return data
        # Hold back a tail that may hold the start of an escape, never cutting a run of backslashes: an escape
        # that starts before the cut then ends within `data`.
        cut = max(len(data) - 12, 0)
        while cut and data[cut - 1] == ord("\\"):
            cut -= 1
        parts, done = [], 0
        for match in _SURROGATE_ESCAPE.finditer(data):
            if match.start() >= cut:
                break
            parts += (data[done:match.start()], self._lone(match))
            done = match.end()
        cut = max(cut, done)
        self.held = data[cut:]
        return b"".join((*parts, data[done:cut]))

    def end(self) -> bytes:
        data, self.held = self.held, b""
        return self._mark(data)

    def _mark(self, data: bytes) -> bytes:
        return _SURROGATE_ESCAPE.sub(self._lone, data) if b"\\u" in data else data

    def _lone(self, match: re.Match) -> bytes:
        slashes, code = match.groups()
        if len(slashes) % 2 == 0 or len(code) > 4:
            return match.group(0)  # text after an escaped backslash, or a surrogate pair: a real character
        self.marked = True
        return slashes + b"ufdd0" + code + b"\\ufdd1"

    def restored(self, items: list) -> Iterable[object]:
        if not self.marked:
            return items
        return [{key: _MARKED.sub(lambda m: chr(int(m[1], 16)), value) if type(value) is str else value
                 for key, value in item.items()} if type(item) is dict else item for item in items]


def parse_shops(data: object) -> list[Shop]:
    """An answer already parsed: checks the documented shape, then each shop as checked_shops does."""
    shops = data.get("shops") if isinstance(data, dict) else None
    if not isinstance(shops, list):
        raise _no_shops_list()
    return list(checked_shops(shops))


def checked_shops(items: Iterable[object]) -> Iterator[Shop]:
    """Each item of the "shops" list checked and made a Shop; duplicate numbers count once (the first one's
    address is kept). Tens of thousands of shops go through this loop, so the common case is kept to a few type
    checks; only the numbers seen are remembered."""
    seen: set[int] = set()
    for position, item in enumerate(items, start=1):
        if type(item) is not dict:
            raise _bad_shop(position, "неверный формат записи (не объект JSON)")
        if "number" not in item:
            raise _bad_shop(position, "нет номера (number)")
        number, name, address = item["number"], item.get("name"), item.get("address")
        # bool is an int subclass in Python, but `true` is not a store number.
        if type(number) is not int or not 0 < number <= MAX_NUMBER:
            raise _bad_number(number, position)
        if number not in seen:
            seen.add(number)
            # The common case inline (two texts a shop, 400,000 in a large answer); anything unusual goes
            # through _text, which also words the refusal.
            if type(name) is str and len(name := name.strip()) <= MAX_NAME and _unstorable(name) is None:
                name = name or None
            elif name is not None:
                name = _text(name, "name", MAX_NAME, position)
            if type(address) is str and len(address := address.strip()) <= MAX_ADDRESS and _unstorable(address) is None:
                address = address or None
            elif address is not None:
                address = _text(address, "address", MAX_ADDRESS, position)
            yield Shop(str(number), name, address)


_unstorable = boundary.UNSTORABLE.search  # the first character no database can hold, or None


def _bad_number(number: object, position: int) -> SetCentrumError:
    # ijson reads 101.5 as a Decimal, which json.dumps writes as the float it is.
    shown = json.dumps(number, ensure_ascii=False, default=float)[:40]
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
