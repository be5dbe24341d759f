"""The six supervised actors: health, ledger, limits, classifier, router, pool."""
