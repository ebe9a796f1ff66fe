"""The Agentic Commerce Protocol (ACP) binding: REST checkout sessions, discovery.

* ``schemas``  – request models of the newest version (2026-04-17), parsed tolerantly
* ``parse``    – request models → ``checkout.domain`` commands
* ``render``   – ``SessionView`` → ACP ``CheckoutSession`` JSON
* ``versions`` – ``API-Version`` negotiation and the supported list
* ``discovery``– ``/.well-known/acp.json``
* ``binding``  – the five operations (parse → core → render), shared by REST and MCP
"""
