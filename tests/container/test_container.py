"""The built image, run with podman as `docker run -e SIS_DEMO=1 sis` would: the whole demo over HTTP, then SIGTERM.

Needs podman and the image `.ci/container-setup` builds (localhost/sis:latest, or SIS_IMAGE). Without them the
test is skipped, saying why; in CI (CI=true) a missing podman or image is a failure.
"""
import os
import re
import shutil
import socket
import subprocess
import time
import uuid

import pytest
import requests

from tests.conftest import csrf_token_from

pytestmark = pytest.mark.container

IMAGE = os.environ.get("SIS_IMAGE", "localhost/sis:latest")
PODMAN = ["podman", "--cgroup-manager=cgroupfs"]  # crun and systemd cgroups fail here (docs: CONTAINER.md)
GRACEFUL_TIMEOUT = 10
SETTLE = 5  # seconds over the graceful timeout for the interpreter and podman to wind down
STARTUP = 120
PRINTED = re.compile(r"создан пользователь admin, пароль: (\S+)")


def podman(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=check)


def unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the container test must run here; see .ci/container-setup)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    raise AssertionError(f"not within {seconds} s: {what}")


class Container:
    def __init__(self, name: str, base_url: str):
        self.name, self.base_url = name, base_url

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def get(self, path: str):
        try:
            return requests.get(self.base_url + path, timeout=5)
        except requests.RequestException:  # not listening yet, or the workers still booting
            return None


@pytest.fixture
def container():
    if shutil.which("podman") is None:
        unavailable("podman is not installed: the container test needs it (.ci/container-setup installs it)")
    if podman("image", "exists", IMAGE, check=False).returncode != 0:
        unavailable(f"image {IMAGE} is not built: run .ci/container-setup")
    name = f"sis-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    # --network host: no bridge networking here; every port the container opens is chosen free.
    podman("run", "-d", "--runtime", "runc", "--network", "host", "--name", name,
           "-e", "SIS_DEMO=1", "-e", f"PORT={port}", "-e", f"STOLOTO_STAND_PORT={free_port()}",
           "-e", f"SET_STAND_PORT={free_port()}", "-e", f"SIS_GRACEFUL_TIMEOUT={GRACEFUL_TIMEOUT}", IMAGE)
    running = Container(name, f"http://127.0.0.1:{port}")
    yield running
    print(running.logs()[-4000:])  # shown by pytest when the test failed
    podman("rm", "-f", "-t", "0", name, check=False)


def log_in(session: requests.Session, base_url: str, password: str) -> None:
    form = session.get(base_url + "/auth/login", timeout=10)
    response = session.post(base_url + "/auth/login", data={
        "login": "admin", "password": password, "csrf_token": csrf_token_from(form.text)},
        allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text


def post_form(session: requests.Session, base_url: str, page: str, url: str, data: dict) -> str:
    """Posts a panel form the way a browser does: with the CSRF token of the page it is on."""
    token = csrf_token_from(session.get(base_url + page, timeout=10).text)
    response = session.post(base_url + url, data={"csrf_token": token, **data}, timeout=60)
    assert response.status_code == 200, response.text
    return response.text


def contract_status(session: requests.Session, base_url: str) -> str:
    """The status column of the only contract on «Договоры»."""
    cells = re.findall(r'<td class="col-status">(.*?)</td>', session.get(base_url + "/contracts/", timeout=10).text,
                       re.S)
    assert len(cells) == 1, cells
    return re.sub(r"<[^>]+>", "", cells[0]).strip()


def success_message(html: str) -> str:
    match = re.search(r'class="alert alert-success[^"]*"[^>]*>(.*?)</div>', html, re.S)
    assert match, "no success message on the page:\n" + html[-3000:]
    return re.sub(r"<[^>]+>", "", match.group(1))


def test_the_demo_image_serves_the_whole_demo_as_non_root_and_stops_cleanly_on_sigterm(container):
    base = container.base_url
    wait_until(lambda: (response := container.get("/healthz")) is not None and response.status_code == 200,
               STARTUP, "/healthz answers 200")
    ready = requests.get(base + "/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert podman("healthcheck", "run", container.name, check=False).returncode == 0  # the image's HEALTHCHECK

    processes = podman("top", container.name, "user", "args").stdout.splitlines()[1:]
    assert processes and all(not line.startswith("root") for line in processes), processes

    password = PRINTED.search(container.logs())
    assert password, "the first admin's password is not in the container's log"
    session = requests.Session()
    log_in(session, base, password.group(1))

    # «Договоры» → «Создать», then «Активировать договор» (keys and «Приложение №5»).
    created = post_form(session, base, "/contracts/new/", "/contracts/new/", {
        "number": "КОНТ-1", "contract_date": "15.01.2026", "agent_inn": "7707083893", "comment": ""})
    contract_id = re.search(r'name="id" value="(\d+)"', created).group(1)
    assert "Ожидание активации" in success_message(post_form(
        session, base, "/contracts/", "/contracts/activate/", {"id": contract_id}))
    # «Тестовый стенд»: the contract is registered with Stoloto and its key confirmed, as Stoloto's operator does.
    assert "зарегистрирован на тестовом стенде" in success_message(post_form(
        session, base, "/stand/", "/stand/act/", {"id": contract_id, "what": "register"}))
    assert "подтверждён на тестовом стенде" in success_message(post_form(
        session, base, "/stand/", "/stand/act/", {"id": contract_id, "what": "confirm"}))
    assert "Ожидание терминалов" in success_message(post_form(
        session, base, "/contracts/", "/contracts/activate/", {"id": contract_id}))
    # The job runner inside the container fetches the terminal numbers.
    wait_until(lambda: contract_status(session, base) == "Активный", 120, "the contract becomes «Активный»")

    # «Магазины» → «Загрузка списка магазинов» from the SET Centrum stand, then bind one to the contract.
    post_form(session, base, "/stores/import/", "/stores/import/", {})
    stores = session.get(base + "/stores/", timeout=10).text
    first_row = re.search(r'name="id" type="hidden" value="(\d+)">.*?<td class="col-code">\s*(\S+)\s*</td>', stores,
                          re.S)
    assert first_row, "no imported store on the stores page"
    store_id, store_code = first_row.groups()
    assert "1 магазин" in success_message(post_form(
        session, base, f"/stores/bind/?ids={store_id}", f"/stores/bind/?ids={store_id}",
        {"ids": store_id, "contract_id": contract_id, "url": "/stores/"}))

    # «Настройки» hands the cash API token to the registers; a register registers itself.
    token = re.search(r'name="cash_api.token" value="([^"]+)"', session.get(base + "/settings/", timeout=10).text)
    registered = requests.post(base + "/api/v1/cash-registers/registration",
                               json={"store_code": store_code, "cash_number": 1},
                               headers={"Authorization": f"Bearer {token.group(1)}"}, timeout=60)
    assert registered.status_code == 200, registered.text
    assert registered.json()["status"] == "REGISTERED" and registered.json()["contract_number"] == "КОНТ-1"

    podman("kill", "--signal", "TERM", container.name)
    exit_code = podman("wait", container.name, timeout=GRACEFUL_TIMEOUT + SETTLE).stdout.strip()
    assert exit_code == "0", container.logs()[-3000:]
