"""How a contract's certificate looks: days left, and a warning under 30 days, an error under 7."""
from datetime import datetime, timedelta

import pytest

from stoloto.certificate_lifecycle import MOVES, CertificateState, validity

NOW = datetime(2026, 11, 30, 12, 0)
C = CertificateState


@pytest.mark.parametrize("left, level, text", [
    (timedelta(days=365), "success", "осталось 365 дней"),
    (timedelta(days=30, minutes=1), "success", "осталось 30 дней"),
    (timedelta(days=29, hours=23), "warning", "осталось 29 дней"),
    (timedelta(days=7, minutes=1), "warning", "осталось 7 дней"),
    (timedelta(days=6, hours=23), "danger", "осталось 6 дней"),
    (timedelta(days=1, hours=1), "danger", "осталось 1 день"),
    (timedelta(hours=5), "danger", "осталось меньше суток"),
    (timedelta(minutes=-1), "danger", "истёк"),
])
def test_days_left_and_how_loud(left, level, text):
    shown = validity(C.VALID.value, NOW + left, NOW)
    assert (shown.level, shown.left) == (level, text)


def test_a_contract_without_a_certificate_shows_nothing():
    assert validity(None, None, NOW) is None


@pytest.mark.parametrize("state", [C.EXPIRED, C.REKEYING])
def test_an_expired_or_rekeying_certificate_is_an_error_whatever_its_date(state):
    assert validity(state.value, NOW + timedelta(days=100), NOW).level == "danger"


def test_a_renewal_can_only_begin_from_a_valid_certificate_and_rekeying_only_after_an_expiry():
    assert {source for source, target in MOVES if target is C.RENEWING} == {C.VALID}
    assert {source for source, target in MOVES if target is C.REKEYING} == {C.EXPIRED}
    assert {target for source, target in MOVES if source is C.REKEYING} == {C.VALID}
