"""Runnable test stands of the outside services SIS talks to (Stoloto, SET Centrum), docs/protocols.md §1, §2, §4."""
