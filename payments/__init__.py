"""The money path: payment providers (sandbox, Stripe) behind one interface."""
