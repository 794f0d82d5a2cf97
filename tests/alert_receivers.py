"""Fixtures: a real SMTP server (aiosmtpd) and a real HTTP receiver in this process, for the alerts' messages."""
import json
import threading
import time
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from tests.processes import free_port


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
    """What the webhook receiver got: the JSON bodies, in order; `status` and `delay` shape its answers. A test that
    clears `release` holds every answer until it sets it again (a webhook that has not answered yet)."""

    def __init__(self):
        self.bodies = []
        self.lock = threading.Lock()
        self.status = 200
        self.delay = 0.0
        self.release = threading.Event()
        self.release.set()

    def states(self, kind: str | None = None) -> list[str]:
        with self.lock:
            return [body["state"] for body in self.bodies if kind is None or body["kind"] == kind]


@pytest.fixture
def webhook():
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.release.wait(60)
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


LOGIN, PASSWORD = "sis", "mail-secret-1"


def _certificate_for_localhost(folder) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key, as files."""
    import ipaddress
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
                   .not_valid_after(now + timedelta(days=30))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "smtp.pem", folder / "smtp.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture
def tls_smtp_server(tmp_path, monkeypatch):
    """Factory: tls_smtp_server("starttls" | "ssl") starts an SMTP server that wants TLS and a login (LOGIN,
    PASSWORD); its certificate is what this process trusts (SSL_CERT_FILE, read by ssl's default context)."""
    import ssl

    from aiosmtpd.smtp import AuthResult

    cert_path, key_path = _certificate_for_localhost(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", cert_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    controllers = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == LOGIN.encode() and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers a refusal with 535

    def start(mode: str) -> Mailbox:
        mailbox = Mailbox()
        # aiosmtpd sees no TLS on a connection that began with it: AUTH must be allowed without its STARTTLS.
        options = {"tls_context": context, "require_starttls": True} if mode == "starttls" else \
            {"ssl_context": context, "auth_require_tls": False}
        controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticate,
                                auth_required=True, **options)
        controller.start()
        controllers.append(controller)
        mailbox.host, mailbox.port = controller.hostname, controller.port
        return mailbox

    yield start
    for controller in controllers:
        controller.stop()
