"""Protocol bindings over the protocol-neutral commerce core (``checkout``, ``orders``…).

One sub-package per protocol: parsing, rendering, error mapping, version adapters and
discovery for that protocol only. Bindings import the domain; the domain never imports
a binding (import-linter enforces it).
"""
