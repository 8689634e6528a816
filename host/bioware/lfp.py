"""Local field potential band power from a Welch PSD.

Power in a band is the integral of the one-sided power spectral density
over the band (Welch 1967: averaged, Hann-windowed, 50 %-overlapping
segments, scipy.signal.welch), in µV² for µV input. Unlike raw |FFT|²
this is calibrated (a sine of amplitude A gives A²/2 in its band) and its
variance falls with the number of segments.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

__all__ = ["extract_lfp_power", "LFP_BANDS"]

#: Conventional bands in Hz (half-open [lo, hi)).
LFP_BANDS = {"delta": (1.0, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 13.0),
             "beta": (13.0, 30.0), "gamma": (30.0, 100.0)}


def extract_lfp_power(voltage_data, sample_rate_hz: float, bands: dict | None = None,
                      segment_s: float = 1.0) -> dict[str, np.ndarray]:
    """Band power per channel of (samples, channels) data.

    Parameters
    ----------
    voltage_data : array_like, shape (samples, channels)
    sample_rate_hz : float
    bands : dict of name -> (lo_hz, hi_hz), optional
        Default :data:`LFP_BANDS`.
    segment_s : float
        Welch segment length (frequency resolution 1/segment_s); capped by
        the data length.

    Returns
    -------
    dict of name -> float64 array (channels,)
    """
    v = np.asarray(voltage_data, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] < 2:
        raise ValueError(f"voltage_data must be (samples >= 2, channels), not shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("voltage_data must be finite")
    if not isinstance(sample_rate_hz, (int, float)) or not math.isfinite(sample_rate_hz) \
            or sample_rate_hz <= 0:
        raise ValueError(f"sample_rate_hz must be finite and > 0, not {sample_rate_hz!r}")
    bands = LFP_BANDS if bands is None else bands
    nyq = sample_rate_hz / 2
    for name, (lo, hi) in bands.items():
        if not (0 <= lo < hi <= nyq):
            raise ValueError(f"band {name!r} ({lo}, {hi}) Hz must satisfy 0 <= lo < hi <= {nyq}")
    nper = min(v.shape[0], max(2, int(round(segment_s * sample_rate_hz))))
    f, pxx = signal.welch(v, fs=sample_rate_hz, window="hann", nperseg=nper, axis=0,
                          detrend="constant", scaling="density")
    df = f[1] - f[0]
    out = {}
    for name, (lo, hi) in bands.items():
        sel = (f >= lo) & (f < hi)
        # Rectangle rule over the bins (each bin carries PSD·df of power).
        out[name] = pxx[sel].sum(axis=0) * df
    return out
