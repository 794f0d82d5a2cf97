"""The Stoloto test stand as an object (start, stop, reset) and its command line."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
from pathlib import Path

from ..server import BackgroundServer, FaultQueue, KeepAliveServer, ServedStand, configure_cli
from .app import MAX_LATENCY_MS, create_stoloto_app
from .pki import StandClock, StandPki, server_names_for
from .protocol import DEFAULT_CERT_VALIDITY_MINUTES, MAX_CERT_VALIDITY_MINUTES, StolotoBackend
from .store import StandStore

log = logging.getLogger(__name__)


class StolotoStand(ServedStand):
    """The Stoloto test stand: `StolotoStand(data_dir).start()`, then SIS talks to `url` trusting `ca_path`."""

    def __init__(self, data_dir: str | os.PathLike, host: str = "127.0.0.1", port: int = 0, tls: bool = True,
                 auto_confirm: bool | None = None, auto_register: bool | None = None,
                 keep_alive: bool = False, latency_ms: int = 0,
                 cert_validity_minutes: int = DEFAULT_CERT_VALIDITY_MINUTES) -> None:
        self.data_dir = Path(data_dir)
        # Added to every §1 answer, so a benchmark or the demo plays a remote Stoloto; reset returns to it.
        self.latency_ms = self._initial_latency_ms = latency_ms
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.host = host
        self.tls = tls
        self.pki = StandPki(self.data_dir, server_names_for(host))
        self.store = StandStore(self.data_dir / "stoloto.sqlite3")
        self.store.open()
        # Of the certificates §1.1 and §1.4 issue; POST /control/certificate-validity changes it, reset returns.
        self._initial_cert_validity_minutes = cert_validity_minutes
        self.backend = StolotoBackend(self.store, self.pki, StandClock(), cert_validity_minutes)
        self.faults = FaultQueue()
        # None keeps the mode remembered in the data dir; reset returns to what was asked here.
        self._initial_flags = {"auto_confirm": auto_confirm, "auto_register": auto_register}
        self._apply_initial_flags()
        self.app = create_stoloto_app(self)
        context = self.pki.server_context() if tls else None
        # keep_alive: cheroot, connections reused (benchmarks); default: werkzeug, every fault available.
        self.keep_alive = keep_alive
        self._server = (KeepAliveServer(self.app, host, port, context, self.pki.server_cert_path,
                                        self.pki.server_key_path)
                        if keep_alive else BackgroundServer(self.app, host, port, context))

    def _apply_initial_flags(self) -> None:
        for name, value in self._initial_flags.items():
            if value is not None:
                self.backend.set_flag(name, value)

    @property
    def ca_path(self) -> str:
        """The CA bundle SIS must trust for this stand (also the issuer of client certificates)."""
        return str(self.pki.ca_path)

    def start(self) -> StolotoStand:
        """Serve on a background daemon thread; a restarted object keeps its port."""
        self.store.open()
        self._server.start(name=f"stoloto-stand-{self._server.port}")
        log.info("Stoloto stand at %s (CA %s)", self.url, self.ca_path)
        return self

    def stop(self) -> None:
        self._server.stop()
        self.store.close()

    def serve_forever(self) -> None:
        """Serve in the foreground until Ctrl-C (the CLI)."""
        self.store.open()
        self._server.bind()
        print(f"Stoloto stand: {self.url}", flush=True)
        print(f"CA bundle: {self.ca_path}", flush=True)
        try:
            self._server.serve_forever()
        finally:
            self.store.close()

    def reset(self) -> None:
        """Forget contracts, keys, terminals, bindings and faults; the CA and number sequences stay."""
        self.backend.reset()
        self.faults.clear()
        self.latency_ms = self._initial_latency_ms
        self.backend.cert_validity_minutes = self._initial_cert_validity_minutes
        self.backend.clock.offset = dt.timedelta(0)
        for name in self._initial_flags:
            self.backend.set_flag(name, bool(self._initial_flags[name]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Stoloto test stand (docs/protocols.md §1, §4).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--data-dir", default="instance/stands/stoloto")
    parser.add_argument("--auto-confirm", action="store_true", default=None,
                        help="confirm every new key on activation, as if Appendix 5 was processed")
    parser.add_argument("--auto-register", action="store_true", default=None,
                        help="register an unknown contract on its first activation")
    parser.add_argument("--keep-alive", action="store_true",
                        help="serve with cheroot: connections stay open between calls (no 'drop' fault)")
    parser.add_argument("--no-tls", dest="tls", action="store_false",
                        help="plain HTTP, the body's contract_number is trusted (tests only)")
    parser.add_argument("--quiet", action="store_true", help="no line per request (benchmarks)")
    parser.add_argument("--latency-ms", type=_latency, default=0, metavar="MS",
                        help=f"answer every §1 call after MS milliseconds (0–{MAX_LATENCY_MS}), as a remote Stoloto")
    parser.add_argument("--cert-validity-minutes", type=_validity, default=DEFAULT_CERT_VALIDITY_MINUTES,
                        metavar="MINUTES",
                        help="validity of the client certificates §1.1 and §1.4 issue, in minutes "
                             f"(1–{MAX_CERT_VALIDITY_MINUTES}; default {DEFAULT_CERT_VALIDITY_MINUTES}, 365 days); "
                             "e.g. 10 to show expiry and renewal in a demo")
    args = parser.parse_args(argv)
    configure_cli(args.quiet)
    StolotoStand(args.data_dir, host=args.host, port=args.port, tls=args.tls, auto_confirm=args.auto_confirm,
                 auto_register=args.auto_register, keep_alive=args.keep_alive,
                 latency_ms=args.latency_ms, cert_validity_minutes=args.cert_validity_minutes).serve_forever()


def _latency(text: str) -> int:
    return _integer(text, 0, MAX_LATENCY_MS)


def _validity(text: str) -> int:
    return _integer(text, 1, MAX_CERT_VALIDITY_MINUTES)


def _integer(text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"an integer from {low} to {high}")
    return value
