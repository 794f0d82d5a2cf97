"""The mutual-TLS clients kept per contract: reused while nothing changes, replaced when something does."""
from stoloto import settings
from stoloto.extensions import db
from stoloto.models import Contract
from stoloto.services import gateway
from tests.factories import activated_contract


def test_a_contract_keeps_one_client_for_its_current_settings(app, stand):
    with app.app_context():
        contract_id = activated_contract(stand, "КЛИЕНТ-1")
        certificate = db.session.get(Contract, contract_id).certificate_pem
        first = gateway.contract_client(contract_id, certificate)
        assert gateway.contract_client(contract_id, certificate) is first  # its connections are reused

        settings.save({settings.READ_TIMEOUT: 45}, "t")
        second = gateway.contract_client(contract_id, certificate)
        assert second is not first and second.timeout[1] == 45
        kept = [client for key, client in gateway._clients.items() if key[-2] == contract_id]
        assert kept == [second]  # the old one is dropped, not left holding connections
