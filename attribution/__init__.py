"""Video attribution: the generated videos that drive sales (and, next, the ledger)."""
