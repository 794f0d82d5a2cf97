"""What the browser tests share: logging in, watching the console, activating, a page that updates itself."""
from tests.conftest import PASSWORD

UPDATE_TIMEOUT_MS = 15000  # progress.js asks every 3 s


def log_in(page, base_url, login):
    page.goto(base_url + "/")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Войти')")
    page.wait_for_selector("[data-testid=current-user]")
    # The menus open by Bootstrap's script: under load a click can come before it has run.
    page.wait_for_load_state("load")


def activate(page, base_url, number):
    page.goto(base_url + "/contracts/")
    page.locator("tr", has_text=number).locator("button:has-text('Активировать договор')").click()


def mark_document(page) -> None:
    """A mark that a reload or a navigation would wipe: its presence later proves the page stayed."""
    page.evaluate("window.sisStillThePage = true")


def still_the_page(page) -> bool:
    return page.evaluate("window.sisStillThePage === true")


class Console:
    """Everything Chromium reports as wrong: console errors (CSP violations among them) and page errors."""

    def __init__(self, page):
        self.problems = []
        page.on("console", lambda message: message.type == "error" and self.problems.append(
            f"{page.url}: {message.text}"))
        page.on("pageerror", lambda error: self.problems.append(f"{page.url}: {error}"))
        page.on("response", self._check_policy)

    def _check_policy(self, response) -> None:
        request = response.request
        if request.is_navigation_request() and "script-src 'self' 'nonce-" not in response.headers.get(
                "content-security-policy", ""):
            self.problems.append(f"{response.url}: the page has no Content-Security-Policy")
