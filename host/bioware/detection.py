"""Threshold spike detection with a robust (MAD) noise estimate.

Noise: σ_c = median_t |V_c(t)| / 0.6745 (Donoho & Johnstone 1994; the
0.6745 is the 75th percentile of the standard normal, so the ratio is an
unbiased σ for Gaussian noise and barely moved by the spikes themselves,
Quiroga, Nadasdy & Ben-Shaul 2004), computed by :mod:`bioloop.host.noise`,
the one implementation the codec and the culture's scoring share.
Threshold θ_c = α·σ_c.

Crossing rule (DESIGN.md §4, the gateware Detector's rule): sample t of
channel c is a detection when it is *beyond* θ_c (x <= -θ negative,
x >= θ positive, either for both; equality counts), sample t-1 of the same
channel was not beyond (the first frame ever counts as not beyond), and at
least R frames passed since the last detection on c (t - t_last >= R). The
reported time is t, the first sample beyond threshold, not the last sample
before it (a fault of the reference, DESIGN.md §10).

State (the previous sample's beyond flag and the last detection time of
every channel) is carried from one call to the next, so a stream cut into
frames gives the same detections as the whole stream, and the same as the
gateware Detector model fed the same frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from bioloop.host.layouts import Polarity
from bioloop.host.noise import MAD_TO_SIGMA, mad_sigma
from bioloop.host.jit import ENABLED as _JIT, njit
from bioloop.host.samples import check_codes

from .mea import MEAConfig

__all__ = ["DetectedSpike", "SpikeDetector", "DetectionBatch", "NOISE_POLICIES",
           "MAD_TO_SIGMA", "check_frame"]

NOISE_POLICIES = ("per_frame", "calibrated", "running")

#: "never detected" marker for the last-detection time of a channel.
_NEVER = np.int64(-(1 << 62))


@dataclass(slots=True)
class DetectedSpike:
    """One detected spike.

    Parameters
    ----------
    channel : int
        Recording channel (electrode index).
    timestamp_s : float
        Time of the first sample beyond threshold, in seconds.
    amplitude_uv : float
        Signed peak within the snippet (the most negative sample for
        negative polarity, the most positive for positive, the larger
        magnitude for both), in µV.
    unit_id : int
        Sorted unit; 0 until a :class:`SpikeSorter` assigns one.
    waveform : numpy.ndarray or None
        Snippet of ±snippet_ms/2 around the crossing, in µV, edge-padded
        at the frame borders.
    sample_index : int
        Frame index of the crossing since the detector's last reset (the
        gateware Detector's timestamp); -1 when unknown.
    """
    channel: int
    timestamp_s: float
    amplitude_uv: float
    unit_id: int = 0
    waveform: np.ndarray | None = None
    sample_index: int = -1


class DetectionBatch(NamedTuple):
    """Detections of one call as arrays (the fast path used by the session).

    All arrays have one entry per detection, ordered by frame then channel.
    """
    channel: np.ndarray        #: int64 channel
    local_index: np.ndarray    #: int64 sample index within the frame passed in
    sample_index: np.ndarray   #: int64 frame index since reset
    timestamp_s: np.ndarray    #: float64 seconds
    amplitude_uv: np.ndarray   #: float64 signed peak in µV
    waveforms: np.ndarray      #: float64 (K, snippet length) µV, edge-padded

    def to_spikes(self) -> list[DetectedSpike]:
        """The detections as :class:`DetectedSpike` objects (unit 0)."""
        ch = self.channel.tolist()
        ts = self.timestamp_s.tolist()
        amp = self.amplitude_uv.tolist()
        si = self.sample_index.tolist()
        w = self.waveforms
        return [DetectedSpike(ch[i], ts[i], amp[i], 0, w[i], si[i]) for i in range(len(ch))]


def _polarity_code(polarity) -> int:
    if isinstance(polarity, Polarity):
        return polarity.value
    if isinstance(polarity, str):
        try:
            return Polarity[polarity.upper()].value
        except KeyError:
            raise ValueError(f"polarity must be 'negative', 'positive' or 'both', "
                             f"not {polarity!r}") from None
    if isinstance(polarity, (int, np.integer)) and not isinstance(polarity, bool) \
            and int(polarity) in (0, 1, 2):
        return int(polarity)
    raise ValueError(f"polarity must be 'negative', 'positive', 'both' or a Polarity, "
                     f"not {polarity!r}")


def check_frame(voltage_data, num_channels: int, what: str = "voltage_data") -> np.ndarray:
    """Validate a frame block of shape (samples, channels) and return it as an array.

    Integer input is int16 ADC codes (:mod:`bioloop.host.samples`, the rule
    the driver applies too) and is returned as int16; floats are µV, kept as
    they are.

    Raises
    ------
    TypeError
        Not numeric, or a dtype that is not integer or real float.
    ValueError
        Wrong shape or channel count, a NaN or infinite value, or an
        integer outside the int16 code range (the message names the first
        one's channel and sample).
    """
    v = np.asarray(voltage_data)
    if v.dtype.kind not in "iuf":
        raise TypeError(f"{what} must be a real numeric array (float µV or int ADC codes), "
                        f"not dtype {v.dtype}")
    if v.ndim != 2:
        raise ValueError(f"{what} must be 2-D (samples, channels), not shape {v.shape}")
    if v.shape[1] != num_channels:
        raise ValueError(f"{what} has {v.shape[1]} channels, the MEA config has {num_channels}")
    if v.dtype.kind in "iu":
        return check_codes(v, what)
    if v.dtype.kind == "f" and v.size:
        # A sum is cheaper than a full isfinite scan and any NaN/inf reaches it;
        # a huge-but-finite sum overflowing to inf only costs the full scan.
        if not math.isfinite(float(np.add.reduce(v, axis=None))):
            bad = np.argwhere(~np.isfinite(v))
            if bad.size:
                t, c = (int(i) for i in bad[0])
                raise ValueError(f"{what} contains {v[t, c]!r} at channel {c}, sample {t}; "
                                 f"the detector needs finite values")
    return v


@njit(cache=True, nogil=True)
def _crossings_kernel(v, start, lo, hi, refractory, prev_beyond, last_det, t0, out):
    """Apply the crossing rule to rows start.. of v (T, N); update the state in place.

    A sample is beyond when x <= lo[c] or x >= hi[c]; polarity is folded into
    the bounds (an unwatched side gets an unreachable bound), which keeps
    the inner loop free of branches on the polarity. Detections are written
    to ``out`` as (t, c) columns; the kernel stops before a row that might not fit
    (so the caller can hand it a bigger buffer; reallocating inside the loop
    costs LLVM its optimisations, 20x here).

    Returns (rows done up to, detections written).
    """
    T, N = v.shape
    cap = out.shape[1]
    k = 0
    for t in range(start, T):
        if k + N > cap:
            return t, k
        ta = t0 + t
        for c in range(N):
            x = v[t, c]
            b = (x <= lo[c]) | (x >= hi[c])
            if b & (not prev_beyond[c]):
                if ta - last_det[c] >= refractory:
                    out[0, k] = t
                    out[1, k] = c
                    k += 1
                    last_det[c] = ta
            prev_beyond[c] = b
    return T, k


def _crossings_numpy(v, lo, hi, refractory, prev_beyond, last_det, t0):
    """The numpy path of :func:`_crossings_kernel`: onsets vectorised, refractory per onset."""
    T, N = v.shape
    if T == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    b = (v <= lo[None, :]) | (v >= hi[None, :])
    before = np.empty_like(b)
    before[0] = prev_beyond.astype(bool)
    before[1:] = b[:-1]
    ts, cs = np.nonzero(b & ~before)              # row-major: by frame, then channel
    keep = np.ones(ts.size, bool)
    for c in np.unique(cs):                       # onsets are sparse: the scalar rule per onset
        last = int(last_det[c])
        for i in np.flatnonzero(cs == c):
            ta = t0 + int(ts[i])
            if ta - last >= refractory:
                last = ta
            else:
                keep[i] = False
        last_det[c] = last
    prev_beyond[:] = b[-1]
    return ts[keep].astype(np.int64), cs[keep].astype(np.int64)


def _crossings(v, lo, hi, refractory, prev_beyond, last_det, t0):
    """Detections of v (T, N) as (local frame index, channel), by frame then channel."""
    if not _JIT:
        return _crossings_numpy(v, lo, hi, refractory, prev_beyond, last_det, t0)
    T, N = v.shape
    out = np.empty((2, max(1024, 4 * N)), np.int64)
    start, k = _crossings_kernel(v, 0, lo, hi, refractory, prev_beyond, last_det, t0, out)
    if start < T:
        parts = [out[:, :k].copy()]
        while start < T:
            out = np.empty((2, 2 * out.shape[1]), np.int64)
            start, k = _crossings_kernel(v, start, lo, hi, refractory, prev_beyond, last_det,
                                         t0, out)
            parts.append(out[:, :k].copy())
        out = np.concatenate(parts, axis=1)
        k = out.shape[1]
    return out[0, :k], out[1, :k]


def _snippets_numpy(v, ts, cs, half, pol, scale):
    """The numpy path of :func:`_snippets_kernel` (same values, same first-peak rule)."""
    T = v.shape[0]
    K = ts.shape[0]
    idx = np.clip(np.asarray(ts, np.int64)[:, None] - half + np.arange(2 * half)[None, :], 0, T - 1)
    w = v[idx, np.asarray(cs, np.int64)[:, None]].astype(np.float64) * scale
    amp = np.empty(K, np.float64)
    if K:
        p = np.asarray(pol)[cs]
        amp[:] = w[np.arange(K), np.argmax(np.abs(w), axis=1)]
        if (p == 0).any():
            amp[p == 0] = w[p == 0].min(axis=1)
        if (p == 1).any():
            amp[p == 1] = w[p == 1].max(axis=1)
    return w, amp


def _snippets(v, ts, cs, half, pol, scale):
    """Edge-padded snippets [t-half, t+half) and their signed peaks, in µV."""
    if not _JIT:
        return _snippets_numpy(v, ts, cs, half, pol, scale)
    return _snippets_kernel(v, ts, cs, half, pol, scale)


@njit(cache=True, nogil=True)
def _snippets_kernel(v, ts, cs, half, pol, scale):
    """Edge-padded snippets [t-half, t+half) and their signed peaks, in µV."""
    T = v.shape[0]
    K = ts.shape[0]
    L = 2 * half
    w = np.empty((K, L), np.float64)
    amp = np.empty(K, np.float64)
    for k in range(K):
        c = cs[k]
        best = 0.0
        for j in range(L):
            i = ts[k] - half + j
            if i < 0:
                i = 0
            elif i >= T:
                i = T - 1
            x = v[i, c] * scale
            w[k, j] = x
            p = pol[c]
            if j == 0:
                best = x
            elif p == 0:
                if x < best:
                    best = x
            elif p == 1:
                if x > best:
                    best = x
            elif abs(x) > abs(best):
                best = x
        amp[k] = best
    return w, amp


@dataclass(eq=False)
class SpikeDetector:
    """MAD-threshold spike detector with an explicit noise-estimate policy.

    Parameters
    ----------
    config : MEAConfig
        Channels, sample rate, α (``spike_threshold_sigma``) and the µV per
        ADC code used for int16 input.
    refractory_samples : int
        R: a detection needs t - t_last >= R on its channel (default 30,
        1.5 ms at 20 kHz).
    polarity : {'negative', 'positive', 'both'} or Polarity
        Which side of the threshold counts. Extracellular spikes are
        negative-going, hence the default.
    noise_policy : {'per_frame', 'calibrated', 'running'}
        Where σ comes from. ``per_frame``: measured on every frame passed to
        :meth:`detect`. ``calibrated``: fixed by :meth:`calibrate` (detecting
        before calibrating is an error, never a silent first-frame cache).
        ``running``: an exponential average of the per-frame estimates with
        time constant ``noise_tau_s``, started by the first frame.
    noise_tau_s : float
        Time constant of the running estimate, in seconds.
    snippet_ms : float
        Default snippet length (±snippet_ms/2 around the crossing).

    Notes
    -----
    Float input is in µV; int16 (any integer) input is in ADC codes. For
    integer input σ and θ are computed in codes and θ is rounded up to an
    integer code, θ_code = ceil(α·σ_code), exactly what
    :meth:`export_thresholds_int16` gives the gateware Detector, so both
    paths detect the same samples. A channel with σ = 0 (dead or saturated
    flat) gets θ = +inf for float input and 32767 (the largest code) for
    integer input, so it cannot flood the stream.
    """
    config: MEAConfig
    refractory_samples: int = 30
    polarity: object = "negative"
    noise_policy: str = "per_frame"
    noise_tau_s: float = 10.0
    snippet_ms: float = 2.0

    def __post_init__(self):
        if not isinstance(self.config, MEAConfig):
            raise TypeError(f"config must be an MEAConfig, not {type(self.config).__name__}")
        r = self.refractory_samples
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 0:
            raise ValueError(f"refractory_samples must be an integer >= 0, not {r!r}")
        self.refractory_samples = int(r)
        self._pol = _polarity_code(self.polarity)
        if self.noise_policy not in NOISE_POLICIES:
            raise ValueError(f"noise_policy must be one of {NOISE_POLICIES}, not {self.noise_policy!r}")
        for name in ("noise_tau_s", "snippet_ms"):
            val = getattr(self, name)
            if not isinstance(val, (int, float)) or not math.isfinite(val) or val <= 0:
                raise ValueError(f"{name} must be finite and > 0, not {val!r}")
        n = self.config.num_channels
        self._pol_arr = np.full(n, self._pol, np.uint8)
        self._sigma = None          # σ in the unit of the last input kind
        self._sigma_kind = None     # "f" (µV) or "i" (codes)
        self._bounds_key = self._bounds_sigma = self._bounds_cache = None
        self._never_f = None
        self.reset()

    # -- state ---------------------------------------------------------
    def reset(self) -> None:
        """Forget the stream: previous-sample flags, refractory clocks, frame count.

        The noise estimate is kept (use :meth:`calibrate` or a new detector to
        change it).
        """
        n = self.config.num_channels
        self._prev = np.zeros(n, np.bool_)
        self._last = np.full(n, _NEVER, np.int64)
        self.frames_seen = 0

    @property
    def polarity_codes(self) -> np.ndarray:
        """Per-channel polarity as gateware :class:`Polarity` values (uint8)."""
        return self._pol_arr.copy()

    # -- noise ---------------------------------------------------------
    def estimate_noise(self, voltage_data) -> np.ndarray:
        """Robust σ per channel, median|V| / 0.6745, in the input's unit.

        Pure: does not change the detector. An empty frame gives NaN.
        """
        v = check_frame(voltage_data, self.config.num_channels)
        if v.shape[0] == 0:
            return np.full(v.shape[1], np.nan)
        return mad_sigma(v)

    def calibrate(self, voltage_data) -> np.ndarray:
        """Fix σ from ``voltage_data`` (policy ``calibrated``; a restart for ``running``)."""
        v = check_frame(voltage_data, self.config.num_channels)
        if v.shape[0] == 0:
            raise ValueError("cannot calibrate the noise estimate on an empty frame")
        self._sigma = mad_sigma(v)
        self._sigma_kind = "i" if v.dtype.kind in "iu" else "f"
        return self._sigma.copy()

    @property
    def noise_sigma(self) -> np.ndarray | None:
        """σ currently in force (µV for float input, codes for int input), or None."""
        return None if self._sigma is None else self._sigma.copy()

    def _scale_sigma(self, kind: str) -> np.ndarray:
        """σ converted to the unit of input kind ``kind``."""
        s = self._sigma
        if self._sigma_kind == kind:
            return s
        u = self.config.adc_uv_per_code
        return s * u if kind == "f" else s / u

    def _update_sigma(self, v) -> np.ndarray:
        kind = "i" if v.dtype.kind in "iu" else "f"
        pol = self.noise_policy
        hint = self._sigma if self._sigma_kind == kind else None
        if pol == "per_frame":
            self._sigma = mad_sigma(v, hint)
            self._sigma_kind = kind
        elif pol == "calibrated":
            if self._sigma is None:
                raise RuntimeError("noise_policy='calibrated' needs calibrate(quiet_data) "
                                   "before detect(); the detector does not cache the first frame")
        else:  # running
            s = mad_sigma(v, hint)
            if self._sigma is None:
                self._sigma, self._sigma_kind = s, kind
            else:
                # Exponential average with the frame's duration as the step:
                # β = 1 - exp(-T_frame / τ), independent of how the stream is cut.
                beta = -math.expm1(-v.shape[0] / self.config.sample_rate_hz / self.noise_tau_s)
                self._sigma = (1 - beta) * self._scale_sigma(kind) + beta * s
                self._sigma_kind = kind
        return self._scale_sigma(kind)

    def _thresholds_for(self, sigma, kind) -> np.ndarray:
        theta = self.config.spike_threshold_sigma * sigma
        if kind == "f":
            return np.where(sigma > 0, theta, np.inf)
        # Integer codes: x <= -θ over the integers is x <= -ceil(θ).
        t = np.ceil(theta)
        t = np.where(sigma > 0, t, 32767)
        return np.clip(t, 1, 32767).astype(np.int64)

    def _fast_bounds(self, sigma, kind):
        """(lo, hi) straight from σ; equal to ``_bounds(_thresholds_for(σ))``.

        The float, single-polarity case (the common one) is done in a few
        array operations, since it runs on every frame of the per-frame and
        running policies.
        """
        if kind != "f" or self._pol == Polarity.BOTH.value:
            return self._bounds(self._thresholds_for(sigma, kind), kind)
        thr = self.config.spike_threshold_sigma * sigma
        if not sigma.all():
            thr[sigma <= 0] = np.inf
        never = self._never_f
        if never is None or never.shape != thr.shape:
            never = self._never_f = np.full(thr.shape, np.inf)
        if self._pol == Polarity.NEGATIVE.value:
            return -thr, never
        return -never, thr

    def _bounds(self, thr, kind):
        """Fold polarity into per-channel (lo, hi) bounds: beyond is x <= lo or x >= hi."""
        pol = self._pol_arr
        if kind == "f":
            never = np.inf
            thr = thr.astype(np.float64)
        else:
            never = np.int64(1 << 40)   # beyond any integer sample
        lo = np.where(pol != Polarity.POSITIVE.value, -thr, -never)
        hi = np.where(pol != Polarity.NEGATIVE.value, thr, never)
        return lo, hi

    @property
    def thresholds_uv(self) -> np.ndarray | None:
        """θ_c = α·σ_c in µV (inf for σ = 0), or None before any estimate."""
        if self._sigma is None:
            return None
        return self._thresholds_for(self._scale_sigma("f"), "f")

    def export_thresholds_int16(self) -> np.ndarray:
        """θ_c as int16 ADC-code magnitudes for the gateware Detector.

        θ_code = ceil(α·σ_code), clipped to 1..32767; on integer input the
        host detector uses these very values, so both detect the same samples.
        """
        if self._sigma is None:
            raise RuntimeError("no noise estimate yet: call calibrate() or detect() first")
        return self._thresholds_for(self._scale_sigma("i"), "i").astype(np.int16)

    # -- detection -----------------------------------------------------
    def detect_arrays(self, voltage_data, snippet_ms: float | None = None,
                      t_start_s: float | None = None) -> DetectionBatch:
        """Detect spikes in a (samples, channels) frame; results as arrays.

        Parameters
        ----------
        voltage_data : array_like, shape (samples, channels)
            Float µV or integer ADC codes. An empty frame returns no
            detections and leaves the state untouched.
        snippet_ms : float, optional
            Snippet length; defaults to ``self.snippet_ms``.
        t_start_s : float, optional
            Time of the frame's first sample. Default: continue the stream,
            ``frames_seen / sample_rate_hz``.
        """
        return self._detect(check_frame(voltage_data, self.config.num_channels), snippet_ms, t_start_s)

    def _detect(self, v: np.ndarray, snippet_ms, t_start_s) -> DetectionBatch:
        """:meth:`detect_arrays` on a frame already through :func:`check_frame`."""
        snippet_ms = self.snippet_ms if snippet_ms is None else snippet_ms
        if not isinstance(snippet_ms, (int, float)) or not math.isfinite(snippet_ms) or snippet_ms <= 0:
            raise ValueError(f"snippet_ms must be finite and > 0, not {snippet_ms!r}")
        fs = self.config.sample_rate_hz
        t0 = self.frames_seen
        if t_start_s is None:
            t_start_s = t0 / fs
        elif not isinstance(t_start_s, (int, float)) or not math.isfinite(t_start_s) or t_start_s < 0:
            raise ValueError(f"t_start_s must be finite and >= 0, not {t_start_s!r}")
        half = max(1, int(round(snippet_ms * 1e-3 * fs / 2)))
        T = v.shape[0]
        if T == 0:
            e = np.empty(0, np.int64)
            return DetectionBatch(e, e, e, np.empty(0), np.empty(0), np.empty((0, 2 * half)))
        kind = "i" if v.dtype.kind in "iu" else "f"
        sigma = self._update_sigma(v)
        key = (id(sigma), kind)
        if self._bounds_key != key or self._bounds_sigma is not sigma:
            # σ unchanged (calibrated policy): reuse the bounds, no per-frame array work
            self._bounds_cache = self._fast_bounds(sigma, kind)
            self._bounds_key, self._bounds_sigma = key, sigma
        lo, hi = self._bounds_cache
        if kind == "i" and (v.dtype.itemsize > 2 or v.dtype.kind == "u"):
            v = v.astype(np.int64)
        ts, cs = _crossings(v, lo, hi, self.refractory_samples,
                            self._prev, self._last, t0)
        self.frames_seen = t0 + T
        scale = self.config.adc_uv_per_code if kind == "i" else 1.0
        w, amp = _snippets(v, ts, cs, half, self._pol_arr, scale)
        return DetectionBatch(cs, ts, ts + t0, t_start_s + ts / fs, amp, w)

    def detect(self, voltage_data, snippet_ms: float | None = None,
               t_start_s: float | None = None) -> list[DetectedSpike]:
        """Detect spikes; one :class:`DetectedSpike` per detection, by time then channel.

        See :meth:`detect_arrays` for the parameters.
        """
        return self.detect_arrays(voltage_data, snippet_ms, t_start_s).to_spikes()
