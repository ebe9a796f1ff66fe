"""Every ACP version on the same paths, chosen by ``API-Version``: the spec's example
requests, the full lifecycle, quantities, the idempotency table and error codes, each
response validated against *that version's* JSON Schema; one session read and completed
across versions. Parametrised over the versions (``2025-09-12`` is the label agents use
for 2025-09-29)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from models import IdempotencyRecord
from models.base import utc_now
from protocols.acp.versions import CHANGES, CURRENT, SUPPORTED_VERSIONS, negotiate
from tests.acp_schema import VERSIONS, assert_valid, examples
from tests.conftest import AGENT_KEY, US_ADDRESS

# (API-Version label, spec folder)
CASES = [("2025-09-12", "2025-09-29"), ("2025-09-29", "2025-09-29"),
         ("2025-12-12", "2025-12-12"), ("2026-01-16", "2026-01-16"),
         ("2026-01-30", "2026-01-30"), ("2026-04-17", "2026-04-17")]
LEGACY = {"2025-09-29", "2025-12-12", "2026-01-16"}  # items[], payment_data{token}
BUYER = {"first_name": "Ada", "last_name": "Buyer", "email": "ada@example.com"}


@dataclass
class Speaker:
    """An agent speaking one ACP version (shapes, headers, schema checks)."""

    http: httpx.AsyncClient
    label: str
    spec: str

    @property
    def legacy(self) -> bool:
        return self.spec in LEGACY

    @property
    def items(self) -> str:
        return "items" if self.legacy else "line_items"

    def headers(self, key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {AGENT_KEY}", "API-Version": self.label}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    async def post(self, path: str, body: Any = None, *, key: str | None = "auto",
                   raw: bytes | None = None) -> httpx.Response:
        if key == "auto":
            key = f"k-{self.label}-{path}-{id(body)}-{utc_now().timestamp()}"
        if raw is not None:
            return await self.http.post(path, content=raw, headers={
                **self.headers(key), "Content-Type": "application/json"})
        if body is None:
            return await self.http.post(path, headers=self.headers(key))
        return await self.http.post(path, json=body, headers=self.headers(key))

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path, headers=self.headers())

    def valid(self, payload: Any, name: str) -> Any:
        assert_valid(payload, name, version=self.spec)
        return payload

    # ------------------------------------------------------------ version shapes

    def create_body(self, *lines: tuple[str, int], address: bool = True) -> dict[str, Any]:
        lines = lines or (("item_123", 1),)
        if self.legacy:
            body: dict[str, Any] = {"items": [{"id": i, "quantity": q} for i, q in lines]}
        else:  # no quantity in 2026 Item: repeat the id
            body = {"currency": "usd", "capabilities": {},
                    "line_items": [{"id": i} for i, q in lines for _ in range(q)]}
        if address:
            if self.spec == "2025-09-29":
                body["fulfillment_address"] = US_ADDRESS
            else:
                body["fulfillment_details"] = {"address": US_ADDRESS}
        return body

    def complete_body(self, outcome: str = "success") -> dict[str, Any]:
        if self.legacy:
            return {"payment_data": {"token": f"tok_test_{outcome}", "provider": "stripe"}}
        return {"payment_data": {"handler_id": "card_tokenized", "instrument": {
            "type": "card", "credential": {"type": "spt", "token": f"spt_test_{outcome}"}}}}

    async def create(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        body = body or self.create_body()
        self.valid(body, "CheckoutSessionCreateRequest")
        resp = await self.post("/checkout_sessions", body)
        assert resp.status_code == 201, resp.text
        return dict(self.valid(resp.json(), "CheckoutSession"))


@pytest.fixture(params=CASES, ids=[label for label, _ in CASES])
def speaker(request: pytest.FixtureRequest, http: httpx.AsyncClient) -> Speaker:
    label, spec = request.param
    return Speaker(http, label, spec)


def expect_error(speaker: Speaker, resp: httpx.Response, status: int, code: str,
                 param: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = dict(speaker.valid(resp.json(), "Error"))
    assert body["code"] == code, body
    if param is not None:
        assert body.get("param") == param, body
    return body


# ---------------------------------------------------------------- negotiation


def test_every_version_has_its_own_adapter() -> None:
    assert SUPPORTED_VERSIONS == ["2026-04-17", "2026-01-30", "2026-01-16", "2025-12-12",
                                  "2025-09-29", "2025-09-12"]
    assert [c.version for c in CHANGES] == [v for v in reversed(VERSIONS) if v != CURRENT]
    for label, spec in CASES:
        version = negotiate(label)
        assert version.version == spec
        assert len(version.chain) == (0 if spec == CURRENT else CHANGES.index(
            next(c for c in CHANGES if c.version == spec)) + 1)


async def test_discovery_lists_every_version(http: httpx.AsyncClient, backend: str) -> None:
    doc = (await http.get("/.well-known/acp.json")).json()
    assert_valid(doc, "DiscoveryResponse")
    assert doc["protocol"]["supported_versions"] == list(reversed(SUPPORTED_VERSIONS))
    assert doc["protocol"]["version"] == CURRENT


# ---------------------------------------------------------------- lifecycle


async def test_full_flow_create_update_complete_cancel(speaker: Speaker, backend: str) -> None:
    session = await speaker.create()
    assert session["status"] == "ready_for_payment", session["messages"]
    line = session["line_items"][0]
    if speaker.legacy:
        assert line["item"] == {"id": "item_123", "quantity": 1}
        assert (line["base_amount"], line["total"]) == (300, line["subtotal"] + line["tax"])
        assert session["payment_provider"]["provider"] == "stripe"
        assert "capabilities" not in session
    else:
        assert session["protocol"] == {"version": speaker.label}
        assert session["capabilities"]["payment"]["handlers"]
    if speaker.spec == "2025-09-29":
        assert session["fulfillment_address"]["postal_code"] == US_ADDRESS["postal_code"]
        assert session["fulfillment_option_id"] == session["fulfillment_options"][0]["id"]
    sid = session["id"]

    update = {**speaker.create_body(("item_123", 2), address=False), "buyer": BUYER}
    update.pop("currency", None)
    update.pop("capabilities", None)
    speaker.valid(update, "CheckoutSessionUpdateRequest")
    resp = await speaker.post(f"/checkout_sessions/{sid}", update)
    assert resp.status_code == 200, resp.text
    updated = speaker.valid(resp.json(), "CheckoutSession")
    assert updated["buyer"] == BUYER
    total = next(t["amount"] for t in updated["totals"] if t["type"] == "items_base_amount")
    assert total == 600

    got = speaker.valid((await speaker.get(f"/checkout_sessions/{sid}")).json(),
                        "CheckoutSession")
    assert got["totals"] == updated["totals"]

    body = speaker.complete_body()
    speaker.valid(body, "CheckoutSessionCompleteRequest")
    resp = await speaker.post(f"/checkout_sessions/{sid}/complete", body)
    assert resp.status_code == 200, resp.text
    done = speaker.valid(resp.json(), "CheckoutSessionWithOrder")
    assert done["status"] == "completed"
    assert done["order"]["checkout_session_id"] == sid
    again = speaker.valid((await speaker.get(f"/checkout_sessions/{sid}")).json(),
                          "CheckoutSessionWithOrder")
    assert again["order"]["id"] == done["order"]["id"]

    resp = await speaker.post(f"/checkout_sessions/{sid}/cancel")
    expect_error(speaker, resp, 405, "checkout_session_completed")


async def test_decline_and_outage_in_the_versions_terms(speaker: Speaker, backend: str) -> None:
    session = await speaker.create()
    resp = await speaker.post(f"/checkout_sessions/{session['id']}/complete",
                              speaker.complete_body("declined"))
    assert resp.status_code == 200, resp.text
    declined = speaker.valid(resp.json(), "CheckoutSession")
    assert declined["status"] == "ready_for_payment"
    assert any(m["type"] == "error" and m["code"] == "payment_declined"
               for m in declined["messages"])
    resp = await speaker.post(f"/checkout_sessions/{session['id']}/complete",
                              speaker.complete_body("unavailable"))
    body = expect_error(speaker, resp, 503, "payment_provider_unavailable")
    assert body["type"] == "service_unavailable"


async def test_unknown_buyer_fields_are_not_echoed(speaker: Speaker, backend: str) -> None:
    body = {**speaker.create_body(), "buyer": {**BUYER, "nickname": "ada", "vip": True}}
    resp = await speaker.post("/checkout_sessions", body)
    assert resp.status_code == 201, resp.text
    session = speaker.valid(resp.json(), "CheckoutSession")
    assert session["buyer"] == BUYER


# ---------------------------------------------------------------- the spec's examples


def _fix_items(speaker: Speaker, body: dict[str, Any]) -> dict[str, Any]:
    """2025-09-29's example orders 2.5 units: decimal quantities are refused (see
    ``test_quantities_must_be_positive_integers``); the same request with 2 is accepted."""
    for item in body.get("items", []):
        if not float(item["quantity"]).is_integer():
            item["quantity"] = 2
    return body


@pytest.mark.parametrize("spec", VERSIONS)
async def test_spec_example_requests_are_accepted(http: httpx.AsyncClient, backend: str,
                                                  spec: str) -> None:
    speaker = Speaker(http, spec, spec)
    ex = examples(spec)
    requests = {name: body for name, body in ex.items() if name.endswith("_request")
                or "_request_" in name}
    assert requests
    for name, example in requests.items():
        body = copy.deepcopy(example)
        speaker.valid(body, {"create": "CheckoutSessionCreateRequest",
                             "update": "CheckoutSessionUpdateRequest",
                             "complete": "CheckoutSessionCompleteRequest",
                             "cancel": "CancelSessionRequest"}[name.split("_")[0]])
        if name.startswith("create"):
            if any(not float(i["quantity"]).is_integer() for i in body.get("items", [])):
                resp = await speaker.post("/checkout_sessions", body)
                expect_error(speaker, resp, 400, "invalid_type", "$.items[0].quantity")
                body = _fix_items(speaker, body)
            resp = await speaker.post("/checkout_sessions", body)
            assert resp.status_code == 201, (name, resp.text)
            session = speaker.valid(resp.json(), "CheckoutSession")
            assert "affiliate_attribution" not in resp.text  # write-only
            assert session["line_items"][0]["item"]["id"] == "item_123"
            continue
        fresh = await speaker.create()
        path = f"/checkout_sessions/{fresh['id']}"
        if name.startswith("update"):
            resp = await speaker.post(path, body)
            assert resp.status_code == 200, (name, resp.text)
            speaker.valid(resp.json(), "CheckoutSession")
        elif name.startswith("complete"):
            resp = await speaker.post(f"{path}/complete", body)
            handler = body["payment_data"].get("handler_id")
            if handler is not None and handler != "card_tokenized":
                # A seller-backed saved card of another shop: refused, in the Error shape.
                expect_error(speaker, resp, 400, "invalid_payment_data",
                             "$.payment_data.handler_id")
                continue
            assert resp.status_code == 200, (name, resp.text)
            done = speaker.valid(resp.json(), "CheckoutSessionWithOrder")
            assert done["status"] == "completed"
        elif name.startswith("cancel"):
            resp = await speaker.post(f"{path}/cancel", body)
            assert resp.status_code == 200, (name, resp.text)
            assert speaker.valid(resp.json(), "CheckoutSession")["status"] == "canceled"


# ---------------------------------------------------------------- quantities


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
async def test_quantities_must_be_positive_integers(speaker: Speaker, backend: str,
                                                    bad: Any) -> None:
    param = f"$.{speaker.items}[0].quantity"
    body = speaker.create_body()
    body[speaker.items][0]["quantity"] = bad
    resp = await speaker.post("/checkout_sessions", body)
    error = expect_error(speaker, resp, 400, resp.json().get("code", "?"), param)
    assert error["code"] in ("invalid_value", "invalid_type")
    session = await speaker.create()
    update = {speaker.items: [{"id": "item_123", "quantity": bad}]}
    resp = await speaker.post(f"/checkout_sessions/{session['id']}", update)
    expect_error(speaker, resp, 400, resp.json().get("code", "?"), param)


# ---------------------------------------------------------------- idempotency


async def test_idempotency_table(speaker: Speaker, runtime: Any, backend: str) -> None:
    body = speaker.create_body()
    first = await speaker.post("/checkout_sessions", body, key="same")
    assert first.status_code == 201
    replay = await speaker.post("/checkout_sessions", body, key="same")
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()

    other = speaker.create_body(("item_123", 3))
    resp = await speaker.post("/checkout_sessions", other, key="same")
    if speaker.spec == "2026-04-17":
        error = expect_error(speaker, resp, 422, "idempotency_conflict")
        assert error["type"] == "invalid_request"
    else:  # before 2026-04-17: 409 request_not_idempotent
        error = expect_error(speaker, resp, 409, "idempotency_conflict")
        assert error["type"] == "request_not_idempotent"

    async with runtime.sessionmaker() as db, db.begin():
        await db.execute(update(IdempotencyRecord).where(IdempotencyRecord.key == "same")
                         .values(state="in_flight", status_code=None, response_body=None,
                                 locked_until=utc_now() + timedelta(minutes=5)))
    resp = await speaker.post("/checkout_sessions", body, key="same")
    expect_error(speaker, resp, 409, "idempotency_in_flight")
    assert int(resp.headers["retry-after"]) >= 1

    resp = await speaker.post("/checkout_sessions", body, key=None)
    if speaker.spec == "2026-04-17":
        expect_error(speaker, resp, 400, "idempotency_key_required", "Idempotency-Key")
    else:  # the key is optional in these versions' OpenAPI: processed once, not stored
        assert resp.status_code == 201, resp.text
        speaker.valid(resp.json(), "CheckoutSession")
        assert resp.json()["id"] != first.json()["id"]


# ---------------------------------------------------------------- error codes


async def test_error_codes(speaker: Speaker, backend: str) -> None:
    resp = await speaker.get("/checkout_sessions/cs_missing")
    expect_error(speaker, resp, 404, "checkout_session_not_found")
    resp = await speaker.post("/checkout_sessions/cs_missing/complete", speaker.complete_body())
    expect_error(speaker, resp, 404, "checkout_session_not_found")

    body = speaker.create_body(("no-such-item", 1))
    resp = await speaker.post("/checkout_sessions", body)
    expect_error(speaker, resp, 400, "invalid_item_id", f"$.{speaker.items}[0].id")

    body = speaker.create_body()
    del body[speaker.items]
    resp = await speaker.post("/checkout_sessions", body)
    expect_error(speaker, resp, 400, "missing_required_field", f"$.{speaker.items}")

    resp = await speaker.post("/checkout_sessions", raw=b"{not json")
    expect_error(speaker, resp, 400, "invalid_json")

    resp = await speaker.post("/checkout_sessions", [1, 2])
    expect_error(speaker, resp, 400, "invalid_type")

    session = await speaker.create()
    resp = await speaker.post(f"/checkout_sessions/{session['id']}/complete",
                              {"payment_data": {}})
    assert resp.status_code == 400
    speaker.valid(resp.json(), "Error")

    resp = await speaker.post(f"/checkout_sessions/{session['id']}/cancel")
    assert resp.status_code == 200, resp.text
    assert speaker.valid(resp.json(), "CheckoutSession")["status"] == "canceled"
    resp = await speaker.post(f"/checkout_sessions/{session['id']}/cancel")
    expect_error(speaker, resp, 405, "checkout_session_canceled")
    resp = await speaker.post(f"/checkout_sessions/{session['id']}", {"buyer": BUYER})
    expect_error(speaker, resp, 405, "checkout_session_canceled")


# ---------------------------------------------------------------- across versions


async def test_one_session_read_and_completed_across_versions(http: httpx.AsyncClient,
                                                              backend: str) -> None:
    speakers = [Speaker(http, label, spec) for label, spec in CASES]
    oldest, newest = speakers[0], speakers[-1]
    session = await oldest.create()
    for speaker in speakers:
        resp = await speaker.get(f"/checkout_sessions/{session['id']}")
        assert resp.status_code == 200
        read = speaker.valid(resp.json(), "CheckoutSession")
        assert read["id"] == session["id"]
        assert read["status"] == "ready_for_payment"
    resp = await newest.post(f"/checkout_sessions/{session['id']}/complete",
                             newest.complete_body())
    assert resp.status_code == 200, resp.text
    order_id = newest.valid(resp.json(), "CheckoutSessionWithOrder")["order"]["id"]
    for speaker in speakers:
        resp = await speaker.get(f"/checkout_sessions/{session['id']}")
        read = speaker.valid(resp.json(), "CheckoutSessionWithOrder")
        assert read["order"]["id"] == order_id

    # And the other way round: created in 2026-04-17, completed in 2025-12-12.
    session = await newest.create()
    middle = next(s for s in speakers if s.spec == "2025-12-12")
    resp = await middle.post(f"/checkout_sessions/{session['id']}/complete",
                             middle.complete_body())
    assert resp.status_code == 200, resp.text
    assert middle.valid(resp.json(), "CheckoutSessionWithOrder")["status"] == "completed"
