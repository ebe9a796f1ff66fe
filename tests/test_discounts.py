"""Discount codes as pure pricing in the core: stacking, caps, exact allocation, and the
ACP binding unchanged unless a configured code is used."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checkout.pricing import apply_discount_codes
from checkout.profile import DiscountCode
from tests.conftest import US_ADDRESS, Agent, app_client, sandbox_runtime
from tests.test_ucp import CODES, merchant_config


def test_percentages_compound_and_fixed_amounts_cap() -> None:
    applied, unknown = apply_discount_codes([("li_a", 3500)], ["10off", "WELCOME20", "BOGUS",
                                                                "10OFF"], CODES)
    assert [(d.code, d.amount) for d in applied] == [("10OFF", 350), ("WELCOME20", 630)]
    assert unknown == ["BOGUS"]
    capped, _ = apply_discount_codes([("li_a", 300)], ["FIXED500"], CODES)
    assert capped[0].amount == 300  # never below zero


@given(st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=8),
       st.lists(st.sampled_from(["10OFF", "WELCOME20", "FIXED500"]), max_size=3))
def test_allocations_sum_exactly(bases: list[int], codes: list[str]) -> None:
    lines = [(f"li_{i}", b) for i, b in enumerate(bases)]
    applied, _ = apply_discount_codes(lines, codes, CODES)
    per_line = {line_id: 0 for line_id, _ in lines}
    for d in applied:
        assert sum(part for _, part in d.allocations) == d.amount
        for line_id, part in d.allocations:
            per_line[line_id] += part
    for line_id, base in lines:
        assert 0 <= per_line[line_id] <= base


@pytest.fixture
async def acp(database_url: str, tmp_path: Path) -> AsyncIterator[Agent]:
    async with sandbox_runtime(database_url, merchant_config=merchant_config(tmp_path)) as rt:
        async with app_client(rt) as client:
            yield Agent(client)


async def test_acp_applies_configured_codes_only(acp: Agent, backend: str) -> None:
    resp = await acp.create(line_items=[{"id": "item_123", "quantity": 10}],
                            fulfillment_details={"address": US_ADDRESS},
                            discounts={"codes": ["WELCOME20", "NOT-A-CODE"]})
    body = resp.json()
    totals = {t["type"]: t["amount"] for t in body["totals"]}
    assert totals["items_discount"] == 600
    assert totals["subtotal"] == 2400
    warned = [m for m in body["messages"] if m["code"] == "discount_code_invalid"]
    assert [m["param"] for m in warned] == ["$.discounts.codes[1]"]


def test_code_shape() -> None:
    with pytest.raises(ValueError, match="type"):
        DiscountCode.model_validate({"code": "X", "type": "bogus", "value": 1})
