"""Integer-exact model of the gateware Detector (DESIGN.md §4).

The crossing rule, read as the specification: sample ``t`` of channel ``c``
is a detection when it is beyond θ[c], sample ``t-1`` of ``c`` was not (the
first frame after reset counts as not beyond), and at least R frames passed
since the last detection on ``c``. The reported frame is ``t``, the first
sample beyond threshold (not the last one below it, DESIGN.md §10).
"""

from __future__ import annotations

import numpy as np

from bioloop.host import jit
from bioloop.host.layouts import SAMPLE_BEAT, SAMPLE_BITS, Polarity
from bioloop.host.parameters import check_channels

__all__ = ["Detector", "beats_from_frames", "beyond", "KERNELS"]

_LAST = SAMPLE_BEAT.offsets["last"]
_DATA = SAMPLE_BEAT.offsets["data"]
_SAMPLE = SAMPLE_BITS
_SAMPLE_MASK = (1 << SAMPLE_BITS) - 1
_SAMPLE_SIGN = 1 << (SAMPLE_BITS - 1)
_NEGATIVE, _POSITIVE, _BOTH = Polarity.NEGATIVE.value, Polarity.POSITIVE.value, Polarity.BOTH.value


def beyond(x: np.ndarray, theta: np.ndarray, polarity: np.ndarray) -> np.ndarray:
    """Which samples are beyond their channel's threshold (equality counts)."""
    x = x.astype(np.int32)
    theta = theta.astype(np.int32)
    neg = x <= -theta
    pos = x >= theta
    return np.where(polarity == Polarity.NEGATIVE.value, neg,
                    np.where(polarity == Polarity.POSITIVE.value, pos,
                             np.where(polarity == Polarity.BOTH.value, neg | pos, False)))


def beats_from_frames(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split (T, N) int16 frames into 32-bit beats (channel 2i low, 2i+1 high) and TLAST flags."""
    f = np.ascontiguousarray(frames, dtype=np.int16)
    beats = f.view(np.uint32).reshape(-1)
    last = np.zeros(beats.shape, dtype=bool)
    last[f.shape[1] // 2 - 1::f.shape[1] // 2] = True
    return beats, last


class Detector:
    """Model of :class:`bioloop.gateware.detector.Detector`.

    Parameters
    ----------
    n_channels : int
        Even, 2..4096.
    thresholds : array of int, optional
        Magnitudes 0..32767 (default 32767).
    polarity : array of Polarity values, optional
        Default NEGATIVE.
    refractory : int
        R in frames, 0..65535.
    """

    def __init__(self, n_channels: int, thresholds=None, polarity=None, refractory: int = 0):
        self.n_channels = check_channels(n_channels)
        self.thresholds = np.full(n_channels, 0x7FFF, np.int16) if thresholds is None else \
            self._checked(thresholds, "thresholds", 0, 0x7FFF, np.int16)
        self.polarity = np.full(n_channels, Polarity.NEGATIVE.value, np.uint8) if polarity is None else \
            self._checked([Polarity(p).value for p in polarity], "polarity", 0, 3, np.uint8)
        if not 0 <= int(refractory) <= 0xFFFF:
            raise ValueError(f"refractory must be in 0..65535 frames, not {refractory}")
        self.refractory = int(refractory)
        self.reset()

    def _checked(self, values, name, lo, hi, dtype):
        a = np.asarray(values)
        if a.shape != (self.n_channels,):
            raise ValueError(f"{name} must have shape ({self.n_channels},), not {a.shape}")
        if a.size and (a.min() < lo or a.max() > hi):
            raise ValueError(f"{name} must be in {lo}..{hi}; got {a.min()}..{a.max()}")
        return a.astype(dtype)

    def reset(self):
        """State after reset: nothing beyond, no hold-off, frame 0, counters 0."""
        self.prev = np.zeros(self.n_channels, bool)
        self.hold = np.zeros(self.n_channels, np.int64)
        self.frame = 0
        self.pos = 0
        self.frames = self.framing_errors = self.detections = 0

    def _update(self, channels: slice, x: np.ndarray) -> np.ndarray:
        b = beyond(x, self.thresholds[channels], self.polarity[channels])
        hit = b & ~self.prev[channels] & (self.hold[channels] == 0)
        self.hold[channels] = np.where(hit, max(self.refractory, 1) - 1,
                                       np.maximum(self.hold[channels] - 1, 0))
        self.prev[channels] = b
        self.detections += int(hit.sum())
        return hit

    def step(self, beat: int) -> tuple[list[int], int]:
        """One clock edge that takes ``beat``, a packed :data:`~bioloop.host.layouts.SAMPLE_BEAT`
        (two int16 samples and TLAST); return (detected channels, their frame)."""
        last = (beat >> _LAST) & 1
        frame = self.frame
        hits = []
        c = 2 * self.pos
        # The crossing rule of _update on the beat's two channels, in scalars (one edge of the
        # Core model is mostly this).
        refractory = self.refractory
        for j in (0, 1):
            ch = c + j
            x = (beat >> (_DATA + j * _SAMPLE)) & _SAMPLE_MASK
            if x & _SAMPLE_SIGN:
                x -= _SAMPLE_SIGN << 1
            th = int(self.thresholds[ch])
            p = self.polarity[ch]
            b = (x <= -th if p == _NEGATIVE else x >= th if p == _POSITIVE
                 else (x <= -th or x >= th) if p == _BOTH else False)
            hold = int(self.hold[ch])
            if b and not self.prev[ch] and hold == 0:
                hits.append(ch)
                self.hold[ch] = max(refractory, 1) - 1
                self.detections += 1
            elif hold:
                self.hold[ch] = hold - 1
            self.prev[ch] = b
        # Frames by count; a TLAST elsewhere than a frame's last beat is a framing error
        # and ends the frame there: the next beat starts a frame (DESIGN.md §3).
        if last and not self.ends_frame(False):
            self.framing_errors += 1
        if self.ends_frame(last):
            self.pos = 0
            self.frame += 1
            self.frames += 1
        else:
            self.pos += 1
        return hits, frame

    def ends_frame(self, last: bool) -> bool:
        """Whether the next beat taken ends a frame: its last beat by count, or TLAST."""
        return bool(last) or self.pos == self.n_channels // 2 - 1

    # -- quiet stretches (used by the Core model's accelerator) ------------------------------

    def first_crossing(self, samples: np.ndarray, start: int) -> int:
        """Index of the first beat at or after ``start`` of one frame ``samples`` (int16, N)
        that would hold a detection in the current state; ``N/2`` if none."""
        c0 = 2 * start
        hit = (beyond(samples[c0:], self.thresholds[c0:], self.polarity[c0:]) & ~self.prev[c0:]
               & (self.hold[c0:] == 0))
        where = np.flatnonzero(hit)
        return start + int(where[0]) // 2 if where.size else self.n_channels // 2

    def step_quiet(self, samples: np.ndarray, start: int, n: int) -> bool:
        """``n`` steps with beats ``start .. start+n-1`` of one frame ``samples`` (int16, N),
        TLAST on the frame's last beat, none holding a detection (see :meth:`first_crossing`).
        Returns whether the frame ended."""
        nb = self.n_channels // 2
        if self.pos != start or start + n > nb:
            raise ValueError(f"step_quiet({start}, {n}) does not continue the frame at beat {self.pos}")
        channels = slice(2 * start, 2 * (start + n))
        if self._update(channels, samples[channels]).any():
            raise ValueError("step_quiet was given a beat with a detection")
        if start + n == nb:
            self.pos = 0
            self.frame += 1
            self.frames += 1
            return True
        self.pos = start + n
        return False

    def step_quiet_frames(self, frames: np.ndarray, kernel: str | None = None) -> int:
        """Whole frames (int16, (m, N)) from a frame boundary, up to the first frame that holds
        a detection; returns how many were taken (each as N/2 steps). ``kernel`` is
        ``"numba"`` (compiled, when numba is installed) or ``"numpy"``; the default is the
        first of :data:`KERNELS`. Both give the same state."""
        kernel = KERNELS[0] if kernel is None else kernel
        if self.pos:
            raise ValueError("step_quiet_frames needs the model at a frame boundary")
        if kernel == "numba":
            if not jit.ENABLED:
                raise ValueError("kernel 'numba' needs numba installed (and BIOLOOP_NUMBA not 0); use 'numpy'")
            hold = self.hold
            m = _quiet_numba(np.asarray(frames), self.thresholds.astype(np.int32),
                             self.polarity.astype(np.int8), self.prev, hold)
        elif kernel == "numpy":
            m = 0
            for x in frames:
                b = beyond(x, self.thresholds, self.polarity)
                if (b & ~self.prev & (self.hold == 0)).any():
                    break
                self.prev = b
                self.hold = np.maximum(self.hold - 1, 0)
                m += 1
        else:
            raise ValueError(f"kernel must be one of {KERNELS}, not {kernel!r}")
        self.frame += m
        self.frames += m
        return m

    def process(self, frames: np.ndarray) -> np.ndarray:
        """Detect over whole frames (T, N) int16; returns int64 (K, 2) rows [frame, channel].

        Equivalent to feeding every beat of every frame through :meth:`step`,
        but vectorised over channels. The model must be frame-aligned (no
        pending partial frame).
        """
        f = np.asarray(frames)
        if f.dtype != np.int16:
            raise TypeError(f"frames must be int16 ADC codes, not {f.dtype}")
        if f.ndim != 2 or f.shape[1] != self.n_channels:
            raise ValueError(f"frames must have shape (T, {self.n_channels}), not {f.shape}")
        if self.pos:
            raise ValueError("the model is in the middle of a frame; use step() to finish it")
        out = []
        every = slice(0, self.n_channels)
        for t in range(f.shape[0]):
            hit = self._update(every, f[t])
            for c in np.flatnonzero(hit):
                out.append((self.frame, c))
            self.frame += 1
            self.frames += 1
        return np.array(out, dtype=np.int64).reshape(-1, 2)


def _quiet_python(frames, thresholds, polarity, prev, hold):  # pragma: no cover - compiled by numba
    """:meth:`Detector.step_quiet_frames` as scalar loops for numba, in place; returns the
    number of frames taken (stopping before the first frame with a detection)."""
    m, n = frames.shape
    for t in range(m):
        for c in range(n):
            x = np.int32(frames[t, c])
            th = thresholds[c]
            p = polarity[c]
            b = (p == 0 and x <= -th) or (p == 1 and x >= th) or (p == 2 and (x <= -th or x >= th))
            if b and not prev[c] and hold[c] == 0:
                return t
        for c in range(n):
            x = np.int32(frames[t, c])
            th = thresholds[c]
            p = polarity[c]
            prev[c] = (p == 0 and x <= -th) or (p == 1 and x >= th) or (p == 2 and (x <= -th or x >= th))
            if hold[c] > 0:
                hold[c] -= 1
    return m


_quiet_numba = jit.njit(cache=True)(_quiet_python)
#: Kernels of :meth:`Detector.step_quiet_frames`, the default first.
KERNELS = ("numba", "numpy") if jit.ENABLED else ("numpy",)
