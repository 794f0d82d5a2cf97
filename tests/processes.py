"""SIS run as processes by the tests: `flask` and gunicorn commands, their environment, waiting for them."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TEST_KEY_ENCRYPTION_KEY, TEST_SECRET

ROOT = Path(__file__).resolve().parents[1]
FLASK = [sys.executable, "-m", "flask", "--app", "app"]
GUNICORN = [sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "gthread", "--threads", "2",
            "--graceful-timeout", "20", "app:app"]


def sis_env(app, tmp_path, **extra) -> dict:
    env = dict(os.environ, DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], SECRET_KEY=TEST_SECRET,
               SIS_KEY_ENCRYPTION_KEY=TEST_KEY_ENCRYPTION_KEY, SIS_INSTANCE_PATH=str(tmp_path),
               SIS_BOOTSTRAP_ADMIN="0", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A SIS server process in its own session: killing the group kills gunicorn's master and worker."""

    def __init__(self, command: list[str], env: dict):
        self.port = free_port()
        argv = command + (["--bind", f"127.0.0.1:{self.port}"] if command is GUNICORN else
                          ["run", "--host", "127.0.0.1", "--port", str(self.port)])
        self.process = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"

    def owns(self, holder: str) -> bool:
        """Whether the lease holder "host:pid:…" is this server's process (or its gunicorn worker)."""
        try:
            return os.getpgid(int(holder.split(":")[1])) == self.process.pid
        except (ProcessLookupError, IndexError, ValueError):
            return False

    def serving(self) -> bool:
        import requests
        try:
            return requests.get(self.url + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        self.process.wait(30)
