"""Persistence and the shared kernel: ORM tables, engine factory, migrations, money.

Import every table from here so metadata (and alembic) sees all of them.
"""

from models.agent import Agent, AgentApiKey
from models.attribution import AttributionTouch, LedgerEntry
from models.base import Base
from models.catalog import Product, Variant
from models.checkout import CheckoutSession, PaymentAttempt
from models.dashboard import DashboardLoginFailure, DashboardSession, DashboardUser
from models.feed import FeedPush, FeedPushItem
from models.idempotency import IdempotencyRecord
from models.inbox import InboxEvent
from models.merchant import MerchantApiKey
from models.order import Dispute, Fulfillment, Order, OrderEvent, Refund
from models.outbox import DeliveryAttempt, OutboxMessage
from models.sandbox import SandboxCharge, SandboxDispute, SandboxRefund
from models.ucp import UcpAddress, UcpCheckout
from models.video import Video, VideoProduct

__all__ = [
    "UcpAddress",
    "UcpCheckout",
    "Agent",
    "AgentApiKey",
    "AttributionTouch",
    "Base",
    "CheckoutSession",
    "DashboardLoginFailure",
    "DashboardSession",
    "DashboardUser",
    "DeliveryAttempt",
    "Dispute",
    "FeedPush",
    "FeedPushItem",
    "Fulfillment",
    "IdempotencyRecord",
    "InboxEvent",
    "LedgerEntry",
    "MerchantApiKey",
    "Order",
    "OrderEvent",
    "OutboxMessage",
    "PaymentAttempt",
    "Product",
    "Refund",
    "SandboxCharge",
    "SandboxDispute",
    "SandboxRefund",
    "Variant",
    "Video",
    "VideoProduct",
]
