"""Background jobs: scheduling only; the work lives in stoloto.services."""
