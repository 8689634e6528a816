"""Homeostasis: per-lane Q8.8 thresholds moved once per window of W frames (DESIGN.md §4).

Bit-exact with :class:`bioloop.host.models.homeostasis.Homeostasis` (its
``clock`` method gives the cycle timing).
"""

from __future__ import annotations

from amaranth import Array, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from bioloop.host.parameters import check_lanes, check_uint, lane_addr_width, validated
from bioloop.gateware.layouts import ADDRESS_BITS, AERType, WritePort, aer_stream
from bioloop.host.layouts import (HOMEO_COUNT_BITS, HOMEO_GAIN_BITS, HOMEO_SHIFT_BITS, HOMEO_TARGET_BITS,
                                  HOMEO_WINDOW_BITS, THETA_INIT, THETA_MAX, THETA_MIN)

__all__ = ["Homeostasis", "COUNT_BITS", "TARGET_BITS", "GAIN_BITS", "SHIFT_BITS", "WINDOW_BITS"]

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
    theta : Out(ArrayLayout(16, K))
        The current thresholds, to the StimUnit.
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
                 shift: int = 0):
        self.n_lanes = check_lanes(n_lanes)
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
            "theta": Out(data.ArrayLayout(16, n_lanes)),
            "busy": Out(1),
            "window_done": Out(1),
            "overrun": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        K = self.n_lanes
        cmax = (1 << COUNT_BITS) - 1

        theta = [Signal(16, init=self.theta_init, name=f"theta{k}") for k in range(K)]
        src = [Signal(ADDRESS_BITS, init=k % (1 << ADDRESS_BITS), name=f"src{k}") for k in range(K)]
        count = [Signal(COUNT_BITS, name=f"count{k}") for k in range(K)]
        snap = Array(Signal(COUNT_BITS, name=f"snap{k}") for k in range(K))
        target = Array(Signal(TARGET_BITS, init=self.target_init, name=f"target{k}") for k in range(K))
        for k in range(K):
            m.d.comb += self.theta[k].eq(theta[k])

        for port, table in ((self.src_wr, src), (self.target_wr, target)):
            with m.If(port.en):
                for k in range(K):
                    with m.If(port.addr == k):
                        m.d.sync += table[k].eq(port.data)

        # Counting: every word accepted; each lane compares the address with its source.
        m.d.comb += self.spikes.ready.eq(1)
        spike = Signal()
        m.d.comb += spike.eq(self.spikes.valid & (self.spikes.payload.type == AERType.SPIKE))
        count_next = []
        for k in range(K):
            hit = spike & (self.spikes.payload.address == src[k])
            nxt = Signal(COUNT_BITS, name=f"count_next{k}")
            m.d.comb += nxt.eq(Mux(hit & (count[k] != cmax), count[k] + 1, count[k]))
            count_next.append(nxt)

        # Windows of W frame ticks.
        frames = Signal(WINDOW_BITS)
        close = Signal()
        m.d.comb += close.eq(self.frame_tick & (frames == (self.window - 1)[:WINDOW_BITS]))
        with m.If(self.frame_tick):
            m.d.sync += frames.eq(Mux(close, 0, frames + 1))

        # Update pipeline: lane index → diff → product → delta → θ write.
        running = Signal()
        index = Signal(range(K))
        v1, v2, v3 = Signal(), Signal(), Signal()
        lane1, lane2, lane3 = Signal(range(K)), Signal(range(K)), Signal(range(K))
        diff1 = Signal(signed(TARGET_BITS + 1))
        prod2 = Signal(signed(TARGET_BITS + 1 + GAIN_BITS + 1))
        delta3 = Signal(signed(TARGET_BITS + 1 + GAIN_BITS + 1))
        busy = Signal()
        m.d.comb += [busy.eq(running | v1 | v2 | v3), self.busy.eq(busy)]

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
        m.d.sync += [
            v1.eq(running), lane1.eq(index),
            diff1.eq((snap[index] << 8) - target[index]),
            v2.eq(v1), lane2.eq(lane1), prod2.eq(diff1 * self.gain),
            v3.eq(v2), lane3.eq(lane2), delta3.eq(prod2 >> self.shift),
        ]

        # Write stage: θ + Δ, clamp (max with θ_min first, then min with θ_max).
        theta_arr = Array(theta)
        summed = Signal(signed(delta3.shape().width + 1))
        low = Signal(signed(delta3.shape().width + 1))
        new = Signal(16)
        m.d.comb += [
            summed.eq(theta_arr[lane3] + delta3),
            low.eq(Mux(summed < self.theta_min, self.theta_min, summed)),
            new.eq(Mux(low > self.theta_max, self.theta_max, low)),
        ]
        for k in range(K):
            with m.If(self.theta_wr.en & (self.theta_wr.addr == k)):
                m.d.sync += theta[k].eq(self.theta_wr.data)
            with m.Elif(v3 & self.enable & (lane3 == k)):
                m.d.sync += theta[k].eq(new)
        return m
