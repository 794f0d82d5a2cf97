"""Stoloto test stand: a fake Stoloto agent service (docs/protocols.md §1, §4), HTTPS with its own CA and mutual TLS.

The stand lives in the package stoloto/stands/stoloto/; this module keeps the name tests, the demo and
`python -m stoloto.stands.stoloto_stand` use.
"""

from stoloto.stands.stoloto.pki import spki_fingerprint
from stoloto.stands.stoloto.stand import StolotoStand, main
from stoloto.stands.stoloto.store import contract_key

__all__ = ["StolotoStand", "contract_key", "main", "spki_fingerprint"]

if __name__ == "__main__":
    main()
