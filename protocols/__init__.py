"""Protocol bindings (ACP, UCP, MCP) over the one commerce core. The core never imports them."""
