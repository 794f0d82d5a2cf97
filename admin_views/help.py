"""«Справка»: the administrator's guide (docs/admin-guide.ru.md) with the configuration SIS runs with now."""
import re
from functools import cache
from pathlib import Path

from flask import current_app
from flask_admin import BaseView, expose
from markdown_it import MarkdownIt
from markupsafe import Markup

from stoloto import settings

from .security import LoginRequired

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "admin-guide.ru.md"


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading, so a link to a section works on the panel and in the repository alike."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@cache
def guide_html() -> Markup:
    # The guide is ours, but raw HTML stays off all the same: what the page shows is only Markdown.
    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = parser.parse(GUIDE.read_text(encoding="utf-8"))
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            token.attrSet("id", anchor(tokens[index + 1].content))
        elif token.type == "table_open":
            token.attrSet("class", "table table-sm table-bordered")
    return Markup(parser.renderer.render(tokens, parser.options, {}))


class HelpView(LoginRequired, BaseView):
    @expose("/")
    def index(self):
        return self.render(
            "help.html", guide=guide_html(), stoloto_url=settings.get(settings.STOLOTO_URL),
            set_centrum_url=settings.get(settings.SET_CENTRUM_URL),
            demo=bool(current_app.config.get("SIS_STOLOTO_STAND_URL")))
