"""Fixtures: a real SMTP server (aiosmtpd) and a real HTTP receiver in this process, for the alerts' messages."""
import json
import socket
import threading
import time
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Mailbox:
    """What the SMTP server received: each message with its envelope recipients."""

    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        with self.lock:
            self.messages.append({"to": list(envelope.rcpt_tos), "from": envelope.mail_from,
                                  "subject": str(message["Subject"]), "body": message.get_content()})
        return "250 OK"

    def subjects(self) -> list[str]:
        with self.lock:
            return [m["subject"] for m in self.messages]


@pytest.fixture
def smtp_server():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    mailbox.host, mailbox.port = controller.hostname, controller.port
    yield mailbox
    controller.stop()


class Receiver:
    """What the webhook receiver got: the JSON bodies, in order; `status` and `delay` shape its answers."""

    def __init__(self):
        self.bodies = []
        self.lock = threading.Lock()
        self.status = 200
        self.delay = 0.0

    def states(self, kind: str | None = None) -> list[str]:
        with self.lock:
            return [body["state"] for body in self.bodies if kind is None or body["kind"] == kind]


@pytest.fixture
def webhook():
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(receiver.delay)
            with receiver.lock:
                receiver.bodies.append(json.loads(body))
                receiver.content_types = self.headers.get("Content-Type")
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_port}/alerts"
    yield receiver
    server.shutdown()
    server.server_close()
