"""Creative experiment statistics: how long one report's analysis takes.

The report of an experiment is computed on every read (no cache to go stale), so the
analysis must stay cheap: two variants use the exact closed-form sum; more variants (or
the revenue metric) draw 100,000 posterior samples per variant.

    .venv/bin/python bench/experiment_stats.py
"""

from __future__ import annotations

import time

from creatives.stats import Arm, Metric, analyse

TARGET_MS = {2: 5.0, 5: 150.0, 20: 600.0}


def run(variants: int, metric: Metric) -> float:
    arms = [Arm(f"v{i}", 50_000 + 1000 * i, 500 + 7 * i, (500 + 7 * i) * 4200)
            for i in range(variants)]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        analyse(arms, metric=metric, min_views=1000, min_orders=20, threshold=0.95)
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> None:
    print(f"{'variants':>8} {'metric':>10} {'method':>12} {'ms':>8} {'target ms':>10}")
    for variants, target in TARGET_MS.items():
        for metric in (Metric.conversion, Metric.revenue):
            method = "exact" if variants == 2 and metric is Metric.conversion else "monte_carlo"
            limit = target if method == "exact" or variants > 2 else TARGET_MS[5]
            print(f"{variants:>8} {metric.value:>10} {method:>12} {run(variants, metric):>8.1f} "
                  f"{limit:>10.0f}")


if __name__ == "__main__":
    main()
