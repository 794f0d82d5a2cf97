"""Russian plural forms for counts in messages: 1 магазин, 2 магазина, 5 магазинов."""


def plural_form(count: int, one: str, few: str, many: str) -> str:
    """The word form that goes with `count` (one: 1, 21, 101; few: 2–4, 22–24; many: the rest)."""
    count = abs(count)
    if count % 100 in (11, 12, 13, 14):
        return many
    if count % 10 == 1:
        return one
    if count % 10 in (2, 3, 4):
        return few
    return many


def plural(count: int, one: str, few: str, many: str) -> str:
    """"5 магазинов": the count followed by the word form that goes with it."""
    return f"{count} {plural_form(count, one, few, many)}"


def stores(count: int) -> str:
    return plural(count, "магазин", "магазина", "магазинов")
