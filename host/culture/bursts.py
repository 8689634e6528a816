"""Network-burst detection on the population spike count.

Dissociated cortical cultures on MEAs fire sparsely between recurring
network bursts, in which most of the network fires within ~100 ms
(Wagenaar, Pine & Potter 2006). Detection here follows the usual
population-rate method: count all spikes in fixed bins, call a bin active
when its count exceeds both a fraction of the network and the Poisson
fluctuation of the mean count, and merge active bins separated by short
gaps into one burst.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BIN_MS", "population_counts", "network_bursts"]

#: Bin width of the population count, ms.
BIN_MS = 10.0


def population_counts(spike_samples: np.ndarray, n_samples: int, sample_rate_hz: float,
                      bin_ms: float = BIN_MS) -> np.ndarray:
    """Spike count of the whole population per bin (the last bin may be partial)."""
    bin_samples = max(1, int(round(bin_ms * sample_rate_hz / 1000.0)))
    n_bins = -(-n_samples // bin_samples)
    return np.bincount(np.asarray(spike_samples, np.int64) // bin_samples,
                       minlength=n_bins)[:n_bins]


def network_bursts(counts: np.ndarray, n_neurons: int, min_fraction: float = 0.05,
                   max_gap_bins: int = 2, bin_ms: float = BIN_MS) -> np.ndarray:
    """Network bursts as (start_bin, stop_bin) pairs, stop exclusive.

    A bin is active when its count is at least ``max(min_fraction * n_neurons,
    mean + 4 sqrt(mean), 3)``: a sizeable share of the network fires in that
    bin and a Poisson population at the mean rate would almost never reach it.
    Active runs separated by at most ``max_gap_bins`` quiet bins are merged.

    Returns
    -------
    numpy.ndarray
        int64 (n_bursts, 2).
    """
    counts = np.asarray(counts, np.float64)
    if counts.size == 0:
        return np.zeros((0, 2), np.int64)
    mean = counts.mean()
    threshold = max(min_fraction * n_neurons, mean + 4.0 * np.sqrt(mean), 3.0)
    active = np.flatnonzero(counts >= threshold)
    if active.size == 0:
        return np.zeros((0, 2), np.int64)
    breaks = np.flatnonzero(np.diff(active) > max_gap_bins + 1)
    starts = np.concatenate([[active[0]], active[breaks + 1]])
    stops = np.concatenate([active[breaks], [active[-1]]]) + 1
    return np.stack([starts, stops], axis=1).astype(np.int64)
