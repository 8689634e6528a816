"""A minimal pharmacology model: drug effect on firing, with onset and wash-out.

The effect fraction f(t) of a drug applied at t_app:

- 0 before t_app;
- rises linearly from 0 to 1 over ``onset_delay_s`` (bath exchange and
  diffusion into the tissue);
- stays at 1 until wash-out starts at t_app + ``wash_time_s``;
- then falls linearly back to 0 over ``onset_delay_s`` (the same exchange
  run backwards).

The firing gain is g(t) = 1 + (gain - 1)·f(t). Applied to the spikes of a
frame, per channel, a gain g < 1 keeps round(g·n) of the n events, evenly
spread over the channel's events in time (not the first ones); g > 1 adds
round((g - 1)·n) events evenly spaced inside the channel's observed time
support [first, last], each a copy of the nearest observed event (template)
at the new time. Deterministic: same input, same output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .detection import DetectedSpike

__all__ = ["PharmModel"]


def _finite(name, v, lo=None):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
            or (lo is not None and v < lo):
        raise ValueError(f"{name} must be finite{'' if lo is None else f' and >= {lo}'}, not {v!r}")
    return float(v)


@dataclass
class PharmModel:
    """Drug application with onset delay, gain and wash-out.

    Parameters
    ----------
    agent_name : str
    gain : float
        Firing gain at full effect (>= 0; 0.5 halves, 2 doubles).
    onset_delay_s : float
        Time to full effect after application, and to no effect after
        wash-out starts.
    wash_time_s : float
        Time from application to the start of wash-out (>= onset_delay_s).
    """
    agent_name: str = "none"
    gain: float = 1.0
    onset_delay_s: float = 30.0
    wash_time_s: float = 120.0
    applied_at_s: float | None = field(default=None, init=False)

    def __post_init__(self):
        self.gain = _finite("gain", self.gain, 0.0)
        self.onset_delay_s = _finite("onset_delay_s", self.onset_delay_s, 0.0)
        self.wash_time_s = _finite("wash_time_s", self.wash_time_s, 0.0)
        if self.wash_time_s < self.onset_delay_s:
            raise ValueError(f"wash_time_s {self.wash_time_s} must be >= onset_delay_s "
                             f"{self.onset_delay_s}")

    def apply(self, t_current_s: float) -> None:
        """Apply the drug at time ``t_current_s``."""
        self.applied_at_s = _finite("t_current_s", t_current_s, 0.0)

    def effect_fraction(self, t_current_s: float) -> float:
        """f(t) in [0, 1] (see the module notes)."""
        t = _finite("t_current_s", t_current_s)
        if self.applied_at_s is None:
            return 0.0
        s = t - self.applied_at_s
        on = self.onset_delay_s
        if s < 0:
            return 0.0
        if s < self.wash_time_s:
            return 1.0 if on == 0 else min(1.0, s / on)
        w = s - self.wash_time_s
        return 0.0 if on == 0 else max(0.0, 1.0 - w / on)

    def effective_gain(self, t_current_s: float) -> float:
        """g(t) = 1 + (gain - 1)·f(t)."""
        return 1.0 + (self.gain - 1.0) * self.effect_fraction(t_current_s)

    def modulate_spikes(self, spike_counts, t_current_s: float) -> np.ndarray:
        """Expected counts under the gain: round(g·k) (int64)."""
        k = np.asarray(spike_counts, dtype=np.float64)
        if k.size and (not np.isfinite(k).all() or k.min() < 0):
            raise ValueError("spike_counts must be finite and >= 0")
        return np.round(k * self.effective_gain(t_current_s)).astype(np.int64)

    @staticmethod
    def plan(times, channels, g: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Indices kept and (template index, new time) of added events, per the module rule.

        ``times`` and ``channels`` describe the frame's events; returns
        (kept indices, template indices of the added events, their times).
        """
        t = np.asarray(times, dtype=np.float64)
        c = np.asarray(channels, dtype=np.int64)
        keep, tmpl, new_t = [], [], []
        for ch in np.unique(c).tolist():
            idx = np.nonzero(c == ch)[0]
            idx = idx[np.argsort(t[idx], kind="stable")]
            n = idx.size
            if g < 1.0:
                m = int(round(g * n))
                if m:
                    # Evenly spread over the events: the j-th kept is the centre of stratum j.
                    keep.append(idx[((np.arange(m) + 0.5) * n / m).astype(np.int64)])
            else:
                keep.append(idx)
                a = int(round((g - 1.0) * n))
                if a and n >= 2:
                    lo, hi = t[idx[0]], t[idx[-1]]
                    nt = lo + (hi - lo) * (np.arange(a) + 0.5) / a
                    near = np.abs(t[idx][None, :] - nt[:, None]).argmin(axis=1)
                    tmpl.append(idx[near])
                    new_t.append(nt)
        cat = lambda xs, dt: np.concatenate(xs) if xs else np.empty(0, dt)  # noqa: E731
        return np.sort(cat(keep, np.int64)), cat(tmpl, np.int64), cat(new_t, np.float64)

    def modulate_spike_events(self, spikes: list[DetectedSpike],
                              t_current_s: float) -> list[DetectedSpike]:
        """The frame's spikes under the gain at ``t_current_s``, ordered by time then channel.

        A channel with a single event has no time support, so excitation adds
        nothing there.
        """
        g = self.effective_gain(t_current_s)
        if g == 1.0 or not spikes:
            return list(spikes)
        t = [s.timestamp_s for s in spikes]
        c = [s.channel for s in spikes]
        keep, tmpl, nt = self.plan(t, c, g)
        out = [spikes[i] for i in keep.tolist()]
        out += [replace(spikes[i], timestamp_s=float(x), sample_index=-1)
                for i, x in zip(tmpl.tolist(), nt.tolist(), strict=True)]
        out.sort(key=lambda s: (s.timestamp_s, s.channel))
        return out
