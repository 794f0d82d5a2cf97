"""Error values: a code, a Russian message and what the user should do next."""
from dataclasses import dataclass, field

from .plural import plural


@dataclass
class SisError(Exception):
    code: str
    message: str
    hint: str = ""
    # Field name -> Russian message, for errors tied to a form field.
    fields: dict[str, str] = field(default_factory=dict)
    # How «Журнал» records it: "error", or "warning" for a refusal that only asks the user to finish their input.
    level: str = "error"

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


def invalid(fields: dict[str, str]) -> SisError:
    return SisError("VALIDATION_ERROR", "Исправьте ошибки в форме.", fields=fields)


def status_changed() -> SisError:
    return SisError(
        "STATUS_CHANGED",
        "Статус договора уже изменился.",
        "Обновите страницу и посмотрите его текущее состояние.",
    )


def action_not_allowed(action: str, status_label: str) -> SisError:
    return SisError(
        "ACTION_NOT_ALLOWED",
        f"Действие «{action}» невозможно для договора в статусе «{status_label}».",
    )


def draft_refused(action: str) -> SisError:
    return SisError(
        "CONTRACT_INCOMPLETE",
        f"Действие «{action}» невозможно: договор не заполнен (статус «Черновик»).",
        "Заполните номер, дату заключения и ИНН агента и сохраните договор.",
        level="warning",
    )


def not_found(what: str) -> SisError:
    return SisError("NOT_FOUND", f"{what} не найден.")


def forbidden() -> SisError:
    return SisError("FORBIDDEN", "Недостаточно прав для этого действия.")


def login_failed() -> SisError:
    return SisError("LOGIN_FAILED", "Неверный логин или пароль.")


def login_throttled(minutes: int) -> SisError:
    return SisError("LOGIN_THROTTLED", "Слишком много неудачных попыток входа. Повторите через "
                                       f"{plural(minutes, 'минуту', 'минуты', 'минут')}.")
