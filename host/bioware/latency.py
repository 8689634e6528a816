"""Latency budget bookkeeping: percentiles, violations and compliance."""

from __future__ import annotations

import math
from collections import deque

import numpy as np

__all__ = ["LatencyBudget"]


class LatencyBudget:
    """Records per-frame latencies against a budget.

    Parameters
    ----------
    budget_us : float
        A latency above this is a violation.
    capacity : int
        Latencies kept for the percentiles (the most recent ones); the
        counts cover every recorded value.
    """

    def __init__(self, budget_us: float = 1000.0, capacity: int = 100_000):
        if isinstance(budget_us, bool) or not isinstance(budget_us, (int, float)) \
                or not math.isfinite(budget_us) or budget_us <= 0:
            raise ValueError(f"budget_us must be finite and > 0, not {budget_us!r}")
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an integer >= 1, not {capacity!r}")
        self.budget_us = float(budget_us)
        self._recent = deque(maxlen=capacity)
        self.count = 0
        self.violations = 0

    def record(self, latency_us: float) -> bool:
        """Record one latency; True when it is within the budget."""
        if isinstance(latency_us, bool) or not isinstance(latency_us, (int, float)) \
                or not math.isfinite(latency_us) or latency_us < 0:
            raise ValueError(f"latency_us must be finite and >= 0, not {latency_us!r}")
        self._recent.append(float(latency_us))
        self.count += 1
        ok = latency_us <= self.budget_us
        if not ok:
            self.violations += 1
        return ok

    def percentile(self, q: float) -> float:
        """q-th percentile (0..100) of the kept latencies; NaN when empty."""
        if not self._recent:
            return math.nan
        return float(np.percentile(np.fromiter(self._recent, np.float64), q))

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    @property
    def compliance(self) -> float:
        """Fraction of recorded latencies within budget (1.0 when none recorded)."""
        return 1.0 if not self.count else 1.0 - self.violations / self.count

    def summary(self) -> dict:
        """p50, p99, max (µs), count, violations, compliance, budget."""
        mx = max(self._recent) if self._recent else math.nan
        return {"p50_us": self.p50, "p99_us": self.p99, "max_us": mx, "count": self.count,
                "violations": self.violations, "compliance": self.compliance,
                "budget_us": self.budget_us}
