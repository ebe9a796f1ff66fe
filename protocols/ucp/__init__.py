"""Universal Commerce Protocol (UCP) 2026-04-08 binding: discovery, checkout over REST,
orders, signed order webhooks. Thin: it translates UCP shapes to the commerce core and back.
"""

UCP_VERSION = "2026-04-08"
SPEC_BASE = f"https://ucp.dev/{UCP_VERSION}"

CHECKOUT = "dev.ucp.shopping.checkout"
FULFILLMENT = "dev.ucp.shopping.fulfillment"
DISCOUNT = "dev.ucp.shopping.discount"
ORDER = "dev.ucp.shopping.order"
SHOPPING_SERVICE = "dev.ucp.shopping"
