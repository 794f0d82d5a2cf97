"""The Stoloto test stand (docs/protocols.md §1, §4.1), in parts: PKI, storage, protocol, Flask app, the stand."""
