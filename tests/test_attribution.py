"""Attribution capture (ACP affiliate_attribution RFC rules, web journeys) and the ledger
(sales, refunds, disputes), with finance reports that tie out to it exactly."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from api.runtime import Runtime
from models import AttributionTouch, LedgerEntry, Order
from tests.conftest import US_ADDRESS, Agent

MERCHANT = {"Authorization": "Bearer merchant-key"}
VIDEOS = [{"id": f"vid-{n}", "generator": g, "campaign": c, "creator": cr,
           "published_url": f"https://tiktok.test/v/{n}",
           "products": [{"product_id": "spec-items"}]}
          for n, g, c, cr in ((1, "sora-2", "fall", "@ava"), (2, "veo-3", "fall", "@bo"),
                              (3, "sora-2", "winter", "@ava"))]


@pytest.fixture
async def shop(seller: Agent, merchant_runtime: Runtime) -> tuple[Agent, Runtime]:
    for video in VIDEOS:
        resp = await seller.http.post("/videos", json=video, headers={
            **MERCHANT, "Idempotency-Key": str(video["id"])})
        assert resp.status_code == 201, resp.text
    return seller, merchant_runtime


def claim(**extra: object) -> dict:
    return {"provider": "impact.com", "token": "atp_secret_token_123", "publisher_id": "pub_1",
            **extra}


async def buy(agent: Agent, first: dict | None = None, last: dict | None = None,
              metadata: dict | None = None, quantity: int = 1) -> dict:
    body: dict = {"line_items": [{"id": "item_123", "quantity": quantity}],
                  "fulfillment_details": {"address": US_ADDRESS}}
    if first:
        body["affiliate_attribution"] = first
    if metadata:
        body["metadata"] = metadata
    session = (await agent.create(**body)).json()
    if last:
        resp = await agent.complete(session["id"], affiliate_attribution=last)
    else:
        resp = await agent.complete(session["id"])
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_rfc_rules(shop, backend: str) -> None:
    agent, rt = shop
    # PII is refused; structure errors are invalid_type.
    for bad, code in ((claim(metadata={"note": "mail ada@example.com"}), "pii_not_allowed"),
                      (claim(sub_id="+1 415 555 0100"), "pii_not_allowed"),
                      ({"token": "x"}, "invalid_type"),
                      ({"provider": "impact.com"}, "invalid_type"),
                      (claim(metadata={"nested": {"a": 1}}), "invalid_type")):
        resp = await agent.create(line_items=[{"id": "item_123"}], affiliate_attribution=bad)
        assert resp.status_code == 400, bad
        assert resp.json()["code"] == code
    # Unknown provider: accepted. Write-only: never echoed, not in the order.
    done = await buy(agent, first=claim(provider="brand-new-network", creative_id="vid-1"),
                     last=claim(creative_id="vid-2"))
    text = str(done)
    assert "affiliate_attribution" not in text
    assert "atp_secret_token_123" not in text
    fetched = (await agent.get(f"/checkout_sessions/{done['id']}")).json()
    assert "atp_secret" not in str(fetched)
    async with rt.read_sessionmaker() as db:
        stored = list(await db.scalars(select(AttributionTouch).where(
            AttributionTouch.checkout_session_id == done["id"])))
    assert {(t.touchpoint, t.video_id, t.video_known) for t in stored} == {
        ("first", "vid-1", True), ("last", "vid-2", True)}
    assert all(t.token_fingerprint and "atp" not in t.token_fingerprint for t in stored)


async def test_first_claim_wins_and_unknown_videos_are_flagged(shop, backend: str) -> None:
    agent, rt = shop
    session = (await agent.create(line_items=[{"id": "item_123"}],
                                  fulfillment_details={"address": US_ADDRESS},
                                  affiliate_attribution=claim(creative_id="vid-unknown"))).json()
    pay = {"payment_data": {"handler_id": "card_tokenized", "instrument": {
        "type": "card", "credential": {"type": "spt", "token": "spt_test_declined"}}},
        "affiliate_attribution": claim(creative_id="vid-3")}
    await agent.post(f"/checkout_sessions/{session['id']}/complete", pay)  # declined
    pay["payment_data"]["instrument"]["credential"]["token"] = "spt_test_success"
    pay["affiliate_attribution"] = claim(creative_id="vid-2")  # a later, conflicting claim
    await agent.post(f"/checkout_sessions/{session['id']}/complete", pay)
    async with rt.read_sessionmaker() as db:
        stored = {t.touchpoint: t for t in await db.scalars(select(AttributionTouch).where(
            AttributionTouch.checkout_session_id == session["id"]))}
    assert (stored["first"].video_id, stored["first"].video_known) == ("vid-unknown", False)
    assert stored["last"].video_id == "vid-3"  # the first last-touch claim won


async def test_web_journey_and_url_matching(shop, backend: str) -> None:
    agent, rt = shop
    by_url = await buy(agent, first=claim(source={"type": "url",
                                                  "url": "https://tiktok.test/v/3"}))
    web = await buy(agent, metadata={"video_id": "vid-2", "campaign": "fall"})
    async with rt.read_sessionmaker() as db:
        touches = {t.checkout_session_id: t for t in await db.scalars(select(AttributionTouch))}
    assert touches[by_url["id"]].video_id == "vid-3"
    assert (touches[web["id"]].channel, touches[web["id"]].video_id) == ("web", "vid-2")


async def ledger_sum(rt, **where) -> dict[str, int]:
    async with rt.read_sessionmaker() as db:
        stmt = select(*[func.coalesce(func.sum(getattr(LedgerEntry, c)), 0) for c in (
            "gross", "commissionable", "net")])
        for key, value in where.items():
            stmt = stmt.where(getattr(LedgerEntry, key) == value)
        gross, base, net = (await db.execute(stmt)).one()
    return {"gross": int(gross), "commissionable": int(base), "net": int(net)}


async def test_ledger_models_refunds_and_reports_tie_out(shop, backend: str) -> None:
    agent, rt = shop
    a = await buy(agent, first=claim(creative_id="vid-1"), last=claim(creative_id="vid-2"),
                  quantity=3)
    b = await buy(agent, first=claim(creative_id="vid-3"))
    c = await buy(agent)  # no touch at all: unattributed
    async with rt.read_sessionmaker() as db:
        orders = {o.id: o for o in await db.scalars(select(Order))}
    total = sum(o.total_amount for o in orders.values())
    # Every model credits exactly the orders' totals, split across videos.
    for model in ("last_touch", "first_touch", "linear", "position_based"):
        assert (await ledger_sum(rt, model=model, kind="sale"))["gross"] == total
    assert (await ledger_sum(rt, model="last_touch", video_id="vid-2"))["gross"] == \
        orders[a["order"]["id"]].total_amount
    assert (await ledger_sum(rt, model="first_touch", video_id="vid-1"))["gross"] == \
        orders[a["order"]["id"]].total_amount
    # Partial then full refund of order A: proportional, then exactly reversed.
    order_a = orders[a["order"]["id"]]
    for key, amount in (("r1", 101), ("r2", order_a.total_amount - 101)):
        resp = await agent.http.post(f"/orders/{order_a.id}/refunds", json={"amount": amount},
                                     headers={**MERCHANT, "Idempotency-Key": key})
        assert resp.status_code == 201, resp.text
        if key == "r1":
            partial = await ledger_sum(rt, model="linear", order_id=order_a.id)
            assert partial["gross"] == order_a.total_amount - 101
    for model in ("last_touch", "linear", "position_based"):
        after = await ledger_sum(rt, model=model, order_id=order_a.id)
        fees = (await ledger_sum(rt, model=model, order_id=order_a.id, kind="sale"))
        assert after["gross"] == 0
        assert after["commissionable"] == 0
        assert after["net"] == fees["net"] - fees["gross"]  # only the kept fee remains
    # Reports: by video (JSON) and by campaign (CSV) tie out to the ledger exactly.
    report = (await agent.http.get("/finance/revenue?group_by=video&model=last_touch",
                                   headers=MERCHANT)).json()
    by_key = {r["key"]: r for r in report["rows"]}
    assert by_key["vid-3"]["gross"] == orders[b["order"]["id"]].total_amount
    assert by_key[None]["gross"] == orders[c["order"]["id"]].total_amount
    assert report["totals"]["gross"] == (await ledger_sum(rt, model="last_touch"))["gross"]
    assert report["totals"]["gross"] == total - order_a.total_amount
    exported = await agent.http.get(
        "/finance/revenue?group_by=campaign&model=linear&format=csv", headers=MERCHANT)
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sum(int(r["gross"]) for r in rows) == (await ledger_sum(rt, model="linear"))["gross"]
    assert {r["campaign"] for r in rows} >= {"winter", ""}


PHONES_AND_EMAILS = (
    "+1 415 555 0100", "+14155550100", "+1-415-555-0100", "(415) 555-0100", "415-555-0100",
    "415.555.0100", "4155550100", "14155550100", "020 7946 0958", "+44 20 7946 0958",
    "06 12 34 56 78", "+33 6 12 34 56 78", "0171 1234567", "+49 30 1234567", "+354 5551234",
    "call 415 555 0100 tonight", "tel:+4930123456", "https://wa.me/14155550100",
    "415 555 0100 / 415 555 0101", "4155550100\n", "ref a1 415 555 0100",
    "415 555 0100 12:30", "ada@example.com",
    "mail ada.lovelace+shop@mail.example.co.uk")
IDS_AND_VALUES = (
    "7234567890123456789",  # a TikTok video id (19 digits: longer than any E.164 number)
    "23851234567890123",  # a Meta ad id (17 digits)
    "vid_123456789", "abc1234567890", "drop-2026-123456789", "v1.4155550100",
    "550e8400-e29b-41d4-a716-446655440000", "sha256:9f86d081884c7d659a2feaa0c55ad0",
    "2026-04-17T12:30:00Z", "2026-04-17 12:30:45", "1234567.89", "fall-2026", "pub_1",
    "https://tiktok.test/@ava/video/7234567890123456789")


@pytest.mark.parametrize("value", PHONES_AND_EMAILS)
def test_phone_numbers_and_emails_are_refused_in_every_checked_field(value: str) -> None:
    from attribution.schemas import AttributionClaim
    from attribution.touches import accept
    from models.errors import InvalidRequest

    for field in ({"publisher_id": value}, {"campaign_id": value}, {"creative_id": value},
                  {"sub_id": value}, {"metadata": {"note": value}}):
        with pytest.raises(InvalidRequest) as refused:
            accept(AttributionClaim("first", "impact.com", **field), "$.x")
        assert refused.value.code == "pii_not_allowed", field


@pytest.mark.parametrize("value", IDS_AND_VALUES)
def test_ids_dates_and_amounts_are_not_taken_for_phone_numbers(value: str) -> None:
    from attribution.schemas import AttributionClaim
    from attribution.touches import accept

    for field in ({"publisher_id": value}, {"campaign_id": value}, {"creative_id": value},
                  {"sub_id": value}, {"metadata": {"note": value}}):
        assert accept(AttributionClaim("first", "impact.com", **field), "$.x") is not None


async def test_numeric_platform_ids_are_accepted_at_checkout(shop, backend: str) -> None:
    """A TikTok video id as creative_id and a Meta campaign id pass; a phone number in the
    metadata, also written as a JSON number, is refused."""
    agent, _ = shop
    ok = await agent.create(line_items=[{"id": "item_123"}], affiliate_attribution=claim(
        creative_id="7234567890123456789", campaign_id="23851234567890123"))
    assert ok.status_code == 201, ok.text
    for metadata in ({"phone": "+44 20 7946 0958"}, {"phone": 4155550100}):
        bad = await agent.create(line_items=[{"id": "item_123"}],
                                 affiliate_attribution=claim(metadata=metadata))
        assert bad.status_code == 400, metadata
        assert (bad.json()["code"], bad.json()["param"]) == (
            "pii_not_allowed", "$.affiliate_attribution.metadata.phone")
