"""Homeostasis: per-lane Q8.8 thresholds moved once per window of W frames (DESIGN.md §4).

Bit-exact with :class:`bioloop.host.models.homeostasis.Homeostasis` (its
``clock`` method gives the cycle timing).
"""

from __future__ import annotations

from amaranth import Array, Const, Module, Mux, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from bioloop.host.parameters import check_lanes, check_uint, lane_addr_width, validated
from bioloop.gateware.lane_vector import one_hot
from bioloop.gateware.layouts import ADDRESS_BITS, AERType, WritePort, aer_stream
from bioloop.host.layouts import (HOMEO_COUNT_BITS, HOMEO_GAIN_BITS, HOMEO_SHIFT_BITS, HOMEO_TARGET_BITS,
                                  HOMEO_WINDOW_BITS, THETA_INIT, THETA_MAX, THETA_MIN)

__all__ = ["Homeostasis", "COUNT_BITS", "TARGET_BITS", "GAIN_BITS", "SHIFT_BITS", "WINDOW_BITS",
           "CADENCES"]

#: ``"sweep"``: per-channel counts and the lane tables in memories (default); ``"cycle"``:
#: the original block, per-lane counts and tables in flip-flops.
CADENCES = ("sweep", "cycle")

# The widths of the contract (bioloop.host.layouts), under the names this block uses.
COUNT_BITS = HOMEO_COUNT_BITS
TARGET_BITS = HOMEO_TARGET_BITS
GAIN_BITS = HOMEO_GAIN_BITS
SHIFT_BITS = HOMEO_SHIFT_BITS
WINDOW_BITS = HOMEO_WINDOW_BITS


class Homeostasis(wiring.Component):
    """Per-lane thresholds θ_k with the integer homeostatic update.

    Every SPIKE word is accepted at once (``spikes.ready`` is always 1) and
    counts for each lane k with ``src[k] == address``. When the W-th frame
    tick of a window arrives the counts are snapshotted and cleared, and one
    lane per cycle is updated,
    ``θ_k ← clamp(θ_k + ((c_k·2^8 − c*_k)·g) >> s, θ_min, θ_max)``,
    lane i written 4 + i cycles after the closing tick (K + 3 cycles for all
    lanes), while counting goes on. A window that closes during an update
    raises ``overrun`` and its counts carry into the next window. Windows
    must therefore last at least K + 4 cycles.

    That is the ``"cycle"`` cadence (the original block: per-lane sources,
    counts and targets in flip-flops, K address compares per SPIKE word).
    The ``"sweep"`` cadence (default) counts spikes per *recording channel*
    in two memory banks of N counts (one counts while the other is read and
    then cleared) and keeps the sources and targets in memories: lane i
    reads its source at c + 1 + i, that channel's count at c + 2 + i and is
    written at c + 6 + i after a close at edge c; then the read bank is
    cleared in N cycles, so an update is busy for K + max(5, N) cycles. A
    lane's count is the count of the channel its source names *when the
    update reads it*; a source >= N counts nothing. The tables live in
    memories initialised at configuration (a reset does not restore them);
    after a reset both count banks are cleared in N cycles, during which
    ``busy`` is high and SPIKE words are not counted.

    Parameters
    ----------
    n_lanes : int
        K (default 64).
    window_frames : int
        Reset value of ``window`` (default 3000), 0 .. 2^24 − 1.
    theta_init : int
        Reset value of every θ_k, Q8.8 (default 256 = 1.0).
    theta_min, theta_max : int
        Reset values of the clamp bounds (defaults 64 and 512).
    target, gain, shift : int
        Reset values of every lane's c*, and of g and s (default 0: θ does not
        move until the host writes constants from ``homeostasis_constants``).
    n_channels : int
        N, the recording channels counted in the sweep cadence (default 64).
    cadence : {"sweep", "cycle"}
        See above.

    Members
    -------
    spikes : In(aer_stream())
        AER words; only type SPIKE counts. Never stalled.
    frame_tick : In(1)
        One cycle per frame (the end of a frame).
    theta_wr : In(WritePort(lane_addr_width(K), 16))
        Host write of θ_k (Q8.8). Wins over an update of the same lane in the same cycle.
    src_wr : In(WritePort(lane_addr_width(K), 20))
        ``homeo_src[k]``: recording channel lane k watches (reset value k).
    target_wr : In(WritePort(lane_addr_width(K), 24))
        c*_k, lane k's target spikes per window, UQ16.8.
    window : In(24)
        W, frames per window; 0 means 2^24.
    gain : In(17), shift : In(6)
        g and s of the update.
    theta_min, theta_max : In(16)
        Clamp bounds, Q8.8; if θ_min > θ_max, θ_max wins.
    enable : In(1)
        Reset 1. When 0, windows close and counts clear but θ is not written.
    theta_addr : In(lane_addr_width(K)), theta_data : Out(16)
        θ of the lane ``theta_addr`` named in the previous cycle, as it is after the edge between
        (a write at that edge included): the StimUnit's synchronous read port.
    theta_sel : In(lane_addr_width(K)), theta_value : Out(16)
        θ of lane ``theta_sel``, combinationally (the register map's read-back).

    θ lives in LUTRAM (issue 14): two banks, one written by the host and one by
    the update, and a 2-bit tag per lane saying which holds the lane's θ (or
    that it still has its reset value), so both writers land in the same cycle
    and a reset returns every θ to ``theta_init``, exactly as flip-flops did.
    busy : Out(1)
        An update is in flight.
    window_done : Out(1)
        One-cycle strobe: a window closed and an update started.
    overrun : Out(1)
        One-cycle strobe: a window closed while an update was running.
    """

    @validated
    def __init__(self, n_lanes: int = 64, window_frames: int = 3000, theta_init: int = THETA_INIT,
                 theta_min: int = THETA_MIN, theta_max: int = THETA_MAX, target: int = 0, gain: int = 0,
                 shift: int = 0, n_channels: int = 64, cadence: str = "sweep"):
        self.n_lanes = check_lanes(n_lanes)
        self.n_channels = check_uint("n_channels", n_channels, 13, minimum=1)
        if n_channels > 4096:
            raise ValueError(f"n_channels must be in 1..4096, not {n_channels}")
        if cadence not in CADENCES:
            raise ValueError(f"cadence must be one of {CADENCES}, not {cadence!r}")
        self.cadence = cadence
        check_uint("window_frames", window_frames, WINDOW_BITS)
        check_uint("theta_init", theta_init, 16)
        check_uint("theta_min", theta_min, 16)
        check_uint("theta_max", theta_max, 16)
        check_uint("target", target, TARGET_BITS)
        check_uint("gain", gain, GAIN_BITS)
        check_uint("shift", shift, SHIFT_BITS)
        self.theta_init = theta_init
        self.target_init = target
        aw = lane_addr_width(n_lanes)
        super().__init__({
            "spikes": In(aer_stream()),
            "frame_tick": In(1),
            "theta_wr": In(WritePort(aw, 16)),
            "src_wr": In(WritePort(aw, ADDRESS_BITS)),
            "target_wr": In(WritePort(aw, TARGET_BITS)),
            "window": In(WINDOW_BITS, init=window_frames),
            "gain": In(GAIN_BITS, init=gain),
            "shift": In(SHIFT_BITS, init=shift),
            "theta_min": In(16, init=theta_min),
            "theta_max": In(16, init=theta_max),
            "enable": In(1, init=1),
            "theta_addr": In(aw),
            "theta_data": Out(16),
            "theta_sel": In(aw),
            "theta_value": Out(16),
            "busy": Out(1),
            "window_done": Out(1),
            "overrun": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        K = self.n_lanes
        # Windows of W frame ticks.
        # ``frames`` counts the ticks of the window so far plus one (mod 2^24), so the close is
        # an equality of two registers (issue 14: ``frames == window - 1`` put a 24-bit
        # subtractor in front of the compare, 14 LUT levels); W = 0 closes when it wraps to 0.
        frames = Signal(WINDOW_BITS, init=1)
        close = Signal()
        m.d.comb += close.eq(self.frame_tick & (frames == self.window))
        with m.If(self.frame_tick):
            m.d.sync += frames.eq(Mux(close, 1, frames + 1))
        m.d.comb += self.spikes.ready.eq(1)
        spike = Signal()
        m.d.comb += spike.eq(self.spikes.valid & (self.spikes.payload.type == AERType.SPIKE))
        if self.cadence == "cycle":
            lane2, lane3, v3, delta3 = self._per_lane(m, close, spike)
        else:
            lane2, lane3, v3, delta3 = self._sweep(m, close, spike)

        # θ (issue 14): two LUTRAM banks, one written by the host, one by the update, each with
        # three asynchronous read ports (the StimUnit, the update, the read-back), and per lane
        # a tag in flip-flops naming where its current θ is: the reset value, the update's bank
        # or the host's bank. The two writers never share a write port, so a host write and an
        # update in the same cycle both land; if they are for the same lane the host's wins.
        # A reset returns every tag, hence every θ, to ``theta_init``. The tags are two K-bit
        # vectors (lane k's θ is in the host's bank when ``in_host[k]``, else in the update's
        # when ``in_upd[k]``; never both), written with masks (issue 13: no case per lane).
        aw = max(1, (K - 1).bit_length())
        m.submodules.theta_upd = upd = memory.Memory(shape=16, depth=K, init=[self.theta_init] * K)
        m.submodules.theta_host = host = memory.Memory(shape=16, depth=K, init=[])
        in_upd, in_host = Signal(K), Signal(K)
        upd_en = v3 & self.enable
        host_en = self.theta_wr.en & (self.theta_wr.addr < K)

        def lane_of(addr):
            return addr[:aw] if K > 1 else Const(0, 1)

        def read(addr, i):
            ru, rh = upd.read_port(domain="comb"), host.read_port(domain="comb")
            m.d.comb += [ru.addr.eq(addr), rh.addr.eq(addr)]
            return ru.data, rh.data

        def registered_read(addr_next, i):
            """θ of lane ``addr_next`` one cycle later, writes at the edge between included.

            The tag of the lane is selected a cycle ahead from the tags' next values (issue
            14: a 64-to-1 select in front of the θ compare or the clamp cost 3 LUT levels);
            the banks themselves are read asynchronously at the registered address."""
            a_next = lane_of(addr_next)
            a = Signal.like(a_next, name=f"theta_raddr{i}")
            sel_host, sel_upd = Signal(name=f"theta_in_host{i}"), Signal(name=f"theta_in_upd{i}")
            host_hit = host_en & (lane_of(self.theta_wr.addr) == a_next)
            upd_hit = upd_en & (lane3 == a_next)
            m.d.sync += [a.eq(a_next),
                         sel_host.eq((in_host.bit_select(a_next, 1) & ~upd_hit) | host_hit),
                         sel_upd.eq((in_upd.bit_select(a_next, 1) | upd_hit) & ~host_hit)]
            ru, rh = read(a, i)
            value = Signal(16, name=f"theta_read{i}")
            m.d.comb += value.eq(Mux(sel_host, rh, Mux(sel_upd, ru, self.theta_init)))
            return value

        m.d.comb += self.theta_data.eq(registered_read(self.theta_addr, 0))
        theta_now = registered_read(lane2, 1)
        # The register map's read-back stays combinational (its path is short).
        a = lane_of(self.theta_sel)
        ru, rh = read(a, 2)
        m.d.comb += self.theta_value.eq(Mux(in_host.bit_select(a, 1), rh,
                                            Mux(in_upd.bit_select(a, 1), ru, self.theta_init)))

        # Write stage: θ + Δ, clamp: min(max(θ + Δ, θ_min), θ_max), so θ_max wins when θ_min > θ_max.
        # issue 14 (timing): θ and both bounds lie in [0, 2^16 - 1], so a Δ outside the 18-bit
        # range [-2^17, 2^17 - 1] gives θ_max (Δ >= 2^17) or min(θ_min, θ_max) (Δ < -2^17)
        # whatever θ is. The sum is therefore taken on Δ's low 18 bits (19 bits, not 44), the
        # "Δ fits" test (bits 17 and up all equal) runs from the Δ register beside the θ read,
        # and the two compares of the clamp look at the sum side by side.
        lo, hi = self.theta_min, self.theta_max
        top = delta3[17:]
        fits = Signal()
        summed = Signal(signed(19))
        inside, new = Signal(16), Signal(16)
        m.d.comb += [
            fits.eq((top == 0) | (top == (1 << len(top)) - 1)),
            summed.eq(theta_now + delta3[:18].as_signed()),
            inside.eq(Mux((lo > hi) | (summed > hi), hi, Mux(summed < lo, lo, summed[:16]))),
            new.eq(Mux(fits, inside, Mux(delta3[-1] & (lo <= hi), lo, hi))),
        ]
        wu, wh = upd.write_port(), host.write_port()
        m.d.comb += [
            wu.addr.eq(lane3), wu.data.eq(new), wu.en.eq(upd_en),
            wh.addr.eq(self.theta_wr.addr), wh.data.eq(self.theta_wr.data), wh.en.eq(host_en),
        ]
        upd_sel = one_hot(lane3, K, upd_en)
        host_sel = one_hot(self.theta_wr.addr[:aw], K, host_en)
        m.d.sync += [in_upd.eq((in_upd | upd_sel) & ~host_sel),
                     in_host.eq((in_host & ~upd_sel) | host_sel)]
        return m

    def _update_tail(self, m, v, lane, diff):
        """diff → product (g) → delta (>> s): returns (lane, valid, delta) of the write stage."""
        K = self.n_lanes
        v2, v3 = Signal(), Signal()
        lane2, lane3 = Signal(range(K)), Signal(range(K))
        prod2 = Signal(signed(TARGET_BITS + 1 + GAIN_BITS + 1))
        delta3 = Signal(signed(TARGET_BITS + 1 + GAIN_BITS + 1))
        m.d.sync += [
            v2.eq(v), lane2.eq(lane), prod2.eq(diff * self.gain),
            v3.eq(v2), lane3.eq(lane2), delta3.eq(prod2 >> self.shift),
        ]
        return lane2, lane3, v3, delta3, (v2, v3)

    def _per_lane(self, m, close, spike):
        """The original cadence: per-lane sources, counts, snapshots and targets in flip-flops;
        every lane compares each SPIKE word's address with its source."""
        K = self.n_lanes
        cmax = (1 << COUNT_BITS) - 1
        src = [Signal(ADDRESS_BITS, init=k % (1 << ADDRESS_BITS), name=f"src{k}") for k in range(K)]
        count = [Signal(COUNT_BITS, name=f"count{k}") for k in range(K)]
        snap = Array(Signal(COUNT_BITS, name=f"snap{k}") for k in range(K))
        target = Array(Signal(TARGET_BITS, init=self.target_init, name=f"target{k}") for k in range(K))
        for port, table in ((self.src_wr, src), (self.target_wr, target)):
            with m.If(port.en):
                for k in range(K):
                    with m.If(port.addr == k):
                        m.d.sync += table[k].eq(port.data)
        count_next = []
        for k in range(K):
            hit = spike & (self.spikes.payload.address == src[k])
            nxt = Signal(COUNT_BITS, name=f"count_next{k}")
            m.d.comb += nxt.eq(Mux(hit & (count[k] != cmax), count[k] + 1, count[k]))
            count_next.append(nxt)

        # Update pipeline: lane index → diff → product → delta → θ write.
        running = Signal()
        index = Signal(range(K))
        v1 = Signal()
        lane1 = Signal(range(K))
        diff1 = Signal(signed(TARGET_BITS + 1))
        m.d.sync += [v1.eq(running), lane1.eq(index), diff1.eq((snap[index] << 8) - target[index])]
        lane2, lane3, v3, delta3, tail = self._update_tail(m, v1, lane1, diff1)
        busy = Signal()
        m.d.comb += [busy.eq(running | v1 | tail[0] | tail[1]), self.busy.eq(busy)]

        m.d.sync += [self.window_done.eq(0), self.overrun.eq(0)]
        with m.If(close & ~busy):
            m.d.sync += [running.eq(1), index.eq(0), self.window_done.eq(1)]
            for k in range(K):
                m.d.sync += [snap[k].eq(count_next[k]), count[k].eq(0)]
        with m.Else():
            m.d.sync += self.overrun.eq(close)
            for k in range(K):
                m.d.sync += count[k].eq(count_next[k])
        with m.If(running):
            m.d.sync += index.eq(index + 1)
            with m.If(index == K - 1):
                m.d.sync += running.eq(0)
        return lane2, lane3, v3, delta3

    def _sweep(self, m, close, spike):
        """The sweep cadence: spikes counted per recording channel in two memory banks (one
        counts while the other is read by the update and then cleared); sources and targets
        in memories read by the update, one lane per cycle."""
        K, N = self.n_lanes, self.n_channels
        cmax = (1 << COUNT_BITS) - 1
        cw = max(1, (N - 1).bit_length())
        m.submodules.sources = sources = memory.Memory(
            shape=ADDRESS_BITS, depth=K, init=[k % (1 << ADDRESS_BITS) for k in range(K)])
        m.submodules.targets = targets = memory.Memory(shape=TARGET_BITS, depth=K,
                                                       init=[self.target_init] * K)
        for mem, port in ((sources, self.src_wr), (targets, self.target_wr)):
            wp = mem.write_port()
            m.d.comb += [wp.addr.eq(port.addr), wp.data.eq(port.data), wp.en.eq(port.en & (port.addr < K))]
        # Not transparent: a table write is seen from the edge after it (as the models apply it).
        src_rd = sources.read_port()
        tgt_rd = targets.read_port()
        banks = []
        for b in range(2):
            mem = memory.Memory(shape=COUNT_BITS, depth=N, init=[])
            m.submodules[f"counts{b}"] = mem
            wp = mem.write_port()
            banks.append((wp, mem.read_port(transparent_for=(wp,)), mem.read_port()))

        # Counting: the word taken at edge n reads its channel's count and writes it + 1 at n + 1.
        bank = Signal()                                   # the bank that counts
        addr = self.spikes.payload.address
        c_valid, c_bank, c_addr = Signal(), Signal(), Signal(cw)
        # After a reset both banks are cleared in N cycles (memories keep their contents over a
        # reset); words in those cycles are not counted.
        rclear = Signal(init=1)
        rclr = Signal(range(N))
        with m.If(rclear):
            m.d.sync += rclr.eq(rclr + 1)
            with m.If(rclr == N - 1):
                m.d.sync += rclear.eq(0)
        m.d.sync += [c_valid.eq(spike & (addr < N) & ~rclear), c_bank.eq(bank), c_addr.eq(addr[:cw])]
        # c_valid & (c_bank == b), registered per bank (for the write address, below).
        c_to = [Signal(name=f"c_to{b}") for b in range(2)]
        m.d.sync += [c_to[b].eq(spike & (addr < N) & ~rclear & (bank == b)) for b in range(2)]
        c_data = Signal(COUNT_BITS)
        m.d.comb += c_data.eq(Mux(c_bank, banks[1][1].data, banks[0][1].data))

        # Update: lane i's source read at c + 1 + i, its count at c + 2 + i, written at c + 6 + i.
        running = Signal()
        clearing = Signal()
        index = Signal(range(K))
        clr = Signal(range(N))
        v1, v2 = Signal(), Signal()
        lane1, lane2 = Signal(range(K)), Signal(range(K))
        ok2 = Signal()
        tgt2 = Signal(TARGET_BITS)
        m.d.comb += [src_rd.addr.eq(index), tgt_rd.addr.eq(index)]
        m.d.sync += [v1.eq(running), lane1.eq(index),
                     v2.eq(v1), lane2.eq(lane1), tgt2.eq(tgt_rd.data), ok2.eq(src_rd.data < N)]
        old = ~bank                                       # the bank being read and cleared
        u_data = Signal(COUNT_BITS)
        m.d.comb += u_data.eq(Mux(ok2, Mux(old, banks[1][2].data, banks[0][2].data), 0))
        v3s = Signal()
        lane3s = Signal(range(K))
        # The count and the target are registered as they are and subtracted in the multiplier's
        # stage (issue 14, timing: at N = 256 the counts are in block RAM, and RAM → bank select
        # → subtractor → the DSP's input register took 6.85 ns).
        count3 = Signal(COUNT_BITS)
        tgt3 = Signal(TARGET_BITS)
        diff3 = Signal(signed(TARGET_BITS + 1))
        m.d.sync += [v3s.eq(v2), lane3s.eq(lane2), count3.eq(u_data), tgt3.eq(tgt2)]
        m.d.comb += diff3.eq((count3 << 8) - tgt3)
        lane2, lane3, v3, delta3, tail = self._update_tail(m, v3s, lane3s, diff3)
        for b, (wp, rd_count, rd_update) in enumerate(banks):
            m.d.comb += [rd_count.addr.eq(addr[:cw]), rd_update.addr.eq(src_rd.data[:cw])]
            # The write address does not wait for the bank compares: clearing and rclear never
            # overlap (a close waits for ~busy), and the address only matters when en is 1. So it
            # is one LUT off registers (issue 14: a LUTRAM's port D address is also its read
            # address, and the bank compares made it two LUT levels).
            m.d.comb += wp.addr.eq(Mux(c_to[b], c_addr, Mux(rclear, rclr, clr)))
            with m.If(c_to[b]):
                m.d.comb += [wp.en.eq(1), wp.data.eq(Mux(c_data == cmax, c_data, c_data + 1))]
            with m.Elif(clearing & (old == b)):
                m.d.comb += [wp.en.eq(1), wp.data.eq(0)]
            with m.Elif(rclear):
                m.d.comb += [wp.en.eq(1), wp.data.eq(0)]
        busy = Signal()
        m.d.comb += [busy.eq(running | clearing | rclear | v1 | v2 | v3s | tail[0] | tail[1]),
                     self.busy.eq(busy)]

        m.d.sync += [self.window_done.eq(0), self.overrun.eq(0)]
        # index and clr are 0 whenever idle (they return to 0 at the end of their run), so a
        # close only sets flags (issue 14: a reload of index hung 8 LUT levels off the close).
        with m.If(close & ~busy):
            m.d.sync += [running.eq(1), bank.eq(~bank), self.window_done.eq(1)]
        with m.Else():
            m.d.sync += self.overrun.eq(close)
        with m.If(running):
            m.d.sync += index.eq(index + 1)
            with m.If(index == K - 1):
                m.d.sync += [running.eq(0), clearing.eq(1), index.eq(0)]
        with m.If(clearing):
            m.d.sync += clr.eq(clr + 1)
            with m.If(clr == N - 1):
                m.d.sync += [clearing.eq(0), clr.eq(0)]
        return lane2, lane3, v3, delta3
