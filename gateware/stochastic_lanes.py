"""StochasticLanes: one LFSR pulse-density stream per stim lane (DESIGN.md §4).

Bit-exact with :mod:`bioloop.host.models.stochastic_lanes`, which states the rules
(polynomial, shift direction, compare-then-step, seeds, shared-mode
permutations) and is what the benches compare against.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from bioloop.gateware.lane_vector import one_hot, with_bit
from bioloop.gateware.layouts import WritePort
from bioloop.host.models.stochastic_lanes import (LFSR_TAPS, MODES as _MODES, SEED_STRIDE, lane_seed,
                                                  shared_permutation)
from bioloop.host.parameters import check_lanes, check_uint, lane_addr_width, validated

__all__ = ["StochasticLanes", "CADENCES"]

# The polynomial, the seed formula and the shared-mode permutations are the model's
# (one definition each): x^16 + x^14 + x^13 + x^11 + 1, feedback into bit 0.
_TAPS = LFSR_TAPS
#: ``"sweep"``: states and codes in memories, one lane compared and stepped per cycle (default);
#: ``"cycle"``: every lane every cycle (the original block).
CADENCES = ("sweep", "cycle")


class StochasticLanes(wiring.Component):
    """K stochastic lanes: ``bits[k] = state_k < code_k`` every cycle, then the LFSRs step.

    Parameters
    ----------
    n_lanes : int
        K (default 64), 1 .. 4096.
    seed0 : int
        Seed of lane 0 (default 0xACE1); lane k gets (seed0 + 7919 k) mod 2^16, 0 → 1.
    mode : {"independent", "shared"}
        One 16-bit LFSR per lane, or one shared LFSR read by lane k through a
        fixed bit permutation (16 flip-flops instead of 16 K; see
        ``docs/bench/stim.md`` for what it does to correlation).
    code_init : int
        Density code of every lane after reset (default 0: dark).
    cadence : {"sweep", "cycle"}
        ``"cycle"``: every lane compares and steps every cycle (as described below).
        ``"sweep"`` (default, independent mode only): states and codes in memories; lane k
        is visited at the edges n with (n − 1) mod S = k (S = K rounded up to a power of 2,
        edge 0 visits lane S − 1), compares its state with its code, steps, and holds the bit
        until its next visit; its first visit after reset compares its seed. Same streams,
        each bit lasting S cycles; before its first visit a lane's bit is 0; a code write is
        in force from the lane's next visit.

    Members
    -------
    code_wr : In(WritePort(lane_addr_width(K), 16))
        Density code table: ``code[addr] ← data`` when ``en``; used from the
        next cycle. Addresses >= K are ignored.
    bits : Out(K)
        One stochastic bit per lane per cycle. The LFSRs run freely from reset:
        in the n-th cycle after reset, lane k shows the comparison for its n-th
        state (the seed first).
    """

    @validated
    def __init__(self, n_lanes: int = 64, seed0: int = 0xACE1, mode: str = "independent",
                 code_init: int = 0, cadence: str = "sweep"):
        self.n_lanes = check_lanes(n_lanes)
        self.seed0 = check_uint("seed0", seed0, 16)
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, not {mode!r}")
        self.mode = mode
        self.code_init = check_uint("code_init", code_init, 16)
        if cadence not in CADENCES:
            raise ValueError(f"cadence must be one of {CADENCES}, not {cadence!r}")
        if cadence == "sweep" and mode != "independent":
            raise ValueError(f"the sweep cadence keeps one state per lane: mode must be "
                             f"'independent', not {mode!r} (or use cadence='cycle')")
        self.cadence = cadence
        super().__init__({
            "code_wr": In(WritePort(lane_addr_width(n_lanes), 16)),
            "bits": Out(n_lanes),
        })

    def elaborate(self, platform):
        if self.cadence == "sweep":
            return self._sweep()
        m = Module()
        K = self.n_lanes

        codes = [Signal(16, init=self.code_init, name=f"code{k}") for k in range(K)]
        with m.If(self.code_wr.en):
            for k in range(K):
                with m.If(self.code_wr.addr == k):
                    m.d.sync += codes[k].eq(self.code_wr.data)

        def lfsr(name, seed):
            state = Signal(16, init=seed, name=name)
            feedback = state[_TAPS[0]] ^ state[_TAPS[1]] ^ state[_TAPS[2]] ^ state[_TAPS[3]]
            m.d.sync += state.eq(Cat(feedback, state[:15]))    # shift left, feedback into bit 0
            return state

        if self.mode == "independent":
            values = [lfsr(f"lfsr{k}", lane_seed(self.seed0, k)) for k in range(K)]
        else:
            shared = lfsr("lfsr", lane_seed(self.seed0, 0))
            values = [Cat(*(shared[p] for p in shared_permutation(k))) for k in range(K)]

        m.d.comb += self.bits.eq(Cat(*(v < c for v, c in zip(values, codes, strict=True))))
        return m

    def _sweep(self):
        m = Module()
        K = self.n_lanes
        S = 1 << max(0, (K - 1).bit_length())
        sb = S.bit_length() - 1
        abits = max(1, (K - 1).bit_length())
        m.submodules.states = states = memory.Memory(shape=16, depth=K, init=[])
        m.submodules.codes = codes = memory.Memory(shape=16, depth=K, init=[self.code_init] * K)
        st_wp = states.write_port()
        st_rd = states.read_port(transparent_for=(st_wp,))
        code_wp = codes.write_port()
        code_rd = codes.read_port(transparent_for=(code_wp,))
        m.d.comb += [code_wp.addr.eq(self.code_wr.addr), code_wp.data.eq(self.code_wr.data),
                     code_wp.en.eq(self.code_wr.en & (self.code_wr.addr < K))]

        # ptr is read, vis (one edge later) compared, stepped and written; edge 0 visits S - 1.
        ptr = Signal(max(1, sb))
        vis = Signal(max(1, sb), init=S - 1)
        vis_valid = Signal(init=S - 1 < K)
        first = Signal(init=1)                  # the first sweep after reset compares the seeds
        m.d.sync += [ptr.eq(ptr + 1 if S > 1 else 0), vis.eq(ptr), vis_valid.eq(ptr < K)]
        with m.If(vis == (S - 2) % S):
            m.d.sync += first.eq(0)
        m.d.comb += [st_rd.addr.eq(ptr[:abits]), code_rd.addr.eq(ptr[:abits])]
        # Seeds in visit order S - 1, 0, 1, ..., S - 2 (lane_seed: seed0 + stride k, 0 -> 1).
        acc = Signal(16, init=self.seed0)
        with m.If(first & (vis != S - 1) if S > 1 else Const(0)):
            m.d.sync += acc.eq(acc + SEED_STRIDE)
        raw = Signal(16)
        m.d.comb += raw.eq(Mux(vis == S - 1, lane_seed(self.seed0, S - 1), acc)
                           if S > 1 else self.seed0)
        seed = Mux(raw == 0, 1, raw)
        cur = Signal(16)
        m.d.comb += cur.eq(Mux(first, seed, st_rd.data))
        feedback = cur[_TAPS[0]] ^ cur[_TAPS[1]] ^ cur[_TAPS[2]] ^ cur[_TAPS[3]]
        bits = Signal(K)
        v = vis[:abits]
        with m.If(vis_valid):
            m.d.comb += [st_wp.addr.eq(v), st_wp.en.eq(1), st_wp.data.eq(Cat(feedback, cur[:15]))]
        # Lane v's bit, written with a mask rather than a case per lane (issue 13).
        m.d.sync += bits.eq(with_bit(bits, one_hot(v, K, vis_valid), cur < code_rd.data))
        m.d.comb += self.bits.eq(bits)
        return m
