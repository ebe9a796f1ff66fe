"""Persistence and the shared kernel: ORM tables, engine factory, migrations, money.

Import every table from here so metadata (and alembic) sees all of them.
"""

from models.agent import Agent, AgentApiKey
from models.base import Base
from models.catalog import Product, Variant
from models.checkout import CheckoutSession, PaymentAttempt
from models.idempotency import IdempotencyRecord
from models.order import Order, OrderEvent
from models.sandbox import SandboxCharge

__all__ = [
    "Agent",
    "AgentApiKey",
    "Base",
    "CheckoutSession",
    "IdempotencyRecord",
    "Order",
    "OrderEvent",
    "PaymentAttempt",
    "Product",
    "SandboxCharge",
    "Variant",
]
