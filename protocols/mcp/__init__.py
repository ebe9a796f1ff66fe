"""The merchant's MCP server (ACP MCP binding + catalog and order tools)."""
