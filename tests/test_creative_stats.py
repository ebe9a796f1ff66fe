"""Creative experiment statistics against known values: closed forms, an independent
binomial-tail oracle for Beta quantiles, the exact two-arm probability, fixed seeds, and
no winner on small samples."""

from __future__ import annotations

import math

import pytest

from creatives.stats import (
    Arm,
    Metric,
    Verdict,
    analyse,
    beta_quantile,
    credible_interval,
    posterior,
    prob_b_beats_a,
    prob_best_monte_carlo,
)


def beta_cdf_integer(x: float, a: int, b: int) -> float:
    """I_x(a, b) for integer a, b: P(Binomial(a + b - 1, x) >= a) (independent oracle)."""
    n = a + b - 1
    return sum(math.comb(n, j) * x**j * (1 - x) ** (n - j) for j in range(a, n + 1))


def test_posterior_uses_a_uniform_prior() -> None:
    assert posterior(100, 7) == (8, 94)
    assert posterior(0, 0) == (1, 1)
    with pytest.raises(ValueError):
        posterior(5, 6)


@pytest.mark.parametrize("q", [0.025, 0.1, 0.5, 0.9, 0.975])
def test_beta_quantiles_match_closed_forms(q: float) -> None:
    assert beta_quantile(1, 1, q) == pytest.approx(q, abs=1e-12)  # uniform
    assert beta_quantile(1, 7, q) == pytest.approx(1 - (1 - q) ** (1 / 7), rel=1e-10)
    assert beta_quantile(4, 1, q) == pytest.approx(q ** (1 / 4), rel=1e-10)
    # Beta(1/2, 1/2) is the arcsine distribution: F^-1(q) = sin²(πq/2).
    assert beta_quantile(0.5, 0.5, q) == pytest.approx(math.sin(math.pi * q / 2) ** 2,
                                                       rel=1e-9)


@pytest.mark.parametrize(("a", "b"), [(2, 3), (8, 94), (31, 71), (3, 1000)])
def test_beta_quantiles_invert_the_binomial_tail(a: int, b: int) -> None:
    for q in (0.025, 0.5, 0.975):
        assert beta_cdf_integer(beta_quantile(a, b, q), a, b) == pytest.approx(q, abs=1e-9)


def test_published_values() -> None:
    # Median of Beta(2, 3): 0.3857 (root of 1 - (1-x)^3 (1+3x) = 1/2).
    assert beta_quantile(2, 3, 0.5) == pytest.approx(0.385728, abs=1e-6)
    # 0 successes in 10 trials, uniform prior: the 95 % upper bound 1 - 0.025^(1/11).
    low, high = credible_interval(1, 11)
    assert low == pytest.approx(1 - 0.975 ** (1 / 11), rel=1e-10)
    assert high == pytest.approx(1 - 0.025 ** (1 / 11), rel=1e-10)


def test_exact_probability_closed_form_cases() -> None:
    assert prob_b_beats_a(11, 991, 11, 991) == pytest.approx(0.5, abs=1e-12)  # equal data
    assert prob_b_beats_a(1, 1, 2, 1) == pytest.approx(2 / 3, abs=1e-12)  # ∫ 2x · x dx
    assert prob_b_beats_a(1, 1, 1, 2) == pytest.approx(1 / 3, abs=1e-12)
    # Complementary orderings sum to one.
    p = prob_b_beats_a(11, 991, 16, 986)
    assert p + prob_b_beats_a(16, 986, 11, 991) == pytest.approx(1.0, abs=1e-12)


def test_monte_carlo_agrees_with_the_exact_sum_and_is_seeded() -> None:
    exact = prob_b_beats_a(11, 991, 16, 986)
    estimate = prob_best_monte_carlo([(11, 991), (16, 986)], [1.0, 1.0])
    assert estimate[1] == pytest.approx(exact, abs=0.005)
    assert sum(estimate) == pytest.approx(1.0)
    assert prob_best_monte_carlo([(11, 991), (16, 986)], [1.0, 1.0]) == estimate  # same seed
    assert prob_best_monte_carlo([(11, 991), (16, 986)], [1.0, 1.0], seed=7) != estimate
    thirds = prob_best_monte_carlo([(51, 4951)] * 3, [1.0] * 3)
    assert thirds == pytest.approx([1 / 3] * 3, abs=0.005)


def test_many_orders_fall_back_to_monte_carlo() -> None:
    # Above EXACT_MAX_TERMS orders per arm the sum would be long: the draws agree with it.
    big = analyse([Arm("a", 10_000_000, 30_000), Arm("b", 10_000_000, 30_400)],
                  min_views=1000, min_orders=20, threshold=0.95)
    assert big.method == "monte_carlo"
    exact = prob_b_beats_a(30_001, 9_970_001, 30_401, 9_969_601)
    assert big.arms[1].p_best == pytest.approx(exact, abs=0.005)
    # Either order of the arms gives the same exact answer.
    one = analyse([Arm("a", 2000, 6), Arm("b", 2000, 1)], min_views=1, min_orders=1,
                  threshold=0.95)
    two = analyse([Arm("b", 2000, 1), Arm("a", 2000, 6)], min_views=1, min_orders=1,
                  threshold=0.95)
    assert one.arms[0].p_best == pytest.approx(two.arms[1].p_best, abs=1e-12)


def test_equal_arms_are_a_coin_toss_and_no_winner() -> None:
    report = analyse([Arm("a", 20_000, 200), Arm("b", 20_000, 200)], min_views=1000,
                     min_orders=20, threshold=0.95)
    assert [arm.p_best for arm in report.arms] == pytest.approx([0.5, 0.5], abs=1e-9)
    assert report.method == "exact"
    assert report.verdict is Verdict.inconclusive
    assert report.winner is None


def test_strong_evidence_declares_a_winner() -> None:
    report = analyse([Arm("a", 10_000, 100, 250_000), Arm("b", 10_000, 150, 390_000)],
                     min_views=1000, min_orders=20, threshold=0.95)
    assert report.verdict is Verdict.winner
    assert report.winner == "b"
    b = report.arms[1]
    assert b.p_best > 0.999
    assert (b.alpha, b.beta) == (151, 9851)
    assert b.conversion_low < 0.015 < b.conversion_high
    assert b.rpm == 39_000  # 390,000 minor units over 10,000 views × 1,000
    assert b.rpm_low <= b.rpm <= b.rpm_high


def test_no_winner_on_small_samples_however_lopsided() -> None:
    lopsided = [Arm("a", 60, 0), Arm("b", 60, 9)]
    small = analyse(lopsided, min_views=1000, min_orders=20, threshold=0.95)
    assert small.arms[1].p_best > 0.99  # the data lean hard one way …
    assert small.verdict is Verdict.insufficient_views
    assert small.winner is None
    few_orders = analyse([Arm("a", 5000, 0), Arm("b", 5000, 9)], min_views=1000,
                         min_orders=20, threshold=0.95)
    assert few_orders.verdict is Verdict.insufficient_orders
    assert few_orders.winner is None


def test_revenue_metric_ranks_by_revenue_per_view() -> None:
    # b converts a little better but sells much cheaper: a earns more per view.
    arms = [Arm("a", 10_000, 120, 120 * 9000), Arm("b", 10_000, 130, 130 * 2000)]
    by_conversion = analyse(arms, min_views=1000, min_orders=20, threshold=0.95)
    by_revenue = analyse(arms, metric=Metric.revenue, min_views=1000, min_orders=20,
                         threshold=0.95)
    assert by_conversion.arms[1].p_best > 0.5
    assert by_revenue.method == "monte_carlo"
    assert by_revenue.verdict is Verdict.winner
    assert by_revenue.winner == "a"


def test_impossible_data_is_reported_not_analysed() -> None:
    report = analyse([Arm("a", 10, 11), Arm("b", 100, 1)], min_views=1, min_orders=1,
                     threshold=0.95)
    assert report.verdict is Verdict.invalid_data
    assert report.winner is None
    assert report.arms[0].problem == "more orders than views"
