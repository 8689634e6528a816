"""StimPath: routed entries and SPIKE words in, LEDs and STIM words out (DESIGN.md §1, §4).

Composes Homeostasis, StimUnit, StochasticLanes and Safety; bit-exact with
:class:`bioloop.host.models.stim_path.StimPath`.
"""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from bioloop.gateware.homeostasis import Homeostasis
from bioloop.gateware.stochastic_lanes import StochasticLanes
from bioloop.host.layouts import THETA_INIT
from bioloop.host.parameters import lane_addr_width, validated
from bioloop.gateware.layouts import TIMESTAMP_BITS, aer_stream, routed_stream
from bioloop.gateware.safety import Safety
from bioloop.gateware.stim_unit import StimUnit

__all__ = ["StimPath"]

#: Members forwarded unchanged from each block to StimPath's own signature.
_FORWARD = {
    "lanes": ("code_wr",),
    "homeostasis": ("theta_wr", "src_wr", "target_wr", "window", "gain", "shift", "theta_min",
                    "theta_max", "enable", "busy", "window_done", "overrun"),
    "stim_unit": ("leak_shift", "source", "pulse_wr", "fire", "fire_lane", "stim_lost", "bad_lane",
                  "sweep_busy", "tick_lost"),
    "safety": ("max_pulse", "max_duty", "max_lanes", "clamp_pulse", "clamp_duty", "clamp_lanes"),
}


class StimPath(wiring.Component):
    """The stimulation half of the fast loop.

    Fire-to-LED: an entry accepted at cycle n that fires lights its LED from
    cycle n + 3 (the pulse is visible at n + 2 and Safety registers it), if
    the lane's stochastic bit is 1.

    Parameters
    ----------
    n_lanes : int
        K (default 64).
    seed0, lane_mode, code_init, lanes_cadence
        As :class:`StochasticLanes`'s ``seed0``, ``mode``, ``code_init``, ``cadence``
        (defaults 0xACE1, "independent", 0, "sweep").
    window_frames, theta_init, n_channels, homeo_cadence
        As :class:`Homeostasis`'s ``window_frames``, ..., ``cadence`` (defaults 3000, 256, 64,
        "sweep"; N is the number of recording channels the sweep cadence counts).
    pulse_bits, pulse_init, fifo_depth, stim_cadence
        As :class:`StimUnit`'s ``pulse_bits``, ..., ``cadence`` (defaults 16, 20 frames, 16,
        "sweep").
    safety_pulse_bits, duty_window, limit_pulse, limit_duty, limit_lanes, safety_cadence
        As :class:`Safety`'s ``pulse_bits``, ..., ``cadence`` (defaults 20, 1_000_000 cycles,
        500_000 cycles, duty_window // 2, K, "sweep"). The StimUnit's fire strobe admits
        the firing lane in Safety's sweep cadence.

    Members
    -------
    routed : In(routed_stream())
        Routed entries from the AERRouter's stim port; never stalled after reset.
    spikes : In(aer_stream())
        SPIKE words (a copy of the host port) for the homeostatic counts; never stalled.
    frame_tick : In(1)
        One cycle per frame (from the Detector): leak and homeostasis windows.
    frame : In(32)
        Current frame number: the STIM words' timestamp.
    led : Out(K)
        LED drive after Safety.
    stim : Out(aer_stream())
        STIM words (and OVERFLOW words counting lost STIM words) to the host port.
    theta_sel : In(lane_addr_width(K)), theta_value : Out(16)
        θ of lane ``theta_sel``, combinationally, for read-back.

    All other members are those of the blocks, under the same names:
    ``code_wr`` (StochasticLanes); ``theta_wr``, ``src_wr``, ``target_wr``,
    ``window``, ``gain``, ``shift``, ``theta_min``, ``theta_max``,
    ``enable``, ``busy``, ``window_done``, ``overrun`` (Homeostasis);
    ``leak_shift``, ``source``, ``pulse_wr``, ``fire``, ``fire_lane``,
    ``stim_lost``, ``bad_lane``, ``sweep_busy``, ``tick_lost`` (StimUnit); ``max_pulse``, ``max_duty``,
    ``max_lanes``, ``clamp_pulse``, ``clamp_duty``, ``clamp_lanes`` (Safety).
    """

    @validated
    def __init__(self, n_lanes: int = 64, *, seed0: int = 0xACE1, lane_mode: str = "independent",
                 code_init: int = 0, window_frames: int = 3000, theta_init: int = THETA_INIT,
                 pulse_bits: int = 16, pulse_init: int = 20, fifo_depth: int = 16,
                 safety_pulse_bits: int = 20, duty_window: int = 1_000_000, limit_pulse: int = 500_000,
                 limit_duty: int | None = None, limit_lanes: int | None = None,
                 safety_cadence: str = "sweep", stim_cadence: str = "sweep",
                 homeo_cadence: str = "sweep", n_channels: int = 64, lanes_cadence: str = "sweep"):
        # Each block validates its own parameters.
        self.lanes = StochasticLanes(n_lanes, seed0=seed0, mode=lane_mode, code_init=code_init,
                                     cadence=lanes_cadence)
        self.homeostasis = Homeostasis(n_lanes, window_frames=window_frames, theta_init=theta_init,
                                       n_channels=n_channels, cadence=homeo_cadence)
        self.stim_unit = StimUnit(n_lanes, pulse_bits=pulse_bits, pulse_init=pulse_init,
                                  fifo_depth=fifo_depth, cadence=stim_cadence)
        self.safety = Safety(n_lanes, pulse_bits=safety_pulse_bits, duty_window=duty_window,
                             limit_pulse=limit_pulse, limit_duty=limit_duty, limit_lanes=limit_lanes,
                             cadence=safety_cadence)
        self.n_lanes = n_lanes
        members = {
            "routed": In(routed_stream()),
            "spikes": In(aer_stream()),
            "frame_tick": In(1),
            "frame": In(TIMESTAMP_BITS),
            "led": Out(n_lanes),
            "stim": Out(aer_stream()),
            "theta_sel": In(lane_addr_width(n_lanes)),
            "theta_value": Out(16),
        }
        for block, names in _FORWARD.items():
            sig = getattr(self, block).signature
            for name in names:
                members[name] = sig.members[name]
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.lanes = lanes = self.lanes
        m.submodules.homeostasis = homeo = self.homeostasis
        m.submodules.stim_unit = unit = self.stim_unit
        m.submodules.safety = safety = self.safety

        connect(m, flipped(self.routed), unit.routed)
        connect(m, flipped(self.spikes), homeo.spikes)
        connect(m, unit.stim, flipped(self.stim))
        m.d.comb += [
            homeo.frame_tick.eq(self.frame_tick),
            unit.frame_tick.eq(self.frame_tick),
            unit.frame.eq(self.frame),
            homeo.theta_addr.eq(unit.theta_addr),
            unit.theta_data.eq(homeo.theta_data),
            homeo.theta_sel.eq(self.theta_sel),
            self.theta_value.eq(homeo.theta_value),
            safety.pulse.eq(unit.pulse),
            safety.bits.eq(lanes.bits),
            safety.fire.eq(unit.fire),
            safety.fire_lane.eq(unit.fire_lane),
            self.led.eq(safety.led),
        ]
        for block, names in _FORWARD.items():
            sub = getattr(self, block)
            for name in names:
                outer, inner = getattr(self, name), getattr(sub, name)
                if sub.signature.members[name].flow == Out and not sub.signature.members[name].is_signature:
                    m.d.comb += outer.eq(inner)
                elif sub.signature.members[name].is_signature:
                    connect(m, flipped(outer), inner)
                else:
                    m.d.comb += inner.eq(outer)
        return m
