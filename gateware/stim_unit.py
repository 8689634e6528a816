"""StimUnit: per-lane Q8.8 integrate-and-fire, leak, pulses and STIM words (DESIGN.md §4).

Bit-exact with :class:`bioloop.host.models.stim_unit.StimUnit`, which states
the arithmetic; the cycle timing is documented there and in
``docs/stim_path.md``.
"""

from __future__ import annotations

from amaranth import Array, Elaboratable, Module, Mux, Signal, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.fifo import FIFOInterface
from amaranth.lib.wiring import In, Out

from bioloop.host.parameters import check_lanes, check_uint, lane_addr_width, validated
from bioloop.gateware.layouts import (
    ADDRESS_BITS, LANE_BITS, SOURCE_BITS, TIMESTAMP_BITS, AERType, AERWord, WritePort, aer_stream,
    routed_stream,
)

__all__ = ["StimUnit", "StagedFIFO", "CADENCES", "min_frame_cycles"]

#: ``"sweep"``: accumulators and pulse counters in a memory, leaked and counted down one lane
#: per cycle after each frame tick (the default); ``"cycle"``: in flip-flops, all lanes at the
#: tick (the original block).
CADENCES = ("sweep", "cycle")


def min_frame_cycles(n_lanes: int) -> int:
    """Cycles between the last beats of two frames (TLAST handshakes) that never wait for the
    StimUnit's sweep when no routed entry arrives during it: K + 2 (docs/stim_path.md)."""
    return n_lanes + 2

_INT16_MIN, _INT16_MAX = -(1 << 15), (1 << 15) - 1


class StimUnit(wiring.Component):
    """K integrate-and-fire accumulators driving pulses and STIM words.

    Routed entries are accepted every cycle (``routed.ready`` is 1 out of
    reset) and act one cycle later: ``acc ← sat16(acc + w)``; if
    ``acc >= θ_k`` the lane fires, ``acc ← acc − θ_k``, its pulse counter
    loads ``pulse_length[k]`` and a STIM word (address k, timestamp =
    ``frame`` when the entry was accepted) is queued for the host port. On
    each frame tick all lanes leak ``acc ← acc − (acc >> leak_shift)`` and
    every running pulse counter counts down one frame: a pulse of L frames
    lasts from the fire to the L-th following frame tick (L − 1 whole frames
    plus the rest of the current one). Pulse lengths count frames, the
    project's unit of time; if frames stop, Safety's caps, counted in clock
    cycles, still end the light.

    The LEDs never wait for the host: STIM words go through a FIFO of
    ``fifo_depth`` words. When it is full a fire still pulses the LED, but
    its STIM word is lost: ``stim_lost`` strobes and the loss is counted; at
    the next cycle with room and no fire an OVERFLOW word (address = number
    of STIM words lost since the last OVERFLOW word, saturating at 2^20 − 1)
    is queued, so the host sees every loss.

    Cadence (an elaboration parameter): ``"sweep"`` (default) keeps the
    accumulators, pulse counters and pulse lengths in memories; the leak and
    the countdown of a frame tick are applied by a sequencer, lane i at the
    edge m + 2 + i after a tick sampled at edge m, plus one edge for every
    entry integrated meanwhile (entries are never stalled: the sweep yields
    the memory to them). So a pulse of L frames lasts from the fire to the
    L-th following sweep visit of its lane. A tick that arrives while a sweep
    is running is queued (one; a second raises ``tick_lost``); the Core holds
    a frame's last beat until the sweep is done (``sweep_busy``), which makes a
    frame last at least :func:`min_frame_cycles` (K + 2) cycles. ``"cycle"``:
    the original block, every lane in flip-flops, leaked and counted down at
    the tick (described above).

    Parameters
    ----------
    n_lanes : int
        K (default 64).
    pulse_bits : int
        Width of pulse lengths in frames (default 16).
    pulse_init : int
        Reset pulse length of every lane in frames (default 20 = 1 ms at 20 kHz).
    fifo_depth : int
        STIM word FIFO depth (default 16).
    cadence : {"sweep", "cycle"}
        See above.

    Members
    -------
    routed : In(routed_stream())
        Routed entries (target lane, signed Q8.8 weight). Targets >= K are
        ignored and strobe ``bad_lane``.
    frame_tick : In(1)
        One cycle per frame: the leak.
    frame : In(32)
        Current frame number, the STIM words' timestamp.
    theta_addr : Out(lane_addr_width(K)), theta_data : In(16)
        A synchronous read port into the firing thresholds θ_k, unsigned Q8.8
        (Homeostasis' θ memory): ``theta_data`` must be θ of the lane ``theta_addr`` named
        in the previous cycle, as it is after the edge between (a write at that edge included).
    leak_shift : In(4)
        Leak shift per frame; 0 disables the leak. Reset 0.
    source : In(8)
        Source field of STIM and OVERFLOW words. Reset 0.
    pulse_wr : In(WritePort(lane_addr_width(K), pulse_bits))
        Pulse length table, frames per fire (0: no pulse).
    pulse : Out(K)
        Pulse envelopes (to Safety).
    stim : Out(aer_stream())
        STIM and OVERFLOW words to the host port.
    fire : Out(1), fire_lane : Out(12)
        Strobe: lane ``fire_lane`` fired in this cycle (its pulse is visible next cycle).
    stim_lost : Out(1), bad_lane : Out(1)
        Strobes for the counters.
    sweep_busy : Out(1)
        Sweep cadence: a frame tick's sweep is running or queued (0 in the cycle cadence).
    tick_lost : Out(1)
        Strobe: a frame tick arrived while a sweep ran and another was queued; its leak and
        countdown are lost (never in the Core, which holds the frame's last beat instead).
    """

    @validated
    def __init__(self, n_lanes: int = 64, pulse_bits: int = 16, pulse_init: int = 20,
                 fifo_depth: int = 16, cadence: str = "sweep"):
        self.n_lanes = check_lanes(n_lanes)
        if isinstance(pulse_bits, bool) or not isinstance(pulse_bits, int):
            raise TypeError(f"pulse_bits must be an int, not {pulse_bits!r}")
        if not 1 <= pulse_bits <= 32:
            raise ValueError(f"pulse_bits must be in 1..32, not {pulse_bits}")
        self.pulse_bits = pulse_bits
        self.pulse_init = check_uint("pulse_init", pulse_init, pulse_bits)
        if isinstance(fifo_depth, bool) or not isinstance(fifo_depth, int):
            raise TypeError(f"fifo_depth must be an int, not {fifo_depth!r}")
        if not 2 <= fifo_depth <= 4096:
            raise ValueError(f"fifo_depth must be in 2..4096, not {fifo_depth}")
        self.fifo_depth = fifo_depth
        if cadence not in CADENCES:
            raise ValueError(f"cadence must be one of {CADENCES}, not {cadence!r}")
        self.cadence = cadence
        #: Fewest cycles between two frame ticks that never wait for the sweep (without entries).
        self.min_frame_cycles = min_frame_cycles(n_lanes) if cadence == "sweep" else 1
        super().__init__({
            "routed": In(routed_stream()),
            "frame_tick": In(1),
            "frame": In(TIMESTAMP_BITS),
            "theta_addr": Out(lane_addr_width(n_lanes)),
            "theta_data": In(16),
            "leak_shift": In(4),
            "source": In(SOURCE_BITS),
            "pulse_wr": In(WritePort(lane_addr_width(n_lanes), pulse_bits)),
            "pulse": Out(n_lanes),
            "stim": Out(aer_stream()),
            "fire": Out(1),
            "fire_lane": Out(LANE_BITS),
            "stim_lost": Out(1),
            "bad_lane": Out(1),
            "sweep_busy": Out(1),
            "tick_lost": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        K = self.n_lanes

        # Stage 1: register the accepted entry, the tick and the frame number.
        ready = Signal(init=0)
        m.d.sync += ready.eq(1)                       # 0 only in the reset cycle
        m.d.comb += self.routed.ready.eq(ready)
        accept = Signal()
        m.d.comb += accept.eq(self.routed.valid & ready)
        s1_valid = Signal()
        s1_target = Signal(LANE_BITS)
        s1_weight = Signal(signed(16))
        s1_tick = Signal()
        s1_frame = Signal(TIMESTAMP_BITS)
        m.d.sync += [
            s1_valid.eq(accept),
            s1_target.eq(self.routed.payload.target),
            s1_weight.eq(self.routed.payload.weight),
            s1_tick.eq(self.frame_tick),
            s1_frame.eq(self.frame),
        ]

        # Stage 2: integrate and fire.
        in_range = Signal()
        m.d.comb += in_range.eq(s1_target < K)
        lane = Signal(range(K))
        m.d.comb += lane.eq(s1_target)
        theta = Signal(16)
        # θ is read a cycle ahead (issue 14): the memory serves θ of the entry's lane at stage 2.
        m.d.comb += [self.theta_addr.eq(self.routed.payload.target), theta.eq(self.theta_data)]
        acc_now = Signal(signed(16))
        total = Signal(signed(17))
        sat = Signal(signed(16))
        fired = Signal()
        integrated = Signal(signed(16))
        m.d.comb += [
            total.eq(acc_now + s1_weight),
            sat.eq(Mux(total > _INT16_MAX, _INT16_MAX, Mux(total < _INT16_MIN, _INT16_MIN, total))),
            fired.eq(s1_valid & in_range & (sat >= theta)),
            integrated.eq(Mux(fired, sat - theta, sat)),
        ]
        if self.cadence == "cycle":
            self._lanes_per_cycle(m, lane, s1_valid, in_range, s1_tick, acc_now, fired, integrated)
        else:
            self._lanes_sweep(m, lane, accept, s1_valid, in_range, acc_now, fired, integrated)
        m.d.sync += [
            self.fire.eq(fired), self.fire_lane.eq(s1_target),
            self.bad_lane.eq(s1_valid & ~in_range),
        ]
        self._stim_words(m, fired, s1_target, s1_frame)
        return m

    def _lanes_per_cycle(self, m, lane, s1_valid, in_range, s1_tick, acc_now, fired, integrated):
        """The original cadence: every lane's accumulator and pulse counter in flip-flops; a
        tick leaks every lane and counts every pulse down in the same cycle."""
        K = self.n_lanes
        acc = [Signal(signed(16), name=f"acc{k}") for k in range(K)]
        remaining = [Signal(self.pulse_bits, name=f"remaining{k}") for k in range(K)]
        length = [Signal(self.pulse_bits, init=self.pulse_init, name=f"length{k}") for k in range(K)]
        with m.If(self.pulse_wr.en):
            for k in range(K):
                with m.If(self.pulse_wr.addr == k):
                    m.d.sync += length[k].eq(self.pulse_wr.data)
        m.d.comb += acc_now.eq(Array(acc)[lane])
        for k in range(K):
            base = Signal(signed(16), name=f"base{k}")
            m.d.comb += base.eq(Mux(s1_valid & in_range & (lane == k), integrated, acc[k]))
            with m.If(s1_tick & (self.leak_shift != 0)):
                m.d.sync += acc[k].eq(base - (base >> self.leak_shift))
            with m.Else():
                m.d.sync += acc[k].eq(base)
            with m.If(fired & (lane == k)):
                m.d.sync += remaining[k].eq(length[k])
            with m.Elif(s1_tick & (remaining[k] != 0)):
                m.d.sync += remaining[k].eq(remaining[k] - 1)
            m.d.comb += self.pulse[k].eq(remaining[k] != 0)

    def _lanes_sweep(self, m, lane, accept, s1_valid, in_range, acc_now, fired, integrated):
        """The sweep cadence: accumulators and pulse counters in a memory; after each frame
        tick a sequencer leaks and counts down one lane per cycle, yielding the memory to
        routed entries (which are never stalled)."""
        K = self.n_lanes
        abits = max(1, (K - 1).bit_length())
        word = data.StructLayout({"acc": signed(16), "remaining": self.pulse_bits})
        m.submodules.lane_state = state = memory.Memory(shape=word, depth=K, init=[])
        m.submodules.lengths = lengths = memory.Memory(shape=self.pulse_bits, depth=K,
                                                        init=[self.pulse_init] * K)
        wp = state.write_port()
        rd_entry = state.read_port(transparent_for=(wp,))
        rd_sweep = state.read_port(transparent_for=(wp,))
        len_wp = lengths.write_port()
        len_rd = lengths.read_port(transparent_for=(len_wp,))
        m.d.comb += [
            len_wp.addr.eq(self.pulse_wr.addr), len_wp.data.eq(self.pulse_wr.data),
            len_wp.en.eq(self.pulse_wr.en & (self.pulse_wr.addr < K)),
            rd_entry.addr.eq(self.routed.payload.target[:abits]),
            len_rd.addr.eq(self.routed.payload.target[:abits]),
            acc_now.eq(rd_entry.data.acc),
        ]
        env = Signal(K)                                 # the pulse envelopes
        m.d.comb += self.pulse.eq(env)

        # The sweep: a tick sampled at edge m reads lane i at edge m + 1 + i + (entries taken
        # meanwhile) and writes it one edge later. An entry taken at an edge holds the sweep
        # there, so the write port serves one of them per edge.
        busy = Signal()
        again = Signal()                                # a tick arrived while busy
        ptr = Signal(abits)
        issue = Signal()
        last = Signal()
        m.d.comb += [issue.eq(busy & ~accept), last.eq(issue & (ptr == K - 1)),
                     rd_sweep.addr.eq(ptr)]
        sw_valid = Signal()
        sw_lane = Signal(abits)
        m.d.sync += [sw_valid.eq(issue), sw_lane.eq(ptr), self.tick_lost.eq(0)]
        # The write address is chosen a cycle ahead, into flip-flops (the sweep's lane when the
        # sweep reads, else the entry's): the LUTRAM's write address (its port D read address)
        # then hangs off registers, not off the in-range check and the sweep/entry choice.
        wr_addr = Signal(abits)
        m.d.sync += wr_addr.eq(Mux(issue, ptr, self.routed.payload.target[:abits]))
        with m.If(self.frame_tick & (~busy | last)):
            m.d.sync += [busy.eq(1), ptr.eq(0)]
        with m.Elif(self.frame_tick):
            m.d.sync += [again.eq(1), self.tick_lost.eq(again)]
            with m.If(issue):
                m.d.sync += ptr.eq(ptr + 1)
        with m.Elif(last):
            m.d.sync += [busy.eq(again), ptr.eq(0), again.eq(0)]
        with m.Elif(issue):
            m.d.sync += ptr.eq(ptr + 1)
        m.d.comb += self.sweep_busy.eq(busy)

        cur = rd_sweep.data
        leaked = Signal(signed(16))
        m.d.comb += leaked.eq(Mux(self.leak_shift != 0, cur.acc - (cur.acc >> self.leak_shift), cur.acc))
        countdown = Signal(self.pulse_bits)
        m.d.comb += countdown.eq(Mux(cur.remaining != 0, cur.remaining - 1, 0))
        m.d.comb += wp.addr.eq(wr_addr)
        with m.If(sw_valid):
            m.d.comb += [wp.en.eq(1), wp.data.acc.eq(leaked),
                         wp.data.remaining.eq(countdown)]
            m.d.sync += env.bit_select(sw_lane, 1).eq(countdown != 0)
        with m.Elif(s1_valid & in_range):
            m.d.comb += [wp.en.eq(1), wp.data.acc.eq(integrated),
                         wp.data.remaining.eq(Mux(fired, len_rd.data, rd_entry.data.remaining))]
            with m.If(fired):
                m.d.sync += env.bit_select(lane, 1).eq(len_rd.data != 0)

    def _stim_words(self, m, fired, s1_target, s1_frame):
        """STIM words through a FIFO; losses become an OVERFLOW word."""
        m.submodules.fifo = queue = StagedFIFO(width=AERWord.size, depth=self.fifo_depth)
        lost = Signal(ADDRESS_BITS)
        stim_word = Signal(AERWord)
        overflow_word = Signal(AERWord)
        m.d.comb += [
            stim_word.address.eq(s1_target), stim_word.source.eq(self.source),
            stim_word.type.eq(AERType.STIM), stim_word.timestamp.eq(s1_frame),
            overflow_word.address.eq(lost), overflow_word.source.eq(self.source),
            overflow_word.type.eq(AERType.OVERFLOW), overflow_word.timestamp.eq(s1_frame),
        ]
        m.d.sync += self.stim_lost.eq(0)
        # The word is chosen by ``fired`` alone (the queue registers it; only w_en says whether).
        m.d.comb += [queue.w_data.eq(Mux(fired, stim_word, overflow_word)),
                     queue.w_en.eq(fired | (lost != 0))]
        with m.If(fired):
            with m.If(~queue.w_rdy):
                m.d.sync += [lost.eq(Mux(lost == (1 << ADDRESS_BITS) - 1, lost, lost + 1)),
                             self.stim_lost.eq(1)]
        with m.Elif((lost != 0) & queue.w_rdy):
            m.d.sync += lost.eq(0)
        m.d.comb += [
            self.stim.valid.eq(queue.r_rdy),
            self.stim.payload.eq(queue.r_data),
            queue.r_en.eq(self.stim.ready),
        ]


class StagedFIFO(Elaboratable, FIFOInterface):
    """``amaranth.lib.fifo.SyncFIFOBuffered``, cycle for cycle, with its write registered.

    ``w_rdy``, ``r_rdy``, ``r_data`` and the levels are those of a ``SyncFIFOBuffered`` of the
    same width and depth at every edge (tests/gateware/test_stim_unit.py runs both side by
    side), but a written word first waits one cycle in a register (``pend``) and goes to the
    memory from there. ``w_en`` therefore only reaches flip-flops: the memory's write enable,
    the pointers and the level hang off registers (issue 14: the StimUnit's fire compare
    reached the buffered queue's level and memory write enable through 11-12 LUT levels).
    The buffered queue's inner level is ``level + pend_valid`` here, so its ``w_rdy`` and its
    output stage are unchanged: the output takes the oldest word, from the memory or, when
    the memory is empty, from ``pend``; a word written to an empty queue is on the output two
    edges later, as in ``SyncFIFOBuffered``. Depth >= 2.
    """

    @validated
    def __init__(self, *, width: int, depth: int):
        if isinstance(depth, bool) or not isinstance(depth, int):
            raise TypeError(f"depth must be an int, not {depth!r}")
        if depth < 2:
            raise ValueError(f"depth must be at least 2, not {depth}")
        super().__init__(width=width, depth=depth)

    def elaborate(self, platform):
        m = Module()
        D = self.depth - 1                              # the buffered queue's inner depth
        m.submodules.storage = storage = memory.Memory(shape=self.width, depth=D, init=[])
        wp = storage.write_port()
        rp = storage.read_port(domain="comb")
        pend_valid = Signal()
        pend = Signal(self.width)
        level = Signal(range(D + 1))                    # words in the memory
        produce, consume = Signal(range(D)), Signal(range(D))
        m.d.comb += self.w_rdy.eq(~((level == D) | ((level == D - 1) & pend_valid)))
        m.d.sync += [pend_valid.eq(self.w_en & self.w_rdy), pend.eq(self.w_data)]

        ram_empty = level == 0
        take, from_ram, to_ram = Signal(), Signal(), Signal()
        m.d.comb += [
            take.eq((~ram_empty | pend_valid) & (~self.r_rdy | self.r_en)),
            from_ram.eq(take & ~ram_empty),
            to_ram.eq(pend_valid & ~(take & ram_empty)),
            rp.addr.eq(consume),
            wp.addr.eq(produce), wp.data.eq(pend), wp.en.eq(to_ram),
        ]

        def incr(ptr):
            return Mux(ptr == D - 1, 0, ptr + 1) if D > 1 else 0

        with m.If(to_ram):
            m.d.sync += produce.eq(incr(produce))
        with m.If(from_ram):
            m.d.sync += consume.eq(incr(consume))
        with m.If(to_ram & ~from_ram):
            m.d.sync += level.eq(level + 1)
        with m.Elif(from_ram & ~to_ram):
            m.d.sync += level.eq(level - 1)
        with m.If(take):
            m.d.sync += [self.r_rdy.eq(1), self.r_data.eq(Mux(ram_empty, pend, rp.data))]
        with m.Elif(self.r_en):
            m.d.sync += self.r_rdy.eq(0)
        m.d.comb += [self.w_level.eq(level + pend_valid + self.r_rdy), self.r_level.eq(self.w_level)]
        return m
