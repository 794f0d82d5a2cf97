"""SET Centrum test stand: a fake store-list service (docs/protocols.md §2, §4) over plain HTTP."""

from __future__ import annotations

import argparse
import json
import logging
import threading
from collections import Counter
from typing import Any

from flask import Flask, Response, g, request

from stoloto.stands.server import (
    BackgroundServer,
    FaultQueue,
    ServedStand,
    add_fault_routes,
    apply_fault,
    configure_cli,
    install_error_handlers,
    int_field,
    invalid,
    json_response,
    parse_fault,
    read_json_object,
)

# A fixed name: under `python -m` __name__ would be "__main__".
log = logging.getLogger("stoloto.stands.setcentrum_stand")

FAULT_KINDS = ("delay", "status", "garbage", "html502", "drop", "bad_shop", "duplicates", "truncated", "malformed",
               "shape", "escapes")
# How a "shape" fault answers: anything but an object with a "shops" list.
SHAPES = ("list", "null", "absent", "object")
ENDPOINTS = ("shops",)
MAX_SHOPS = 1_000_000
DEFAULT_SHOPS = 40
FIRST_NUMBER = 101

# How a "bad_shop" fault spoils one shop's number; the default is a non-numeric string.
BAD_NUMBERS: dict[str, Any] = {"string": "abc", "zero": 0, "negative": -5, "float": 101.5,
                               "bool": True, "null": None, "int8": 2 ** 63}
# ... or its text, under a valid number: a name or address no database can hold.
BAD_TEXTS: dict[str, dict[str, str]] = {"nul_name": {"name": "Магазин\u0000№1"},
                                        "nul_address": {"address": "г. Москва,\u0000 ул. Ленина"},
                                        "surrogate_address": {"address": "г. Москва \ud800"}}
BAD_VARIANTS = tuple(BAD_NUMBERS) + tuple(BAD_TEXTS) + ("missing",)

SHOP_KINDS = ("Универсам", "Гастроном", "Продукты", "Минимаркет", "Магазин у дома", "Супермаркет")
CITIES = ("г. Москва", "г. Тверь", "г. Казань", "г. Самара", "г. Пермь", "г. Воронеж", "г. Омск")
STREETS = ("ул. Ленина", "ул. Советская", "пр. Мира", "ул. Гагарина", "ул. Пушкина", "ул. Садовая",
           "ул. Молодёжная", "ул. Школьная", "ул. Центральная", "ул. Лесная", "наб. Волжская")


def make_shop(index: int, number: int) -> dict[str, Any]:
    """A deterministic shop; some lack a name or an address (null or absent), as §2 allows."""
    shop: dict[str, Any] = {"number": number}
    if index % 29 != 6:
        shop["name"] = None if index % 10 == 7 else f"{SHOP_KINDS[index % len(SHOP_KINDS)]} №{number}"
    if index % 23 != 5:
        street = STREETS[index % len(STREETS)]
        address = f"{CITIES[index % len(CITIES)]}, {street}, д. {1 + index % 97}"
        shop["address"] = None if index % 15 == 4 else address
    return shop


class ShopCatalog:
    """The configured shops and their answer body, serialized once per configuration."""

    def __init__(self, count: int, start: int) -> None:
        self._lock = threading.Lock()
        self.configure(count, start)

    def configure(self, count: int, start: int) -> None:
        shops = [make_shop(index, start + index) for index in range(count)]
        body = json.dumps({"shops": shops}, ensure_ascii=False).encode()
        with self._lock:
            self.count, self.start = count, start
            self._first = shops[0] if shops else make_shop(0, start)
            self._body = body

    @property
    def body(self) -> bytes:
        with self._lock:
            return self._body

    def body_with_extra(self, *extra_shops: dict[str, Any]) -> bytes:
        """The cached body with shops appended at the end (after all good ones, so a
        client that adds shops one by one before failing gets caught)."""
        with self._lock:
            body, has_shops = self._body, self.count > 0
        # ASCII escapes: a lone surrogate has no UTF-8 form, but "\\ud800" is valid JSON.
        extra = ", ".join(json.dumps(shop) for shop in extra_shops).encode()
        # json.dumps ends the body with "]}"; splice before it instead of re-serializing 50,000 shops.
        return body[:-2] + (b", " if has_shops else b"") + extra + b"]}"

    def bad_shop_body(self, variant: str) -> bytes:
        shop: dict[str, Any] = {"name": "Магазин без номера", "address": "г. Москва, ул. Ленина, д. 1"}
        if variant in BAD_TEXTS:
            with self._lock:
                number = self.start + self.count
            shop = {"number": number, **shop, **BAD_TEXTS[variant]}
        elif variant != "missing":
            shop = {"number": BAD_NUMBERS[variant], **shop}
        return self.body_with_extra(shop)

    def truncated_body(self) -> bytes:
        """The answer cut off in the middle of the list: what a client sees when SET stops writing halfway."""
        body = self.body
        return body[:max(len(body) // 2, len(b'{"shops": [{"number": 1'))]

    def malformed_body(self) -> bytes:
        """The answer with a broken shop after all the good ones (a comma missing between two fields)."""
        with self._lock:
            body, has_shops, number = self._body, self.count > 0, self.start + self.count
        return body[:-2] + (b", " if has_shops else b"") + b'{"number": %d "name": null}]}' % number

    def shape_body(self, variant: str) -> bytes:
        """The shops, but not as §2's {"shops": [...]}."""
        with self._lock:
            body = self._body
        shops = body[len(b'{"shops": '):-1]
        return {"list": shops, "null": b'{"count": 2, "shops": null}', "absent": b'{"shop": ' + shops + b'}',
                "object": b'{"shops": {"item": {"number": 101}}}'}[variant]

    def escapes_body(self) -> bytes:
        """A shop whose address holds JSON escapes a parser may get wrong: a surrogate pair (an emoji) and an
        escaped backslash followed by "ud800" (text, not a surrogate)."""
        with self._lock:
            number = self.start + self.count
        return self.body_with_extra({"number": number, "address": "г. Тверь \U0001f600 \\ud800"})

    def duplicates_body(self) -> bytes:
        with self._lock:
            first, has_shops = self._first, self.count > 0
        duplicate = {**first, "name": f"Дубликат магазина №{first['number']}"}
        return self.body_with_extra(duplicate) if has_shops else self.body_with_extra(first, duplicate)


def parse_setcentrum_fault(data: dict) -> dict[str, Any]:
    fault = parse_fault(data, FAULT_KINDS, ENDPOINTS)
    fault["endpoint"] = "shops"
    if fault["kind"] == "bad_shop":
        variant = data.get("variant", "string")
        if variant not in BAD_VARIANTS:
            raise invalid(f"'variant' must be one of: {', '.join(BAD_VARIANTS)}", ["variant"])
        fault["variant"] = variant
    if fault["kind"] == "shape":
        variant = data.get("variant", "list")
        if variant not in SHAPES:
            raise invalid(f"'variant' must be one of: {', '.join(SHAPES)}", ["variant"])
        fault["variant"] = variant
    return fault


def shops_count_fields(data: dict) -> tuple[int, int]:
    return (int_field(data, "count", 0, MAX_SHOPS),
            int_field(data, "start", 1, 2_000_000_000 - MAX_SHOPS, default=FIRST_NUMBER))


def create_setcentrum_app(stand: SetCentrumStand) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    install_error_handlers(app)

    @app.after_request
    def _log_line(response: Response) -> Response:
        fault = f" fault={g.fault}" if g.get("fault") else ""
        log.info("%s %s -> %s%s", request.method, request.path, response.status_code, fault)
        return response

    @app.get("/api/v1/shops")
    def shops() -> Response:
        stand.calls["shops"] += 1
        fault = stand.faults.take("shops")
        if fault is not None:
            g.fault = fault["kind"]
            if fault["kind"] == "drop":
                log.info("GET /api/v1/shops -> connection dropped (fault)")
            return shops_fault_response(stand, fault)
        return Response(stand.catalog.body, content_type="application/json")

    @app.post("/control/shops")
    def control_shops() -> Response:
        count, start = shops_count_fields(read_json_object())
        stand.catalog.configure(count, start)
        return json_response(200, {"count": count, "start": start})

    add_fault_routes(app, stand.faults, parse_setcentrum_fault)

    @app.get("/control/state")
    def control_state() -> Response:
        return json_response(200, {"shops": stand.catalog.count, "start": stand.catalog.start,
                                   "calls": {"shops": stand.calls["shops"]}, "faults": stand.faults.pending()})

    return app


def shops_fault_response(stand: SetCentrumStand, fault: dict[str, Any]) -> Response:
    if fault["kind"] == "bad_shop":
        return Response(stand.catalog.bad_shop_body(fault["variant"]), content_type="application/json")
    if fault["kind"] == "duplicates":
        return Response(stand.catalog.duplicates_body(), content_type="application/json")
    if fault["kind"] == "shape":
        return Response(stand.catalog.shape_body(fault["variant"]), content_type="application/json")
    if fault["kind"] == "escapes":
        return Response(stand.catalog.escapes_body(), content_type="application/json")
    if fault["kind"] == "truncated":
        return Response(stand.catalog.truncated_body(), content_type="application/json")
    if fault["kind"] == "malformed":
        return Response(stand.catalog.malformed_body(), content_type="application/json")
    response = apply_fault(fault, lambda: stand.running)
    # None: a delay has passed, now answer normally.
    return response or Response(stand.catalog.body, content_type="application/json")


class SetCentrumStand(ServedStand):
    """The SET Centrum test stand: `SetCentrumStand(shops=40).start()`, then SIS reads `url`/api/v1/shops."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, shops: int = DEFAULT_SHOPS,
                 start_number: int = FIRST_NUMBER) -> None:
        self.host = host
        self.catalog = ShopCatalog(shops, start_number)
        self.faults = FaultQueue()
        self.calls: Counter[str] = Counter()
        self.app = create_setcentrum_app(self)
        self._server = BackgroundServer(self.app, host, port)

    def start(self) -> SetCentrumStand:
        """Serve on a background daemon thread; a restarted object keeps its port."""
        self._server.start(name=f"setcentrum-stand-{self._server.port}")
        log.info("SET Centrum stand at %s (%d shops)", self.url, self.catalog.count)
        return self

    def stop(self) -> None:
        self._server.stop()

    def serve_forever(self) -> None:
        """Serve in the foreground until Ctrl-C (the CLI)."""
        self._server.bind()
        print(f"SET Centrum stand: {self.url} ({self.catalog.count} shops)", flush=True)
        self._server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="SET Centrum test stand (docs/protocols.md §2, §4).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--shops", type=int, default=DEFAULT_SHOPS)
    parser.add_argument("--start", type=int, default=FIRST_NUMBER, help="number of the first shop")
    args = parser.parse_args(argv)
    configure_cli()
    SetCentrumStand(args.host, args.port, shops=args.shops, start_number=args.start).serve_forever()


if __name__ == "__main__":
    main()
