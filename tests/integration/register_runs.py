"""«Зарегистрировать сейчас» as the list's form presses it, and its run followed to the end through its JSON."""
import re

from tests.integration.test_processes import wait_for

STARTED = re.compile(r"/registers/\?run=(\d+)$")


def press(browser, ids: list[int]):
    """«С отмеченными» → «Зарегистрировать сейчас» on the list, as the page's form sends it."""
    return browser.post("/registers/action/", {"action": "finish", "rowid": [str(i) for i in ids],
                                               "url": "/registers/"})


def started_run(response) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)
    match = STARTED.search(response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def progress(browser, run: int) -> dict:
    response = browser.get(f"/registers/progress/?id={run}")
    assert response.status_code == 200
    return response.get_json()


def finished(browser, run: int) -> dict:
    """The run's last answer, once it is over."""
    answer = {}

    def over() -> bool:
        answer.update(progress(browser, run))
        return not answer["waiting"]
    wait_for(over, 120, "the run to finish")
    return answer


def registered_now(browser, ids: list[int]) -> str:
    """Presses «Зарегистрировать сейчас» on the registers and waits for the run's final notice."""
    return finished(browser, started_run(press(browser, ids)))["notice"]
