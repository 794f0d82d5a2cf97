"""The cash-register API (docs/protocols.md §3): a bearer-token JSON blueprint under /api/v1, its OpenAPI document."""
import hmac

from flask import Blueprint, jsonify, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import RequestEntityTooLarge

from . import boundary, settings
from .errors import SisError
from .extensions import csrf
from .services import registers

MAX_BODY = 64 * 1024
STATUS_OF = {"VALIDATION_ERROR": 400, "UNAUTHORIZED": 401, "STORE_UNKNOWN": 404, "CASH_REGISTER_UNKNOWN": 404,
             "STORE_NOT_BOUND": 409, "PAYLOAD_TOO_LARGE": 413}
OPTIONAL_TEXT = {"serial_number": 64, "fiscal_number": 64, "cash_type": 32}
STORE_CODE_DIGITS = 16
MAX_CASH_NUMBER = 9999

api = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(api)


class SessionInterface(SecureCookieSessionInterface):
    """Flask's cookie sessions, except for the API: a cash register authenticates with the bearer token, so
    its requests neither read nor set the session cookie (nor build the cookie's signer, on every request)."""

    def open_session(self, app, request):
        if request.path.startswith(api.url_prefix + "/"):
            return self.make_null_session(app)
        return super().open_session(app, request)


def error(code: str, message: str, status: int | None = None, **extra):
    return jsonify({"error": {"code": code, "message": message, **extra}}), status or STATUS_OF.get(code, 400)


@api.before_request
def _authenticate():
    # werkzeug refuses a sized body over max_content_length but silently cuts a chunked one there, so
    # read one byte more than allowed and let the length decide: both kinds over the limit get 413.
    request.max_content_length = MAX_BODY + 1
    if request.endpoint == "api.openapi":
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    expected = settings.cash_api_token()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        return error("UNAUTHORIZED", "Нужен заголовок Authorization: Bearer <токен API касс из «Настроек»>.")
    if len(request.get_data(cache=True)) > MAX_BODY:
        raise RequestEntityTooLarge()
    return None


@api.errorhandler(SisError)
def _sis_error(exc: SisError):
    return error(exc.code, str(exc), **({"fields": sorted(exc.fields)} if exc.fields else {}))


def json_body():
    """The request's JSON, or None when it is not JSON (wrong content type, malformed, nested too deep)."""
    try:
        return request.get_json(silent=True)
    except RecursionError:  # Python's json parser recurses once per level: "[" * 1000 ends here
        return None


def is_store_code(value) -> bool:
    return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= STORE_CODE_DIGITS


def parse_registration(body) -> registers.RegistrationInput:
    if not isinstance(body, dict):
        raise SisError("VALIDATION_ERROR", "Тело запроса должно быть объектом JSON.")
    problems = {}
    store_code = body.get("store_code")
    if not is_store_code(store_code):
        problems["store_code"] = f"store_code: строка из 1–{STORE_CODE_DIGITS} цифр."
    cash_number = body.get("cash_number")
    if isinstance(cash_number, bool) or not isinstance(cash_number, int) or not 1 <= cash_number <= MAX_CASH_NUMBER:
        problems["cash_number"] = f"cash_number: целое число от 1 до {MAX_CASH_NUMBER}."
    for name, limit in OPTIONAL_TEXT.items():
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            problems[name] = f"{name}: строка не длиннее {limit} символов."
        elif value is not None and (problem := boundary.text_problem(value)):
            problems[name] = f"{name}: {problem}."
    if problems:
        raise SisError("VALIDATION_ERROR", " ".join(problems.values()), fields=problems)
    return registers.RegistrationInput(store_code, cash_number,
                                       **{name: body.get(name) or None for name in OPTIONAL_TEXT})


@api.post("/cash-registers/registration")
def register_cash_register():
    body = json_body()
    state = registers.register(parse_registration(body))
    return jsonify(state.as_json()), 200 if state.status == "REGISTERED" else 202


@api.get("/cash-registers/<store_code>/<cash_number>")
def cash_register_state(store_code: str, cash_number: str):
    # The same bounds as the registration's: a number past the column's range must not reach the database.
    number = boundary.parse_int(cash_number, 1, MAX_CASH_NUMBER)
    problems = {}
    if not is_store_code(store_code):
        problems["store_code"] = f"Код магазина — от 1 до {STORE_CODE_DIGITS} цифр."
    if number is None:
        problems["cash_number"] = f"Номер кассы — целое число от 1 до {MAX_CASH_NUMBER}."
    if problems:
        raise SisError("VALIDATION_ERROR", " ".join(problems.values()), fields=problems)
    state = registers.current_state(store_code, number)
    if state is None:
        return error("CASH_REGISTER_UNKNOWN", "Такая касса в СИ не регистрировалась.")
    return jsonify(state.as_json()), 200


@api.get("/openapi.json")
def openapi():
    return jsonify(OPENAPI)


_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                   "fields": {"type": "array", "items": {"type": "string"}}}}}}
_STATE = {"type": "object", "required": ["status"], "properties": {
    "status": {"type": "string", "enum": ["REGISTERED", "PENDING"]},
    "terminal_number": {"type": "string", "pattern": "^[0-9]+$"},
    "contract_number": {"type": "string"},
    "reason": {"type": "string", "enum": [registers.CONTRACT_NOT_ACTIVE, registers.NO_FREE_TERMINALS,
                                          registers.STOLOTO_UNAVAILABLE]},
    "message": {"type": "string"},
    # Only when Stoloto refused the registration: its own code and message (reason STOLOTO_UNAVAILABLE).
    "stoloto_error": {"type": "object", "required": ["code", "message"],
                      "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}


# The database cannot hold a NUL byte: the document says so, and such text is a VALIDATION_ERROR.
NO_NUL = "^[^\\u0000]*$"


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "SIS cash-register API", "version": "1.0.0",
             "description": "Регистрация касс магазинов как терминалов Столото (docs/protocols.md §3)."},
    "servers": [{"url": "/api/v1"}],
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {"Error": _ERROR, "RegistrationState": _STATE},
    },
    "security": [{"bearer": []}],
    "paths": {
        "/cash-registers/registration": {"post": {
            "operationId": "registerCashRegister",
            "summary": "Зарегистрировать кассу (идемпотентно по store_code и cash_number)",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["store_code", "cash_number"],
                "properties": {
                    "store_code": {"type": "string", "pattern": "^[0-9]{1,16}$"},
                    "cash_number": {"type": "integer", "minimum": 1, "maximum": 9999},
                    **{name: {"type": "string", "maxLength": limit, "pattern": NO_NUL}
                       for name, limit in OPTIONAL_TEXT.items()}}}}}},
            "responses": {
                "200": _json({"$ref": "#/components/schemas/RegistrationState"}, "Касса зарегистрирована"),
                "202": _json({"$ref": "#/components/schemas/RegistrationState"}, "Записано, СИ завершит само"),
                "400": _json({"$ref": "#/components/schemas/Error"}, "VALIDATION_ERROR"),
                "401": _json({"$ref": "#/components/schemas/Error"}, "UNAUTHORIZED"),
                "404": _json({"$ref": "#/components/schemas/Error"}, "STORE_UNKNOWN"),
                "409": _json({"$ref": "#/components/schemas/Error"}, "STORE_NOT_BOUND"),
                "413": _json({"$ref": "#/components/schemas/Error"}, "Тело больше 64 КиБ"),
            }}},
        "/cash-registers/{store_code}/{cash_number}": {"get": {
            "operationId": "getCashRegister",
            "summary": "Текущее состояние регистрации кассы",
            "parameters": [
                {"name": "store_code", "in": "path", "required": True,
                 "schema": {"type": "string", "pattern": "^[0-9]{1,16}$"}},
                {"name": "cash_number", "in": "path", "required": True,
                 "schema": {"type": "integer", "minimum": 1, "maximum": 9999}}],
            "responses": {
                "200": _json({"$ref": "#/components/schemas/RegistrationState"}, "Состояние"),
                "400": _json({"$ref": "#/components/schemas/Error"}, "VALIDATION_ERROR"),
                "401": _json({"$ref": "#/components/schemas/Error"}, "UNAUTHORIZED"),
                "404": _json({"$ref": "#/components/schemas/Error"}, "Касса не регистрировалась"),
            }}},
    },
}
