"""Error pages in Russian: no stack traces, no English defaults."""
from flask import Flask, render_template
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


def register_errorhandlers(app: Flask) -> None:
    def render(code: int, detail: str | None = None):
        title, text = PAGES[code]
        return render_template("error.html", code=code, title=title, text=detail or text), code

    for code in PAGES:
        app.register_error_handler(code, lambda error, code=code: render(code))
    app.register_error_handler(
        CSRFError, lambda error: render(400, "Сессия формы устарела (CSRF). Обновите страницу и повторите."))
