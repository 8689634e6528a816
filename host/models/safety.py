"""Safety: the last stage before the LED pins (DESIGN.md §4).

Inputs each cycle, per lane k: the pulse envelope ``pulse_k`` (StimUnit) and
the stochastic bit ``bit_k`` (StochasticLanes); the LED wants to be on when
both are 1. Three caps, none of which a register can lift: the light within
one continuous envelope (``max_pulse`` cycles), the lit cycles per lane per
window of ``duty_window`` cycles (``max_duty``), the lanes lit at once
(``max_lanes``). Each cap's effective value is ``min(register, limit)``, the
limits being elaboration parameters, so a CSR can tighten a cap but never
loosen it past the limit. The LED output is registered: what the caps
decide at edge n is on the pins from edge n on and read at edge n+1.

Two cadences (an elaboration parameter of the gateware):

``"cycle"`` (the original block): every cycle, in order,

1. pulse length: only the first ``max_pulse`` cycles of each continuous
   envelope may light (``run_k`` counts the envelope);
2. duty: at most ``max_duty`` LED-on cycles per lane in each window of
   ``duty_window`` cycles, counted from reset;
3. lanes: at most ``max_lanes`` lanes on in one cycle, lowest indices win.

A cycle in which a cap turns off a lane that wanted light raises that cap's
strobe.

``"sweep"``: lane k's counters live in a memory and a
sequencer visits lane ``k`` at the edges n with ``(n − 1) mod S == k``
(S = K rounded up to a power of two; edge 0 is the first after reset and
visits lane S − 1). A
lane lights only while it holds an *allowance*; between two visits it can
light at most S cycles, so the counters count in units of S cycles:

- ``run_k``: S-cycle intervals of the current envelope, an upper bound of
  its length (an interval with a low cycle restarts it at 1 if the envelope
  is high at the visit, else 0); saturates at ``limit_pulse // S``;
- ``duty_k``: intervals with at least one lit cycle in the lane's current
  window; windows are ``duty_window / S`` sweeps long (the window rounded up
  to a multiple of S), start at the lane's
  visit, and the interval that ends at a window's first visit belongs to
  the window before;
- at its visit the lane keeps or gets the allowance for the next S cycles
  iff its envelope is high, ``run < max_pulse // S``, ``duty <
  max_duty // S`` and a slot is free (``allowances <= max_lanes`` to keep one,
  ``<`` to take one); otherwise it gives it up;
- a ``fire`` on a lane without allowance admits it in the same cycle if
  its last visit saw the envelope low with budget left (``duty <
  max_duty // S`` then), ``max_pulse >= S`` and ``max_duty >= S`` now, and a
  slot is free, so the first light of a pulse is not delayed by the sweep.

So every cap holds on every cycle (lit lanes <= allowances <= max_lanes;
lit cycles are counted by excess), register changes take effect at each
lane's next visit (within S cycles), and the strobes count refusals at
visits: an envelope that is high at its visit and not granted raises the
strobe of the first cap that refused it (pulse, duty, lanes).
"""

from __future__ import annotations

import numpy as np

from bioloop.host import jit

__all__ = ["Safety", "KERNELS", "CADENCES", "sweep_period", "sweep_kernel"]

CADENCES = ("sweep", "cycle")


def sweep_period(n_lanes: int) -> int:
    """S, the cycles between two visits of a lane in the sweep cadence: K rounded up to a power of 2."""
    return 1 << max(0, (n_lanes - 1).bit_length())


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
        Width of the run counter of the cycle cadence (saturating), as in the gateware.
    cadence : {"sweep", "cycle"}
    """

    def __init__(self, n_lanes: int, duty_window: int, limit_pulse: int, limit_duty: int,
                 limit_lanes: int | None = None, max_pulse: int | None = None,
                 max_duty: int | None = None, max_lanes: int | None = None, pulse_bits: int = 20,
                 cadence: str = "cycle"):
        if cadence not in CADENCES:
            raise ValueError(f"cadence must be one of {CADENCES}, not {cadence!r}")
        self.n_lanes = K = n_lanes
        self.duty_window = duty_window
        limit_lanes = n_lanes if limit_lanes is None else limit_lanes
        self.limits = (limit_pulse, limit_duty, limit_lanes)
        self.pulse_bits = pulse_bits
        self.cadence = cadence
        self.period = S = sweep_period(K) if cadence == "sweep" else 1
        if cadence == "sweep":
            # the window in force is rounded up to whole sweeps (as the gateware does)
            self.duty_window = duty_window = -(-duty_window // S) * S
            if limit_pulse < S or limit_duty < S:
                raise ValueError(f"the sweep cadence needs limit_pulse ({limit_pulse}) and limit_duty "
                                 f"({limit_duty}) at least the sweep period S = {S} cycles (K = {K} lanes)")
        self.set_caps(limit_pulse if max_pulse is None else max_pulse,
                      limit_duty if max_duty is None else max_duty,
                      limit_lanes if max_lanes is None else max_lanes)
        self.led = np.zeros(K, dtype=bool)
        self.clamps = np.zeros(3, dtype=np.int64)   # cycles (cycle) / refusals (sweep): pulse, duty, lit
        # cycle cadence
        self.run = np.zeros(K, dtype=np.int64)
        self.duty = np.zeros(K, dtype=np.int64)
        self.win = 0
        # sweep cadence
        self.sb = S.bit_length() - 1
        self.lim_units = (limit_pulse >> self.sb, limit_duty >> self.sb)
        self.n_sweeps = max(1, duty_window // S)
        self.allow = np.zeros(K, dtype=bool)
        self.budget = np.ones(K, dtype=bool)
        self.gap = np.zeros(K, dtype=bool)
        self.seen = np.zeros(K, dtype=bool)
        self.used = 0
        self.mem = np.zeros((K, 3), dtype=np.int64)   # run, duty (units of S), epoch
        self.edge = 0                                  # edges taken since reset

    def set_caps(self, max_pulse: int, max_duty: int, max_lanes: int) -> None:
        """Write the cap registers; the effective caps are min(register, limit)."""
        self.caps = (min(max_pulse, self.limits[0]), min(max_duty, self.limits[1]),
                     min(max_lanes, self.limits[2]))

    def step(self, pulse, bits, fire_lane: int | None = None) -> tuple[np.ndarray, tuple[bool, bool, bool]]:
        """One rising edge; returns the LED vector now registered and the three clamp strobes.

        ``fire_lane`` is the lane of the StimUnit's fire strobe seen at this edge (or None).
        """
        pulse = np.asarray(pulse, dtype=bool)
        bits = np.asarray(bits, dtype=bool)
        if self.cadence == "cycle":
            return self._step_cycle(pulse, bits)
        return self._step_sweep(pulse, bits, fire_lane)

    def _step_cycle(self, pulse, bits):
        want = pulse & bits
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
        self.edge += 1
        return final, strobes

    def _step_sweep(self, pulse, bits, fire_lane):
        K, S, n = self.n_lanes, self.period, self.edge
        cap_pulse, cap_duty, cap_lanes = self.caps
        u_pulse, u_duty = cap_pulse >> self.sb, cap_duty >> self.sb
        lim_run, lim_duty = self.lim_units
        used = self.used
        # Admission by a fire.
        fire_acq = (fire_lane is not None and 0 <= fire_lane < K and not self.allow[fire_lane]
                    and self.budget[fire_lane] and used < cap_lanes and u_pulse != 0 and u_duty != 0)
        allow_eff = self.allow.copy()
        if fire_acq:
            allow_eff[fire_lane] = True
        led = pulse & bits & allow_eff
        new_allow = allow_eff
        new_budget = self.budget.copy()
        strobes = (False, False, False)
        # The visit: lane (n - 1) mod S at edge n.
        v = (n - 1) % S                      # edge 0 visits lane S - 1 (if it exists)
        u1 = used + fire_acq
        if v < K:
            run, duty, epoch = (int(x) for x in self.mem[v])
            epoch_now = (max(n - 1, 0) // S // self.n_sweeps) & 1
            p_now = bool(pulse[v])
            gap = bool(self.gap[v]) or not p_now
            seen = bool(self.seen[v]) or bool(led[v])
            run = int(p_now) if gap else min(run + 1, lim_run)
            duty = 0 if epoch != epoch_now else (min(duty + 1, lim_duty) if seen else duty)
            run_ok, duty_ok = run < u_pulse, duty < u_duty
            ok = p_now and run_ok and duty_ok
            held = bool(allow_eff[v])
            grant = ok and ((u1 <= cap_lanes) if held else (u1 < cap_lanes))
            used = u1 + ((not held) and grant) - (held and not grant)
            new_allow[v] = grant
            new_budget[v] = (not p_now) and u_pulse != 0 and duty_ok
            self.mem[v] = (run, duty, epoch_now)
            strobes = (p_now and not run_ok, p_now and run_ok and not duty_ok, ok and not grant)
            self.gap = self.gap | ~pulse
            self.seen = self.seen | led
            self.gap[v] = False
            self.seen[v] = False
        else:
            used = u1
            self.gap = self.gap | ~pulse
            self.seen = self.seen | led
        self.allow = new_allow
        self.budget = new_budget
        self.used = used
        self.clamps += strobes
        self.led = led
        self.edge += 1
        return led, strobes

    def run_edges(self, pulse, states, codes, kernel: str | None = None,
                  fires=None) -> tuple[np.ndarray, np.ndarray]:
        """``n`` rising edges at once: envelopes ``pulse`` (n, K), lane states ``states`` (n, K)
        and density codes ``codes`` (K), so the bits are ``states < codes``; ``fires`` (n,) the
        StimUnit's fire lane at each edge or -1 (default: none).

        Exactly ``n`` calls of :meth:`step`; returns the (n, K) LED vectors and, per edge,
        whether any cap clamped. ``kernel`` is ``"numba"`` (compiled, when numba is
        installed) or ``"numpy"`` (the per-edge :meth:`step`); the default is the first
        of :data:`KERNELS`.
        """
        kernel = KERNELS[0] if kernel is None else kernel
        pulse = np.asarray(pulse, dtype=bool)
        n = pulse.shape[0]
        fires = np.full(n, -1, dtype=np.int64) if fires is None else np.asarray(fires, dtype=np.int64)
        out = np.empty((n, self.n_lanes), dtype=bool)
        strobe_edges = np.zeros(n, dtype=np.bool_)
        codes = np.asarray(codes, dtype=np.int64)
        if kernel == "numba":
            if not jit.ENABLED:
                raise ValueError("kernel 'numba' needs numba installed (and BIOLOOP_NUMBA not 0); use 'numpy'")
            clamps = np.zeros(3, dtype=np.int64)
            cap_pulse, cap_duty, cap_lanes = self.caps
            if self.cadence == "cycle":
                self.win = _edges_numba(pulse, np.asarray(states), codes, self.run, self.duty, self.win,
                                        self.duty_window, cap_pulse, cap_duty, cap_lanes,
                                        (1 << self.pulse_bits) - 1, out, clamps, strobe_edges)
            else:
                self.used = int(sweep_kernel_numba(
                    pulse, np.asarray(states), codes, fires, self.allow, self.budget, self.gap,
                    self.seen, self.mem, out, clamps, strobe_edges, self.edge, self.period,
                    self.n_sweeps, cap_pulse >> self.sb, cap_duty >> self.sb, cap_lanes,
                    self.lim_units[0], self.lim_units[1], self.used))
            self.clamps += clamps
            self.edge += n
            if n:
                self.led = out[-1].copy()
        elif kernel == "numpy":
            for e in range(n):
                f = None if fires[e] < 0 else int(fires[e])
                out[e], strobes = self.step(pulse[e], np.asarray(states[e]) < codes, f)
                strobe_edges[e] = any(strobes)
        else:
            raise ValueError(f"kernel must be one of {KERNELS}, not {kernel!r}")
        return out, strobe_edges

    @property
    def quiet(self) -> bool:
        """No LED is lit (and, in the cycle cadence, no envelope is being counted)."""
        if self.cadence == "cycle":
            return not (self.run.any() or self.led.any())
        return not self.led.any()

    def idle(self, n: int) -> None:
        """``n`` edges with every envelope low and no fire, in O(K) (the same as ``n`` steps): no
        light, no strobe, only the counters, the duty window and the sweep's bookkeeping move."""
        if n <= 0:
            return
        K, S, e0 = self.n_lanes, self.period, self.edge
        if self.cadence == "cycle":
            w = self.win + n
            if w >= self.duty_window:
                self.duty[:] = 0
            self.win = w % self.duty_window
            self.run[:] = 0
            self.led = np.zeros(K, dtype=bool)
            self.edge += n
            return
        e1 = e0 + n - 1                       # last edge of the stretch
        lanes = np.arange(K)
        # First and last visit of each lane in [e0, e1]: edges e with (e - 1) % S == k.
        first = e0 + ((lanes - (e0 - 1)) % S)
        last = e1 - ((e1 - 1 - lanes) % S)
        visited = first <= e1
        wnd = lambda e: np.maximum(e - 1, 0) // S // self.n_sweeps   # noqa: E731 - window of a visit
        cap_pulse, cap_duty, _ = self.caps
        u_pulse, u_duty = cap_pulse >> self.sb, cap_duty >> self.sb
        run, duty, epoch = self.mem[:, 0], self.mem[:, 1], self.mem[:, 2]
        w_first, w_last = wnd(first), wnd(last)
        d1 = np.where(epoch != (w_first & 1), 0, np.minimum(duty + self.seen, self.lim_units[1]))
        d_final = np.where(w_last != w_first, 0, d1)
        self.mem[:, 0] = np.where(visited, 0, run)
        self.mem[:, 1] = np.where(visited, d_final, duty)
        self.mem[:, 2] = np.where(visited, w_last & 1, epoch)
        self.budget = np.where(visited, (u_pulse != 0) & (d_final < u_duty), self.budget)
        self.seen = np.where(visited, False, self.seen)
        self.gap = np.where(visited & (last == e1), False, True)
        self.allow = np.where(visited, False, self.allow)
        self.used = int(self.allow.sum())
        self.led = np.zeros(K, dtype=bool)
        self.edge += n

    def run_trace(self, pulse, bits, fires=None) -> np.ndarray:
        """Clock through (n, K) envelopes and bits; returns the (n, K) LED vectors registered per edge.

        ``fires`` (optional, length n) holds the fire lane at each edge or -1.
        """
        pulse = np.asarray(pulse, dtype=bool)
        bits = np.asarray(bits, dtype=bool)
        out = np.zeros(pulse.shape, dtype=bool)
        for t in range(pulse.shape[0]):
            f = None if fires is None or fires[t] < 0 else int(fires[t])
            out[t], _ = self.step(pulse[t], bits[t], f)
        return out


def sweep_kernel(env, states, codes, fires, allow, budget, gap, seen, mem, out, clamps, strobe_edges,
                 edge0, S, n_sweeps, u_pulse, u_duty, cap_lanes, lim_run, lim_duty, used):
    """:meth:`Safety.step` of the sweep cadence over ``n`` edges, in place, in plain loops (the
    Core model compiles it with numba when available; ``tests/host/test_models_stim.py`` checks
    it against ``step``). ``env`` (n, K) envelopes; the bits are ``states < codes``; ``fires``
    (n,) fire lanes or -1; ``out`` (n, K) receives the LED vectors, ``strobe_edges`` (n,)
    whether any strobe was raised. Returns the new slot count."""
    n, K = env.shape
    for i in range(n):
        e = edge0 + i
        f = fires[i]
        fire_acq = (f >= 0 and f < K and not allow[f] and budget[f] and used < cap_lanes
                    and u_pulse != 0 and u_duty != 0)
        if fire_acq:
            allow[f] = True
        for k in range(K):
            out[i, k] = env[i, k] and states[i, k] < codes[k] and allow[k]
        u1 = used + (1 if fire_acq else 0)
        used = u1
        s_p = s_d = s_l = False
        v = (e - 1) % S
        if v < K:
            epoch_now = (max(e - 1, 0) // S // n_sweeps) & 1
            p_now = env[i, v]
            g = gap[v] or not p_now
            sn = seen[v] or out[i, v]
            run = mem[v, 0]
            duty = mem[v, 1]
            if g:
                run = 1 if p_now else 0
            elif run < lim_run:
                run += 1
            if mem[v, 2] != epoch_now:
                duty = 0
            elif sn and duty < lim_duty:
                duty += 1
            run_ok = run < u_pulse
            duty_ok = duty < u_duty
            ok = p_now and run_ok and duty_ok
            held = allow[v]
            grant = ok and ((u1 <= cap_lanes) if held else (u1 < cap_lanes))
            if held and not grant:
                used -= 1
            elif grant and not held:
                used += 1
            allow[v] = grant
            budget[v] = (not p_now) and u_pulse != 0 and duty_ok
            mem[v, 0] = run
            mem[v, 1] = duty
            mem[v, 2] = epoch_now
            s_p = p_now and not run_ok
            s_d = p_now and run_ok and not duty_ok
            s_l = ok and not grant
        for k in range(K):
            if not env[i, k]:
                gap[k] = True
            if out[i, k]:
                seen[k] = True
        if v < K:
            gap[v] = False
            seen[v] = False
        clamps[0] += s_p
        clamps[1] += s_d
        clamps[2] += s_l
        strobe_edges[i] = s_p or s_d or s_l
    return used


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


_edges_numba = jit.njit(cache=True)(_edges_python)
sweep_kernel_numba = jit.njit(cache=True)(sweep_kernel)
#: Kernels of :meth:`Safety.run_edges`, the default first.
KERNELS = ("numba", "numpy") if jit.ENABLED else ("numpy",)
