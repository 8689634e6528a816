"""Culture health: a bounded, rate-based summary of one frame.

A channel is *active* when its rate is at least ``min_rate_hz`` (0.1 Hz is
the usual MEA activity criterion, e.g. Wagenaar, Pine & Potter 2006) and
*in range* when it is also at most ``max_rate_hz``. The score is the
fraction of channels that are in range, in [0, 1]; the status names the
dominant failure. This is a heuristic for steering an experiment, not a
viability assay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["CultureHealth"]


@dataclass
class CultureHealth:
    """Rate-based health of a culture.

    Parameters
    ----------
    min_rate_hz : float
        Rate from which a channel counts as active.
    max_rate_hz : float
        Rate above which a channel counts as hyperactive (epileptiform).
    min_active_fraction : float
        Below this fraction of active channels the culture is "silent".
    """
    min_rate_hz: float = 0.1
    max_rate_hz: float = 100.0
    min_active_fraction: float = 0.1

    def __post_init__(self):
        for n in ("min_rate_hz", "max_rate_hz"):
            v = getattr(self, n)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{n} must be finite and >= 0, not {v!r}")
        if self.max_rate_hz <= self.min_rate_hz:
            raise ValueError(f"max_rate_hz {self.max_rate_hz} must exceed min_rate_hz {self.min_rate_hz}")
        if not 0.0 <= self.min_active_fraction <= 1.0:
            raise ValueError(f"min_active_fraction must be within [0, 1], not {self.min_active_fraction!r}")

    def assess_counts(self, spike_counts, duration_s: float) -> dict:
        """Health from per-channel spike counts over ``duration_s`` seconds.

        Returns a dict: ``mean_rate_hz``, ``max_rate_hz``, ``active_channels``,
        ``active_fraction``, ``hyperactive_channels``, ``score`` (fraction in
        range) and ``status`` ("healthy", "silent", "hyperactive" or "empty"
        for a zero-length frame).
        """
        k = np.asarray(spike_counts, dtype=np.float64)
        if k.ndim != 1 or k.size == 0:
            raise ValueError(f"spike_counts must be a non-empty 1-D array, not shape {k.shape}")
        if not np.isfinite(k).all() or k.min() < 0:
            raise ValueError("spike_counts must be finite and >= 0")
        if not isinstance(duration_s, (int, float)) or not math.isfinite(duration_s) or duration_s < 0:
            raise ValueError(f"duration_s must be finite and >= 0, not {duration_s!r}")
        return self._assess(k, float(duration_s))

    def _assess(self, k: np.ndarray, duration_s: float) -> dict:
        """:meth:`assess_counts` without the input checks (counts known good)."""
        n = k.size
        if duration_s == 0:
            return {"mean_rate_hz": 0.0, "max_rate_hz": 0.0, "active_channels": 0,
                    "active_fraction": 0.0, "hyperactive_channels": 0, "score": 0.0,
                    "status": "empty"}
        r = k / duration_s
        n_active = int(np.count_nonzero(r >= self.min_rate_hz))
        n_hyper = int(np.count_nonzero(r > self.max_rate_hz))
        score = (n_active - n_hyper) / n
        frac = n_active / n
        if frac < self.min_active_fraction:
            status = "silent"
        elif n_hyper > (n_active - n_hyper):
            status = "hyperactive"
        else:
            status = "healthy"
        return {"mean_rate_hz": float(r.sum()) / n, "max_rate_hz": float(r.max()),
                "active_channels": n_active, "active_fraction": frac,
                "hyperactive_channels": n_hyper, "score": float(score), "status": status}

    def assess(self, spikes, num_channels: int, duration_s: float) -> dict:
        """Health from a list of :class:`DetectedSpike` (see :meth:`assess_counts`)."""
        ch = np.fromiter((s.channel for s in spikes), np.int64, len(spikes))
        if ch.size and (ch.min() < 0 or ch.max() >= num_channels):
            raise ValueError(f"spike channel outside 0..{num_channels - 1}")
        return self.assess_counts(np.bincount(ch, minlength=num_channels), duration_s)
