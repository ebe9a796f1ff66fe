"""Fulfillment: shipments recorded manually or from Shopify, forwarded orders."""
