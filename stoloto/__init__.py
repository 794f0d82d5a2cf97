"""SIS core: models, contract lifecycle, crypto, documents, protocol clients and services."""
