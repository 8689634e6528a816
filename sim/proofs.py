"""The properties bioloop proves about its gateware, as harnesses for :func:`bioloop.sim.formal.prove`.

Each harness instantiates a block (or a mutant of it: the same ports, one
cycle or one count looser), drives every configuration input with
``AnyConst`` and every data input with ``AnySeq``, observes the block's
outputs with counters of its own, and asserts the block's specification.
The harness reads only the block's ports and elaboration parameters, never
its internals; a block adds its own invariants when elaborated for the
``"formal"`` platform.

Properties (docs/verification.md):

:class:`SafetyCaps`
    For any register programming and any pulse/bit input: no lane lit more
    than ``min(max_pulse, limit_pulse)`` consecutive cycles; at most
    ``min(max_lanes, limit_lanes)`` lanes lit at once; no lane lit more than
    ``min(max_duty, limit_duty)`` cycles in any duty window.
"""

from __future__ import annotations

from amaranth import Elaboratable, Module, Mux, Signal
from amaranth.asserts import AnyConst, AnySeq   # not re-exported by amaranth.hdl in 0.5
from amaranth.hdl import Assert

__all__ = ["SafetyCaps", "LooserSafety"]


def _min(a, b):
    return Mux(a > b, b, a)


class SafetyCaps(Elaboratable):
    """Safety's three caps, observed at the LED outputs.

    Parameters
    ----------
    safety : Safety (or a mutant with its ports and parameters)
    caps : iterable of {"pulse", "lanes", "duty"}
        The caps to assert (default: all three).
    """

    def __init__(self, safety, caps=("pulse", "lanes", "duty")):
        unknown = set(caps) - {"pulse", "lanes", "duty"}
        if unknown:
            raise ValueError(f"unknown caps {sorted(unknown)}; choose from pulse, lanes, duty")
        self.safety = safety
        self.caps = tuple(caps)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.safety
        K = dut.n_lanes
        max_pulse = AnyConst(len(dut.max_pulse))
        max_duty = AnyConst(len(dut.max_duty))
        max_lanes = AnyConst(len(dut.max_lanes))
        m.d.comb += [
            dut.max_pulse.eq(max_pulse), dut.max_duty.eq(max_duty), dut.max_lanes.eq(max_lanes),
            dut.pulse.eq(AnySeq(K)), dut.bits.eq(AnySeq(K)),
        ]
        led = dut.led

        if "pulse" in self.caps:
            cap = _min(max_pulse, dut.limit_pulse)
            top = dut.limit_pulse + 1                  # saturate just above any legal run
            for k in range(K):
                run = Signal(range(top + 1), name=f"lit_run{k}")
                m.d.sync += run.eq(Mux(led[k], Mux(run == top, top, run + 1), 0))
                m.d.comb += Assert(Mux(led[k], run + 1, 0) <= cap,
                                   f"lane {k} lit longer than min(max_pulse, limit_pulse)")

        if "lanes" in self.caps:
            lit = sum(led[k] for k in range(K))
            m.d.comb += Assert(lit <= _min(max_lanes, dut.limit_lanes),
                               "more lanes lit than min(max_lanes, limit_lanes)")

        if "duty" in self.caps:
            W = dut.duty_window
            cap = _min(max_duty, dut.limit_duty)
            # The LED is registered: the LED of cycle t belongs to the window of cycle t - 1,
            # so the observer's window starts one cycle after the block's (position W - 1 at reset).
            pos = Signal(range(W), init=W - 1, name="duty_pos")
            m.d.sync += pos.eq(Mux(pos == W - 1, 0, pos + 1))
            for k in range(K):
                before = Signal(range(W + 1), name=f"lit_in_window{k}")
                total = Mux(pos == 0, 0, before) + led[k]
                m.d.sync += before.eq(total)
                m.d.comb += Assert(total <= cap, f"lane {k} lit more than min(max_duty, limit_duty) "
                                                 "cycles in a duty window")
        return m


class LooserSafety(Elaboratable):
    """A mutant of Safety one cycle looser: each lit run of a lane lasts one cycle longer.

    Same ports and parameters as the wrapped block; the LED of lane k stays
    lit for one extra cycle after the block turns it off while its pulse is
    still requested. Every cap proof must fail on it.
    """

    def __init__(self, safety):
        self.inner = safety
        for name in ("n_lanes", "limit_pulse", "limit_duty", "limit_lanes", "duty_window"):
            setattr(self, name, getattr(safety, name))
        self.pulse = Signal.like(safety.pulse)
        self.bits = Signal.like(safety.bits)
        self.max_pulse = Signal.like(safety.max_pulse)
        self.max_duty = Signal.like(safety.max_duty)
        self.max_lanes = Signal.like(safety.max_lanes)
        self.led = Signal.like(safety.led)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = s = self.inner
        m.d.comb += [s.pulse.eq(self.pulse), s.bits.eq(self.bits), s.max_pulse.eq(self.max_pulse),
                     s.max_duty.eq(self.max_duty), s.max_lanes.eq(self.max_lanes)]
        prev = Signal.like(s.led)
        want = Signal.like(s.led)
        m.d.sync += [prev.eq(s.led), want.eq(self.pulse & self.bits)]
        m.d.comb += self.led.eq(s.led | (prev & ~s.led & want))
        return m
