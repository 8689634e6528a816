"""Network bursts: runs of bins in which the population is active, one implementation.

Dissociated cortical cultures on MEAs fire sparsely between recurring
network bursts, in which most of the network fires within ~100 ms
(Wagenaar, Pine & Potter 2006). Every burst detector in bioloop is the same
rule, :func:`burst_bins`: bin the population's activity, call a bin active
when its activity reaches a threshold, and merge active runs separated by
at most ``max_gap_bins`` quiet bins into one burst. Two front ends choose
the activity measure for the data they have:

- :func:`detect_network_bursts`, for recorded spike trains (times and
  channels): activity is the number of distinct channels that fire in a
  bin, the recruitment criterion (Wagenaar et al. use a fraction of the
  electrodes); the threshold is ``min_channels``.
- :func:`network_bursts`, for a population count per bin (the in-silico
  culture's ground truth, :func:`population_counts`): the population-rate
  method, threshold ``max(min_fraction · n_neurons, mean + 4·sqrt(mean), 3)``,
  a sizeable share of the network and beyond what a Poisson population at
  the mean rate would reach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["BIN_MS", "NetworkBurst", "burst_bins", "population_counts", "network_bursts",
           "detect_network_bursts"]

#: Bin width of the population count of :func:`population_counts`, ms.
BIN_MS = 10.0


def burst_bins(activity, threshold: float, max_gap_bins: int) -> np.ndarray:
    """Bursts as (start_bin, stop_bin) pairs, stop exclusive: the one burst rule.

    A bin is active when ``activity >= threshold``; active runs separated by
    at most ``max_gap_bins`` quiet bins are one burst.

    Returns
    -------
    numpy.ndarray
        int64 (n_bursts, 2).
    """
    if isinstance(max_gap_bins, bool) or not isinstance(max_gap_bins, (int, np.integer)) \
            or max_gap_bins < 0:
        raise ValueError(f"max_gap_bins must be an integer >= 0, not {max_gap_bins!r}")
    active = np.flatnonzero(np.asarray(activity) >= threshold)
    if active.size == 0:
        return np.zeros((0, 2), np.int64)
    breaks = np.flatnonzero(np.diff(active) > max_gap_bins + 1)
    starts = np.concatenate([[active[0]], active[breaks + 1]])
    stops = np.concatenate([active[breaks], [active[-1]]]) + 1
    return np.stack([starts, stops], axis=1).astype(np.int64)


def population_counts(spike_samples: np.ndarray, n_samples: int, sample_rate_hz: float,
                      bin_ms: float = BIN_MS) -> np.ndarray:
    """Spike count of the whole population per bin (the last bin may be partial)."""
    bin_samples = max(1, int(round(bin_ms * sample_rate_hz / 1000.0)))
    n_bins = -(-n_samples // bin_samples)
    return np.bincount(np.asarray(spike_samples, np.int64) // bin_samples,
                       minlength=n_bins)[:n_bins]


def network_bursts(counts: np.ndarray, n_neurons: int, min_fraction: float = 0.05,
                   max_gap_bins: int = 2) -> np.ndarray:
    """Network bursts of a population count per bin, as (start_bin, stop_bin) pairs.

    Population-rate method: :func:`burst_bins` with the threshold
    ``max(min_fraction * n_neurons, mean + 4 sqrt(mean), 3)`` on the counts.

    Returns
    -------
    numpy.ndarray
        int64 (n_bursts, 2), stop exclusive.
    """
    counts = np.asarray(counts, np.float64)
    if counts.size == 0:
        return np.zeros((0, 2), np.int64)
    mean = counts.mean()
    threshold = max(min_fraction * n_neurons, mean + 4.0 * np.sqrt(mean), 3.0)
    return burst_bins(counts, threshold, max_gap_bins)


@dataclass(frozen=True, slots=True)
class NetworkBurst:
    """One network burst: [start_s, end_s), its spikes and recruited channels."""
    start_s: float
    end_s: float
    num_spikes: int
    num_channels: int


def detect_network_bursts(times_s, channels, duration_s: float, bin_ms: float = 25.0,
                          min_channels: int = 3, merge_gap_bins: int = 1,
                          t_start_s: float = 0.0) -> list[NetworkBurst]:
    """Bursts in spike trains given as (times, channels) arrays.

    Recruitment criterion: :func:`burst_bins` on the number of distinct
    channels firing per ``bin_ms`` bin, threshold ``min_channels``, runs
    merged across at most ``merge_gap_bins`` quiet bins. Times must lie in
    [t_start_s, t_start_s + duration_s].
    """
    t = np.asarray(times_s, dtype=np.float64).reshape(-1)
    c = np.asarray(channels, dtype=np.int64).reshape(-1)
    if t.shape != c.shape:
        raise ValueError(f"{t.size} times but {c.size} channels")
    for name, val in (("duration_s", duration_s), ("bin_ms", bin_ms)):
        if not isinstance(val, (int, float)) or not math.isfinite(val) or val <= 0:
            raise ValueError(f"{name} must be finite and > 0, not {val!r}")
    if isinstance(min_channels, bool) or not isinstance(min_channels, int) or min_channels < 1:
        raise ValueError(f"min_channels must be an integer >= 1, not {min_channels!r}")
    if isinstance(merge_gap_bins, bool) or not isinstance(merge_gap_bins, int) or merge_gap_bins < 0:
        raise ValueError(f"merge_gap_bins must be an integer >= 0, not {merge_gap_bins!r}")
    if t.size and (not np.isfinite(t).all() or t.min() < t_start_s
                   or t.max() > t_start_s + duration_s):
        raise ValueError("spike times must be finite and inside the recording")
    if t.size and c.min() < 0:
        raise ValueError(f"channel {int(c.min())} is negative")
    w = bin_ms * 1e-3
    nb = max(1, int(math.ceil(duration_s / w)))
    b = np.minimum(((t - t_start_s) / w).astype(np.int64), nb - 1)
    # distinct channels per bin
    if t.size:
        n_ch = int(c.max()) + 1
        recruited = np.bincount(np.unique(b * n_ch + c) // n_ch, minlength=nb)
    else:
        recruited = np.zeros(nb, np.int64)
    out: list[NetworkBurst] = []
    for lo, hi in burst_bins(recruited, min_channels, merge_gap_bins).tolist():
        sel = (b >= lo) & (b < hi)
        out.append(NetworkBurst(t_start_s + lo * w, t_start_s + hi * w, int(np.count_nonzero(sel)),
                                int(np.unique(c[sel]).size)))
    return out
