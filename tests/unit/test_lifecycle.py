"""The contract state machine: which status may follow which."""
import pytest

from stoloto.lifecycle import STATUS_LABELS, TRANSITIONS, ContractStatus, can_transition

S = ContractStatus


def test_every_status_has_the_manual_label():
    assert [STATUS_LABELS[s] for s in S] == [
        "Черновик", "Создан", "Ожидание активации", "Ожидание терминалов", "Активный"]


@pytest.mark.parametrize("source, target", [
    (S.DRAFT, S.CREATED), (S.CREATED, S.AWAITING_ACTIVATION),
    (S.AWAITING_ACTIVATION, S.AWAITING_TERMINALS), (S.AWAITING_TERMINALS, S.ACTIVE),
])
def test_the_manual_path_is_allowed(source, target):
    assert can_transition(source.value, target)


@pytest.mark.parametrize("source, target", [
    (S.DRAFT, S.AWAITING_ACTIVATION), (S.DRAFT, S.ACTIVE), (S.CREATED, S.ACTIVE),
    (S.AWAITING_ACTIVATION, S.CREATED), (S.ACTIVE, S.DRAFT), (S.ACTIVE, S.CREATED),
    (S.AWAITING_TERMINALS, S.AWAITING_ACTIVATION),
])
def test_skipping_or_going_back_is_refused(source, target):
    assert not can_transition(source.value, target)


def test_every_transition_is_named_for_the_journal():
    assert all(name for name in TRANSITIONS.values())
