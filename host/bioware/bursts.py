"""Network burst detection on binned population activity.

Spikes are binned (``bin_ms``); a bin is *bursting* when at least
``min_channels`` distinct channels fire in it (the recruitment criterion
of network-burst detectors, e.g. Wagenaar, Pine & Potter 2006, who use a
fraction of electrodes). Runs of bursting bins separated by fewer than
``merge_gap_bins`` quiet bins form one burst.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["NetworkBurst", "detect_network_bursts"]


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

    Times must lie in [t_start_s, t_start_s + duration_s].
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
    if not isinstance(merge_gap_bins, int) or merge_gap_bins < 0:
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
    pairs = np.unique(b * (int(c.max()) + 1 if c.size else 1) + c) if t.size else np.empty(0, np.int64)
    chans = np.bincount(pairs // (int(c.max()) + 1), minlength=nb) if t.size else np.zeros(nb, np.int64)
    hot = np.nonzero(chans >= min_channels)[0]
    out: list[NetworkBurst] = []
    if not hot.size:
        return out
    # group hot bins whose gap (quiet bins in between) is < merge_gap_bins + 1
    splits = np.nonzero(np.diff(hot) > merge_gap_bins + 1)[0] + 1
    for grp in np.split(hot, splits):
        lo, hi = int(grp[0]), int(grp[-1]) + 1
        sel = (b >= lo) & (b < hi)
        out.append(NetworkBurst(t_start_s + lo * w, t_start_s + hi * w, int(np.count_nonzero(sel)),
                                int(np.unique(c[sel]).size)))
    return out
