"""Homeostasis: Q8.8 threshold plasticity, float API and the integer form the gateware runs.

Homeostatic plasticity (Turrigiano 2012) moves each stim lane's firing
threshold θ_k so that the tissue under LED k settles near a target rate r*:
too many spikes, θ rises, fewer pulses. Two forms, which agree to within one
LSB of Q8.8 (tested with hypothesis in ``tests/host/test_models_stim.py``):

Float (the host bioware's API, seed-compatible)::

    Δθ = ⌊(dt/τ)(r − r*)·256⌋,   θ ← clamp(θ + Δθ, θ_min, θ_max)

Integer (DESIGN.md §4, once per window of W frames with spike count c)::

    θ ← clamp(θ + ((c·2^8 − c*)·g) >> s, θ_min, θ_max)

With a window of W frames at frame rate f the observed rate is r = c·f/W and
dt = 1000·W/f ms, so (dt/τ)(r − r*)·256 = (c·256 − c*_exact)·(1000/τ_ms) with
c*_exact = 256·r*·W/f. :func:`homeostasis_constants` therefore sets c* to
c*_exact rounded (UQ.8) and g/2^s to 1000/τ_ms rounded to 17 significant
bits. The error before the floor is at most 0.5·(1000/τ_ms) from c* plus
2^-17·|Δθ| from g; requiring τ ≥ 1000 ms (a gain of at most one Q8.8 unit
per UQ.8 count unit, already 1.0 of θ per extra spike) keeps it below one
LSB wherever θ is not clamped, and the clamp only shrinks a difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bioloop.host.layouts import (HOMEO_COUNT_BITS, HOMEO_GAIN_BITS, HOMEO_SHIFT_BITS, HOMEO_TARGET_BITS,
                                  HOMEO_WINDOW_BITS, THETA_INIT, THETA_MAX, THETA_MIN)

__all__ = [
    "THETA_MIN_Q88", "THETA_MAX_Q88", "COUNT_BITS", "TARGET_BITS", "GAIN_BITS", "SHIFT_BITS", "WINDOW_BITS",
    "HomeostaticPlasticity", "HomeostasisConstants", "homeostasis_constants", "homeostasis_update",
    "Homeostasis", "clamp",
]

# Defined once in the contract (bioloop.host.layouts); the names this model has always used.
THETA_MIN_Q88 = THETA_MIN
THETA_MAX_Q88 = THETA_MAX
#: Width of the per-lane spike counter (saturating).
COUNT_BITS = HOMEO_COUNT_BITS
#: c*: target count per window, UQ.8 (so up to 65535.996 spikes per window).
TARGET_BITS = HOMEO_TARGET_BITS
#: g: unsigned gain, normalised into [2^16, 2^17) when the shift allows.
GAIN_BITS = HOMEO_GAIN_BITS
#: s: right shift 0 .. 63.
SHIFT_BITS = HOMEO_SHIFT_BITS
#: W: frames per window (0 means 2^24).
WINDOW_BITS = HOMEO_WINDOW_BITS


def clamp(x: int, lo: int, hi: int) -> int:
    """min(max(x, lo), hi): when lo > hi, hi wins (as in the gateware)."""
    return min(max(x, lo), hi)


class HomeostaticPlasticity:
    """Float homeostatic threshold rule on Q8.8 thresholds.

    Parameters
    ----------
    target_rate_hz : float
        r*, the firing rate the controller aims for.
    tau_homeo_ms : float
        τ, the time constant in ms.
    max_threshold_q88, min_threshold_q88 : int
        Clamp bounds of θ in Q8.8 (defaults 512 = 2.0 and 64 = 0.25).
    """

    def __init__(self, target_rate_hz: float = 10.0, tau_homeo_ms: float = 10000.0,
                 max_threshold_q88: int = THETA_MAX_Q88, min_threshold_q88: int = THETA_MIN_Q88):
        if not (math.isfinite(target_rate_hz) and target_rate_hz >= 0):
            raise ValueError(f"target_rate_hz must be finite and >= 0, not {target_rate_hz!r}")
        if not (math.isfinite(tau_homeo_ms) and tau_homeo_ms > 0):
            raise ValueError(f"tau_homeo_ms must be finite and > 0, not {tau_homeo_ms!r}")
        if not min_threshold_q88 <= max_threshold_q88:
            raise ValueError(f"min_threshold_q88 ({min_threshold_q88}) must not exceed "
                             f"max_threshold_q88 ({max_threshold_q88})")
        self.target_rate_hz = float(target_rate_hz)
        self.tau_homeo_ms = float(tau_homeo_ms)
        self.max_threshold_q88 = int(max_threshold_q88)
        self.min_threshold_q88 = int(min_threshold_q88)

    def update_threshold(self, current_q88: int, observed_rate_hz: float, dt_ms: float) -> int:
        """θ + ⌊(dt/τ)(r − r*)·256⌋, clamped to [min, max]; returns the new Q8.8 threshold."""
        if not (math.isfinite(observed_rate_hz) and observed_rate_hz >= 0):
            raise ValueError(f"observed_rate_hz must be finite and >= 0, not {observed_rate_hz!r}")
        if not (math.isfinite(dt_ms) and dt_ms >= 0):
            raise ValueError(f"dt_ms must be finite and >= 0, not {dt_ms!r}")
        delta = math.floor((dt_ms / self.tau_homeo_ms) * (observed_rate_hz - self.target_rate_hz) * 256)
        return clamp(int(current_q88) + delta, self.min_threshold_q88, self.max_threshold_q88)


@dataclass(frozen=True)
class HomeostasisConstants:
    """Integer constants of the gateware update (the values the CSRs take).

    c_star : int   target spikes per window, UQ.8 (TARGET_BITS wide); the gateware
                   holds one per lane, and the models accept an array of K
    gain : int     g, unsigned, GAIN_BITS wide
    shift : int    s, 0 .. 63
    """
    c_star: int
    gain: int
    shift: int


def homeostasis_constants(target_rate_hz: float, tau_homeo_ms: float, window_frames: int,
                          frame_rate_hz: float) -> HomeostasisConstants:
    """Integer constants (c*, g, s) equivalent to the float rule for windows of W frames.

    Raises
    ------
    ValueError
        If τ < 1000 ms (the 1-LSB agreement needs a gain of at most 1), if c*
        does not fit 24 bits, or if an argument is out of range.
    """
    if not isinstance(window_frames, (int, np.integer)) or not 1 <= window_frames < 1 << WINDOW_BITS:
        raise ValueError(f"window_frames must be an integer in 1..{(1 << WINDOW_BITS) - 1}, "
                         f"not {window_frames!r}")
    if not (math.isfinite(frame_rate_hz) and frame_rate_hz > 0):
        raise ValueError(f"frame_rate_hz must be finite and > 0, not {frame_rate_hz!r}")
    if not (math.isfinite(target_rate_hz) and target_rate_hz >= 0):
        raise ValueError(f"target_rate_hz must be finite and >= 0, not {target_rate_hz!r}")
    if not (math.isfinite(tau_homeo_ms) and tau_homeo_ms >= 1000.0):
        raise ValueError(f"tau_homeo_ms must be >= 1000 ms for the integer form to agree with the "
                         f"float rule within 1 LSB, not {tau_homeo_ms!r}")
    c_star = round(256.0 * target_rate_hz * window_frames / frame_rate_hz)
    if c_star >= 1 << TARGET_BITS:
        raise ValueError(f"target count per window {c_star / 256:.1f} does not fit UQ16.8; "
                         f"use a shorter window or a lower target rate")
    g_exact = 1000.0 / tau_homeo_ms            # ≤ 1
    shift = GAIN_BITS - 1 - math.floor(math.log2(g_exact))
    gain = round(g_exact * 2.0 ** shift)
    if gain >= 1 << GAIN_BITS:                 # rounding carried into bit 17
        shift -= 1
        gain = round(g_exact * 2.0 ** shift)
    if shift >= 1 << SHIFT_BITS:
        raise ValueError(f"tau_homeo_ms={tau_homeo_ms!r} needs a shift of {shift}, more than 63")
    return HomeostasisConstants(c_star=c_star, gain=gain, shift=shift)


def homeostasis_update(theta: int, count: int, c_star: int, gain: int, shift: int,
                       theta_min: int = THETA_MIN_Q88, theta_max: int = THETA_MAX_Q88) -> int:
    """θ ← clamp(θ + ((c·2^8 − c*)·g) >> s, θ_min, θ_max), exactly as the gateware computes it.

    ``>>`` is arithmetic (floor). ``count`` saturates at 2^16 − 1 like the
    gateware counter.
    """
    count = min(int(count), (1 << COUNT_BITS) - 1)
    delta = ((count * 256 - int(c_star)) * int(gain)) >> int(shift)
    return clamp(int(theta) + delta, int(theta_min), int(theta_max))


class Homeostasis:
    """Integer model of the per-lane thresholds (the gateware's θ table).

    Event level: :meth:`window` applies one window's counts to all lanes.
    Cycle level: :meth:`clock` is one rising edge of the gateware, with the
    same counting, window and update timing (see ``docs/stim_path.md``):

    - a SPIKE word sampled at edge n counts for every lane k with
      ``src[k] == address`` (saturating at 2^16 − 1);
    - a frame tick at edge n advances the frame counter; the tick that
      completes W frames (W = 0 means 2^24) closes the window at edge n, and
      a SPIKE word sampled at that same edge still counts in it;
    - lane i's new θ is written at edge n + 4 + i, so all K lanes take K + 3
      cycles after the close; if a window closes while an update is still
      running (edges n+1 .. n+K+3) it is an *overrun*: the counts carry on
      into the next window and nothing is updated.

    Parameters
    ----------
    n_lanes : int
    theta_init : int
        Initial θ of every lane, Q8.8 (default 256 = 1.0).
    constants : HomeostasisConstants
        c*, g, s; the default (0, 0, 0) leaves θ unchanged. ``c_star`` may be
        an array of one target per lane.
    theta_min, theta_max : int
    window_frames : int
        W, frames per window.
    src : array of int, optional
        ``homeo_src[k]``, the recording channel lane k watches (default k).
    enable : bool
        When False windows close and counts reset but θ is not written.
    n_channels : int
        N, the recording channels counted in the sweep cadence.
    cadence : {"sweep", "cycle"}
        ``"cycle"`` as above; ``"sweep"`` (the gateware's default) counts per recording
        channel in two banks and reads lane i's source at edge c + 1 + i, that channel's
        count at c + 2 + i (0 if the source is >= N), its target at c + 1 + i, g at
        c + 4 + i, s at c + 5 + i, and writes θ_i at c + 6 + i; then clears the read bank
        in N edges. A window closing while any of it runs (edges c + 1 .. c + K + max(5, N))
        is an overrun. After reset both banks are cleared in N edges (``busy``; words not
        counted); a model made later than the reset is told with :meth:`since_reset`.

    Table and θ writes by the caller take effect from the next edge (a host θ write in the
    same edge as an update of that lane wins: assign θ after that edge's ``clock``).
    """

    UPDATE_LATENCY = 4   # edges from the close to the write of lane 0 (cycle cadence)
    SWEEP_LATENCY = 6    # the same, sweep cadence

    def __init__(self, n_lanes: int, theta_init: int = THETA_INIT,
                 constants: HomeostasisConstants = HomeostasisConstants(0, 0, 0),
                 theta_min: int = THETA_MIN_Q88, theta_max: int = THETA_MAX_Q88,
                 window_frames: int = 3000, src=None, enable: bool = True, n_channels: int = 64,
                 cadence: str = "sweep"):
        if cadence not in ("sweep", "cycle"):
            raise ValueError(f"cadence must be 'sweep' or 'cycle', not {cadence!r}")
        self.cadence = cadence
        self.n_channels = n_channels
        # sweep cadence registers (see the gateware)
        self.bank_counts = np.zeros((2, n_channels), dtype=np.int64)
        self.bank = 0
        self.running = self.clearing = False
        self.index = self.clr = 0
        self._word = None                     # (bank, channel) of the word taken at the last edge
        self.rclear = cadence == "sweep"      # both banks are cleared in the N edges after reset
        self.rclr = 0
        self._s1 = self._s2 = self._s3 = self._t2 = self._t3 = None
        if n_lanes < 1:
            raise ValueError(f"n_lanes must be >= 1, not {n_lanes}")
        self.n_lanes = n_lanes
        self.theta = np.full(n_lanes, theta_init, dtype=np.int64)
        self.constants = constants
        self.theta_min = theta_min
        self.theta_max = theta_max
        self.window_frames = window_frames
        self.src = np.arange(n_lanes) if src is None else np.asarray(src, dtype=np.int64)
        self.enable = enable
        # cycle-level state
        self.counts = np.zeros(n_lanes, dtype=np.int64)
        self.frame_count = 0
        self.edge = 0
        self._close_edge = None
        self._deltas = None
        self.windows = 0
        self.overruns = 0

    def deltas(self, counts) -> np.ndarray:
        """((c·2^8 − c*)·g) >> s per lane (independent of θ)."""
        c = np.minimum(np.asarray(counts, dtype=np.int64), (1 << COUNT_BITS) - 1)
        k = self.constants
        return ((c * 256 - np.asarray(k.c_star, dtype=np.int64)) * k.gain) >> k.shift

    def window(self, counts) -> np.ndarray:
        """Apply one window's spike counts to every lane; returns the new θ vector."""
        x = self.theta + self.deltas(counts)
        self.theta = np.minimum(np.maximum(x, self.theta_min), self.theta_max)
        return self.theta.copy()

    def busy(self) -> bool:
        """An update is in flight at the current edge."""
        if self.cadence == "sweep":
            return bool(self.running or self.clearing or self.rclear or self._s1 or self._s2
                        or self._s3 or self._t2 or self._t3)
        c = self._close_edge
        return c is not None and c + 1 <= self.edge <= c + self.n_lanes + 3

    def ticks_to_close(self) -> int:
        """Frame ticks that pass before the one that closes the current window."""
        w = self.window_frames % (1 << WINDOW_BITS)
        return (w - 1 - self.frame_count) % (1 << WINDOW_BITS)

    def step_quiet(self, n: int, ticks: int = 0) -> None:
        """``n`` edges without SPIKE words while no update runs, ``ticks`` of them frame ticks
        that do not close the window (``ticks <= ticks_to_close()``): the same as those steps."""
        if self.busy() or self._word is not None or ticks > self.ticks_to_close() or ticks > n:
            raise ValueError("Homeostasis.step_quiet needs no update running and no window closing")
        self.frame_count = (self.frame_count + ticks) % (1 << WINDOW_BITS)
        self.edge += n

    @property
    def word_pending(self) -> bool:
        """A SPIKE word taken at the last edge is still to be counted (sweep cadence)."""
        return self._word is not None

    def since_reset(self, edges: int) -> None:
        """A model made ``edges`` edges after the reset (with no window closed since): the
        sweep cadence's reset clear of the count banks has advanced that far."""
        if self.cadence == "sweep":
            self.rclr = min(self.rclr + edges, self.n_channels)
            self.rclear = self.rclr < self.n_channels

    def step(self, spike_address=None, tick: bool = False) -> tuple[bool, bool]:
        """One rising edge; returns (window closed, overrun)."""
        if self.cadence == "sweep":
            return self._clock_sweep(spike_address, tick)
        e = self.edge
        if self._close_edge is not None and self.enable:
            i = e - self._close_edge - self.UPDATE_LATENCY
            if 0 <= i < self.n_lanes:
                x = int(self.theta[i]) + int(self._deltas[i])
                self.theta[i] = clamp(x, self.theta_min, self.theta_max)
        counts = self.counts
        if spike_address is not None:
            counts = np.minimum(counts + (self.src == spike_address), (1 << COUNT_BITS) - 1)
        closed = overrun = False
        if tick:
            close = self.frame_count == (self.window_frames - 1) % (1 << WINDOW_BITS)
            self.frame_count = 0 if close else (self.frame_count + 1) % (1 << WINDOW_BITS)
            if close and self.busy():
                overrun = True
                self.overruns += 1
            elif close:
                closed = True
                self.windows += 1
                self._deltas = self.deltas(counts)
                self._close_edge = e
                counts = np.zeros_like(counts)
        self.counts = counts
        self.edge += 1
        return closed, overrun

    def _close(self, tick: bool) -> bool:
        """The frame counter at a tick; True if this tick completes a window."""
        if not tick:
            return False
        close = self.frame_count == (self.window_frames - 1) % (1 << WINDOW_BITS)
        self.frame_count = 0 if close else (self.frame_count + 1) % (1 << WINDOW_BITS)
        return close

    def _clock_sweep(self, spike_address, tick):
        K, N = self.n_lanes, self.n_channels
        k = self.constants
        busy = self.busy()
        old = 1 - self.bank
        # Write stage, then the pipeline registers (each from the values before the edge).
        if self._t3 is not None and self.enable:
            lane, delta = self._t3
            self.theta[lane] = clamp(int(self.theta[lane]) + delta, self.theta_min, self.theta_max)
        t3 = (self._t2[0], self._t2[1] >> int(k.shift)) if self._t2 is not None else None
        t2 = (self._s3[0], self._s3[1] * int(k.gain)) if self._s3 is not None else None
        s3 = None
        if self._s2 is not None:
            lane, tgt, count = self._s2
            s3 = (lane, (count << 8) - tgt)
        s2 = None
        if self._s1 is not None:
            lane, src, tgt = self._s1
            count = int(self.bank_counts[old][src]) if 0 <= src < N else 0
            s2 = (lane, tgt, count)
        s1 = None
        if self.running:
            c_star = np.broadcast_to(np.asarray(k.c_star, dtype=np.int64), (K,))
            s1 = (self.index, int(self.src[self.index]), int(c_star[self.index]))
        # Counting: the word taken at the last edge is written now; this edge's word is read.
        if self._word is not None:
            b, ch = self._word
            self.bank_counts[b][ch] = min(self.bank_counts[b][ch] + 1, (1 << COUNT_BITS) - 1)
        if self.clearing:
            self.bank_counts[old][self.clr] = 0
            if self.clr == N - 1:
                self.clearing = False
            self.clr += 1
        self._word = (self.bank, spike_address) \
            if spike_address is not None and 0 <= spike_address < N and not self.rclear else None
        if self.rclear:
            self.bank_counts[:, self.rclr] = 0
            self.rclr += 1
            self.rclear = self.rclr < N
        if self.running:
            if self.index == K - 1:
                self.running, self.clearing, self.clr = False, True, 0
            self.index += 1
        self._s1, self._s2, self._s3, self._t2, self._t3 = s1, s2, s3, t2, t3
        closed = overrun = False
        if self._close(tick):
            if busy:
                overrun = True
                self.overruns += 1
            else:
                closed = True
                self.windows += 1
                self.running, self.index = True, 0
                self.bank = 1 - self.bank
        self.edge += 1
        return closed, overrun
