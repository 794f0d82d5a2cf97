"""What the Stoloto stand does for docs/protocols.md §1: field rules, contracts, activation, batches, bindings."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Response, g, request

from ..server import ApiError, int_field, invalid
from .pki import StandClock, StandPki, cert_pem, load_csr, rfc3339, spki_fingerprint, utcnow
from .store import StandStore, contract_key

# Status of every error code of docs/protocols.md §1; the "error" fault kind answers with these.
ERROR_STATUSES = {
    "VALIDATION_ERROR": 400,
    "UNAUTHORIZED": 401,
    "CONTRACT_NOT_FOUND": 404,
    "TERMINAL_UNKNOWN": 404,
    "KEY_NOT_REGISTERED": 409,
    "KEY_MISMATCH": 409,
    "CONTRACT_NOT_ACTIVATED": 409,
    "TERMINAL_LIMIT_EXCEEDED": 409,
    "TERMINAL_ALREADY_BOUND": 409,
    "CONTRACT_DATA_MISMATCH": 422,
}
API_ENDPOINTS = ("activate", "batches", "registration", "renew")
# "delay_after": do the work (and store it for idempotency), then hold the answer back — the
# window in which a client may die after Stoloto issued something but before it saved it.
# "certificate" (activate, renew): 200 ACTIVATED or RENEWED with a certificate the client must refuse, one for
# another key ("other_key") or one that is not a certificate at all ("malformed").
FAULT_KINDS = ("delay", "delay_after", "status", "garbage", "html502", "drop", "error", "certificate")
CERTIFICATE_VARIANTS = ("other_key", "malformed")
MALFORMED_CERTIFICATE = ("-----BEGIN CERTIFICATE-----\n"
                         "c3RhbmQgZmF1bHQ6IHRoaXMgaXMgbm90IGEgY2VydGlmaWNhdGU=\n"
                         "-----END CERTIFICATE-----\n")
DEFAULT_TERMINAL_LIMIT = 10_000
MAX_BATCH = 1000
FIRST_TERMINAL = 100_001  # shown as "0100001": 7 digits, leading zero kept
DEFAULT_CERT_VALIDITY_MINUTES = 365 * 24 * 60
MAX_CERT_VALIDITY_MINUTES = 3650 * 24 * 60  # the stand's CA is valid ten years
# §1.4: a replaced certificate stays valid until its own notAfter or this long, whichever is sooner.
RENEWAL_GRACE = dt.timedelta(days=7)

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
INN_RE = re.compile(r"^(\d{10}|\d{12})$")
DIGITS_RE = re.compile(r"^\d{1,20}$")


def string_field(data: dict, name: str, pattern: re.Pattern | None = None, what: str = "a non-empty string") -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip() or (pattern is not None and not pattern.match(value)):
        raise invalid(f"'{name}' must be {what}", [name])
    return value.strip()


def date_field(data: dict, name: str) -> str:
    value = string_field(data, name, DATE_RE, "a date YYYY-MM-DD")
    try:
        dt.date.fromisoformat(value)
    except ValueError as exc:
        raise invalid(f"'{name}' is not a real date", [name]) from exc
    return value


def optional_string(data: dict, name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid(f"'{name}' must be a string or null", [name])
    return value


def contract_fields(data: dict) -> dict[str, Any]:
    """Number, date and INN of a contract (activation request or control registration)."""
    return {
        "contract_number": string_field(data, "contract_number"),
        "contract_date": date_field(data, "contract_date"),
        "agent_inn": string_field(data, "agent_inn", INN_RE, "10 or 12 digits"),
    }


def request_id_header() -> str:
    """The mandatory X-Request-Id (a UUID), lowercased to compare."""
    value = request.headers.get("X-Request-Id", "").strip()
    if not UUID_RE.match(value):
        raise invalid("header X-Request-Id must be a UUID", ["X-Request-Id"])
    return value.lower()



class StolotoBackend:
    """What Stoloto does: contracts, key confirmation, activation, terminal batches, bindings."""

    def __init__(self, store: StandStore, pki: StandPki, clock: StandClock | None = None,
                 cert_validity_minutes: int = DEFAULT_CERT_VALIDITY_MINUTES) -> None:
        self.store = store
        self.pki = pki
        self.clock = clock or StandClock()
        # Of the certificates §1.1 and §1.4 issue from now on; in memory, like the latency.
        self.cert_validity_minutes = cert_validity_minutes
        self.calls: Counter[str] = Counter()
        self.executed: Counter[str] = Counter()
        self.replayed: Counter[str] = Counter()

    # -- flags -------------------------------------------------------------

    def flag(self, name: str) -> bool:
        return self.store.get_meta(name, "0") == "1"

    def set_flag(self, name: str, enabled: bool) -> None:
        self.store.set_meta(name, "1" if enabled else "0")

    # -- idempotency -------------------------------------------------------

    def idempotent(self, endpoint: str, request_key: str, work: Callable[[], tuple[int, Any]]) -> Response:
        """Replay the stored success for a known request key, else do the work once.

        Only 2xx answers are stored: a refusal (key not registered yet, limit reached)
        must be re-examined when the client retries with the same id later.
        """
        with self.store.transaction() as db:
            row = db.execute("SELECT status, body FROM idempotency WHERE request_key = ?",
                             (request_key,)).fetchone()
            if row is not None:
                self.replayed[endpoint] += 1
                g.replayed = True
                return Response(row["body"], status=row["status"], content_type="application/json")
            status, body = work()
            self.executed[endpoint] += 1
            text = json.dumps(body, ensure_ascii=False)
            if 200 <= status < 300:
                db.execute("INSERT INTO idempotency (request_key, status, body, created_at) VALUES (?, ?, ?, ?)",
                           (request_key, status, text, utcnow().isoformat()))
        return Response(text, status=status, content_type="application/json")

    # -- contracts (control) -----------------------------------------------

    def register_contract(self, data: dict) -> tuple[int, dict]:
        fields = contract_fields(data)
        limit = int_field(data, "terminal_limit", 0, 10_000_000, default=DEFAULT_TERMINAL_LIMIT)
        key = contract_key(fields["contract_number"])
        with self.store.transaction() as db:
            exists = db.execute("SELECT 1 FROM contracts WHERE number_key = ?", (key,)).fetchone()
            if exists:
                db.execute("UPDATE contracts SET contract_number = ?, contract_date = ?, agent_inn = ?, "
                           "terminal_limit = ? WHERE number_key = ?",
                           (fields["contract_number"], fields["contract_date"], fields["agent_inn"], limit, key))
            else:
                db.execute("INSERT INTO contracts (number_key, contract_number, contract_date, agent_inn, "
                           "terminal_limit) VALUES (?, ?, ?, ?, ?)",
                           (key, fields["contract_number"], fields["contract_date"], fields["agent_inn"], limit))
            contract = self._contract_state(db, self._contract(db, key))
        return (200 if exists else 201), {"contract": contract}

    def confirm_key(self, fingerprint: str) -> None:
        with self.store.transaction() as db:
            db.execute("INSERT OR IGNORE INTO confirmed_keys (fingerprint, confirmed_at) VALUES (?, ?)",
                       (fingerprint, utcnow().isoformat()))

    @staticmethod
    def _contract(db: sqlite3.Connection, key: str) -> sqlite3.Row | None:
        return db.execute("SELECT * FROM contracts WHERE number_key = ?", (key,)).fetchone()

    # -- §1.1 activation ---------------------------------------------------

    def activate(self, data: dict) -> tuple[int, dict]:
        fields = contract_fields(data)
        csr_pem = string_field(data, "csr", what="a PEM certificate request")
        key = contract_key(fields["contract_number"])
        with self.store.transaction() as db:
            contract = self._contract(db, key)
            if contract is None:
                contract = self._auto_register(db, key, fields)
            self._check_requisites(contract, fields)
            csr = load_csr(csr_pem)
            fingerprint = spki_fingerprint(csr.public_key())
            if contract["key_fingerprint"] is None:
                self._require_confirmed(db, fingerprint)
                contract = self._issue_certificate(db, contract, csr, fingerprint)
            elif contract["key_fingerprint"] != fingerprint:
                # Re-keying (§1.1, after an expired certificate): only a key registered from a new Appendix 5.
                if not self._key_confirmed(db, fingerprint):
                    raise ApiError(409, "KEY_MISMATCH",
                                   "договор уже активирован с другим ключом, а этот ключ в Столото не зарегистрирован")
                self._retire_certificate(db, contract)
                contract = self._issue_certificate(db, contract, csr, fingerprint)
            return 200, {"status": "ACTIVATED", "agent_id": contract["agent_id"],
                         "certificate": contract["certificate"], "ca_certificate": self.pki.ca_pem}

    def wrong_certificate(self, endpoint: str, variant: str) -> dict:
        """The "certificate" fault: a §1.1 or §1.4 success body whose certificate is for a stranger's key, or
        unreadable; nothing is activated or renewed."""
        if variant == "other_key":
            stranger = ec.generate_private_key(ec.SECP256R1())
            csr = (x509.CertificateSigningRequestBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stand fault: another key")]))
                   .sign(stranger, hashes.SHA256()))
            certificate = cert_pem(self._sign(csr)).decode()
        else:
            certificate = MALFORMED_CERTIFICATE
        if endpoint == "renew":
            not_after = self.clock.now() + dt.timedelta(minutes=self.cert_validity_minutes)
            return {"status": "RENEWED", "certificate": certificate, "ca_certificate": self.pki.ca_pem,
                    "not_after": rfc3339(not_after)}
        return {"status": "ACTIVATED", "agent_id": "A-999999", "certificate": certificate,
                "ca_certificate": self.pki.ca_pem}

    def _auto_register(self, db: sqlite3.Connection, key: str, fields: dict) -> sqlite3.Row:
        """Unknown contract: 404, unless auto-register mode makes it known on the spot (demo)."""
        if not self.flag("auto_register"):
            raise ApiError(404, "CONTRACT_NOT_FOUND", "договор в Столото не найден")
        db.execute("INSERT INTO contracts (number_key, contract_number, contract_date, agent_inn, terminal_limit) "
                   "VALUES (?, ?, ?, ?, ?)",
                   (key, fields["contract_number"], fields["contract_date"], fields["agent_inn"],
                    DEFAULT_TERMINAL_LIMIT))
        return self._contract(db, key)

    @staticmethod
    def _check_requisites(contract: sqlite3.Row, fields: dict) -> None:
        mismatched = [name for name in ("contract_number", "contract_date", "agent_inn")
                      if contract[name] != fields[name]]
        if mismatched:
            raise ApiError(422, "CONTRACT_DATA_MISMATCH",
                           "реквизиты не совпадают с договором, зарегистрированным в Столото: "
                           + ", ".join(mismatched), fields=mismatched)

    def _require_confirmed(self, db: sqlite3.Connection, fingerprint: str) -> None:
        if not self._key_confirmed(db, fingerprint):
            raise ApiError(409, "KEY_NOT_REGISTERED",
                           "ключ ещё не зарегистрирован в Столото")

    def _key_confirmed(self, db: sqlite3.Connection, fingerprint: str) -> bool:
        """Registered from Appendix 5 by the operator, or now, in auto-confirm mode."""
        row = db.execute("SELECT 1 FROM confirmed_keys WHERE fingerprint = ?", (fingerprint,)).fetchone()
        if row is not None:
            return True
        if not self.flag("auto_confirm"):
            return False
        self.confirm_key(fingerprint)
        return True

    def _sign(self, csr: x509.CertificateSigningRequest) -> x509.Certificate:
        return self.pki.sign_client_certificate(csr, self.clock.now(),
                                                dt.timedelta(minutes=self.cert_validity_minutes))

    def _retire_certificate(self, db: sqlite3.Connection, contract: sqlite3.Row) -> None:
        """The contract's certificate is being replaced: accepted until its notAfter or for the grace, if sooner."""
        if contract["certificate"] is None:
            return
        old = x509.load_pem_x509_certificate(contract["certificate"].encode())
        now = self.clock.now()
        valid_until = min(old.not_valid_after_utc, now + RENEWAL_GRACE)
        db.execute("INSERT OR REPLACE INTO retired_certificates (certificate_sha256, number_key, valid_until, "
                   "retired_at) VALUES (?, ?, ?, ?)",
                   (contract["certificate_sha256"], contract["number_key"], valid_until.isoformat(), now.isoformat()))

    def _issue_certificate(self, db: sqlite3.Connection, contract: sqlite3.Row,
                           csr: x509.CertificateSigningRequest, fingerprint: str) -> sqlite3.Row:
        cert = self._sign(csr)
        der = cert.public_bytes(serialization.Encoding.DER)
        agent_id = contract["agent_id"] or f"A-{self.store.next_number('next_agent', 1):06d}"
        # activated_at stays the first activation's: a renewal or a re-keying does not activate anew.
        db.execute("UPDATE contracts SET agent_id = ?, key_fingerprint = ?, certificate = ?, "
                   "certificate_sha256 = ?, activated_at = COALESCE(activated_at, ?) WHERE number_key = ?",
                   (agent_id, fingerprint, cert_pem(cert).decode(), hashlib.sha256(der).hexdigest(),
                    utcnow().isoformat(), contract["number_key"]))
        return self._contract(db, contract["number_key"])

    # -- callers of §1.2/§1.3 ----------------------------------------------

    def contract_by_certificate(self, der: bytes | None) -> str:
        """The contract the presented client certificate was issued for; 401 otherwise.

        The TLS layer has checked the issuer but not the dates (pki.X509_V_FLAG_NO_CHECK_TIME): they are
        checked here against the stand's clock, so an expired certificate gets §1's 401 UNAUTHORIZED.
        """
        if der is None:
            raise ApiError(401, "UNAUTHORIZED", "нужен клиентский сертификат")
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            raise ApiError(401, "UNAUTHORIZED", "клиентский сертификат не читается") from None
        now = self.clock.now()
        if now > cert.not_valid_after_utc:
            raise ApiError(401, "UNAUTHORIZED", "срок действия клиентского сертификата истёк "
                           f"{rfc3339(cert.not_valid_after_utc)}")
        if now < cert.not_valid_before_utc:
            raise ApiError(401, "UNAUTHORIZED", "клиентский сертификат ещё не действует")
        sha256 = hashlib.sha256(der).hexdigest()
        with self.store.transaction() as db:
            row = db.execute("SELECT number_key FROM contracts WHERE certificate_sha256 = ?", (sha256,)).fetchone()
            retired = db.execute("SELECT number_key, valid_until FROM retired_certificates "
                                 "WHERE certificate_sha256 = ?", (sha256,)).fetchone()
        if row is not None:
            return row["number_key"]
        if retired is None:
            raise ApiError(401, "UNAUTHORIZED", "клиентский сертификат неизвестен")
        if now > dt.datetime.fromisoformat(retired["valid_until"]):
            raise ApiError(401, "UNAUTHORIZED", "клиентский сертификат заменён новым, и срок, в течение которого "
                           "он действовал после замены, истёк")
        return retired["number_key"]

    def caller_contract(self, body_number: str, cert_contract: str | None) -> sqlite3.Row:
        """The calling contract: the certificate's one (the body must agree) or, over plain HTTP, the body's."""
        key = contract_key(body_number)
        if cert_contract is not None and key != cert_contract:
            raise ApiError(401, "UNAUTHORIZED", "клиентский сертификат выдан для другого договора")
        with self.store.transaction() as db:
            contract = self._contract(db, key)
        if contract is None:
            raise ApiError(401, "UNAUTHORIZED", "договор неизвестен")
        return contract

    # -- §1.2 batches --------------------------------------------------------

    def issue_batch(self, contract: sqlite3.Row, count: int, request_id: str) -> tuple[int, dict]:
        if contract["key_fingerprint"] is None:
            raise ApiError(409, "CONTRACT_NOT_ACTIVATED", "договор не активирован")
        key = contract["number_key"]
        with self.store.transaction() as db:
            issued = db.execute("SELECT COUNT(*) FROM terminals WHERE number_key = ?", (key,)).fetchone()[0]
            remaining = contract["terminal_limit"] - issued
            if remaining <= 0:
                raise ApiError(409, "TERMINAL_LIMIT_EXCEEDED", "лимит терминалов договора исчерпан")
            numbers = [f"{n:07d}" for n in self.store.reserve_numbers("next_terminal", FIRST_TERMINAL,
                                                                      min(count, remaining))]
            batch_id = f"B-{self.store.next_number('next_batch', 1):06d}"
            db.execute("INSERT INTO batches (batch_id, number_key, request_id, requested, issued, issued_at) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       (batch_id, key, request_id, count, len(numbers), utcnow().isoformat()))
            db.executemany("INSERT INTO terminals (terminal_number, number_key, batch_id) VALUES (?, ?, ?)",
                           [(number, key, batch_id) for number in numbers])
        return 201, {"batch_id": batch_id, "terminals": numbers}

    # -- §1.4 renewal -----------------------------------------------------------

    def renew_certificate(self, contract: sqlite3.Row, csr_pem: str) -> tuple[int, dict]:
        """A certificate for the CSR's key, the current one retired with the grace; numbers stay the contract's."""
        if contract["key_fingerprint"] is None:
            raise ApiError(409, "CONTRACT_NOT_ACTIVATED", "договор не активирован")
        csr = load_csr(csr_pem)
        current = x509.load_pem_x509_certificate(contract["certificate"].encode())
        if csr.subject != current.subject:
            raise invalid("subject of 'csr' differs from the current certificate's: "
                          f"{csr.subject.rfc4514_string()} instead of {current.subject.rfc4514_string()}", ["csr"])
        with self.store.transaction() as db:
            contract = self._contract(db, contract["number_key"])  # fresh: a racing renewal may have replaced it
            self._retire_certificate(db, contract)
            contract = self._issue_certificate(db, contract, csr, spki_fingerprint(csr.public_key()))
        cert = x509.load_pem_x509_certificate(contract["certificate"].encode())
        return 200, {"status": "RENEWED", "certificate": contract["certificate"],
                     "ca_certificate": self.pki.ca_pem, "not_after": rfc3339(cert.not_valid_after_utc)}

    # -- §1.3 registration ---------------------------------------------------

    def register_terminal(self, contract: sqlite3.Row, terminal_number: str, binding: dict) -> tuple[int, dict]:
        with self.store.transaction() as db:
            owner = db.execute("SELECT number_key FROM terminals WHERE terminal_number = ?",
                               (terminal_number,)).fetchone()
            if owner is None or owner["number_key"] != contract["number_key"]:
                raise ApiError(404, "TERMINAL_UNKNOWN", "терминал не выдавался этому договору")
            bound = db.execute("SELECT store_code, cash_number FROM bindings WHERE terminal_number = ?",
                               (terminal_number,)).fetchone()
            if bound is None:
                db.execute("INSERT INTO bindings (terminal_number, store_code, cash_number, serial_number, "
                           "address, bound_at) VALUES (?, ?, ?, ?, ?, ?)",
                           (terminal_number, binding["store_code"], binding["cash_number"],
                            binding["serial_number"], binding["address"], utcnow().isoformat()))
            elif (bound["store_code"], bound["cash_number"]) != (binding["store_code"], binding["cash_number"]):
                raise ApiError(409, "TERMINAL_ALREADY_BOUND",
                               f"терминал уже привязан к магазину {bound['store_code']}, "
                               f"кассе {bound['cash_number']}")
        return 200, {"terminal_number": terminal_number, "status": "REGISTERED"}

    # -- control: state and reset ------------------------------------------

    def reset(self) -> None:
        self.store.wipe()
        for counter in (self.calls, self.executed, self.replayed):
            counter.clear()

    def state(self) -> dict[str, Any]:
        with self.store.transaction() as db:
            contracts = db.execute("SELECT * FROM contracts ORDER BY contract_number").fetchall()
            numbers = {row["number_key"]: row["contract_number"] for row in contracts}
            return {
                "auto_confirm": self.flag("auto_confirm"),
                "auto_register": self.flag("auto_register"),
                "certificate_validity_minutes": self.cert_validity_minutes,
                "clock": self.clock_state(),
                "contracts": [self._contract_state(db, row) for row in contracts],
                "confirmed_fingerprints": [row[0] for row in db.execute(
                    "SELECT fingerprint FROM confirmed_keys ORDER BY confirmed_at, fingerprint")],
                "terminals": self._terminals_state(db, numbers),
                "batches": self._batches_state(db, numbers),
                "bindings": self._bindings_state(db, numbers),
                "calls": {name: self.calls[name] for name in API_ENDPOINTS},
                "executed": {name: self.executed[name] for name in API_ENDPOINTS},
                "replayed": {name: self.replayed[name] for name in API_ENDPOINTS},
            }

    def clock_state(self) -> dict[str, Any]:
        return {"now": rfc3339(self.clock.now()), "offset_seconds": int(self.clock.offset.total_seconds())}

    def contracts(self) -> list[dict[str, Any]]:
        """Every registered contract with its counts of issued and bound numbers, without certificates or lists."""
        with self.store.transaction() as db:
            issued = {row[0]: row[1] for row in db.execute(
                "SELECT number_key, COUNT(*) FROM terminals GROUP BY number_key")}
            bound = {row[0]: row[1] for row in db.execute(
                "SELECT t.number_key, COUNT(*) FROM bindings b JOIN terminals t USING (terminal_number) "
                "GROUP BY t.number_key")}
            return [{"contract_number": row["contract_number"], "contract_date": row["contract_date"],
                     "agent_inn": row["agent_inn"], "terminal_limit": row["terminal_limit"],
                     "agent_id": row["agent_id"], "activated": row["key_fingerprint"] is not None,
                     "key_fingerprint": row["key_fingerprint"], "activated_at": row["activated_at"],
                     "certificate_not_after": certificate_not_after(row["certificate"]),
                     "terminals_issued": issued.get(row["number_key"], 0),
                     "terminals_bound": bound.get(row["number_key"], 0)}
                    for row in db.execute("SELECT * FROM contracts ORDER BY contract_number")]

    def confirmed_keys(self) -> list[dict[str, str]]:
        with self.store.transaction() as db:
            return [{"fingerprint": row["fingerprint"], "confirmed_at": row["confirmed_at"]} for row in db.execute(
                "SELECT fingerprint, confirmed_at FROM confirmed_keys ORDER BY confirmed_at, fingerprint")]

    @staticmethod
    def _contract_state(db: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
        issued = db.execute("SELECT COUNT(*) FROM terminals WHERE number_key = ?", (row["number_key"],)).fetchone()[0]
        return {"contract_number": row["contract_number"], "contract_date": row["contract_date"],
                "agent_inn": row["agent_inn"], "terminal_limit": row["terminal_limit"],
                "agent_id": row["agent_id"], "activated": row["key_fingerprint"] is not None,
                "key_fingerprint": row["key_fingerprint"], "certificate": row["certificate"],
                "certificate_not_after": certificate_not_after(row["certificate"]),
                "activated_at": row["activated_at"], "terminals_issued": issued}

    @staticmethod
    def _terminals_state(db: sqlite3.Connection, numbers: dict[str, str]) -> dict[str, list[str]]:
        terminals: dict[str, list[str]] = {number: [] for number in numbers.values()}
        for row in db.execute("SELECT terminal_number, number_key FROM terminals ORDER BY terminal_number"):
            terminals.setdefault(numbers.get(row["number_key"], row["number_key"]), []).append(row["terminal_number"])
        return terminals

    @staticmethod
    def _batches_state(db: sqlite3.Connection, numbers: dict[str, str]) -> list[dict[str, Any]]:
        return [{"batch_id": row["batch_id"], "contract_number": numbers.get(row["number_key"], row["number_key"]),
                 "request_id": row["request_id"], "requested": row["requested"], "issued": row["issued"],
                 "issued_at": row["issued_at"]}
                for row in db.execute("SELECT * FROM batches ORDER BY batch_id")]

    @staticmethod
    def _bindings_state(db: sqlite3.Connection, numbers: dict[str, str]) -> list[dict[str, Any]]:
        rows = db.execute("SELECT b.*, t.number_key FROM bindings b JOIN terminals t USING (terminal_number) "
                          "ORDER BY b.terminal_number")
        return [{"terminal_number": row["terminal_number"],
                 "contract_number": numbers.get(row["number_key"], row["number_key"]),
                 "store_code": row["store_code"], "cash_number": row["cash_number"],
                 "serial_number": row["serial_number"], "address": row["address"], "bound_at": row["bound_at"]}
                for row in rows]


def certificate_not_after(pem: str | None) -> str | None:
    """notAfter of a contract's current certificate as §1.4 writes it; None before activation."""
    if pem is None:
        return None
    return rfc3339(x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc)


def binding_fields(data: dict) -> dict[str, Any]:
    """Body of §1.3 beyond contract_number."""
    return {
        "store_code": string_field(data, "store_code", DIGITS_RE, "a string of digits"),
        "cash_number": int_field(data, "cash_number", 1, 9999),
        "serial_number": optional_string(data, "serial_number"),
        "address": optional_string(data, "address"),
    }
