"""Persistence and the shared kernel: ORM tables, engine factory, migrations, money.

Import every table from here so metadata (and alembic) sees all of them.
"""

from models.agent import Agent, AgentApiKey
from models.attribution import AttributionTouch, LedgerEntry
from models.base import Base
from models.catalog import Product, Variant
from models.checkout import CheckoutSession, PaymentAttempt
from models.commissions import (
    CommissionContract,
    CommissionEntry,
    CommissionPayout,
    ContractPayee,
    Payee,
    PayoutRun,
    SandboxTransfer,
    Statement,
    StatementLink,
)
from models.creative import (
    Experiment,
    ExperimentVariant,
    FeaturedVideo,
    VideoConsent,
    VideoProvenance,
)
from models.dashboard import DashboardLoginFailure, DashboardSession, DashboardUser
from models.etsy import (
    EtsyConflict,
    EtsyConnection,
    EtsyLinkClick,
    EtsyListingLink,
    EtsyReceipt,
    EtsyVideoPush,
)
from models.feed import (
    DeliveryStatus,
    Destination,
    FeedDelivery,
    FeedDestinationItem,
    FeedPush,
    FeedPushItem,
)
from models.idempotency import IdempotencyRecord
from models.inbox import InboxEvent
from models.links import LinkTouch, ShoppableLink
from models.merchant import MerchantApiKey
from models.order import Dispute, Fulfillment, Order, OrderEvent, Refund
from models.outbox import DeliveryAttempt, OutboxMessage
from models.payment import AuthorizationStatus, PaymentAuthorization, ProviderIncident
from models.sandbox import SandboxCharge, SandboxDispute, SandboxRefund
from models.ucp import UcpAddress, UcpCheckout
from models.video import Video, VideoProduct, VideoViewCount

__all__ = [
    "Experiment",
    "ExperimentVariant",
    "FeaturedVideo",
    "VideoConsent",
    "VideoProvenance",
    "UcpAddress",
    "UcpCheckout",
    "Agent",
    "AgentApiKey",
    "AttributionTouch",
    "Base",
    "CheckoutSession",
    "CommissionContract",
    "CommissionEntry",
    "CommissionPayout",
    "ContractPayee",
    "DashboardLoginFailure",
    "DashboardSession",
    "DashboardUser",
    "DeliveryAttempt",
    "EtsyConflict",
    "EtsyConnection",
    "EtsyLinkClick",
    "EtsyListingLink",
    "EtsyReceipt",
    "EtsyVideoPush",
    "Dispute",
    "DeliveryStatus",
    "Destination",
    "FeedDelivery",
    "FeedDestinationItem",
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
    "Payee",
    "AuthorizationStatus",
    "PaymentAuthorization",
    "ProviderIncident",
    "PaymentAttempt",
    "PayoutRun",
    "Product",
    "Refund",
    "SandboxCharge",
    "SandboxDispute",
    "SandboxRefund",
    "SandboxTransfer",
    "Statement",
    "StatementLink",
    "Variant",
    "LinkTouch",
    "ShoppableLink",
    "Video",
    "VideoProduct",
    "VideoViewCount",
]
