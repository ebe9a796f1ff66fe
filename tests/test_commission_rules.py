"""The pure commission rules: scopes, fixed amounts per unit across credited videos,
effective dates, and clawbacks that telescope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from commissions.rules import (
    Basis,
    Credit,
    Line,
    Sale,
    Scope,
    Terms,
    VideoFacts,
    clawback,
    compute_sale,
)

AT = datetime(2026, 11, 10, tzinfo=UTC)


def terms(scope: Scope, value: str, **kw: object) -> Terms:
    base: dict = {"contract_id": "c", "scope": scope, "scope_value": value,
                  "basis": Basis.percent, "model": "linear", "payees": (("p", 1),),
                  "rate_bps": 1000}
    base.update(kw)
    return Terms(**base)


SALE = Sale(AT, "usd", credits=[Credit("v1", "linear", 6000), Credit("v2", "linear", 4000)],
            lines=[Line("boots", 2, 7000, ("Shoes",)), Line("mug", 1, 3000, ("Home",))],
            videos={"v1": VideoFacts("v1", "fall", "ava"),
                    "v2": VideoFacts("v2", None, "bo", ("v1",))})


def test_category_scope_takes_the_matching_lines_part_of_each_video() -> None:
    shares = compute_sale(SALE, [terms(Scope.category, "Shoes")])
    # v1's base 6000 × 7000/10000 = 4200 → 420; v2's 4000 × 0.7 = 2800 → 280
    assert [(s.video_id, s.base_amount, s.amount, s.units) for s in shares] == [
        ("v1", 4200, 420, 2), ("v2", 2800, 280, 2)]


def test_fixed_per_unit_is_split_across_credited_videos_exactly() -> None:
    fixed = terms(Scope.product, "boots", basis=Basis.fixed_per_unit, fixed_amount=333,
                  currency="usd")
    shares = compute_sale(SALE, [fixed])
    assert sum(s.amount for s in shares) == 666  # 2 units × 3.33, nothing lost
    assert [s.amount for s in shares] == [400, 266]  # 60 % / 40 %, largest remainder
    assert compute_sale(SALE, [terms(Scope.product, "boots", basis=Basis.fixed_per_unit,
                                     fixed_amount=333, currency="eur")]) == []


def test_effective_dates_and_scopes_that_do_not_match() -> None:
    later = terms(Scope.video, "v1", effective_from=AT + timedelta(seconds=1))
    ended = terms(Scope.video, "v1", effective_to=AT)
    other_model = terms(Scope.video, "v1", model="last_touch")
    assert compute_sale(SALE, [later, ended, other_model]) == []
    assert [s.video_id for s in compute_sale(SALE, [terms(Scope.creator, "bo")])] == ["v2"]
    assert [s.video_id for s in compute_sale(SALE, [terms(Scope.remixes, "v1")])] == ["v2"]
    assert [s.video_id for s in compute_sale(SALE, [terms(Scope.campaign, "fall")])] == ["v1"]


@given(amount=st.integers(-10**9, 10**9), total=st.integers(1, 10**9),
       cuts=st.lists(st.integers(0, 10**9), max_size=6))
def test_clawbacks_telescope_to_the_whole_row(amount: int, total: int, cuts: list[int]
                                              ) -> None:
    points = sorted({0, total, *[min(c, total) for c in cuts]})
    parts = [clawback(amount, a, b, total) for a, b in zip(points, points[1:], strict=False)]
    assert sum(parts) == -amount
    assert all(abs(p) <= abs(amount) for p in parts)
