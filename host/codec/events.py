"""Events: the codec's threshold detector and snippet quantization.

The detector is the codec's own, self-contained one (the gateware Detector
may supply detections instead, see :mod:`bioloop.host.codec.sources`):

- noise per channel ``sigma = median(|x|) / 0.6745``, the MAD estimate of a
  Gaussian's standard deviation (Donoho & Johnstone 1994; used for spike
  detection by Quiroga, Nadasdy & Ben-Shaul 2004), from
  :mod:`bioloop.host.noise`, shared with the bioware detector;
- threshold ``k * sigma``; sample ``t`` of channel ``c`` is a detection when
  it is beyond the threshold, sample ``t - 1`` was not (the first sample of
  the stream counts as not), and at least ``refractory`` samples passed since
  the last detection on ``c``. The reported time is ``t``, the first sample
  beyond threshold (DESIGN.md §4, the same rule as the gateware Detector).

A snippet ``x[t - pre : t + post, c]`` is quantized with a per-event scale:
scale code ``s`` is the smallest integer 0..255 with
``sigma_c * 2**(s/4) >= max|snippet|``, the step is
``sigma_c * 2**(s/4) / qmax`` and ``q = clip(rint(x / step), -qmax, qmax)``.
"""

from __future__ import annotations

import numpy as np

from bioloop.host.jit import ENABLED as _JIT, njit
from bioloop.host.noise import MAD_TO_SIGMA, median_abs

__all__ = ["peak_amplitudes", "locally_exclusive", "neighbour_matrix", "mad_sigma", "mad_sigma_codes", "SCALE_TABLE", "scale_steps", "quantize_snippets", "dequantize_snippets",
           "detect", "DetectorState", "NOISE_FLOOR_UV"]

#: 2**(s/4) for s = 0..255, built from four literal float64 factors so every
#: implementation gets the same bits (no libm exp2 in the loop).
_QUARTERS = np.array([1.0, 1.189207115002721, 1.4142135623730951, 1.681792830507429])
SCALE_TABLE = np.array([np.ldexp(_QUARTERS[s % 4], s // 4) for s in range(256)], dtype=np.float64)

#: Noise sigma is never taken below this (µV): a dead, all-zero channel must
#: still have a positive step and threshold.
NOISE_FLOOR_UV = 1e-3


def mad_sigma_codes(x: np.ndarray, uv_per_code: float) -> np.ndarray:
    """:func:`mad_sigma` of int16 codes scaled by ``uv_per_code``.

    The exact median of the codes (:func:`bioloop.host.noise.median_abs`),
    times the scale, so it equals ``mad_sigma(x * uv_per_code)`` up to float
    rounding of the scale, without converting the recording to µV.
    """
    med = median_abs(x)
    return np.maximum(med * uv_per_code / MAD_TO_SIGMA, NOISE_FLOOR_UV).astype(np.float32)


def mad_sigma(x_uv: np.ndarray) -> np.ndarray:
    """Per-channel noise sigma in µV, ``median(|x|) / 0.6745`` (Donoho & Johnstone 1994).

    Parameters
    ----------
    x_uv : numpy.ndarray
        ``(n_samples, n_channels)`` samples in µV.

    Returns
    -------
    numpy.ndarray
        float32 sigma per channel (:func:`bioloop.host.noise.mad_sigma`),
        at least :data:`NOISE_FLOOR_UV`.
    """
    med = median_abs(np.asarray(x_uv, dtype=np.float64))
    return np.maximum(med / MAD_TO_SIGMA, NOISE_FLOOR_UV).astype(np.float32)


def scale_steps(noise_uv: np.ndarray, channels: np.ndarray, scales: np.ndarray, qmax: int) -> np.ndarray:
    """Quantizer step in µV per event: ``sigma_c * 2**(s/4) / qmax`` in float64."""
    return noise_uv.astype(np.float64)[channels] * SCALE_TABLE[scales] / qmax


def quantize_snippets(snippets_uv: np.ndarray, channels: np.ndarray, noise_uv: np.ndarray,
                      qmax: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Quantize snippets with one scale per event.

    Parameters
    ----------
    snippets_uv : numpy.ndarray
        float64 ``(n_events, L)`` in µV.
    channels : numpy.ndarray
        Channel of each event.
    noise_uv : numpy.ndarray
        Per-channel sigma (float32).
    qmax : int
        Largest quantized magnitude.

    Returns
    -------
    scales, q, n_clipped
        Scale codes (int64), quantized samples (int8) and the number of events
        whose amplitude exceeded the largest scale and were clipped.
    """
    n = snippets_uv.shape[0]
    if n == 0:
        return np.zeros(0, np.int64), np.zeros((0, snippets_uv.shape[1]), np.int8), 0
    amp = np.abs(snippets_uv).max(axis=1)
    sig = noise_uv.astype(np.float64)[channels]
    # smallest s with sig * table[s] >= amp: a guess from the ratio, then
    # corrected with the exact product the definition uses
    s = np.clip(np.searchsorted(SCALE_TABLE, amp / sig), 0, 255)
    for _ in range(2):
        up = (sig * SCALE_TABLE[s] < amp) & (s < 255)
        s = s + up
        down = (s > 0) & (sig * SCALE_TABLE[np.maximum(s - 1, 0)] >= amp)
        s = s - down
    clipped = sig * SCALE_TABLE[s] < amp
    scales = s.astype(np.int64)
    step = scale_steps(noise_uv, channels, scales, qmax)
    q = np.clip(np.rint(snippets_uv / step[:, None]), -qmax, qmax).astype(np.int8)
    return scales, q, int(clipped.sum())


def dequantize_snippets(q: np.ndarray, channels: np.ndarray, scales: np.ndarray,
                        noise_uv: np.ndarray, qmax: int) -> np.ndarray:
    """Reconstruct snippets in µV (float32) from quantized samples and scale codes."""
    step = scale_steps(noise_uv, channels, scales, qmax)
    return (q.astype(np.float64) * step[:, None]).astype(np.float32)


class DetectorState:
    """Per-channel state carried between blocks: was the last sample beyond, last detection time."""

    def __init__(self, n_channels: int, refractory: int):
        self.beyond = np.zeros(n_channels, dtype=np.uint8)
        # Far enough in the past that the first detection is never refractory.
        self.last = np.full(n_channels, -(1 << 40), dtype=np.int64)


@njit(cache=True, nogil=True)
def _detect(x, lo, hi, refractory, t0, beyond, last, out_t, out_c):
    # Row-wise: the onset test over all channels is a branch-free loop the
    # compiler vectorises; only rows with an onset go through the scalar
    # refractory check. Returns the count, or -1 if out_* are too small
    # (state is then partially updated; the caller restores and retries).
    n_t, n_c = x.shape
    onset = np.zeros(n_c, dtype=np.uint8)
    n = 0
    cap = out_t.size
    for t in range(n_t):
        acc = np.uint8(0)
        for c in range(n_c):
            v = x[t, c]
            b = np.uint8((v < lo[c]) | (v > hi[c]))
            o = b & (beyond[c] ^ np.uint8(1))
            onset[c] = o
            acc |= o
            beyond[c] = b
        if acc:
            tg = t0 + t
            for c in range(n_c):
                if onset[c] and tg - last[c] >= refractory:
                    if n >= cap:
                        return -1
                    out_t[n] = tg
                    out_c[n] = c
                    last[c] = tg
                    n += 1
    return n


def thresholds(noise_uv: np.ndarray, k: float, polarity: str, dtype, uv_per_code: float):
    """Per-channel (lo, hi) comparison limits in the samples' own dtype.

    A sample ``v`` is beyond threshold when ``v < lo`` or ``v > hi``. For int16
    codes the limits are the integers equivalent to comparing
    ``v * uv_per_code`` with ``-/+ k * sigma``; unused sides get the dtype's
    extreme so they never fire.
    """
    theta = float(k) * noise_uv.astype(np.float64)
    if np.dtype(dtype) == np.int16:
        t = theta / uv_per_code
        # v*g < -theta  <=>  v < -t  <=>  v <= ceil(-t) - 1  <=> v < ceil(-t) (v integer)
        lo = np.clip(np.ceil(-t), -32768, 32767).astype(np.int16)
        # v > t <=> v > floor(t)
        hi = np.clip(np.floor(t), -32768, 32767).astype(np.int16)
        never_lo, never_hi = np.int16(-32768), np.int16(32767)
    else:
        lo = (-theta).astype(np.float32)
        hi = theta.astype(np.float32)
        never_lo, never_hi = np.float32(-np.inf), np.float32(np.inf)
    if polarity == "neg":
        hi = np.full_like(hi, never_hi)
    elif polarity == "pos":
        lo = np.full_like(lo, never_lo)
    return lo, hi


def _detect_numpy(x, lo, hi, refractory, t0, state):
    """The numpy path of :func:`_detect`: onsets vectorised, the refractory rule per onset."""
    n_t, n_c = x.shape
    if n_t == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    b = (x < lo[None, :]) | (x > hi[None, :])
    before = np.empty_like(b)
    before[0] = state.beyond.astype(bool)
    before[1:] = b[:-1]
    ts, cs = np.nonzero(b & ~before)              # by time, then channel
    ts = ts.astype(np.int64) + t0
    keep = np.ones(ts.size, bool)
    for c in np.unique(cs):
        last = int(state.last[c])
        for i in np.flatnonzero(cs == c):
            if ts[i] - last >= refractory:
                last = int(ts[i])
            else:
                keep[i] = False
        state.last[c] = last
    state.beyond[:] = b[-1]
    return ts[keep], cs[keep].astype(np.int64)


def detect(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, refractory: int, t0: int,
           state: DetectorState) -> tuple[np.ndarray, np.ndarray]:
    """Run the threshold detector over ``x`` (rows are samples ``t0, t0+1, ...``).

    Returns
    -------
    times, channels
        int64 arrays in (time, channel) order; ``state`` is advanced.
    """
    x = np.ascontiguousarray(x)
    if not _JIT:
        return _detect_numpy(x, lo, hi, refractory, t0, state)
    cap = max(1024, x.size // 64)
    while True:
        saved = (state.beyond.copy(), state.last.copy())
        out_t = np.empty(cap, np.int64)
        out_c = np.empty(cap, np.int64)
        n = _detect(x, lo, hi, refractory, t0, state.beyond, state.last, out_t, out_c)
        if n >= 0:
            return out_t[:n], out_c[:n]
        state.beyond[:], state.last[:] = saved
        cap = x.size  # at most one onset per sample per channel


def peak_amplitudes(x: np.ndarray, rows: np.ndarray, channels: np.ndarray, window: int,
                    polarity: str) -> np.ndarray:
    """Peak of each event over ``x[row : row + window, channel]``, signed so larger is bigger.

    ``neg``: ``-min``, ``pos``: ``max``, ``both``: ``max |x|``; float64 in the samples' units.
    """
    if rows.size == 0:
        return np.zeros(0, np.float64)
    v = x[rows[:, None] + np.arange(window)[None, :], channels[:, None]].astype(np.float64)
    if polarity == "neg":
        return -v.min(axis=1)
    if polarity == "pos":
        return v.max(axis=1)
    return np.abs(v).max(axis=1)


@njit(cache=True, nogil=True)
def _exclusive(times, chans, amps, target, neighbours, window):
    # Candidates sorted by time. Event i loses to j when j is within the
    # radius and window and has a larger peak, ties going to the earlier
    # time, then the lower channel: a strict total order, so exactly one
    # event of an isolated spike survives.
    n = times.size
    keep = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        if not target[i]:
            continue
        ok = True
        j = i - 1
        while ok and j >= 0 and times[i] - times[j] <= window:
            if neighbours[chans[i], chans[j]] and (
                    amps[j] > amps[i] or (amps[j] == amps[i] and (times[j], chans[j]) < (times[i], chans[i]))):
                ok = False
            j -= 1
        j = i + 1
        while ok and j < n and times[j] - times[i] <= window:
            if neighbours[chans[i], chans[j]] and (
                    amps[j] > amps[i] or (amps[j] == amps[i] and (times[j], chans[j]) < (times[i], chans[i]))):
                ok = False
            j += 1
        keep[i] = ok
    return keep


def neighbour_matrix(positions_um: np.ndarray, radius_um: float) -> np.ndarray:
    """Boolean ``(n, n)``: channels at most ``radius_um`` apart (float32 distances, as stored)."""
    p = np.asarray(positions_um, np.float32).astype(np.float64)
    d2 = ((p[:, None, :] - p[None, :, :]) ** 2).sum(-1)
    return d2 <= float(radius_um) ** 2


def locally_exclusive(times, chans, amps, target, neighbours: np.ndarray, window: int) -> np.ndarray:
    """Which ``target`` events survive the locally exclusive rule among all candidates.

    ``neighbours[c, c2]`` says whether channel ``c2`` competes with ``c``.
    Returns a boolean mask over the candidates (False for non-targets).
    """
    order = np.lexsort((chans, times))
    keep = _exclusive(times[order], chans[order], amps[order], target[order], neighbours, window)
    out = np.zeros(times.size, bool)
    out[order] = keep
    return out
