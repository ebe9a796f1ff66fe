"""The protocol-neutral checkout core: domain objects, pricing (pure), the session state
machine (lifecycle, payment, recovery), persistence. Public API: ``checkout.service``."""
