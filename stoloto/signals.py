"""Signals from the core to whoever schedules work (the jobs), so services never import jobs."""
from blinker import Namespace

_signals = Namespace()

# Sent with the contract id when a cash register found no free terminal: fetch a batch soon.
terminals_needed = _signals.signal("terminals-needed")
