"""The merchant and finance dashboard: server-rendered pages at /dashboard."""
