"""Etsy: one catalog and one stock count across Etsy and the agent channels."""
