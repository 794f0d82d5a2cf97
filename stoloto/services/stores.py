"""Stores ("Магазины"): import from SET Centrum, manual entry, binding to a contract."""
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice

from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from .. import audit, boundary, errors, plural, settings
from ..clients.setcentrum import SetCentrumClient, SetCentrumError, Shop
from ..extensions import db
from ..lifecycle import status_label
from ..metrics import set_import
from ..models import STORE_FIELD_LABELS, CashRegister, Contract, SetImport, Store, utcnow
from ..requisites import clean_text

ACTION_IMPORT = "Загрузка списка магазинов"
ACTION_BIND = "Привязать магазины к договору"
SOURCE_SET, SOURCE_MANUAL, SOURCE_FILE = "set", "manual", "file"
SOURCE_LABELS = {SOURCE_SET: "SET", SOURCE_MANUAL: "вручную", SOURCE_FILE: "из файла"}
# Who the journal names for the scheduled import («Загружать магазины из SET каждые N часов»).
SCHEDULE_ACTOR = audit.SYSTEM_ACTOR
# The text fields a store's form and «Загрузка из файла» check alike: (name, label, longest).
TEXT_LIMITS = (("name", "Наименование", 255), ("address", "Адрес", 500))
# SET numbers are integers > 0, so a code never starts with 0: "0101" would match no SET store.
CODE_PATTERN = re.compile(r"[1-9][0-9]{0,15}")
INSERT_CHUNK = 10_000
# The columns an imported store's row fills, in the order the import makes them.
IMPORT_COLUMNS = ("code", "name", "address", "source", "created_at", "updated_at")
# Ids are INTEGER columns: a larger number typed into a URL must not reach PostgreSQL as an overflow.
MAX_ID = 2 ** 31 - 1
# Ids travel in the bind form; a page of the list holds at most a few hundred.
MAX_BIND = 5_000
# SET imports are kept this long (the schedule's longest interval is 30 days); older ones go as a new one is recorded.
IMPORTS_KEPT = timedelta(days=90)


def loaded_message(count: int) -> str:
    """The manual's "Загружено X магазинов"."""
    return f"Загружено {plural.stores(count)}"


def bound_message(count: int, contract: Contract) -> str:
    return f"Привязано к договору {contract_title(contract)}: {plural.stores(count)}"


def contract_title(contract: Contract) -> str:
    """"№ СТ-2026/001", or "Черновик #5" for a draft that has no number yet."""
    return f"№ {contract.number}" if contract.number else str(contract)


def store_name(code: str) -> str:
    """The manual: imported stores are named "Магазин №<код>"."""
    return f"Магазин №{code}"


# --- import from SET Centrum -------------------------------------------------------------------

def setcentrum_client() -> SetCentrumClient:
    url = settings.get(settings.SET_CENTRUM_URL)
    if not url:
        raise errors.SisError("SET_CENTRUM_NOT_CONFIGURED",
                              "Не задан адрес сервера SET Centrum.",
                              "Укажите его в «Настройки» → «Адрес сервера SET Centrum» или в переменной окружения "
                              "SET_CENTRUM_URL.")
    return SetCentrumClient(url, settings.get(settings.CONNECT_TIMEOUT), settings.get(settings.READ_TIMEOUT))


@set_import
def import_from_set(actor: str, scheduled: bool = False) -> int:
    """"Загрузка списка магазинов": adds the SET stores SIS does not know yet; returns how many.

    Existing stores are never changed. Any SET failure adds nothing and raises a SisError. Either way the
    outcome is kept (SetImport): the schedule reads when it last ran, an alert whether it failed.
    """
    try:
        client = setcentrum_client()
        # One transaction: the known codes, then SET's answer read as it streams in, each new shop written as
        # soon as it is parsed (never all 200,000 parsed shops at once; the database stores while SIS parses),
        # then a journal row.
        try:
            added = _insert_new(_NewShops(client, set(db.session.scalars(select(Store.code)))), actor, scheduled)
        except IntegrityError:
            # Someone else imported (or typed in) some of these codes meanwhile: read both again, add the rest.
            db.session.rollback()
            added = _insert_new(_NewShops(client, set(db.session.scalars(select(Store.code)))), actor, scheduled)
    except errors.SisError as error:
        db.session.rollback()
        message = boundary.storable(str(error), 2000)
        audit.record(actor, "store", None, ACTION_IMPORT, "error", message)
        _record(SetImport(actor=actor, scheduled=scheduled, ok=False, added=0, finished_at=utcnow(),
                          error_code=boundary.storable(error.code, 64), error_message=message))
        db.session.commit()
        raise
    return added


def import_when_due() -> SetImport | None:
    """The scheduled import: when «Загружать магазины из SET каждые N часов» is on and N hours have passed since
    the last scheduled one, imports as the button does and returns its outcome (a failure included, journaled
    and kept); None when the schedule is off or not due. The setting is read on every call, so a change takes
    effect at the next job run. The next attempt after a failure is again N hours later: SET is not asked
    every job interval while it is down."""
    hours = settings.get(settings.SET_IMPORT_HOURS)
    if not hours:
        return None
    last = last_set_import(scheduled_only=True)
    if last is not None and utcnow() - last.finished_at < timedelta(hours=hours):
        return None
    try:
        import_from_set(SCHEDULE_ACTOR, scheduled=True)
    except errors.SisError:
        pass  # journaled and kept by import_from_set; the caller reads the outcome below
    return last_set_import(scheduled_only=True)


def _record(outcome: SetImport) -> None:
    """Adds an import's outcome to the caller's transaction and forgets those older than IMPORTS_KEPT: the table
    would otherwise grow by one row per scheduled run for ever. The new row is the newest, so one always stays."""
    db.session.execute(delete(SetImport).where(SetImport.finished_at < outcome.finished_at - IMPORTS_KEPT))
    db.session.add(outcome)


def last_set_import(scheduled_only: bool = False) -> SetImport | None:
    """The newest SET import (of any kind, or only the scheduled ones) and how it ended; None if none ran.

    An alert on SET failing reads this: `ok` False means the last import failed (`error_code`, `error_message`,
    `finished_at`); a later successful import, from the button too, clears it."""
    query = select(SetImport).order_by(SetImport.id.desc()).limit(1)
    if scheduled_only:
        query = query.where(SetImport.scheduled.is_(True))
    return db.session.scalar(query)


class _NewShops:
    """SET's shops whose codes are not in `known`, as they stream in; counts them and the shops SET lists."""

    def __init__(self, client: SetCentrumClient, known: set[str]):
        self.client, self.known = client, known
        self.listed = self.new = 0
        self.first_codes: list[str] = []  # the journal names the first few

    def __iter__(self) -> Iterator[Shop]:
        try:
            for shop in self.client.shops():
                self.listed += 1
                if shop.code not in self.known:
                    self.new += 1
                    if len(self.first_codes) < audit.LISTED_OBJECTS:
                        self.first_codes.append(shop.code)
                    yield shop
        except SetCentrumError as failure:
            raise errors.SisError(failure.code, f"Не удалось загрузить список магазинов из SET Centrum: {failure}.",
                                  "Магазины не добавлены. Проверьте «Адрес сервера SET Centrum» в «Настройки» и "
                                  "работу сервера SET, затем повторите загрузку.") from None


def _insert_new(new: _NewShops, actor: str, scheduled: bool) -> int:
    """A bulk write of the new stores as SET's answer streams in, a journal row and the import's outcome,
    committed."""
    now = utcnow()
    # Rows are made as they are written, never all at once: 100,000 of them would be 40 MB of a worker's memory.
    # contract_id and comment are left out (NULL): every column less is work saved on each of 100,000 rows.
    insert_stores(IMPORT_COLUMNS, ((shop.code, store_name(shop.code), shop.address, SOURCE_SET, now, now)
                                   for shop in new))
    audit.record(actor, "store", None, ACTION_IMPORT,
                 details=f"{loaded_message(new.new)}; в SET Centrum {plural.stores(new.listed)}",
                 object_ids=first_ids(new.first_codes))
    _record(SetImport(actor=actor, scheduled=scheduled, ok=True, added=new.new, finished_at=now))
    db.session.commit()
    return new.new


def first_ids(codes: list[str]) -> list[int]:
    """The ids of stores just added, for the journal row's list of objects (at most audit.LISTED_OBJECTS)."""
    return list(db.session.scalars(select(Store.id).where(Store.code.in_(codes[:audit.LISTED_OBJECTS]))
                                   .order_by(Store.id)))


def insert_stores(columns: tuple[str, ...], rows: Iterable[tuple]) -> None:
    """A bulk write of new stores in the session's transaction: COPY on PostgreSQL, chunked executemany on SQLite.
    A code already taken raises IntegrityError."""
    if db.session.connection().dialect.name == "postgresql":
        _copy(columns, rows)
        return
    # Core insert on the table: one executemany per chunk. (The ORM's insert(Store) splits the rows
    # into a statement per run of rows whose None columns match, hundreds for a real SET answer.)
    rows = iter(rows)
    while chunk := [dict(zip(columns, row, strict=True)) for row in islice(rows, INSERT_CHUNK)]:
        db.session.execute(insert(Store.__table__), chunk)


def _copy(columns: tuple[str, ...], rows: Iterable[tuple]) -> None:
    """PostgreSQL's COPY into stores, in the session's transaction: 100,000 stores in a third of the time
    multi-row INSERTs take. A code someone else added meanwhile raises IntegrityError, as an INSERT would."""
    connection = db.session.connection()
    cursor = connection.connection.driver_connection.cursor()
    try:
        with cursor.copy(f"COPY {Store.__tablename__} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    except connection.dialect.loaded_dbapi.IntegrityError as error:
        raise IntegrityError("COPY stores", None, error) from None
    finally:
        cursor.close()


# --- manual entry -------------------------------------------------------------------------------

@dataclass
class StoreInput:
    code: str | None = None
    contract_id: int | str | None = None
    name: str | None = None
    address: str | None = None
    comment: str | None = None


def check_code(code: str | None) -> str | None:
    """A Russian message when the trimmed code is not a SET store number, else None."""
    if not code:
        return "Укажите код магазина."
    if not re.fullmatch(r"[0-9]+", code):
        return "Код магазина — только цифры, как номер магазина в SET."
    if code.startswith("0"):
        return "Код магазина не может начинаться с нуля: в SET номер магазина — целое число больше нуля."
    if not CODE_PATTERN.fullmatch(code):
        return "Код магазина — не длиннее 16 цифр."
    return None


def _contract_id(value) -> int | None:
    if value in (None, "", "__None"):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return -1  # an id that no contract has: reported as "no such contract"
    return number if 0 < number <= MAX_ID else -1


def clean_input(raw: StoreInput, editing: Store | None = None) -> StoreInput:
    """Trims and checks every field; raises one SisError listing all field errors."""
    data = StoreInput(code=clean_text(raw.code), contract_id=_contract_id(raw.contract_id),
                      name=clean_text(raw.name), address=clean_text(raw.address), comment=clean_text(raw.comment))
    problems: dict[str, str] = {}
    code_problem = check_code(data.code)
    if code_problem:
        problems["code"] = code_problem
    elif _code_taken(data.code, editing):
        problems["code"] = duplicate_message(data.code)
    contract_problem = _check_contract(data.contract_id, editing)
    if contract_problem:
        problems["contract_id"] = contract_problem
    problems.update(text_problems({name: getattr(data, name) for name, _, _ in TEXT_LIMITS}))
    if editing is not None and data.code != editing.code and _has_cash_registers(editing):
        problems.setdefault("code", "Код магазина нельзя изменить: кассы этого магазина уже обращались в СИ.")
    if problems:
        raise errors.invalid(problems)
    return data


def text_problems(values: dict[str, str | None]) -> dict[str, str]:
    """The name and address rules of a store, for its form and for a row of «Загрузка из файла»."""
    problems = {}
    for name, label, limit in TEXT_LIMITS:
        if values.get(name) and len(values[name]) > limit:
            problems[name] = f"{label}: не длиннее {limit} символов."
    return problems


def duplicate_message(code: str) -> str:
    return f"Магазин с кодом {code} уже есть."


def _code_taken(code: str, editing: Store | None) -> bool:
    query = select(Store.id).where(Store.code == code)
    if editing is not None and editing.id is not None:
        query = query.where(Store.id != editing.id)
    return db.session.execute(query).first() is not None


def contract_required(editing: Store | None) -> bool:
    """Manual entry needs a contract (the manual); an imported store still unbound may be edited without one."""
    return editing is None or editing.contract_id is not None


def _check_contract(contract_id: int | None, editing: Store | None) -> str | None:
    if contract_id is None:
        return "Выберите договор." if contract_required(editing) else None
    if db.session.get(Contract, contract_id) is None:
        return "Такого договора нет: выберите договор из списка."
    return None


def bindable_contracts() -> dict[str, int]:
    """Contracts a store may be bound to, by number, for a file that names them: as on the store's form and in
    «Привязать магазины к договору», any contract in SIS, whatever its status (a draft has no number yet)."""
    return dict(db.session.execute(select(Contract.number, Contract.id).where(Contract.number.is_not(None))).all())


def _has_cash_registers(store: Store) -> bool:
    return bool(db.session.scalar(select(exists().where(CashRegister.store_id == store.id))))


def _apply(store: Store, data: StoreInput) -> None:
    for name in ("code", "contract_id", "name", "address", "comment"):
        setattr(store, name, getattr(data, name))


@contextmanager
def _duplicate_code_is_a_field_error(code: str):
    try:
        yield
    except IntegrityError:
        # Two users saved the same code at once (or an import added it): the unique constraint decides.
        db.session.rollback()
        raise errors.invalid({"code": duplicate_message(code)}) from None


def create_store(raw: StoreInput, actor: str) -> Store:
    data = clean_input(raw)
    store = Store(source=SOURCE_MANUAL)
    _apply(store, data)
    db.session.add(store)
    with _duplicate_code_is_a_field_error(data.code):
        db.session.flush()
        audit.record(actor, "store", store.id, "Добавление магазина",
                     details=f"Код {store.code}, договор {contract_title(store.contract)}")
        db.session.commit()
    return store


def update_store(store: Store, raw: StoreInput, actor: str) -> Store:
    data = clean_input(raw, editing=store)
    changed = [name for name in ("code", "contract_id", "name", "address", "comment")
               if getattr(store, name) != getattr(data, name)]
    _apply(store, data)
    with _duplicate_code_is_a_field_error(data.code):
        if "contract_id" in changed:
            _mark_moved_registers([store.id], store.contract_id)
        if changed:
            audit.record(actor, "store", store.id, "Изменение магазина",
                         details=f"Код {store.code}; изменены поля: " + audit.field_names(STORE_FIELD_LABELS, changed))
        db.session.commit()
    return store


def delete_store(store: Store, actor: str) -> None:
    if _has_cash_registers(store):
        raise errors.SisError("ACTION_NOT_ALLOWED",
                              f"Магазин {store.code} удалить нельзя: его кассы уже обращались в СИ.")
    audit.record(actor, "store", store.id, "Удаление магазина", details=f"Код {store.code}")
    db.session.delete(store)
    db.session.commit()


# --- binding to a contract ----------------------------------------------------------------------

def parse_ids(values) -> list[int]:
    """Store ids as ticked in the list ("1", "2", or "1,2"); anything else is refused."""
    ids: list[int] = []
    for value in values or ():
        for part in str(value).split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isascii() or not part.isdigit() or int(part) > MAX_ID:
                raise errors.SisError("VALIDATION_ERROR", "Неверный список магазинов.",
                                      "Вернитесь к списку и отметьте магазины снова.")
            ids.append(int(part))
    return list(dict.fromkeys(ids))


def nothing_selected() -> errors.SisError:
    return errors.SisError("NOTHING_SELECTED", "Не отмечено ни одного магазина.",
                           "Отметьте магазины в списке и выберите «С отмеченными» → «Привязать магазины к договору».")


def bind_stores(store_ids, contract_id, actor: str) -> int:
    """"Привязать магазины к договору": one UPDATE of every ticked store; returns how many were bound."""
    ids = parse_ids(store_ids)
    if not ids:
        raise nothing_selected()
    if len(ids) > MAX_BIND:
        raise errors.SisError("TOO_MANY", f"За один раз можно привязать не больше {plural.stores(MAX_BIND)}.")
    chosen = _contract_id(contract_id)
    contract = db.session.get(Contract, chosen) if chosen is not None else None
    if contract is None:
        raise errors.invalid({"contract_id": "Выберите договор из списка."})
    result = db.session.execute(update(Store).where(Store.id.in_(ids))
                                .values(contract_id=contract.id, updated_at=utcnow()))
    count = result.rowcount
    _mark_moved_registers(ids, contract.id)
    audit.record(actor, "store", None, ACTION_BIND, details=f"{bound_message(count, contract)}; коды: "
                                                           f"{_codes_for_journal(ids, count)}", object_ids=ids)
    db.session.commit()
    return count


def _mark_moved_registers(store_ids: list[int], contract_id: int | None) -> None:
    """The stores' registers learn whether they are under another contract than their store's now (see
    CashRegister.store_moved): the job re-registers those once it is «Активный», and a store bound back
    leaves its registers as they were. Only the registers that change are written, in the caller's
    transaction, after the stores' rows (which a register's move locks to read its store's contract)."""
    moved = CashRegister.contract_id.is_distinct_from(contract_id)
    db.session.execute(update(CashRegister).where(CashRegister.store_id.in_(store_ids),
                                                  CashRegister.store_moved.is_distinct_from(moved))
                       .values(store_moved=moved), execution_options={"synchronize_session": False})


def _codes_for_journal(ids: list[int], count: int, limit: int = 50) -> str:
    codes = db.session.scalars(select(Store.code).where(Store.id.in_(ids)).order_by(Store.id).limit(limit)).all()
    return ", ".join(codes) + (f" … и ещё {count - len(codes)}" if count > len(codes) else "")


def selected_stores(ids: list[int]) -> list[Store]:
    """The ticked stores, for the bind form to show what will be bound."""
    if not ids:
        return []
    return list(db.session.scalars(select(Store).where(Store.id.in_(ids)).order_by(Store.id)))


def contract_choices() -> list[tuple[int, str]]:
    """Every contract in SIS, newest first, for the "Договор" select."""
    rows = db.session.scalars(select(Contract).order_by(Contract.id.desc()))
    return [(contract.id, f"{contract_title(contract)} — {status_label(contract.status)}") for contract in rows]

