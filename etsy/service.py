"""The Etsy integration: catalog in, stock both ways, Etsy orders in, tracking and videos
out, shop connection and health.

Rules kept everywhere: no Etsy call while a transaction is open (read, commit, call,
then record the outcome in a new short transaction); every write to Etsy is either
absolute (inventory quantities), looked up before it is repeated (shipments), or guarded
by what we recorded (videos); the database is the only shared state, so any number of
API and worker processes can run.

Stock: ReelCart's count is the one inventory. An agent sale takes stock at checkout and,
in the same transaction as the order, queues an ``etsy_stock`` outbox message per listing;
its delivery first takes in any Etsy sales not seen yet, then sets the Etsy quantities to
ours. An Etsy sale (``order.paid`` webhook or ``getShopReceipts`` polling) becomes an order
on the ``etsy`` channel and takes our stock with the same conditional UPDATE checkout
uses, so the last unit goes to exactly one side; an Etsy sale that finds nothing left is
recorded as an ``oversold`` conflict for the merchant (Etsy already took the money).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from attribution import ledger
from attribution.ledger import LedgerPolicy
from etsy import repository
from etsy.client import EtsyApi, OAuthClient
from etsy.errors import EtsyNotConnected, EtsyRejected, EtsyUnavailable
from etsy.schemas import (
    CHANNEL,
    ConflictKind,
    ListingImport,
    ReceiptFacts,
    inventory_update_body,
    listing_import,
    property_key,
    receipt_facts,
    receipt_id_from,
    shipment_posted,
)
from feeds.schemas import ImportReport, RejectedRow
from feeds.service import upsert_products
from models import AttributionTouch, CheckoutSession, Fulfillment, Order, Video
from models.base import new_id, utc_now
from models.statuses import CheckoutStatus, ForwardingStatus, OrderPaymentStatus, OrderStatus
from webhooks.inbox import Handler
from webhooks.outbox import DeliveryResult, Message

log = logging.getLogger("reelcart.etsy")
Json = dict[str, Any]
REFRESH_MARGIN = timedelta(minutes=2)


# ---------------------------------------------------------------------- tokens

class TokenStore:
    """OAuth tokens encrypted at rest (Fernet, key from REELCART_ETSY_TOKEN_KEY), refreshed
    shortly before they expire. The refresh call runs with no transaction open; the new
    pair is then written in a short one (the last writer wins; both pairs are valid)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], oauth: OAuthClient,
                 fernet: Fernet | None, *, env_access_token: str | None = None,
                 env_refresh_token: str | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.sessionmaker = sessionmaker
        self.oauth = oauth
        self.fernet = fernet
        self.env_access_token = env_access_token
        self.env_refresh_token = env_refresh_token
        self.clock = clock

    def encrypt(self, value: str) -> str:
        if self.fernet is None:
            raise EtsyNotConnected("Set REELCART_ETSY_TOKEN_KEY to store Etsy tokens.")
        return self.fernet.encrypt(value.encode()).decode()

    def decrypt(self, value: str | None) -> str | None:
        if value is None or self.fernet is None:
            return None
        try:
            return self.fernet.decrypt(value.encode()).decode()
        except InvalidToken:
            raise EtsyNotConnected(
                "Stored Etsy tokens do not match REELCART_ETSY_TOKEN_KEY; reconnect.") from None

    async def access_token(self, *, refresh: bool = False) -> str:
        async with self.sessionmaker() as db:
            row = await repository.connection(db)
            access = self.decrypt(row.access_token_enc) if row else None
            stored_refresh = self.decrypt(row.refresh_token_enc) if row else None
            expires_at = row.expires_at if row else None
        if access and not refresh and expires_at and expires_at - REFRESH_MARGIN > self.clock():
            return access
        refresh_token = stored_refresh or self.env_refresh_token
        if refresh_token is None or self.fernet is None:
            if self.env_access_token and not refresh:
                return self.env_access_token  # tokens kept in the environment only
            raise EtsyNotConnected("Etsy is not connected: run `reelcart etsy connect`.")
        try:
            tokens = await self.oauth.refresh(refresh_token)
        except EtsyRejected:
            # Another process may have refreshed first (Etsy rotates the refresh token):
            # use the pair it stored rather than fail.
            async with self.sessionmaker() as db:
                row = await repository.connection(db)
                newer = self.decrypt(row.refresh_token_enc) if row else None
                access = self.decrypt(row.access_token_enc) if row else None
            if access and newer and newer != refresh_token:
                return access
            raise
        await self.store(tokens)
        return str(tokens["access_token"])

    async def store(self, tokens: Json, **extra: Any) -> None:
        async with self.sessionmaker() as db, db.begin():
            row = await repository.ensure_connection(db)
            row.access_token_enc = self.encrypt(str(tokens["access_token"]))
            if tokens.get("refresh_token"):
                row.refresh_token_enc = self.encrypt(str(tokens["refresh_token"]))
            lifetime = tokens.get("expires_in")
            row.expires_at = self.clock() + timedelta(
                seconds=int(lifetime) if lifetime is not None else 3600)
            for key, value in extra.items():
                setattr(row, key, value)
            row.updated_at = self.clock()


# ---------------------------------------------------------------------- the integration

@dataclass
class SyncReport:
    catalog: ImportReport = field(default_factory=ImportReport)
    listings_seen: int = 0
    pages: int = 0
    incremental: bool = False


@dataclass
class EtsyIntegration:
    sessionmaker: async_sessionmaker[AsyncSession]
    api: EtsyApi
    tokens: TokenStore
    http: httpx.AsyncClient
    shop_id: str | None = None
    ledger_policy: LedgerPolicy = field(default_factory=LedgerPolicy)
    clock: Callable[[], datetime] = utc_now
    page_size: int = 100  # Etsy's maximum ``limit``
    # Video files live at merchant-configured URLs: fetched through the outbound-URL policy
    # client (models.outbound); ``http`` (Etsy's fixed host) is used for nothing else.
    video_http: httpx.AsyncClient | None = None

    async def shop(self) -> str:
        if self.shop_id:
            return self.shop_id
        async with self.sessionmaker() as db:
            row = await repository.connection(db)
            if row is not None and row.shop_id:
                self.shop_id = row.shop_id
                return row.shop_id
        raise EtsyNotConnected("No Etsy shop: set REELCART_ETSY_SHOP_ID or run "
                               "`reelcart etsy connect`.")

    # ------------------------------------------------------------------ health

    async def record_health(self, *, error: str | None = None, **fields: Any) -> None:
        rate = self.api.rate
        async with self.sessionmaker() as db, db.begin():
            row = await repository.ensure_connection(db)
            now = self.clock()
            row.limit_per_day = rate.limit_per_day or row.limit_per_day
            row.remaining_today = rate.remaining_today if rate.remaining_today is not None \
                else row.remaining_today
            row.limit_per_second = rate.limit_per_second or row.limit_per_second
            if rate.throttled:
                row.rate_limited_count = (row.rate_limited_count or 0) + rate.throttled
                row.rate_limited_at = now
                rate.throttled = 0
            if error is not None:
                row.last_error = error[:2000]
                row.last_error_at = now
            for key, value in fields.items():
                setattr(row, key, value)
            row.updated_at = now

    # ------------------------------------------------------------------ catalog in

    async def sync_listings(self, progress: Callable[[int], None] | None = None,
                            *, full: bool = False) -> SyncReport:
        """Active listings → products and variants. Later runs are incremental: listings
        come most recently updated first, and paging stops at the previous run's mark."""
        shop_id = await self.shop()
        async with self.sessionmaker() as db:
            row = await repository.connection(db)
            mark = None if full or row is None else row.listings_watermark
        report = SyncReport(incremental=mark is not None)
        newest = mark or 0
        offset = 0
        try:
            while True:
                page = await self.api.listings_page(shop_id, offset, self.page_size)
                report.pages += 1
                results = page.get("results") or []
                fresh = [lst for lst in results
                         if mark is None or int(lst.get("updated_timestamp") or 0) >= mark]
                report.listings_seen += len(fresh)
                newest = max([newest, *(int(lst.get("updated_timestamp") or 0)
                                        for lst in fresh)])
                await self._import_page(fresh, offset, report.catalog)
                if progress is not None:
                    progress(len(fresh))
                offset += len(results)
                if len(fresh) < len(results) or not results or offset >= int(
                        page.get("count") or 0):
                    break
        except (EtsyUnavailable, EtsyRejected) as exc:
            await self.record_health(error=f"sync: {exc}")
            raise
        c = report.catalog
        await self.record_health(
            listings_watermark=newest or mark, last_sync_at=self.clock(),
            last_sync_summary=f"{c.created} created, {c.updated} updated, {c.unchanged} "
                              f"unchanged, {len(c.rejected)} rejected")
        return report

    async def _import_page(self, listings: list[Json], offset: int, report: ImportReport
                           ) -> None:
        if not listings:
            return
        async with self.sessionmaker() as db, db.begin():
            stock = await repository.stock_of(db, [f"etsy-{lst.get('listing_id')}"
                                                   for lst in listings])
            imports: list[ListingImport] = []
            lines: list[int] = []
            for number, listing in enumerate(listings, start=offset + 1):
                parsed = listing_import(listing, stock)
                if isinstance(parsed, str):
                    report.rejected.append(RejectedRow(
                        number, f"listing {listing.get('listing_id')}: {parsed}"))
                    continue
                imports.append(parsed)
                lines.append(number)
            await upsert_products(db, [i.record for i in imports], report, lines)
            links = [link for i in imports for link in i.links]
            present = await repository.existing_variants(db, [k.variant_id for k in links])
            await repository.upsert_links(db, [k for k in links
                                               if present.get(k.variant_id) == k.product_id])

    # ------------------------------------------------------------------ stock out

    async def push_listing_stock(self, listing_id: str) -> Json:
        """Set the Etsy quantities of one listing to our stock (absolute: safe to repeat)."""
        inventory = await self.api.listing_inventory(listing_id)
        async with self.sessionmaker() as db:
            links = await repository.links_of_listing(db, listing_id)
            stock = await repository.current_stock(db, [k.variant_id for k in links])
        quantities = {k.property_key: max(stock[k.variant_id] or 0, 0) for k in links
                      if stock.get(k.variant_id) is not None}
        updated = await self.api.update_listing_inventory(
            listing_id, inventory_update_body(inventory, quantities))
        # Etsy issues new product and offering ids on every update: keep ours current.
        fresh = {property_key(p.get("property_values")): p
                 for p in updated.get("products") or [] if not p.get("is_deleted")}
        async with self.sessionmaker() as db, db.begin():
            for link in await repository.links_of_listing(db, listing_id):
                product = fresh.get(link.property_key)
                if product is None:
                    continue
                link.etsy_product_id = str(product.get("product_id") or "") or None
                offering: Json = next(iter(product.get("offerings") or []), {})
                link.offering_id = str(offering.get("offering_id") or "") or None
                if link.property_key in quantities:
                    link.last_pushed_quantity = quantities[link.property_key]
                link.updated_at = self.clock()
        return quantities

    async def deliver_stock(self, message: Message) -> DeliveryResult:
        listing_id = orjson.loads(message.payload)["listing_id"]
        try:
            await self.poll_receipts()  # Etsy sales we have not seen yet count first
            pushed = await self.push_listing_stock(listing_id)
        except EtsyUnavailable as exc:
            await self.record_health(error=f"inventory {listing_id}: {exc}")
            return DeliveryResult(ok=False, error=str(exc), retryable=True,
                                  retry_after=exc.retry_after)
        except (EtsyRejected, ValueError) as exc:
            async with self.sessionmaker() as db, db.begin():
                await repository.add_conflict(db, ConflictKind.push_rejected,
                                              detail={"listing_id": listing_id,
                                                      "error": str(exc)[:500]})
            await self.record_health(error=f"inventory {listing_id}: {exc}")
            return DeliveryResult(ok=False, error=str(exc), retryable=False)
        await self.record_health()
        return DeliveryResult(ok=True, excerpt=orjson.dumps(pushed).decode()[:500])

    # ------------------------------------------------------------------ Etsy orders in

    async def ingest_receipt(self, receipt: Json) -> str | None:
        """A paid Etsy receipt → one order on the ``etsy`` channel (once per receipt),
        taking our stock. Returns the new order id, or None if already taken in."""
        facts = receipt_facts(receipt)
        if isinstance(facts, str):
            log.warning("etsy receipt skipped", extra={"reason": facts})
            return None
        if receipt.get("is_paid") is False or receipt.get("status") == "canceled":
            return None
        now = self.clock()
        async with self.sessionmaker() as db, db.begin():
            order_id = new_id("ord")
            if not await repository.claim_receipt(db, facts.receipt_id, order_id):
                return None
            agent_id = await repository.channel_agent(db, CHANNEL)
            line_items: list[Json] = []
            wanted: dict[str, tuple[int, str]] = {}  # variant → (quantity, listing)
            for index, line in enumerate(facts.lines):
                variant_id = await repository.variant_for_line(db, line)
                if variant_id is None:
                    await repository.add_conflict(
                        db, ConflictKind.unmatched_line, receipt_id=facts.receipt_id,
                        order_id=order_id, detail={"listing_id": line.listing_id,
                                                   "title": line.title[:200]})
                else:
                    before = wanted.get(variant_id, (0, line.listing_id))[0]
                    wanted[variant_id] = (before + line.quantity, line.listing_id)
                base = line.unit_amount * line.quantity
                line_items.append({
                    "id": f"li_etsy_{line.transaction_id or index}",
                    "item": {"id": variant_id or f"etsy-{line.listing_id}"},
                    "quantity": line.quantity, "name": line.title,
                    "unit_amount": line.unit_amount, "product_id": f"etsy-{line.listing_id}",
                    "totals": [{"type": "items_base_amount", "display_text": "Base amount",
                                "amount": base},
                               {"type": "subtotal", "display_text": "Subtotal",
                                "amount": base}]})
            short: list[tuple[str, int]] = []
            for variant_id, (quantity, listing_id) in sorted(wanted.items()):  # lock order
                if not await repository.take_stock(db, variant_id, quantity):
                    short.append((variant_id, quantity))
                    await repository.add_conflict(
                        db, ConflictKind.oversold, receipt_id=facts.receipt_id,
                        order_id=order_id, variant_id=variant_id,
                        detail={"quantity": quantity, "listing_id": listing_id})
            details = {"address": facts.address} if facts.address else None
            session = CheckoutSession(
                id=f"cs_etsy_{facts.receipt_id}", agent_id=agent_id,
                status=CheckoutStatus.completed,
                currency=facts.currency,
                requested_items=[{"id": li["item"]["id"], "quantity": li["quantity"]}
                                 for li in line_items],
                buyer=facts.buyer, fulfillment_details=details, line_items=line_items,
                totals=facts.totals, total_amount=facts.total_amount, messages=[],
                session_metadata={"channel": CHANNEL, "etsy_receipt_id": facts.receipt_id},
                order_id=order_id, created_at=now, updated_at=now, expires_at=now)
            db.add(session)
            await db.flush()
            await self._attribute(db, session.id, facts)
            order = Order(
                id=order_id, order_number=f"ETSY-{facts.receipt_id}",
                checkout_session_id=session.id,
                agent_id=agent_id,
                status=OrderStatus.manual_review if short else OrderStatus.confirmed,
                payment_status=OrderPaymentStatus.paid, currency=facts.currency,
                line_items=line_items,
                totals=facts.totals, total_amount=facts.total_amount, buyer=facts.buyer,
                fulfillment_details=details, payment_provider=CHANNEL,
                payment_reference=f"etsy:receipt:{facts.receipt_id}",
                forwarding_status=ForwardingStatus.manual,
                attention_reason=("Oversold across channels: ReelCart had no stock left for "
                                  + ", ".join(f"{v} ×{q}" for v, q in short)
                                  + ". Etsy collected the payment; cancel or refund it on Etsy.")
                if short else None,
                created_at=now, updated_at=now)
            db.add(order)
            await db.flush()
            await repository.add_order_event(db, order_id, "order.created", {
                "etsy_receipt_id": facts.receipt_id, "total_amount": facts.total_amount,
                "currency": facts.currency, "oversold": [v for v, _ in short]})
            await ledger.record_sale(db, order, 0, self.ledger_policy)
        return order_id

    async def _attribute(self, db: AsyncSession, session_id: str, facts: ReceiptFacts
                         ) -> None:
        """Etsy receipts carry no UTM data: a sale is credited to the video behind the most
        recent shoppable-link click on one of its listings within the attribution window
        (a web touch at the click's time, so the ledger's models apply as for agents)."""
        sold_at = datetime.fromtimestamp(facts.created_timestamp, UTC) \
            if facts.created_timestamp else self.clock()
        window = self.ledger_policy.window_days
        click = await repository.latest_click(
            db, sorted({line.listing_id for line in facts.lines}), before=sold_at,
            after=sold_at - timedelta(days=window) if window else None)
        if click is None:
            return
        known = await db.get(Video, click.video_id) is not None
        db.add(AttributionTouch(
            id=new_id("tch"), checkout_session_id=session_id, touchpoint="web",
            channel="etsy_link", campaign_id=click.campaign, video_id=click.video_id,
            video_known=known, touched_at=click.clicked_at))
        await db.flush()

    async def poll_receipts(self) -> int:
        """getShopReceipts since the last mark (paid, by update time); each receipt is taken
        in once whichever of polling and the webhook sees it first."""
        shop_id = await self.shop()
        async with self.sessionmaker() as db:
            row = await repository.connection(db)
            mark = row.receipts_watermark if row else None
        newest = mark or 0
        offset = 0
        taken = 0
        while True:
            page = await self.api.shop_receipts(shop_id, min_last_modified=mark,
                                                offset=offset, limit=self.page_size)
            results = page.get("results") or []
            for receipt in results:
                if await self.ingest_receipt(receipt):
                    taken += 1
                stamp = receipt.get("updated_timestamp") or receipt.get("update_timestamp")
                newest = max(newest, int(stamp or 0))
            offset += len(results)
            if not results or offset >= int(page.get("count") or 0):
                break
        await self.record_health(receipts_watermark=newest or mark, last_poll_at=self.clock())
        return taken

    async def on_order_paid(self, sessionmaker: async_sessionmaker[AsyncSession],
                            payload: Json) -> None:
        receipt_id = receipt_id_from(payload.get("resource_url"))
        if receipt_id is None:
            log.warning("etsy order.paid without a receipt url")
            return
        shop_id = await self.shop()
        if str(payload.get("shop_id") or shop_id) != shop_id:
            log.warning("etsy order.paid for another shop ignored")
            return
        receipt = await self.api.shop_receipt(shop_id, receipt_id)
        await self.ingest_receipt(receipt)

    def inbox_handlers(self) -> dict[str, Handler]:
        return {"etsy:order.paid": self.on_order_paid}

    # ------------------------------------------------------------------ tracking back

    async def deliver_tracking(self, message: Message) -> DeliveryResult:
        data = orjson.loads(message.payload)
        async with self.sessionmaker() as db:
            receipt = await repository.receipt_of_order(db, data["order_id"])
            fulfillment = await db.get(Fulfillment, data["fulfillment_id"])
            if receipt is None or fulfillment is None or not fulfillment.tracking_number:
                return DeliveryResult(ok=False, error="nothing to post", retryable=False)
            receipt_id, code = receipt.receipt_id, fulfillment.tracking_number
            carrier = fulfillment.carrier or "other"
            if receipt.tracking_code == code and receipt.tracking_posted_at is not None:
                return DeliveryResult(ok=True, excerpt="already posted")
        try:
            shop_id = await self.shop()
            # A shipment whose answer was lost may exist: look before posting again.
            current = await self.api.shop_receipt(shop_id, receipt_id)
            if not shipment_posted(current, code):
                await self.api.create_receipt_shipment(shop_id, receipt_id,
                                                       tracking_code=code, carrier_name=carrier)
        except EtsyUnavailable as exc:
            await self.record_health(error=f"tracking {receipt_id}: {exc}")
            return DeliveryResult(ok=False, error=str(exc), retryable=True,
                                  retry_after=exc.retry_after)
        except EtsyRejected as exc:
            await self.record_health(error=f"tracking {receipt_id}: {exc}")
            return DeliveryResult(ok=False, error=str(exc), retryable=False)
        async with self.sessionmaker() as db, db.begin():
            row = await repository.receipt_of_order(db, data["order_id"])
            if row is not None:
                row.tracking_code = code
                row.tracking_posted_at = self.clock()
            await repository.add_order_event(db, data["order_id"], "etsy.tracking_posted",
                                             {"tracking_number": code})
        return DeliveryResult(ok=True, excerpt=f"receipt {receipt_id}")

    # ------------------------------------------------------------------ videos out

    async def push_videos(self) -> int:
        """Upload each linked product's featured video to its listing, once per video:
        again only when the featured video changes (the old one is then removed)."""
        shop_id = await self.shop()
        async with self.sessionmaker() as db:
            listings = await repository.linked_listings(db)
            featured = await repository.featured_videos(db, list(listings))
            pushed = await repository.video_pushes(db)
            todo = [(pid, listings[pid], video_id, url,
                     pushed[pid].etsy_video_id if pid in pushed else None)
                    for pid, (video_id, url) in sorted(featured.items())
                    if pid not in pushed or pushed[pid].video_id != video_id]
        done = 0
        for product_id, listing_id, video_id, url, old_etsy_video in todo:
            try:
                response = await (self.video_http or self.http).get(url, timeout=120)
                response.raise_for_status()
                uploaded = await self.api.upload_listing_video(
                    shop_id, listing_id, name=f"reelcart-{video_id}.mp4",
                    content=response.content,
                    content_type=response.headers.get("content-type", "video/mp4"))
                etsy_video_id = str(uploaded.get("video_id") or "") or None
                if old_etsy_video and old_etsy_video != etsy_video_id:
                    try:
                        await self.api.delete_listing_video(shop_id, listing_id, old_etsy_video)
                    except EtsyRejected:
                        pass  # already gone
            except (EtsyUnavailable, EtsyRejected, httpx.HTTPError) as exc:
                await self.record_health(error=f"video {video_id}: {exc}")
                continue
            async with self.sessionmaker() as db, db.begin():
                await repository.record_video_push(db, product_id, listing_id, video_id,
                                                   etsy_video_id, self.clock())
            done += 1
        if todo:
            await self.record_health()
        return done

    # ------------------------------------------------------------------ scheduling

    async def tick(self, poll_every: timedelta) -> int:
        """Worker pass: poll receipts and push videos when due (state in the database)."""
        async with self.sessionmaker() as db:
            row = await repository.connection(db)
            last = row.last_poll_at if row else None
            connected = row is not None and (row.refresh_token_enc or row.access_token_enc)
        if not connected and self.tokens.env_access_token is None \
                and self.tokens.env_refresh_token is None:
            return 0
        if last is not None and self.clock() - last < poll_every:
            return 0
        try:
            taken = await self.poll_receipts()
            taken += await self.push_videos()
        except (EtsyUnavailable, EtsyRejected, EtsyNotConnected) as exc:
            await self.record_health(error=f"poll: {exc}", last_poll_at=self.clock())
            return 0
        return taken
