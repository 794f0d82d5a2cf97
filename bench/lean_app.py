"""The lean reference endpoint: the registration's bare work by hand, served like SIS, for comparison.

One claim `UPDATE … RETURNING`, one insert, the same keep-alive mutual-TLS call to the stand —
no validation, no idempotency, no history, no ORM.
"""
import json
import os
import uuid

from flask import Flask, Response, request
from sqlalchemy import create_engine, text


def create_lean_app() -> Flask:
    from app import create_app
    from stoloto.clients.stoloto import StolotoClient
    from stoloto.database import configure_engine
    from stoloto.extensions import db
    from stoloto.models import Contract
    from stoloto.services.gateway import client_certificate

    sis = create_app({"SIS_BOOTSTRAP_ADMIN": False})
    contract_id = int(os.environ["LEAN_CONTRACT_ID"])
    with sis.app_context():  # only to read the contract's certificate and key once
        contract = db.session.get(Contract, contract_id)
        number = contract.number
        client = StolotoClient(os.environ["LEAN_STOLOTO_URL"], os.environ["LEAN_STOLOTO_CA"],
                               client_cert=client_certificate(contract))
    engine = create_engine(os.environ["DATABASE_URL"], pool_size=10, max_overflow=30)
    configure_engine(engine)  # the same SQLite settings as SIS: WAL, busy timeout, synchronous=NORMAL
    skip_locked = " FOR UPDATE SKIP LOCKED" if engine.dialect.name == "postgresql" else ""
    claim = text("UPDATE terminals SET status = 'registered' WHERE id = (SELECT id FROM terminals "
                 "WHERE contract_id = :contract AND status = 'free' ORDER BY id LIMIT 1" + skip_locked + ") "
                 "RETURNING number")
    record = text("INSERT INTO lean_registrations (store_code, cash_number, terminal_number) "
                  "VALUES (:store, :cash, :terminal)")
    lean = Flask(__name__)

    @lean.post("/lean/registration")
    def register():
        body = json.loads(request.get_data())
        with engine.begin() as connection:
            terminal = connection.execute(claim, {"contract": contract_id}).scalar()
            connection.execute(record, {"store": body["store_code"], "cash": body["cash_number"],
                                        "terminal": terminal})
        outcome = client.register_terminal(str(uuid.uuid4()), terminal, {
            "contract_number": number, "store_code": body["store_code"], "cash_number": body["cash_number"]})
        status = 200 if outcome.ok else 502
        return Response(json.dumps({"status": "REGISTERED", "terminal_number": terminal}), status,
                        content_type="application/json")

    return lean
