"""Stimulation-artifact blanking.

Around each stimulus time the samples from ``blank_before_ms`` before to
``blank_after_ms`` after are replaced by zero (the baseline of a
high-pass filtered recording) on every channel, so the artifact can
neither trigger detections nor inflate the noise estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ArtifactRejector"]


@dataclass
class ArtifactRejector:
    """Blanks a window around each stimulus.

    Parameters
    ----------
    blank_before_ms, blank_after_ms : float
        Window around each stimulus time, in ms (>= 0).

    Attributes
    ----------
    blanked_samples : int
        Frames blanked by the last call.
    """
    blank_before_ms: float = 0.0
    blank_after_ms: float = 2.0
    blanked_samples: int = field(default=0, init=False)

    def __post_init__(self):
        for n in ("blank_before_ms", "blank_after_ms"):
            v = getattr(self, n)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{n} must be finite and >= 0, not {v!r}")

    def mask(self, n_samples: int, stim_times_s, sample_rate_hz: float,
             t_start_s: float = 0.0) -> np.ndarray:
        """Boolean (n_samples,) mask of the frames to blank."""
        st = np.asarray(stim_times_s if stim_times_s is not None else [], dtype=np.float64).reshape(-1)
        if st.size and not np.isfinite(st).all():
            raise ValueError("stim_times_s must be finite")
        m = np.zeros(n_samples, np.bool_)
        if not st.size or not n_samples:
            return m
        rel = (st - t_start_s) * sample_rate_hz
        lo = np.floor(rel - self.blank_before_ms * 1e-3 * sample_rate_hz).astype(np.int64)
        hi = np.ceil(rel + self.blank_after_ms * 1e-3 * sample_rate_hz).astype(np.int64)
        lo = np.clip(lo, 0, n_samples)
        hi = np.clip(hi + 1, 0, n_samples)  # inclusive of the last blanked sample
        # Difference array: +1 at each window start, -1 after its end.
        d = np.zeros(n_samples + 1, np.int64)
        np.add.at(d, lo, 1)
        np.add.at(d, hi, -1)
        m = np.cumsum(d[:-1]) > 0
        return m

    def blank(self, voltage_data, stim_times_s, sample_rate_hz: float,
              t_start_s: float = 0.0) -> np.ndarray:
        """A copy of (samples, channels) ``voltage_data`` with the windows set to 0.

        Returns the input itself (no copy) when there is nothing to blank.
        """
        v = np.asarray(voltage_data)
        m = self.mask(v.shape[0], stim_times_s, sample_rate_hz, t_start_s)
        self.blanked_samples = int(np.count_nonzero(m))
        if not self.blanked_samples:
            return v
        out = v.copy()
        out[m] = 0
        return out
