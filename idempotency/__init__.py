"""Idempotent writes for every protocol binding: see ``idempotency.service``."""
