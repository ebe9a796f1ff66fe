"""Creative experiment statistics: pure functions, no database.

Each variant (a video) is a Binomial experiment: ``views`` trials, ``orders`` successes.
With a uniform Beta(1, 1) prior the posterior of its conversion rate is
Beta(1 + orders, 1 + views - orders).

- Credible intervals are equal-tailed posterior quantiles (``scipy.special.betaincinv``,
  the inverse regularised incomplete beta function).
- The probability that a variant is the best is exact for two variants on conversion
  (Evan Miller's closed-form sum, in log space, over the arm with fewer orders, up to
  ``EXACT_MAX_TERMS``) and Monte Carlo otherwise (posterior draws with a fixed seed, so a
  report is reproducible).
- Revenue per 1,000 views is conversion × average order value × 1,000; the order value
  is taken as observed (its own uncertainty is ignored), so its interval is the
  conversion interval scaled. A variant without orders borrows the pooled order value.
- A winner is declared only when every variant has at least ``min_views`` views, the
  variants together have at least ``min_orders`` orders, and the leader's probability
  to be best reaches the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy.special import betaincinv

DEFAULT_DRAWS = 100_000  # standard error of P(best) ≤ 0.0016
EXACT_MAX_TERMS = 20_000  # the closed-form sum has one term per success of one arm
DEFAULT_SEED = 20261202


class Metric(StrEnum):
    conversion = "conversion"
    revenue = "revenue"


class Verdict(StrEnum):
    winner = "winner"
    insufficient_views = "insufficient_views"
    insufficient_orders = "insufficient_orders"
    inconclusive = "inconclusive"
    invalid_data = "invalid_data"


@dataclass(frozen=True, slots=True)
class Arm:
    key: str
    views: int
    orders: int
    revenue: int = 0  # minor units of one currency


@dataclass(frozen=True, slots=True)
class ArmResult:
    key: str
    views: int
    orders: int
    revenue: int
    alpha: int
    beta: int
    conversion: float  # posterior mean
    conversion_low: float  # 95 % credible interval
    conversion_high: float
    rpm: int  # revenue per 1,000 views, minor units (observed)
    rpm_low: int
    rpm_high: int
    p_best: float
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    arms: list[ArmResult]
    verdict: Verdict
    winner: str | None
    method: str  # exact | monte_carlo | none


def posterior(views: int, orders: int) -> tuple[int, int]:
    """Beta posterior parameters under a Beta(1, 1) prior."""
    if views < 0 or orders < 0 or orders > views:
        raise ValueError("need 0 <= orders <= views")
    return 1 + orders, 1 + views - orders


def beta_quantile(alpha: float, beta: float, q: float) -> float:
    return float(betaincinv(alpha, beta, q))


def credible_interval(alpha: float, beta: float, mass: float = 0.95) -> tuple[float, float]:
    tail = (1.0 - mass) / 2.0
    return beta_quantile(alpha, beta, tail), beta_quantile(alpha, beta, 1.0 - tail)


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def prob_b_beats_a(alpha_a: int, beta_a: int, alpha_b: int, beta_b: int) -> float:
    """P(X_B > X_A) for X_A ~ Beta(alpha_a, beta_a), X_B ~ Beta(alpha_b, beta_b), exactly
    (integer ``alpha_b``): sum over i < alpha_b of
    B(alpha_a + i, beta_a + beta_b) / ((beta_b + i) B(1 + i, beta_b) B(alpha_a, beta_a))."""
    if alpha_b < 1 or int(alpha_b) != alpha_b:
        raise ValueError("alpha_b must be a positive integer")
    base = _log_beta(alpha_a, beta_a)
    total = 0.0
    for i in range(int(alpha_b)):
        total += math.exp(_log_beta(alpha_a + i, beta_a + beta_b) - math.log(beta_b + i)
                          - _log_beta(1 + i, beta_b) - base)
    return min(1.0, max(0.0, total))


def prob_best_monte_carlo(params: Sequence[tuple[float, float]], scales: Sequence[float],
                          *, draws: int = DEFAULT_DRAWS, seed: int = DEFAULT_SEED
                          ) -> list[float]:
    """P(arm i has the largest scale_i × X_i), X_i ~ Beta(params[i]), by ``draws``
    posterior draws per arm from a generator seeded with ``seed``."""
    rng = np.random.Generator(np.random.PCG64(seed))
    samples = np.empty((len(params), draws))
    for i, ((a, b), scale) in enumerate(zip(params, scales, strict=True)):
        samples[i] = rng.beta(a, b, size=draws) * scale
    wins = np.bincount(np.argmax(samples, axis=0), minlength=len(params))
    return [float(w) / draws for w in wins]


def analyse(arms: Sequence[Arm], *, metric: Metric = Metric.conversion, min_views: int,
            min_orders: int, threshold: float, draws: int = DEFAULT_DRAWS,
            seed: int = DEFAULT_SEED) -> Report:
    bad = [a for a in arms if a.views < 0 or a.orders < 0 or a.orders > a.views]
    if len(arms) < 2 or bad:
        results = [_summary(a, None, problem="more orders than views" if a in bad else None)
                   for a in arms]
        return Report(results, Verdict.invalid_data, None, "none")
    total_orders = sum(a.orders for a in arms)
    total_revenue = sum(a.revenue for a in arms)
    pooled_aov = total_revenue / total_orders if total_orders else 0.0
    params = [posterior(a.views, a.orders) for a in arms]
    if metric is Metric.revenue and pooled_aov > 0:
        scales = [a.revenue / a.orders if a.orders else pooled_aov for a in arms]
        p_best = prob_best_monte_carlo(params, scales, draws=draws, seed=seed)
        method = "monte_carlo"
    elif len(arms) == 2 and min(params[0][0], params[1][0]) <= EXACT_MAX_TERMS:
        (a1, b1), (a2, b2) = params
        if a2 <= a1:  # sum over the arm with fewer successes
            second = prob_b_beats_a(a1, b1, a2, b2)
        else:
            second = 1.0 - prob_b_beats_a(a2, b2, a1, b1)
        p_best = [1.0 - second, second]
        method = "exact"
    else:
        p_best = prob_best_monte_carlo(params, [1.0] * len(arms), draws=draws, seed=seed)
        method = "monte_carlo"
    results = [_summary(a, p, aov=(a.revenue / a.orders if a.orders else pooled_aov))
               for a, p in zip(arms, p_best, strict=True)]
    leader = max(range(len(arms)), key=lambda i: p_best[i])
    if any(a.views < min_views for a in arms):
        verdict = Verdict.insufficient_views
    elif total_orders < min_orders:
        verdict = Verdict.insufficient_orders
    elif p_best[leader] < threshold:
        verdict = Verdict.inconclusive
    else:
        verdict = Verdict.winner
    return Report(results, verdict, arms[leader].key if verdict is Verdict.winner else None,
                  method)


def _summary(arm: Arm, p_best: float | None, *, aov: float = 0.0,
             problem: str | None = None) -> ArmResult:
    if problem is not None or arm.orders > arm.views or arm.views < 0:
        return ArmResult(arm.key, arm.views, arm.orders, arm.revenue, 0, 0, 0.0, 0.0, 0.0,
                         0, 0, 0, 0.0, problem or "more orders than views")
    alpha, beta = posterior(arm.views, arm.orders)
    low, high = credible_interval(alpha, beta)
    rpm = round(arm.revenue * 1000 / arm.views) if arm.views else 0
    return ArmResult(arm.key, arm.views, arm.orders, arm.revenue, alpha, beta,
                     alpha / (alpha + beta), low, high, rpm, math.floor(low * aov * 1000),
                     math.ceil(high * aov * 1000), p_best or 0.0)
