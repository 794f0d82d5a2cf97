"""Error pages in Russian: no stack traces, no English defaults."""
from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError

PAGES = {
    400: ("Некорректный запрос", "Запрос не удалось обработать."),
    403: ("Доступ запрещён", "Недостаточно прав для этого действия."),
    404: ("Страница не найдена", "Такой страницы нет."),
    405: ("Метод не разрешён", "Это действие выполняется кнопкой на странице."),
    413: ("Слишком большой запрос", "Размер запроса превышает допустимый."),
    500: ("Внутренняя ошибка", "Произошла ошибка на сервере. Она записана в журнал сервера; "
                               "обратитесь в службу поддержки."),
}

API_CODES = {400: "VALIDATION_ERROR", 403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
             413: "PAYLOAD_TOO_LARGE", 500: "INTERNAL_ERROR"}


def register_errorhandlers(app: Flask) -> None:
    def render(code: int, detail: str | None = None):
        title, text = PAGES[code]
        if request.path.startswith("/api/"):  # machines get the JSON error body of PROTOCOLS.md
            return jsonify({"error": {"code": API_CODES.get(code, f"HTTP_{code}"), "message": detail or title}}), code
        return render_template("error.html", code=code, title=title, text=detail or text), code

    for code in PAGES:
        app.register_error_handler(code, lambda error, code=code: render(code))
    app.register_error_handler(
        CSRFError, lambda error: render(400, "Сессия формы устарела (CSRF). Обновите страницу и повторите."))
