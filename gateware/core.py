"""Core: the whole fast loop behind one AXI4-Lite slave and two AXI-Streams (DESIGN.md §1, §3, §5).

::

    s_axil ─► CSRBank ─► configuration, tables, counters, status, latency probe
    samples ─► AERPath (Detector ─► AEREncoder ─► AERRouter) ─┬─ host port ─┐
                                                             └─ stim port ─► StimPath ─► led
                                             StimPath STIM words ──────────┴─► merge ─► aer (TLAST)

One clock domain at :data:`~bioloop.gateware.layouts.FCLK_HZ`. The
cycle-exact model is :class:`bioloop.host.models.core.Core`; the choices made
where the register map and the blocks do not line up exactly are listed in
``docs/core.md``.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.hdl import ResetInserter
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from bioloop.host.layouts import LATENCY_BITS, PROBE_OFFSET, THETA_INIT
from bioloop.host.parameters import validated
from bioloop.host.regmap import RegisterMap

from .aer_merge import AERMerge, AEROutBeat
from .aer_path import AERPath
from .csr import AXI4LiteSignature, CSRBank
from .layouts import sample_stream
from .stim_path import StimPath
from bioloop.host.models.core_budget import check_core_budget, min_frame_cycles

__all__ = ["Core", "AEROutBeat", "PROBE_OFFSET", "LATENCY_BITS"]




def _write(m: Module, dst, src, data=None) -> None:
    """Drive a block's write port from a CSR bank table port (widths may differ)."""
    m.d.comb += [dst.addr.eq(src.addr), dst.data.eq(src.data if data is None else data),
                 dst.en.eq(src.en)]


class Core(wiring.Component):
    """The bioloop core: AERPath and StimPath under one register map.

    Parameters
    ----------
    n_channels : int
        Recording channels N (even, 2..4096).
    n_lanes : int
        Stim lanes K (1..4096).
    fanout : int
        Route fanout F (1..256).
    seed0, lane_mode
        StochasticLanes seed of lane 0 and mode (defaults 0xACE1, "independent").
    pulse_init, theta_init
        Reset pulse length (frames) and θ (Q8.8) of every lane.
    fifo_depth : int
        STIM word FIFO of the StimUnit.
    duty_window, limit_pulse, limit_duty, limit_lanes
        Safety's elaboration-time window and hard limits (cycles, cycles,
        cycles per window, lanes); the CSRs can only tighten them.
        ``safety_pulse_bits`` is fixed at 20.
    stim_cadence : {"sweep", "cycle"}
        The StimUnit's cadence (default "sweep": accumulators and pulse counters
        in a memory, leaked and counted down by a sequencer after each frame;
        the Core then holds a frame's last beat while that sequencer runs, so a
        frame lasts at least ``min_frame_cycles`` = K + 2 cycles; "cycle": the
        original block, no minimum).
    lanes_cadence : {"sweep", "cycle"}
        StochasticLanes' cadence (default "sweep": states and codes in
        memories, one lane compared and stepped per cycle, each bit held S
        cycles; "cycle": every lane every cycle; ``lane_mode="shared"``
        needs "cycle").
    homeo_cadence : {"sweep", "cycle"}
        Homeostasis' cadence (default "sweep": spikes counted per recording
        channel in memory banks, lane tables in memories; "cycle": the
        original per-lane counters).
    encoder_cadence : {"queue", "cycle"}
        The AEREncoder's cadence (default "queue": each cycle's beat of
        detections is one entry of a LUTRAM queue of N/2 entries (rounded up
        to a power of two, at most 256), words leave one per cycle in arrival
        order, lossless with the output ready; "cycle": the original
        per-address pending bits and round-robin).
    sample_rate_hz : float
        The acquisition's frame rate (default 20,000): a parameter set that
        cannot take a frame in FCLK_HZ / sample_rate_hz cycles, or whose
        memories do not fit the xc7z020, is refused with the numbers
        (:mod:`bioloop.host.models.core_budget`).
    safety_cadence : {"sweep", "cycle"}
        Safety's cadence (default "sweep": per-lane counters in a memory, one
        lane visited per cycle; "cycle": the original per-cycle block).

    Members
    -------
    s_axil : In(AXI4LiteSignature(regmap.addr_width))
        Control and status registers (:class:`~bioloop.host.regmap.RegisterMap`).
    samples : In(stream of SampleBeat)
        32-bit sample beats, channel 2i low, 2i+1 high, ``last`` (TLAST) on the
        final beat of each frame. Not ready while ``control.enable`` is 0 or the
        Detector sweeps its state after a (soft) reset.
    aer : Out(stream of AEROutBeat)
        64-bit AER words (SPIKE, OVERFLOW from the AER path; STIM, OVERFLOW
        from the StimPath), ``last`` on every ``aer_block_words``-th word.
    led : Out(K)
        LED drive after Safety, registered.
    """

    @validated
    def __init__(self, n_channels: int = 64, n_lanes: int = 64, fanout: int = 16, *,
                 seed0: int = 0xACE1, lane_mode: str = "independent", pulse_init: int = 20,
                 theta_init: int = THETA_INIT, fifo_depth: int = 16, duty_window: int = 1_000_000,
                 limit_pulse: int = 500_000, limit_duty: int | None = None,
                 limit_lanes: int | None = None, safety_cadence: str = "sweep",
                 stim_cadence: str = "sweep", homeo_cadence: str = "sweep",
                 lanes_cadence: str = "sweep", encoder_cadence: str = "queue",
                 sample_rate_hz: float = 20_000):
        self.frame_cycles = check_core_budget(n_channels, n_lanes, fanout, sample_rate_hz=sample_rate_hz,
                                              stim_cadence=stim_cadence)
        self.min_frame_cycles = min_frame_cycles(n_lanes, stim_cadence)
        self.regmap = RegisterMap(n_channels, n_lanes, fanout)
        self.bank = CSRBank(self.regmap)
        # The Detector's and the AEREncoder's counters are kept once, in the bank (counters=False).
        self.aer_path = AERPath(n_channels, fanout, encoder_cadence=encoder_cadence, counters=False)
        self.stim_path = StimPath(n_lanes, seed0=seed0, lane_mode=lane_mode, code_init=0,
                                  theta_init=theta_init, pulse_bits=16, pulse_init=pulse_init,
                                  fifo_depth=fifo_depth, safety_pulse_bits=20,
                                  duty_window=duty_window, limit_pulse=limit_pulse,
                                  limit_duty=limit_duty, limit_lanes=limit_lanes,
                                  safety_cadence=safety_cadence, stim_cadence=stim_cadence,
                                  homeo_cadence=homeo_cadence, n_channels=n_channels,
                                  lanes_cadence=lanes_cadence)
        self.n_channels, self.n_lanes, self.fanout = n_channels, n_lanes, fanout
        self.params = dict(seed0=seed0, lane_mode=lane_mode, pulse_init=pulse_init,
                           theta_init=theta_init, fifo_depth=fifo_depth,
                           duty_window=self.stim_path.safety.duty_window,
                           limit_pulse=self.stim_path.safety.limit_pulse,
                           limit_duty=self.stim_path.safety.limit_duty,
                           limit_lanes=self.stim_path.safety.limit_lanes,
                           safety_cadence=safety_cadence, stim_cadence=stim_cadence,
                           homeo_cadence=homeo_cadence, lanes_cadence=lanes_cadence,
                           encoder_cadence=encoder_cadence)
        super().__init__({
            "s_axil": In(AXI4LiteSignature(self.regmap.addr_width)),
            "samples": In(sample_stream()),
            "aer": Out(stream.Signature(AEROutBeat)),
            "led": Out(n_lanes),
        })

    def elaborate(self, platform):
        m = Module()
        bank, ap, sp = self.bank, self.aer_path, self.stim_path
        m.submodules.bank = bank
        # soft_reset clears the AER path (pipelines, frame counter, Detector state sweep);
        # its tables live in block RAM, which a reset does not touch.
        m.submodules.aer_path = ResetInserter(bank.soft_reset)(ap)
        m.submodules.stim_path = sp
        wiring.connect(m, wiring.flipped(self.s_axil), bank.s_axil)
        self._samples_in(m)
        self._stim_path_config(m)
        self._aer_out(m)
        self._counters(m)
        self._latency_probe(m)
        return m

    def _samples_in(self, m: Module) -> None:
        """Samples into the AER path, gated by ``control.enable``; its configuration and tables.
        A frame's last beat waits while the StimUnit's per-frame sweep runs or is about to start
        (the minimum frame period)."""
        bank, ap, sp = self.bank, self.aer_path, self.stim_path
        hold = Signal()
        if sp.stim_unit.cadence == "sweep":
            # The offered beat ends a frame by count or by TLAST, as the Detector decides: keep
            # its beat position (reset with the AER path, restarted at every frame end).
            nb = self.n_channels // 2
            pos = Signal(range(max(2, nb)))
            with m.If(bank.soft_reset | ap.frame_end):
                m.d.sync += pos.eq(0)
            with m.Elif(ap.samples.valid & ap.samples.ready):
                m.d.sync += pos.eq(pos + 1)
            ends = Signal()
            m.d.comb += [ends.eq(self.samples.payload.last | (pos == nb - 1)),
                         hold.eq(ends & (sp.sweep_busy | ap.frame_tick))]
        m.d.comb += [
            ap.samples.payload.eq(self.samples.payload),
            ap.samples.valid.eq(self.samples.valid & bank.enable & ~hold),
            self.samples.ready.eq(ap.samples.ready & bank.enable & ~hold),
            ap.refractory.eq(bank.refractory),
            ap.source.eq(bank.aer_source),
            ap.clear.eq(0),
        ]
        _write(m, ap.threshold_write, bank.thresholds)
        _write(m, ap.polarity_write, bank.polarity)
        _write(m, ap.fanout_write, bank.route_count)
        _write(m, ap.table_write, bank.routes)

    def _stim_path_config(self, m: Module) -> None:
        """The StimPath's registers and tables from the bank; routed entries in, LEDs out."""
        bank, ap, sp = self.bank, self.aer_path, self.stim_path
        # ---- StimPath configuration
        max_duty_bits = len(sp.max_duty)
        m.d.comb += [
            sp.frame_tick.eq(ap.frame_tick),
            sp.frame.eq(ap.frame),
            sp.window.eq(bank.homeo_window),
            sp.gain.eq(bank.homeo_gain),
            sp.shift.eq(bank.homeo_shift),
            sp.theta_min.eq(bank.theta_min),
            sp.theta_max.eq(bank.theta_max),
            sp.enable.eq(bank.homeo_enable),
            sp.leak_shift.eq(bank.leak_shift),
            sp.source.eq(bank.aer_source),
            sp.max_pulse.eq(bank.safety_max_pulse),
            sp.max_lanes.eq(bank.safety_max_lanes),
        ]
        if max_duty_bits >= 16:
            m.d.comb += sp.max_duty.eq(bank.safety_max_duty)
        else:
            top = (1 << max_duty_bits) - 1
            m.d.comb += sp.max_duty.eq(Mux(bank.safety_max_duty > top, top, bank.safety_max_duty))
        _write(m, sp.code_wr, bank.lane_codes)
        _write(m, sp.theta_wr, bank.theta)
        _write(m, sp.src_wr, bank.homeo_src)
        _write(m, sp.target_wr, bank.homeo_target)
        _write(m, sp.pulse_wr, bank.pulse_lengths)
        wiring.connect(m, ap.stim, sp.routed)
        m.d.comb += self.led.eq(sp.led)

    def _aer_out(self, m: Module) -> None:
        """The router's host port and the STIM words merged onto ``aer`` (:class:`AERMerge`)."""
        bank, ap, sp = self.bank, self.aer_path, self.stim_path
        soft = bank.soft_reset
        # ---- AER out: the router's host port and the STIM words, merged without loss.
        m.submodules.aer_merge = merge = AERMerge()
        wiring.connect(m, ap.host, merge.host)
        wiring.connect(m, sp.stim, merge.stim)
        wiring.connect(m, merge.out, wiring.flipped(self.aer))
        m.d.comb += [
            merge.block_words.eq(bank.aer_block_words),
            merge.restart.eq(soft),
            # Homeostasis counts the words as they leave the router (never stalled).
            sp.spikes.valid.eq(ap.host.valid & ap.host.ready),
            sp.spikes.payload.eq(ap.host.payload),
        ]

    def _counters(self, m: Module) -> None:
        """The bank's counters: increments from stream handshakes, strobes and counter deltas."""
        bank, ap, sp = self.bank, self.aer_path, self.stim_path
        soft = bank.soft_reset
        taken = self.aer.valid & self.aer.ready
        # ---- counters: increments from stream handshakes, strobes and counter deltas
        cnt = bank.count
        deltas = {}
        # The Detector's and the AEREncoder's increments, registered: a block counter's delta
        # (its value minus last cycle's) as the bank saw it before, without the block counters.
        for name, inc in (("framing_errors", ap.framing_error), ("detections", ap.detections_inc),
                          ("lost", ap.lost_inc)):
            reg = Signal.like(inc, name=f"inc_{name}")
            m.d.sync += reg.eq(Mux(soft, 0, inc))
            deltas[name] = reg
        # The router's unmapped counter grows by at most 1 per cycle, so its per-cycle delta is
        # exact in 2 low bits: no 32-bit subtraction on the path.
        for name, most in (("unmapped", 1),):
            width = most.bit_length() + 1
            prev = Signal(width, name=f"prev_{name}")
            cur = getattr(ap, name)[:width]
            m.d.sync += prev.eq(cur)
            with m.If(soft):
                m.d.sync += prev.eq(0)
            deltas[name] = (cur - prev)[:width]
        lost_inc = Signal(2)
        most_lost = 2 if ap.encoder.cadence == "queue" else self.n_channels
        if most_lost + 1 <= 3:
            # The queue cadence loses at most 2 spikes per cycle, the StimUnit at most 1 STIM
            # word: at most 3, what the overflows counter takes in one cycle (no backlog).
            m.d.comb += lost_inc.eq(deltas["lost"] + sp.stim_lost)
        else:
            lost_due = Signal(33)     # encoder losses (and lost STIM words) not yet counted
            lost_total = Signal(34)
            big = Signal()
            m.d.comb += [
                lost_total.eq(lost_due + deltas["lost"] + sp.stim_lost),
                big.eq(lost_total[2:].any()),             # > 3, without a compare chain
                lost_inc.eq(Mux(big, 3, lost_total[:2])),
            ]
            m.d.sync += lost_due.eq(Mux(big, lost_total - 3, 0))
        m.d.comb += [
            cnt.frames.eq(ap.frame_end),
            cnt.framing_errors.eq(deltas["framing_errors"] != 0),
            cnt.detections.eq(deltas["detections"][:2]),
            cnt.aer_words.eq(taken),
            cnt.overflows.eq(lost_inc),
            cnt.routed_entries.eq(ap.stim.valid & ap.stim.ready),
            cnt.unmapped_words.eq(deltas["unmapped"] != 0),
            cnt.stim_fires.eq(sp.fire),
            cnt.safety_clamps.eq(sp.clamp_pulse | sp.clamp_duty | sp.clamp_lanes),
        ]
        m.d.comb += sp.theta_sel.eq(bank.theta_select)
        m.d.sync += bank.theta_value.eq(sp.theta_value)
        m.d.comb += [bank.safety_duty_window.eq(sp.safety.duty_window),
                     bank.min_frame_cycles.eq(self.min_frame_cycles)]

    def _latency_probe(self, m: Module) -> None:
        """The latency probe (DESIGN.md §5, §6)."""
        bank, ap, sp = self.bank, self.aer_path, self.stim_path
        soft = bank.soft_reset
        N, K = self.n_channels, self.n_lanes
        # ---- latency probe (DESIGN.md §5, §6): from the handshake of the beat whose
        # crossing caused a lane's fire to that lane's first LED-high cycle.
        cyc = Signal(LATENCY_BITS)
        m.d.sync += cyc.eq(cyc + 1)
        rows = N // 2
        m.submodules.stamps = stamps = memory.Memory(shape=LATENCY_BITS, depth=rows, init=[])
        st_w = stamps.write_port()
        st_r = stamps.read_port()
        # The row of the beat whose crossings are visible now: the Detector's, not re-encoded.
        row, any_spike = ap.spike_pair, ap.spike_pair_hits.any()
        row_bits = max(1, (rows - 1).bit_length())
        m.d.comb += [st_w.addr.eq(row), st_w.data.eq(cyc), st_w.en.eq(any_spike),
                     st_r.addr.eq(ap.stim.payload.address[1:1 + row_bits])]
        stamp2 = Signal(LATENCY_BITS)      # aligned with the StimUnit's registered fire strobe
        m.d.sync += stamp2.eq(st_r.data)
        armed = Signal()
        lane = Signal(range(K) if K > 1 else 1)
        start = Signal(LATENCY_BITS)
        pulse_d = Signal()
        pulses = sp.stim_unit.pulse
        led_bit = Signal()
        m.d.comb += led_bit.eq(self.led.bit_select(lane, 1))
        elapsed = Signal(LATENCY_BITS + 1)
        m.d.comb += elapsed.eq((cyc - start)[:LATENCY_BITS] + PROBE_OFFSET)
        probe = bank.latency
        top = (1 << LATENCY_BITS) - 1
        m.d.comb += [probe.valid.eq(armed & led_bit),
                     probe.cycles.eq(Mux(elapsed > top, top, elapsed))]
        fire_lane = sp.fire_lane[:len(lane)]
        with m.If(armed):
            m.d.sync += pulse_d.eq(pulses.bit_select(lane, 1))
            # A fire whose envelope ended (or never started) without light is not measured.
            with m.If(led_bit | ~pulse_d):
                m.d.sync += armed.eq(0)
        with m.Elif(sp.fire & (sp.fire_lane < K)):
            m.d.sync += [armed.eq(1), lane.eq(fire_lane), start.eq(stamp2),
                         pulse_d.eq(pulses.bit_select(fire_lane, 1))]

        with m.If(soft):
            m.d.sync += armed.eq(0)

