"""Safety: the last stage before the LED pins (DESIGN.md §4).

Inputs each cycle, per lane k: the pulse envelope ``pulse_k`` (StimUnit) and
the stochastic bit ``bit_k`` (StochasticLanes); the LED wants to be on when
both are 1. Three caps, applied in this order, none of which a register can
lift:

1. pulse length: only the first ``max_pulse`` cycles of each continuous
   pulse envelope may light the LED (``run_k`` counts the envelope);
2. duty: at most ``max_duty`` LED-on cycles per lane in each window of
   ``duty_window`` cycles (the window is fixed at elaboration);
3. lanes lit at once: at most ``max_lanes`` lanes on in one cycle; the lowest
   lane indices win.

Each cap's effective value is ``min(register, limit)`` where the limits are
elaboration parameters, so a CSR can tighten a cap but never loosen it past
the limit. A cycle in which a cap turns off at least one lane that wanted to
be on raises that cap's clamp strobe (counted by the CSR bank).

Timing: the LED output is registered; what the caps decide at edge n is on
the pins from edge n on and read at edge n+1.
"""

from __future__ import annotations

import numpy as np

try:        # optional accelerator (DESIGN.md §7): the numpy path gives the same bytes
    import numba
except ImportError:  # pragma: no cover - exercised where numba is absent (the board)
    numba = None

__all__ = ["Safety", "KERNELS"]


class Safety:
    """Cycle model of Safety.

    Parameters
    ----------
    n_lanes : int
    duty_window : int
        Window length in cycles for the duty cap.
    limit_pulse, limit_duty, limit_lanes : int
        Hard ceilings (elaboration parameters).
    max_pulse, max_duty, max_lanes : int, optional
        Register values (default: the limits).
    pulse_bits : int
        Width of the run counter (saturating), as in the gateware.
    """

    def __init__(self, n_lanes: int, duty_window: int, limit_pulse: int, limit_duty: int,
                 limit_lanes: int | None = None, max_pulse: int | None = None,
                 max_duty: int | None = None, max_lanes: int | None = None, pulse_bits: int = 20):
        self.n_lanes = n_lanes
        self.duty_window = duty_window
        limit_lanes = n_lanes if limit_lanes is None else limit_lanes
        self.limits = (limit_pulse, limit_duty, limit_lanes)
        self.pulse_bits = pulse_bits
        self.set_caps(limit_pulse if max_pulse is None else max_pulse,
                      limit_duty if max_duty is None else max_duty,
                      limit_lanes if max_lanes is None else max_lanes)
        self.run = np.zeros(n_lanes, dtype=np.int64)
        self.duty = np.zeros(n_lanes, dtype=np.int64)
        self.win = 0
        self.led = np.zeros(n_lanes, dtype=bool)
        self.clamps = np.zeros(3, dtype=np.int64)   # cycles clamped by: pulse, duty, lit

    def set_caps(self, max_pulse: int, max_duty: int, max_lanes: int) -> None:
        """Write the cap registers; the effective caps are min(register, limit)."""
        self.caps = (min(max_pulse, self.limits[0]), min(max_duty, self.limits[1]),
                     min(max_lanes, self.limits[2]))

    def step(self, pulse, bits) -> tuple[np.ndarray, tuple[bool, bool, bool]]:
        """One rising edge; returns the LED vector now registered and the three clamp strobes."""
        pulse = np.asarray(pulse, dtype=bool)
        want = pulse & np.asarray(bits, dtype=bool)
        cap_pulse, cap_duty, cap_lanes = self.caps
        self.run = np.where(pulse, np.minimum(self.run + 1, (1 << self.pulse_bits) - 1), 0)
        pass1 = want & (self.run <= cap_pulse)
        pass2 = pass1 & (self.duty < cap_duty)
        granted_before = np.concatenate(([0], np.cumsum(pass2)[:-1]))
        final = pass2 & (granted_before < cap_lanes)
        strobes = (bool((want & ~pass1).any()), bool((pass1 & ~pass2).any()), bool((pass2 & ~final).any()))
        self.clamps += strobes
        if self.win == self.duty_window - 1:
            self.win = 0
            self.duty[:] = 0
        else:
            self.win += 1
            self.duty += final
        self.led = final
        return final, strobes

    def run_edges(self, pulse, states, codes, kernel: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``n`` rising edges at once: envelopes ``pulse`` (n, K), lane states ``states`` (n, K)
        and density codes ``codes`` (K), so the bits are ``states < codes``.

        Exactly ``n`` calls of :meth:`step`; returns the (n, K) LED vectors and, per edge,
        whether any cap clamped. ``kernel`` is ``"numba"`` (compiled, when numba is
        installed) or ``"numpy"`` (the per-edge :meth:`step`); the default is the first
        of :data:`KERNELS`.
        """
        kernel = KERNELS[0] if kernel is None else kernel
        pulse = np.asarray(pulse, dtype=bool)
        n = pulse.shape[0]
        out = np.empty((n, self.n_lanes), dtype=bool)
        strobe_edges = np.zeros(n, dtype=np.bool_)
        if kernel == "numba":
            if numba is None:
                raise ValueError("kernel 'numba' needs numba installed; use 'numpy'")
            clamps = np.zeros(3, dtype=np.int64)
            cap_pulse, cap_duty, cap_lanes = self.caps
            self.win = _edges_numba(pulse, np.asarray(states), np.asarray(codes, dtype=np.int64),
                                    self.run, self.duty, self.win, self.duty_window, cap_pulse,
                                    cap_duty, cap_lanes, (1 << self.pulse_bits) - 1, out, clamps,
                                    strobe_edges)
            self.clamps += clamps
            if n:
                self.led = out[-1].copy()
        elif kernel == "numpy":
            codes = np.asarray(codes, dtype=np.int64)
            for e in range(n):
                out[e], strobes = self.step(pulse[e], np.asarray(states[e]) < codes)
                strobe_edges[e] = any(strobes)
        else:
            raise ValueError(f"kernel must be one of {KERNELS}, not {kernel!r}")
        return out, strobe_edges

    def idle(self, n: int) -> None:
        """``n`` edges with no pulse envelope (the same as ``n`` steps with ``pulse`` all 0):
        nothing wants light, so no cap clamps; the runs and LEDs go to 0 and the duty window
        moves on (clearing the duty counts if it wraps)."""
        if n <= 0:
            return
        self.run = np.zeros_like(self.run)
        self.led = np.zeros(self.n_lanes, dtype=bool)
        if self.win + n >= self.duty_window:
            self.duty[:] = 0
        self.win = (self.win + n) % self.duty_window

    @property
    def quiet(self) -> bool:
        """No envelope is being counted and no LED is lit."""
        return not (self.run.any() or self.led.any())

    def run_trace(self, pulse, bits) -> np.ndarray:
        """Clock through (n, K) envelopes and bits; returns the (n, K) LED vectors registered per edge."""
        pulse = np.asarray(pulse, dtype=bool)
        bits = np.asarray(bits, dtype=bool)
        out = np.zeros(pulse.shape, dtype=bool)
        for t in range(pulse.shape[0]):
            out[t], _ = self.step(pulse[t], bits[t])
        return out


def _edges_python(env, states, codes, run, duty, win, duty_window, cap_pulse, cap_duty, cap_lanes,
                  run_max, out, clamps, strobe_edges):  # pragma: no cover - compiled by numba
    """:meth:`Safety.step` over ``n`` edges, in place, as scalar loops for numba; returns win."""
    n, K = env.shape
    for e in range(n):
        granted = 0
        s_p = s_d = s_l = False
        for k in range(K):
            p = env[e, k]
            if p:
                if run[k] < run_max:
                    run[k] += 1
            else:
                run[k] = 0
            want = p and states[e, k] < codes[k]
            pass1 = want and run[k] <= cap_pulse
            pass2 = pass1 and duty[k] < cap_duty
            fin = pass2 and granted < cap_lanes
            if pass2:
                granted += 1
            s_p = s_p or (want and not pass1)
            s_d = s_d or (pass1 and not pass2)
            s_l = s_l or (pass2 and not fin)
            out[e, k] = fin
        clamps[0] += s_p
        clamps[1] += s_d
        clamps[2] += s_l
        strobe_edges[e] = s_p or s_d or s_l
        if win == duty_window - 1:
            win = 0
            for k in range(K):
                duty[k] = 0
        else:
            win += 1
            for k in range(K):
                duty[k] += out[e, k]
    return win


_edges_numba = numba.njit(cache=True)(_edges_python) if numba is not None else None
#: Kernels of :meth:`Safety.run_edges`, the default first.
KERNELS = ("numba", "numpy") if numba is not None else ("numpy",)
