"""Synaptic plasticity rules with signed Q8.8 weight updates.

- :class:`BiologicalSTDP`: the exponential pair rule fitted by Bi & Poo
  (1998) to cultured hippocampal neurons, Δw = A+·exp(-Δt/τ+) for
  Δt = t_post - t_pre > 0, -A-·exp(Δt/τ-) for Δt < 0, 0 at Δt = 0, with
  A+ = 0.005, A- = 0.00525 (depression 5 % stronger), τ± = 20 ms.
- :class:`BCMPlasticity`: Bienenstock, Cooper & Munro (1982),
  Δw = η·x·y·(y - θ_m) with the sliding threshold θ_m = κ·ȳ², ȳ the running
  mean of the postsynaptic activity.
- :class:`HomeostaticPlasticity`: the one shared with the gateware model
  (:mod:`bioloop.host.models.homeostasis`), re-exported here.

Weights are route weights, signed Q8.8 int16 (DESIGN.md §2). A float Δw is
applied as w + ⌊256·Δw⌋, floor as the bioware formalism writes it (so any
depression, however small, moves the weight by at least one LSB while
potentiation below 1/256 does not), then clamped to the int16 range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# One definition, shared with the gateware model.
from bioloop.host.models.homeostasis import HomeostaticPlasticity

__all__ = ["BiologicalSTDP", "BCMPlasticity", "HomeostaticPlasticity", "apply_dw_q88",
           "Q88_ONE", "WEIGHT_MIN_Q88", "WEIGHT_MAX_Q88"]

Q88_ONE = 256
WEIGHT_MIN_Q88 = -32768
WEIGHT_MAX_Q88 = 32767



def apply_dw_q88(weights_q88, dw) -> np.ndarray:
    """w + ⌊256·Δw⌋, clamped to int16; returns int16 (same shape)."""
    w = np.asarray(weights_q88, dtype=np.int64)
    d = np.asarray(dw, dtype=np.float64)
    if d.size and not np.isfinite(d).all():
        raise ValueError("weight changes must be finite")
    out = w + np.floor(d * Q88_ONE).astype(np.int64)
    return np.clip(out, WEIGHT_MIN_Q88, WEIGHT_MAX_Q88).astype(np.int16)


def _check_pos(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be finite and > 0, not {v!r}")


@dataclass
class BiologicalSTDP:
    """Pair-based STDP, Bi & Poo (1998) parameters.

    Parameters
    ----------
    A_plus, A_minus : float
        Potentiation and depression amplitudes (weight units, 1.0 = Q8.8 256).
    tau_plus_ms, tau_minus_ms : float
        Time constants.
    window_ms : float
        Pairs further apart than this are ignored (default 5 τ, where the
        kernel is below 1 %).
    """
    A_plus: float = 0.005
    A_minus: float = 0.00525
    tau_plus_ms: float = 20.0
    tau_minus_ms: float = 20.0
    window_ms: float | None = None

    def __post_init__(self):
        for n in ("A_plus", "A_minus"):
            v = getattr(self, n)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{n} must be finite and >= 0, not {v!r}")
        _check_pos("tau_plus_ms", self.tau_plus_ms)
        _check_pos("tau_minus_ms", self.tau_minus_ms)
        if self.window_ms is None:
            self.window_ms = 5.0 * max(self.tau_plus_ms, self.tau_minus_ms)
        _check_pos("window_ms", self.window_ms)

    def compute_dw(self, dt_ms):
        """Δw for Δt = t_post - t_pre in ms (scalar or array)."""
        dt = np.asarray(dt_ms, dtype=np.float64)
        if dt.size and not np.isfinite(dt).all():
            raise ValueError("dt_ms must be finite")
        dw = np.where(dt > 0, self.A_plus * np.exp(-np.abs(dt) / self.tau_plus_ms),
                      np.where(dt < 0, -self.A_minus * np.exp(-np.abs(dt) / self.tau_minus_ms), 0.0))
        return float(dw) if dw.ndim == 0 else dw

    def pair_dw(self, pre_times_ms, post_times_ms) -> float:
        """Summed Δw over all (pre, post) pairs closer than ``window_ms`` (all-to-all pairing)."""
        pre = np.asarray(pre_times_ms, dtype=np.float64).reshape(-1)
        post = np.asarray(post_times_ms, dtype=np.float64).reshape(-1)
        if not pre.size or not post.size:
            return 0.0
        dt = post[:, None] - pre[None, :]
        dt = dt[np.abs(dt) <= self.window_ms]
        return float(np.sum(self.compute_dw(dt))) if dt.size else 0.0

    def update_weights_q88(self, weights_q88, times_ms, channels, new_from: int = 0) -> np.ndarray:
        """Apply the pair rule to an (N, N) weight matrix w[pre, post] from spike times.

        ``times_ms`` and ``channels`` list the spikes (any order). Every
        ordered channel pair (i -> j, i != j) accumulates Δw over its spike
        pairs; the sum is applied once with floor (:func:`apply_dw_q88`).
        Spikes before index ``new_from`` are history already paired with
        each other (the tail of the previous frame): only pairs with at
        least one spike at or after ``new_from`` count, so a stream cut into
        frames pairs across the cuts without counting a pair twice.
        """
        w = np.asarray(weights_q88)
        if w.ndim != 2 or w.shape[0] != w.shape[1]:
            raise ValueError(f"weights must be a square (N, N) matrix, not shape {w.shape}")
        t = np.asarray(times_ms, dtype=np.float64)
        c = np.asarray(channels, dtype=np.int64)
        if t.shape != c.shape:
            raise ValueError(f"{t.size} times but {c.size} channels")
        if c.size and (c.min() < 0 or c.max() >= w.shape[0]):
            raise ValueError(f"channel {int(c.max() if c.max() >= w.shape[0] else c.min())} "
                             f"outside the {w.shape[0]}x{w.shape[0]} weight matrix")
        dw = np.zeros(w.shape, np.float64)
        if t.size > 1:
            # Δt[a, b] = t_b - t_a for pre spike a, post spike b.
            dt = t[None, :] - t[:, None]
            near = (np.abs(dt) <= self.window_ms) & (c[:, None] != c[None, :])
            if new_from:
                new = np.arange(t.size) >= new_from
                near &= new[:, None] | new[None, :]
            a, b = np.nonzero(near)
            np.add.at(dw, (c[a], c[b]), self.compute_dw(dt[a, b]))
        return apply_dw_q88(w, dw)

    def update_pairs_q88(self, weights_q88, times_ms, channels, pairs, new_from: int = 0) -> np.ndarray:
        """:meth:`update_weights_q88` for the listed (pre, post) entries only; the others are unchanged.

        ``pairs`` is an (P, 2) integer array of distinct ``(pre, post)``
        channels. The result equals the full update on those entries, at a
        cost that grows with the spikes of the listed channels instead of
        the square of all spikes (the closed loop's route weights).
        """
        w = np.asarray(weights_q88)
        if w.ndim != 2 or w.shape[0] != w.shape[1]:
            raise ValueError(f"weights must be a square (N, N) matrix, not shape {w.shape}")
        t = np.asarray(times_ms, dtype=np.float64)
        c = np.asarray(channels, dtype=np.int64)
        pr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        if t.shape != c.shape:
            raise ValueError(f"{t.size} times but {c.size} channels")
        if pr.size and (pr.min() < 0 or pr.max() >= w.shape[0] or (pr[:, 0] == pr[:, 1]).any()):
            raise ValueError("pairs must be distinct (pre, post) channels inside the weight matrix")
        new = np.arange(t.size) >= new_from
        order = np.argsort(c, kind="stable")
        bounds = np.searchsorted(c[order], np.arange(w.shape[0] + 1))
        # Every (pre spike, post spike) combination of every listed pair, gathered once, evaluated once.
        pre_i, post_i, which = [], [], []
        for n, (i, j) in enumerate(pr.tolist()):
            a, b = order[bounds[i]:bounds[i + 1]], order[bounds[j]:bounds[j + 1]]
            if a.size and b.size:
                pre_i.append(np.repeat(a, b.size))
                post_i.append(np.tile(b, a.size))
                which.append(np.full(a.size * b.size, n))
        dw = np.zeros(len(pr))
        if pre_i:
            A, B, P = np.concatenate(pre_i), np.concatenate(post_i), np.concatenate(which)
            dt = t[B] - t[A]
            near = np.abs(dt) <= self.window_ms
            if new_from:
                near &= new[A] | new[B]
            dw = np.bincount(P[near], weights=self.compute_dw(dt[near]), minlength=len(pr))
        out = np.array(w, dtype=np.int16 if w.dtype == np.int16 else w.dtype, copy=True)
        if len(pr):
            out[pr[:, 0], pr[:, 1]] = apply_dw_q88(w[pr[:, 0], pr[:, 1]], dw)
        return out


@dataclass
class BCMPlasticity:
    """BCM rule with a sliding modification threshold.

    Parameters
    ----------
    learning_rate : float
        η.
    kappa : float
        κ in θ_m = κ·ȳ².
    tau_avg_ms : float
        Time constant of the running mean ȳ.
    rate_scale_hz : float
        Rates are divided by this before the rule, so x, y are of order 1.

    Attributes
    ----------
    y_bar : numpy.ndarray or None
        Running mean of each postsynaptic activity (scaled), started by the
        first update.
    """
    learning_rate: float = 1e-3
    kappa: float = 1.0
    tau_avg_ms: float = 1000.0
    rate_scale_hz: float = 10.0
    y_bar: np.ndarray | None = field(default=None, init=False)

    def __post_init__(self):
        for n in ("learning_rate", "kappa", "tau_avg_ms", "rate_scale_hz"):
            _check_pos(n, getattr(self, n))

    @property
    def theta_m(self) -> np.ndarray | None:
        """θ_m = κ·ȳ² per postsynaptic unit."""
        return None if self.y_bar is None else self.kappa * self.y_bar ** 2

    def compute_dw(self, pre_rate_hz, post_rate_hz, theta_m=None) -> np.ndarray:
        """Δw[i, j] = η·x_i·y_j·(y_j - θ_m,j) (outer product over pre i and post j)."""
        x = np.atleast_1d(np.asarray(pre_rate_hz, dtype=np.float64)) / self.rate_scale_hz
        y = np.atleast_1d(np.asarray(post_rate_hz, dtype=np.float64)) / self.rate_scale_hz
        if not (np.isfinite(x).all() and np.isfinite(y).all()) or (x.size and x.min() < 0) \
                or (y.size and y.min() < 0):
            raise ValueError("rates must be finite and >= 0")
        th = self.kappa * y ** 2 if theta_m is None else np.asarray(theta_m, dtype=np.float64)
        return self.learning_rate * np.outer(x, y * (y - th))

    def update(self, weights_q88, pre_rate_hz, post_rate_hz, dt_ms: float) -> np.ndarray:
        """One step: Δw with the current θ_m, then ȳ moves toward y by dt/τ (exact exponential)."""
        _check_pos("dt_ms", dt_ms)
        y = np.atleast_1d(np.asarray(post_rate_hz, dtype=np.float64)) / self.rate_scale_hz
        if self.y_bar is None:
            self.y_bar = y.copy()
        if self.y_bar.shape != y.shape:
            raise ValueError(f"{y.size} postsynaptic rates, the running mean has {self.y_bar.size}")
        dw = self.compute_dw(pre_rate_hz, post_rate_hz, self.theta_m)
        w = np.asarray(weights_q88)
        if w.shape != dw.shape:
            raise ValueError(f"weights shape {w.shape} != (pre, post) {dw.shape}")
        beta = -math.expm1(-dt_ms / self.tau_avg_ms)
        self.y_bar = self.y_bar + beta * (y - self.y_bar)
        return apply_dw_q88(w, dw)
