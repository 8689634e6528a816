"""StochasticLanes: one LFSR pulse-density stream per stim lane (DESIGN.md §4).

Bit-exact with :mod:`bioloop.host.models.stochastic_lanes`, which states the rules
(polynomial, shift direction, compare-then-step, seeds, shared-mode
permutations) and is what the benches compare against.
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bioloop.gateware.layouts import WritePort
from bioloop.host.models.stochastic_lanes import LFSR_TAPS, MODES as _MODES, lane_seed, shared_permutation
from bioloop.host.parameters import check_lanes, check_uint, lane_addr_width, validated

__all__ = ["StochasticLanes"]

# The polynomial, the seed formula and the shared-mode permutations are the model's
# (one definition each): x^16 + x^14 + x^13 + x^11 + 1, feedback into bit 0.
_TAPS = LFSR_TAPS


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
                 code_init: int = 0):
        self.n_lanes = check_lanes(n_lanes)
        self.seed0 = check_uint("seed0", seed0, 16)
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, not {mode!r}")
        self.mode = mode
        self.code_init = check_uint("code_init", code_init, 16)
        super().__init__({
            "code_wr": In(WritePort(lane_addr_width(n_lanes), 16)),
            "bits": Out(n_lanes),
        })

    def elaborate(self, platform):
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
