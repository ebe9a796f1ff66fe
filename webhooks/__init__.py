"""Webhooks in (inbox: verify, store once, process in a worker) and out (outbox)."""
