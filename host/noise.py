"""Robust noise estimate of extracellular recordings: the MAD σ, one implementation.

σ_c = median_t |x_c(t)| / 0.6745 (Donoho & Johnstone 1994, "Ideal spatial
adaptation by wavelet shrinkage", Biometrika 81:425; used for spike
detection by Quiroga, Nadasdy & Ben-Shaul 2004). 0.6745 = Φ⁻¹(0.75), the
median of |N(0, 1)|, so the ratio is σ for zero-mean Gaussian noise, and
spikes, a few percent of the samples, barely move a median.

Every part of bioloop that needs a noise σ calls this module: the
bioware :class:`~bioloop.host.bioware.detection.SpikeDetector`, the codec's
detector and header (:mod:`bioloop.host.codec.events`) and the culture's
scoring (:func:`bioloop.host.culture.scoring.unit_snr`).

The median is exact: for an even number of samples it is the mean of the
two middle order statistics, 0.5·(lo + hi), computed in float64. Two paths
give the same bits:

- numba kernels (when numba is installed): a byte-wise radix select for
  16-bit codes, and for floats a quickselect that first brackets the median
  around a hint (the previous frame's σ);
- numpy (``np.partition``) otherwise, for example on the PYNQ board's
  armv7l Python where numba has no wheels.
"""

from __future__ import annotations

import numpy as np

# optional accelerator (numba imported at the first call); the numpy path gives the same bits
from bioloop.host.jit import ENABLED as _JIT, njit

__all__ = ["MAD_TO_SIGMA", "HAVE_NUMBA", "median_abs", "mad_sigma"]

#: Φ⁻¹(0.75): median|x| / 0.6745 estimates σ of zero-mean Gaussian noise.
MAD_TO_SIGMA = 0.6745

#: True when the numba kernels are in use.
HAVE_NUMBA = _JIT


def _middle_ranks(T: int) -> tuple[int, int]:
    k_hi = T // 2
    return (k_hi - 1 if T % 2 == 0 else k_hi), k_hi


# -- numpy path -----------------------------------------------------------------------------

def _median_abs_numpy(x: np.ndarray) -> np.ndarray:
    T = x.shape[0]
    k_lo, k_hi = _middle_ranks(T)
    if x.dtype.kind in "iu" and x.dtype.itemsize <= 2:
        # channel-major copy: the partition then runs on contiguous rows
        a = np.abs(x.astype(np.int32)).T.copy()
    else:
        a = np.abs(x.astype(np.float64)).T.copy()
    a.partition((k_lo, k_hi), axis=1)
    lo, hi = a[:, k_lo], a[:, k_hi]
    if k_lo == k_hi:
        return hi.astype(np.float64)
    return 0.5 * (lo + hi)


# -- numba path -----------------------------------------------------------------------------

def _select(a, k):
    """k-th smallest of a (0-based), in place: Hoare quickselect, median-of-3 pivot.

    On return a[:k] <= a[k] <= a[k+1:].
    """
    lo = 0
    hi = a.shape[0] - 1
    while hi > lo:
        mid = (lo + hi) >> 1
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        p = a[mid]
        i = lo
        j = hi
        while i <= j:
            while a[i] < p:
                i += 1
            while a[j] > p:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return a[k]
    return a[k]


def _middle(a, n, offset, k_lo, k_hi):
    """Mean of the order statistics k_lo, k_hi (shifted by offset) of a[:n], in place."""
    j = k_hi - offset
    m = _select(a[:n], j)
    if k_lo == k_hi:
        return m
    # after the select a[:j] <= a[j]: the lower middle is their maximum
    lo = a[0]
    for i in range(1, j):
        if a[i] > lo:
            lo = a[i]
    return 0.5 * (lo + m)


def _median_abs_float(v, hint):
    """median_t |v[t, c]| per channel, exactly; ``hint`` speeds it up.

    ``hint[c]`` is a guess of the median (the previous frame's). One pass
    counts the samples below 0.9·hint and collects those within ±10 %; if
    the middle ranks fall among them, only that small set is searched
    (Floyd & Rivest 1975 bracket-then-select, with the bracket taken from the
    previous frame, since σ drifts slowly). Otherwise, or without a hint, a
    quickselect over all samples. Either way the result is the exact median.
    """
    T, N = v.shape
    out = np.empty(N, np.float64)
    buf = np.empty(T, np.float64)
    k_hi = T // 2
    k_lo = k_hi - 1 if T % 2 == 0 else k_hi
    for c in range(N):
        h = hint[c]
        m = -1.0
        if h > 0.0 and h < np.inf:
            lo = 0.9 * h
            hi = 1.1 * h
            below = 0
            nc = 0
            for t in range(T):
                x = abs(v[t, c] * 1.0)
                if x < lo:
                    below += 1
                elif x <= hi:
                    buf[nc] = x
                    nc += 1
            if below <= k_lo and k_hi < below + nc:
                m = _middle(buf, nc, below, k_lo, k_hi)
        if m < 0.0:
            for t in range(T):
                buf[t] = abs(v[t, c] * 1.0)
            m = _middle(buf, T, 0, k_lo, k_hi)
        out[c] = m
    return out


def _kth_abs16(a, h1, h2, k):
    """k-th smallest (0-based) of a (values 0..65535) by a two-pass byte radix select."""
    acc = 0
    hb = 0
    while acc + h1[hb] <= k:
        acc += h1[hb]
        hb += 1
    h2[:] = 0
    for t in range(a.shape[0]):
        if (a[t] >> 8) == hb:
            h2[a[t] & 255] += 1
    r = k - acc
    lb = 0
    while r >= h2[lb]:
        r -= h2[lb]
        lb += 1
    return (hb << 8) | lb


def _radix_median16(a, h1, h2, k_lo, k_hi):
    """0.5·(lo + hi) of the order statistics k_lo, k_hi of a (values 0..65535)."""
    h1[:] = 0
    for t in range(a.shape[0]):
        h1[a[t] >> 8] += 1
    hi = _kth_abs16(a, h1, h2, k_hi)
    lo = hi if k_lo == k_hi else _kth_abs16(a, h1, h2, k_lo)
    return 0.5 * (lo + hi)


def _median_abs_int16(v):
    """median_t |v[t, c]| for 16-bit codes, exactly, in O(T) per channel.

    |x| of a 16-bit code fits 16 bits plus one value (|-32768| = 32768), so
    no sort is needed. Channels go in blocks of 32, read along the rows of
    the (frames, channels) layout:

    - long blocks (T >= 8192, a recording): one pass fills a histogram of
      |x| clipped at 4095 per channel, and the middle ranks are read off its
      cumulative sum; a channel whose median reaches the clipped bin
      (σ above ~3000 codes) is redone by the radix select below;
    - short blocks (a streaming frame): a byte-wise radix select (high-byte
      histogram, then the low byte within the median's bin), 5-10x faster
      than a quickselect on 4096 channels, where the median dominates
      streaming detection.
    """
    T, N = v.shape
    out = np.empty(N, np.float64)
    B = 32
    NB = 4096
    k_hi = T // 2
    k_lo = k_hi - 1 if T % 2 == 0 else k_hi
    h1 = np.zeros(257, np.int64)
    h2 = np.zeros(256, np.int64)
    if T >= 2 * NB:
        hist = np.zeros((B, NB), np.int64)
        col = np.empty(T, np.int32)
        for c0 in range(0, N, B):
            nb = min(B, N - c0)
            hist[:] = 0
            for t in range(T):
                for j in range(nb):
                    x = np.int32(v[t, c0 + j])
                    x = -x if x < 0 else x
                    hist[j, x if x < NB - 1 else NB - 1] += 1
            for j in range(nb):
                cum = 0
                lo = -1
                hi = -1
                for b in range(NB):
                    cum += hist[j, b]
                    if lo < 0 and cum > k_lo:
                        lo = b
                    if cum > k_hi:
                        hi = b
                        break
                if hi < NB - 1:
                    out[c0 + j] = 0.5 * (lo + hi)
                else:
                    for t in range(T):
                        x = np.int32(v[t, c0 + j])
                        col[t] = -x if x < 0 else x
                    out[c0 + j] = _radix_median16(col, h1, h2, k_lo, k_hi)
        return out
    buf = np.empty((B, T), np.int32)
    for c0 in range(0, N, B):
        nb = min(B, N - c0)
        for t in range(T):
            for j in range(nb):
                x = np.int32(v[t, c0 + j])
                buf[j, t] = -x if x < 0 else x
        for j in range(nb):
            out[c0 + j] = _radix_median16(buf[j], h1, h2, k_lo, k_hi)
    return out


if HAVE_NUMBA:
    _jit = njit(cache=True, nogil=True)
    _select = _jit(_select)
    _middle = _jit(_middle)
    _median_abs_float = _jit(_median_abs_float)
    _kth_abs16 = _jit(_kth_abs16)
    _radix_median16 = _jit(_radix_median16)
    _median_abs_int16 = _jit(_median_abs_int16)


def _median_abs_numba(x: np.ndarray, hint) -> np.ndarray:
    if x.dtype.kind in "iu" and x.dtype.itemsize <= 2:
        return _median_abs_int16(x)
    if x.dtype.kind in "iu":
        x = x.astype(np.float64)
    h = np.zeros(x.shape[1]) if hint is None else np.asarray(hint, np.float64)
    return _median_abs_float(x, h)


# -- public API -----------------------------------------------------------------------------

def median_abs(x, hint=None, *, use_numba: bool | None = None) -> np.ndarray:
    """Exact median of |x| over time, per channel, in float64.

    Parameters
    ----------
    x : array_like
        ``(samples, channels)``, integer codes or float, finite (the callers
        validate; a NaN makes the result undefined).
    hint : array_like, optional
        A guess of each channel's median in the unit of ``x`` (the previous
        frame's), used only by the numba float path to narrow its search.
        It never changes the result.
    use_numba : bool, optional
        Force a path (tests compare them); default: numba when installed.

    Raises
    ------
    ValueError
        ``x`` is not 2-D or has no samples.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"samples must be 2-D (samples, channels), not shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("the noise estimate needs at least one sample per channel")
    if x.dtype.kind not in "iuf":
        raise TypeError(f"samples must be integer codes or floats, not dtype {x.dtype}")
    if use_numba is None:
        use_numba = HAVE_NUMBA
    elif use_numba and not HAVE_NUMBA:
        raise RuntimeError("use_numba=True but numba is not installed")
    if x.shape[1] == 0:
        return np.zeros(0, np.float64)
    return _median_abs_numba(x, hint) if use_numba else _median_abs_numpy(x)


def mad_sigma(x, hint=None, *, use_numba: bool | None = None) -> np.ndarray:
    """Robust σ per channel, ``median_t |x| / 0.6745`` (Donoho & Johnstone 1994), float64.

    In the unit of ``x`` (codes for integer input, µV for µV). ``hint`` is a
    previous σ in the same unit; see :func:`median_abs`.
    """
    h = None if hint is None else np.asarray(hint, np.float64) * MAD_TO_SIGMA
    return median_abs(x, h, use_numba=use_numba) / MAD_TO_SIGMA
