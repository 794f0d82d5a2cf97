"""Runnable test stands of the outside services SIS talks to (Stoloto, SET Centrum), PROTOCOLS.md §1, §2, §4."""
