"""Safety: caps on pulse length, duty and lanes lit at once, before the LED pins (DESIGN.md §4).

Bit-exact with :class:`bioloop.host.models.safety.Safety`, which states the
rules. The hard limits are elaboration parameters, so no register value can
loosen them: each cap in force is ``min(register, limit)``.
"""

from __future__ import annotations

from amaranth import Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bioloop.host.parameters import check_lanes, check_uint, validated

__all__ = ["Safety"]


class Safety(wiring.Component):
    """The last stage before the LEDs; no CSR setting bypasses it.

    Lane k wants its LED on when ``pulse[k] & bits[k]``. Per cycle, in order:
    the pulse-length cap passes only the first ``max_pulse`` cycles of each
    continuous envelope; the duty cap passes at most ``max_duty`` on-cycles
    per lane per window of ``duty_window`` cycles; the lit cap passes at most
    ``max_lanes`` lanes, lowest indices first. The result is registered onto
    ``led``. A cap that turned off at least one lane in a cycle raises its
    ``clamp_*`` strobe in the same cycle as ``led``.

    Parameters
    ----------
    n_lanes : int
        K (default 64).
    pulse_bits : int
        Width of the pulse-length cap and of the run counters (default 20).
    duty_window : int
        Duty window in cycles (default 1_000_000 = 10 ms at 100 MHz), 1 .. 2^32 − 1.
    limit_pulse : int
        Hard ceiling of ``max_pulse`` in cycles (default 500_000 = 5 ms);
        below 2^pulse_bits − 1.
    limit_duty : int
        Hard ceiling of ``max_duty`` in on-cycles per window (default half
        the window), at most ``duty_window``.
    limit_lanes : int
        Hard ceiling of ``max_lanes`` (default K), at most K.

    Members
    -------
    pulse : In(K), bits : In(K)
        Pulse envelopes (StimUnit) and stochastic bits (StochasticLanes).
    max_pulse : In(pulse_bits), max_duty : In(duty bits), max_lanes : In(lit bits)
        Cap registers; reset to the limits.
    led : Out(K)
        LED drive, registered.
    clamp_pulse, clamp_duty, clamp_lanes : Out(1)
        Strobes, one per cap.
    formal_observer : object or None
        Formal hook (docs/verification.md), default None. A proof harness
        may attach an observer before elaboration; elaborated for the
        ``"formal"`` platform, Safety then asserts how its own state
        explains the observer's documented counters (per lane ``k``):
        ``lit_run[k]`` (consecutive lit cycles before this one),
        ``duty_pos`` (the observer's duty-window phase) and
        ``lit_in_window[k]`` (lit cycles of the observer's window before
        this one). Any attribute the observer lacks is not linked.
    """

    formal_observer = None

    @validated
    def __init__(self, n_lanes: int = 64, pulse_bits: int = 20, duty_window: int = 1_000_000,
                 limit_pulse: int = 500_000, limit_duty: int | None = None,
                 limit_lanes: int | None = None):
        self.n_lanes = check_lanes(n_lanes)
        if isinstance(pulse_bits, bool) or not isinstance(pulse_bits, int):
            raise TypeError(f"pulse_bits must be an int, not {pulse_bits!r}")
        if not 2 <= pulse_bits <= 32:
            raise ValueError(f"pulse_bits must be in 2..32, not {pulse_bits}")
        self.pulse_bits = pulse_bits
        self.duty_window = check_uint("duty_window", duty_window, 32, minimum=1)
        self.limit_pulse = check_uint("limit_pulse", limit_pulse, pulse_bits)
        if limit_pulse == (1 << pulse_bits) - 1:
            raise ValueError(f"limit_pulse must be below 2^pulse_bits - 1 = {limit_pulse} "
                             f"(the saturated run counter must exceed it); widen pulse_bits")
        self.duty_bits = max(1, duty_window.bit_length())
        limit_duty = duty_window // 2 if limit_duty is None else limit_duty
        self.limit_duty = check_uint("limit_duty", limit_duty, self.duty_bits)
        if limit_duty > duty_window:
            raise ValueError(f"limit_duty ({limit_duty}) must not exceed duty_window ({duty_window})")
        self.lanes_bits = max(1, n_lanes.bit_length())
        limit_lanes = n_lanes if limit_lanes is None else limit_lanes
        self.limit_lanes = check_uint("limit_lanes", limit_lanes, self.lanes_bits)
        if limit_lanes > n_lanes:
            raise ValueError(f"limit_lanes ({limit_lanes}) must not exceed n_lanes ({n_lanes})")
        super().__init__({
            "pulse": In(n_lanes),
            "bits": In(n_lanes),
            "max_pulse": In(pulse_bits, init=self.limit_pulse),
            "max_duty": In(self.duty_bits, init=self.limit_duty),
            "max_lanes": In(self.lanes_bits, init=self.limit_lanes),
            "led": Out(n_lanes),
            "clamp_pulse": Out(1),
            "clamp_duty": Out(1),
            "clamp_lanes": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        K = self.n_lanes

        def capped(register, limit):
            eff = Signal.like(register, name=f"{register.name}_eff")
            m.d.comb += eff.eq(Mux(register > limit, limit, register))
            return eff
        cap_pulse = capped(self.max_pulse, self.limit_pulse)
        cap_duty = capped(self.max_duty, self.limit_duty)
        cap_lanes = capped(self.max_lanes, self.limit_lanes)

        # The duty window.
        window = Signal(range(self.duty_window))
        window_end = Signal()
        m.d.comb += window_end.eq(window == self.duty_window - 1)
        m.d.sync += window.eq(Mux(window_end, 0, window + 1))

        run_max = (1 << self.pulse_bits) - 1
        want, pass1, pass2, final = (Signal(K, name=n) for n in ("want", "pass1", "pass2", "final"))
        m.d.comb += want.eq(self.pulse & self.bits)
        runs, duties = [], []
        for k in range(K):
            run = Signal(self.pulse_bits, name=f"run{k}")
            run_next = Signal(self.pulse_bits, name=f"run_next{k}")
            duty = Signal(self.duty_bits, name=f"duty{k}")
            runs.append(run)
            duties.append(duty)
            m.d.comb += [
                run_next.eq(Mux(self.pulse[k], Mux(run == run_max, run, run + 1), 0)),
                pass1[k].eq(want[k] & (run_next <= cap_pulse)),
                pass2[k].eq(pass1[k] & (duty < cap_duty)),
            ]
            m.d.sync += [
                run.eq(run_next),
                duty.eq(Mux(window_end, 0, duty + final[k])),
            ]

        # Lit cap: lane k passes while fewer than max_lanes lower lanes passed.
        granted = Const(0, self.lanes_bits)
        for k in range(K):
            m.d.comb += final[k].eq(pass2[k] & (granted < cap_lanes))
            nxt = Signal(self.lanes_bits, name=f"granted{k}")
            m.d.comb += nxt.eq(granted + pass2[k])
            granted = nxt

        m.d.sync += [
            self.led.eq(final),
            self.clamp_pulse.eq((want & ~pass1).any()),
            self.clamp_duty.eq((pass1 & ~pass2).any()),
            self.clamp_lanes.eq((pass2 & ~final).any()),
        ]

        # Formal only: link the attached observer's counters to this block's state (docs/verification.md).
        observer = self.formal_observer
        if platform == "formal" and observer is not None:
            from amaranth.hdl import Assert
            W = self.duty_window
            for k in range(K):
                lit = self.led[k]
                m.d.comb += Assert(~lit | (runs[k] <= cap_pulse), "a lit lane's run exceeds the pulse cap")
                m.d.comb += Assert(duties[k] <= cap_duty, "a lane's duty count exceeds the duty cap")
                if hasattr(observer, "lit_run"):
                    m.d.comb += Assert(~lit | (observer.lit_run[k] + 1 <= runs[k]),
                                       "observer's lit run not covered by the pulse run")
                if hasattr(observer, "lit_in_window"):
                    before = Mux(window == 1, 0, observer.lit_in_window[k])   # the observer's window restarts
                    m.d.comb += Assert((window == 0) | (before + lit == duties[k]),
                                       "observer's duty count differs from the lane's")
            if hasattr(observer, "duty_pos"):
                m.d.comb += Assert(observer.duty_pos == Mux(window == 0, W - 1, window - 1),
                                   "observer's duty window is not one cycle behind the block's")
        return m
