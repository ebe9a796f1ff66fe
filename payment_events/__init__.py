"""Payment-provider events (Stripe webhooks, via the inbox) applied to checkout sessions and
orders. Sits above ``checkout``, ``orders`` and ``payments`` so none of those imports
another in a cycle: ``payments`` is only the provider interface and its clients."""
