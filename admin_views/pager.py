"""Every list's pager: the rows shown out of the total («1–50 из 200 000») and «Перейти к странице»."""
from math import ceil

from babel.numbers import format_decimal
from flask import flash, g

from stoloto.boundary import INT4_MAX, parse_int
from stoloto.plural import plural_form

JUMP = "goto"  # «Перейти к странице»: a page number as people count, from 1 (Flask-Admin's `page` counts from 0)


def number(value: int) -> str:
    """1 200 000 with the no-break spaces Russians group digits with; an estimated total as «≈ 1 200 000»."""
    if getattr(value, "approximate", False):
        return str(value)
    return format_decimal(value, locale="ru")


def rows_shown(page: int, page_size: int, count: int) -> str:
    return f"{number(page * page_size + 1)}–{number(min(count, (page + 1) * page_size))} из {number(count)}"


class JumpPager:
    """ModelView mixin: reads «Перейти к странице», moves a page past the end to the last one, gives the list
    template `rows_shown` and its `count` grouped. One COUNT per page view, Flask-Admin's own."""

    def _get_list_extra_args(self):
        args = super()._get_list_extra_args()
        typed = args.extra_args.pop(JUMP, None)  # else every link of the page would carry it on
        wanted = None if typed is None else parse_int(typed.strip(), 1, INT4_MAX)
        if wanted is not None:
            args.page = wanted - 1
        # get_list learns the count, and only then can it tell what page there is: it corrects these args,
        # which index_view goes on to render the page and its links with.
        g.sis_list_args, g.sis_jump = args, None if typed is None else wanted is not None
        return args

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        count, query = super().get_list(page, sort_column, sort_desc, search, filters, execute=False,
                                        page_size=page_size)
        size = self.page_size if page_size is None else page_size
        args, jump = g.get("sis_list_args"), g.get("sis_jump")  # jump: None, or whether the number was one
        if count is not None and size and args is not None and args.page == page:
            pages = ceil(count / size)
            if jump is False:
                flash(f"Номер страницы — целое число от 1 до {number(max(pages, 1))}.", "warning")
            elif page and page >= pages and not getattr(count, "approximate", False):
                # (An estimated total may be short of the real one: its last pages stay reachable.)
                if jump and pages:
                    flash(f"Всего {number(pages)} {plural_form(pages, 'страница', 'страницы', 'страниц')}: "
                          "показана последняя.", "warning")
                args.page = max(pages - 1, 0)
                # Asked again rather than re-offset: a view may page by a subquery of ids (LargeListMixin).
                return super().get_list(args.page, sort_column, sort_desc, search, filters, execute, page_size)
        return count, query.all() if execute else query

    def render(self, template, **kwargs):
        if kwargs.get("num_pages") and kwargs.get("count"):
            kwargs["rows_shown"] = rows_shown(kwargs["page"], kwargs["page_size"], kwargs["count"])
            kwargs["count"] = number(kwargs["count"])  # the tab above the list, «Список (1 200)»
        return super().render(template, **kwargs)
