"""Property-based tests of the attribution models (hypothesis): credits always sum
exactly to the amount, never go negative, and respect the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.rules import MODELS, Touch, allocate, credit_weights, split

ORDER_AT = datetime(2026, 11, 20, 12, tzinfo=UTC)
videos = st.sampled_from(["v1", "v2", "v3", "v4", None])
touches = st.lists(st.builds(Touch, video_id=videos,
                             at=st.integers(0, 60 * 24 * 40).map(
                                 lambda m: ORDER_AT - timedelta(minutes=m))), max_size=12)


@settings(max_examples=300, deadline=None)
@given(amount=st.integers(-10**9, 10**9),
       weights=st.lists(st.fractions(min_value=0, max_value=100), min_size=1, max_size=20))
def test_allocate_sums_exactly_and_is_fair(amount: int, weights: list[Fraction]) -> None:
    if sum(weights) == 0:
        with pytest.raises(ValueError, match="zero"):
            allocate(amount, weights)
        return
    parts = allocate(amount, weights)
    assert sum(parts) == amount
    total = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - Fraction(amount) * weight / total) < 1  # off by < 1 minor unit


@settings(max_examples=300, deadline=None)
@given(amount=st.integers(0, 10**8), history=touches, model=st.sampled_from(MODELS),
       window=st.sampled_from([1, 7, 14, 28, None]),
       remix=st.sampled_from([Fraction(0), Fraction(1, 10), Fraction(1, 4)]))
def test_every_model_credits_exactly_the_attributable_amount(
        amount: int, history: list[Touch], model: str, window: int | None,
        remix: Fraction) -> None:
    shares = credit_weights(model, history, ORDER_AT, window,
                            parents={"v2": "v1", "v3": "v2"}, remix_share=remix)
    assert sum(shares.values()) == 1
    credits = split(amount, shares)
    assert sum(credits.values()) == amount
    assert all(c >= 0 for c in credits.values())
    in_window = [t for t in history if window is None or
                 t.at >= ORDER_AT - timedelta(days=window)]
    if not in_window:
        assert credits == {None: amount}


def test_models_side_by_side() -> None:
    day = timedelta(days=1)
    history = [Touch("a", ORDER_AT - 5 * day), Touch("b", ORDER_AT - 3 * day),
               Touch("c", ORDER_AT - 2 * day), Touch("d", ORDER_AT - day)]
    assert split(1000, credit_weights("last_touch", history, ORDER_AT, 7)) == {"d": 1000}
    assert split(1000, credit_weights("first_touch", history, ORDER_AT, 7)) == {"a": 1000}
    assert split(1000, credit_weights("linear", history, ORDER_AT, 7)) == {
        "a": 250, "b": 250, "c": 250, "d": 250}
    assert split(1000, credit_weights("position_based", history, ORDER_AT, 7)) == {
        "a": 400, "b": 100, "c": 100, "d": 400}
    # A 4-day window drops the first touch.
    assert split(1000, credit_weights("first_touch", history, ORDER_AT, 4)) == {"b": 1000}
    # Linear over three never loses the odd cent.
    three = history[1:]
    assert split(1000, credit_weights("linear", three, ORDER_AT, 7)) == {
        "b": 334, "c": 333, "d": 333}


def test_remix_share_flows_to_the_parent() -> None:
    history = [Touch("remix", ORDER_AT - timedelta(hours=1))]
    shares = credit_weights("last_touch", history, ORDER_AT, 7, parents={"remix": "original"},
                            remix_share=Fraction(1, 5))
    assert split(1000, shares) == {"original": 200, "remix": 800}



@settings(max_examples=300, deadline=None)
@given(component=st.integers(0, 10**7), total=st.integers(1, 10**7),
       cuts=st.lists(st.integers(1, 10**6), max_size=8))
def test_refunds_reverse_proportionally_and_exactly(component: int, total: int,
                                                    cuts: list[int]) -> None:
    """Each refund reverses its share of every ledger component; refunds that add up to
    the order's total reverse the component exactly (no cent left over or created)."""
    from attribution.ledger import reversed_portion

    reversed_total = 0
    reversed_component = 0
    for cut in [*cuts, total]:  # the last refund takes whatever is left
        after = min(reversed_total + cut, total)
        step = reversed_portion(component, after, total) - reversed_portion(
            component, reversed_total, total)
        assert step >= 0
        assert abs(step - Fraction(component) * (after - reversed_total) / total) < 2
        reversed_component += step
        reversed_total = after
    assert reversed_total == total
    assert reversed_component == component
