"""«Загрузка из файла» of stores: a preview of what is added and skipped, then «Загрузить» in one transaction."""
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError

from .. import audit, boundary, errors, plural, store_file
from ..extensions import db
from ..models import Contract, Store, StoreUpload, utcnow
from . import stores

ACTION_UPLOAD = "Загрузка магазинов из файла"
UPLOAD_MAX_BYTES = 10 * 1024 * 1024
UPLOAD_MAX_ROWS = 100_000
# How long a preview waits for «Загрузить»; older ones are refused and cleared away.
UPLOAD_KEPT = timedelta(hours=1)
UPLOAD_COLUMNS = ("code", "name", "address", "contract_id", "source", "created_at", "updated_at")
FILENAME_MAX = 255
# How much of a bad cell a reason quotes.
QUOTED = 40
LABELS = dict(zip(store_file.FIELDS, store_file.HEADER, strict=True))


def too_large() -> errors.SisError:
    return store_file.bad_file(f"Файл больше {UPLOAD_MAX_BYTES // (1024 * 1024)} МБ.",
                               "Разделите его на несколько файлов и загрузите их по очереди.")


def stale() -> errors.SisError:
    return errors.SisError("UPLOAD_STALE", "Предпросмотр устарел или уже загружен: загрузите файл снова.",
                           level="warning")


def loaded_message(count: int, filename: str) -> str:
    return f"Загружено {plural.stores(count)} из файла «{filename}»"


@dataclass
class Preview:
    token: str
    filename: str
    total: int
    rows: list  # [line, code, name, address, contract_id, contract number]
    skipped: list  # [line, code, reason]


def preview(data: bytes, filename: str, actor: str) -> Preview:
    """Reads the file and sorts its rows into those to add and those skipped (with the reason); keeps the result
    in the database under a new random token for «Загрузить». Saves no store."""
    filename = boundary.storable((filename or "").replace("\\", "/").rsplit("/", 1)[-1], FILENAME_MAX) or "файл"
    if len(data) > UPLOAD_MAX_BYTES:
        raise too_large()
    rows = store_file.read(data, filename, UPLOAD_MAX_ROWS)
    known = set(db.session.scalars(select(Store.code)))
    contracts = stores.bindable_contracts()
    first_line: dict[str, int] = {}
    to_add, skipped = [], []
    for row in rows:
        reason = _problem(row, known, contracts, first_line)
        if reason:
            skipped.append([row.line, _quoted(row.code), reason])
            continue
        first_line[row.code] = row.line
        to_add.append([row.line, row.code, row.name, row.address, contracts.get(row.contract), row.contract])
    # One preview per user, and none left behind by users who never came back.
    db.session.execute(delete(StoreUpload).where(or_(StoreUpload.actor == actor,
                                                     StoreUpload.created_at < utcnow() - UPLOAD_KEPT)))
    token = secrets.token_urlsafe(32)
    db.session.add(StoreUpload(token=token, actor=actor, filename=filename, total=len(rows), rows=to_add,
                               skipped=skipped))
    db.session.commit()
    # Not read back from the row: that would decode megabytes of JSON just written.
    return Preview(token, filename, len(rows), to_add, skipped)


def _problem(row: store_file.Row, known: set[str], contracts: dict[str, int], first_line: dict[str, int]) -> str | None:
    """Why a row is skipped, in Russian; None when it is added. The store form's rules, then the file's own."""
    cells = (row.code, row.name, row.address, row.contract)
    if not boundary.is_storable("".join(cell for cell in cells if cell)):  # one check a row; the detail if it fails
        for field, cell in zip(store_file.FIELDS, cells, strict=True):
            problem = boundary.text_problem(cell or "")
            if problem:
                return f"{LABELS[field]} {problem}."
    problem = stores.check_code(row.code) or next(iter(stores.text_problems(
        {"name": row.name, "address": row.address}).values()), None)
    if problem:
        return problem
    if row.code in first_line:
        return f"Код {row.code} повторяется в файле: он уже есть в строке {first_line[row.code]}."
    if row.code in known:
        return stores.duplicate_message(row.code)
    if row.contract is not None and row.contract not in contracts:
        return f"Договора № {_quoted(row.contract)} нет в СИ."
    return None


def _quoted(text: str | None) -> str:
    text = boundary.storable(text or "", 10_000)
    return text if len(text) <= QUOTED else text[:QUOTED] + "…"


def pending(token: str | None, actor: str) -> Preview | None:
    """The preview kept under the token for this user, if it is still waiting for «Загрузить»."""
    upload = _upload(token, actor)
    if upload is None:
        return None
    return Preview(upload.token, upload.filename, upload.total, upload.rows, upload.skipped)


def _upload(token: str | None, actor: str) -> StoreUpload | None:
    if not token or len(token) > 64 or not boundary.is_storable(token):
        return None
    upload = db.session.get(StoreUpload, token)
    if upload is None or upload.actor != actor or upload.created_at < utcnow() - UPLOAD_KEPT:
        return None
    return upload


def confirm(token: str | None, session_token: str | None, actor: str) -> tuple[int, str]:
    """«Загрузить»: adds exactly the previewed rows in one transaction with a journal row; returns how many and the
    file's name. The token must be the one this user's session was given at the preview. If stores or contracts
    changed since the preview so that a row no longer fits, nothing is added and the user previews again."""
    upload = _upload(token, actor) if token == session_token else None
    if upload is None:
        raise stale()
    rows, filename, skipped = upload.rows, upload.filename, len(upload.skipped)
    # Taken first, in this transaction: a second «Загрузить» of the same preview (a double click, another tab)
    # waits here for the first and then finds nothing to take.
    if db.session.execute(delete(StoreUpload).where(StoreUpload.token == upload.token)).rowcount != 1:
        db.session.rollback()
        raise stale()
    changed = _changed_since(rows)
    if changed:
        db.session.rollback()
        raise changed
    now = utcnow()
    try:
        stores.insert_stores(UPLOAD_COLUMNS, ((code, name, address, contract_id, stores.SOURCE_FILE, now, now)
                                              for _, code, name, address, contract_id, _ in rows))
    except IntegrityError:
        # Another user or import took one of the codes after our check: nothing of this file is added.
        db.session.rollback()
        raise _changed_since(rows) or stale() from None
    details = loaded_message(len(rows), filename) + f"; пропущено {store_file.rows_message(skipped)}"
    audit.record(actor, "store", None, ACTION_UPLOAD, details=details,
                 object_ids=stores.first_ids([row[1] for row in rows]))
    db.session.commit()
    return len(rows), filename


def _changed_since(rows: list) -> errors.SisError | None:
    codes = {row[1] for row in rows}
    taken = sorted((code for code in db.session.scalars(select(Store.code)) if code in codes),
                   key=lambda code: (len(code), code))
    wanted = {row[4] for row in rows if row[4] is not None}
    existing = set(db.session.scalars(select(Contract.id).where(Contract.id.in_(wanted)))) if wanted else set()
    gone = sorted({row[5] for row in rows if row[4] is not None and row[4] not in existing})
    if not taken and not gone:
        return None
    parts = []
    if taken:
        shown = ", ".join(taken[:20]) + (f" … и ещё {len(taken) - 20}" if len(taken) > 20 else "")
        parts.append(f"магазины с кодами {shown} уже добавлены")
    if gone:
        parts.append(f"договоров № {', '.join(gone[:20])} больше нет")
    return errors.SisError("STORES_CHANGED", f"С момента предпросмотра {'; '.join(parts)}. Ничего не добавлено.",
                           "Загрузите файл снова и проверьте новый предпросмотр.", level="warning")
