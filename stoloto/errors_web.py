"""Error pages in Russian: no stack traces, no English defaults."""
from flask import Flask, Response, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

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
    def render(code: int, error: Exception | None = None, detail: str | None = None) -> Response:
        title, text = PAGES[code]
        if request.path.startswith("/api/"):  # machines get the JSON error body of docs/protocols.md
            response = jsonify({"error": {"code": API_CODES.get(code, f"HTTP_{code}"), "message": detail or title}})
        else:
            response = make_response(render_template("error.html", code=code, title=title, text=detail or text))
        response.status_code = code
        if isinstance(error, HTTPException):
            # The exception's own headers tell the client what to do next (Allow on a 405, for one).
            for name, value in error.get_headers():
                if name.lower() != "content-type":
                    response.headers[name] = value
        return response

    for code in PAGES:
        app.register_error_handler(code, lambda error, code=code: render(code, error))
    app.register_error_handler(
        CSRFError, lambda error: render(400, detail="Сессия формы устарела (CSRF). Обновите страницу и повторите."))
