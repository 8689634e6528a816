"""StochasticLanes: LFSR pulse-density modulation, integer-exact (DESIGN.md §4).

Each stim lane owns a 16-bit Fibonacci LFSR with the polynomial
x^16 + x^14 + x^13 + x^11 + 1, shifting left with the feedback
r15 ^ r13 ^ r12 ^ r10 entering bit 0. Every cycle a lane first *compares*
(its output bit is ``state < code``) and *then steps*. Over one full period
(65535 states, every non-zero value once) a lane therefore outputs exactly
``code - 1`` ones for ``code >= 1`` (the states 1 .. code-1) and none for
code 0: the density is ``(code - 1) / 65535``.

Lane ``k`` is seeded with ``(seed0 + 7919*k) mod 2^16`` (0 replaced by 1), so
lane 0 from 0xACE1 runs ACE1, 59C3, B387, 670F, CE1E, ... the same stream as
SC-NeuroCore's bitstream encoder.

``mode="shared"`` models the area-saving variant: one LFSR (seeded like lane
0) whose state lane ``k`` reads through a fixed bit permutation
:func:`shared_permutation`. A bit permutation maps 0 to 0 and is a bijection,
so each lane still sees every non-zero value once per period and keeps the
exact density; what it costs is correlation between lanes, measured with
:func:`scc` (Alaghi & Hayes 2013) in ``docs/bench/stim.md``.

All of it is vectorised: the full LFSR period is computed once and every
lane is a phase (independent mode) or a permuted copy (shared mode) of it.

Cadence (an elaboration parameter of the gateware): ``"cycle"`` (the
original block) compares and steps every lane every cycle, as above.
``"sweep"`` (the default, independent mode only) keeps the states and codes
in memories and visits one lane per cycle: lane k at the edges n with
(n − 1) mod S = k (S = K rounded up to a power of two; edge 0 is the first
after reset and visits lane S − 1), where it compares its state with the
code in force and steps; the result is held in a flip-flop until the next
visit. So lane k's j-th visit compares the j-th state of its stream (the
seed first, exactly the stream of the cycle cadence), each bit lasts S
cycles, and before its first visit a lane's bit is 0. The density over a
period is unchanged; the bit rate is f_clk / S (1.56 MHz at K = 64).
:meth:`StochasticLanes.bits` gives the bits of either cadence.
"""

from __future__ import annotations

import functools

import numpy as np

from bioloop.host import jit

__all__ = [
    "LFSR_TAPS", "LFSR_BITS", "LFSR_PERIOD", "SEED_STRIDE", "lfsr_step", "lane_seed", "lfsr_states",
    "shared_permutation", "permute_bits", "StochasticLanes", "scc", "MODES", "CADENCES", "sweep_period",
]

CADENCES = ("sweep", "cycle")


def sweep_period(n_lanes: int) -> int:
    """S, the cycles between two visits of a lane in the sweep cadence: K rounded up to a power of 2."""
    return 1 << max(0, (n_lanes - 1).bit_length())

#: Bit indices of the state XORed into bit 0 on each left shift; the
#: polynomial is x^16 + x^14 + x^13 + x^11 + 1 (exponent e taps bit e - 1).
LFSR_TAPS = (15, 13, 12, 10)
LFSR_BITS = 16
#: A maximal-length 16-bit LFSR visits every non-zero state once.
LFSR_PERIOD = (1 << LFSR_BITS) - 1
#: Lane k's seed is seed0 + SEED_STRIDE * k (mod 2^16); 7919 is the 1000th prime.
SEED_STRIDE = 7919
MODES = ("independent", "shared")


def lfsr_step(state: int) -> int:
    """One left shift of the 16-bit Fibonacci LFSR: feedback r15^r13^r12^r10 into bit 0."""
    fb = 0
    for t in LFSR_TAPS:
        fb ^= (state >> t) & 1
    return ((state << 1) | fb) & 0xFFFF


def lane_seed(seed0: int, k: int) -> int:
    """Seed of lane ``k``: (seed0 + 7919*k) mod 2^16, with the lock-up state 0 replaced by 1."""
    s = (int(seed0) + SEED_STRIDE * int(k)) & 0xFFFF
    return s or 1


@functools.cache
def _period() -> tuple[np.ndarray, np.ndarray]:
    """The full period from state 1, and the position of every state in it."""
    seq = np.empty(LFSR_PERIOD, dtype=np.uint16)
    s = 1
    for i in range(LFSR_PERIOD):
        seq[i] = s
        s = lfsr_step(s)
    if s != 1:  # pragma: no cover - guards the tap table
        raise AssertionError("LFSR_TAPS do not give a maximal-length sequence")
    pos = np.zeros(1 << LFSR_BITS, dtype=np.int64)
    pos[seq] = np.arange(LFSR_PERIOD)
    pos[0] = -1
    return seq, pos


def _check_seed(seed: int) -> int:
    if not isinstance(seed, (int, np.integer)) or not 1 <= int(seed) <= 0xFFFF:
        raise ValueError(f"LFSR seed must be an integer in 1..65535 (0 locks the LFSR), not {seed!r}")
    return int(seed)


def lfsr_states(seed: int, n: int) -> np.ndarray:
    """The first ``n`` states of the LFSR starting at (and including) ``seed``, as uint16."""
    seed = _check_seed(seed)
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    seq, pos = _period()
    return seq[(pos[seed] + np.arange(n, dtype=np.int64)) % LFSR_PERIOD]


def shared_permutation(k: int) -> tuple[int, ...]:
    """Bit permutation through which lane ``k`` reads the shared LFSR in ``mode="shared"``.

    Returns ``p`` with output bit ``i`` = state bit ``p[i]``, where
    ``p[i] = (a*i + b) mod 16``, ``a = 2*(k mod 8) + 1`` (odd, so the map is
    a bijection of the 16 bit positions) and ``b = (k div 8) mod 16``. Lane 0
    is the identity, so lane 0 matches the independent mode. There are 128
    distinct permutations: lanes ``k`` and ``k + 128`` carry identical streams.
    """
    if k < 0:
        raise ValueError(f"lane index must be >= 0, not {k}")
    a = 2 * (k % 8) + 1
    b = (k // 8) % 16
    return tuple((a * i + b) % LFSR_BITS for i in range(LFSR_BITS))


def permute_bits(values: np.ndarray, perm: tuple[int, ...]) -> np.ndarray:
    """Apply a bit permutation (output bit i = input bit perm[i]) to uint16 values."""
    v = np.asarray(values, dtype=np.uint32)
    out = np.zeros_like(v)
    for i, src in enumerate(perm):
        out |= ((v >> src) & 1) << i
    return out.astype(np.uint16)


@functools.cache
def _shared_period(perm: tuple[int, ...]) -> np.ndarray:
    seq, _ = _period()
    return permute_bits(seq, perm)


class StochasticLanes:
    """Model of K stochastic lanes, continuing its LFSR states between calls.

    Parameters
    ----------
    n_lanes : int
        K, the number of lanes.
    seed0 : int
        Seed of lane 0 (0 .. 65535; lane seeds follow :func:`lane_seed`).
    mode : {"independent", "shared"}
        One LFSR per lane, or one shared LFSR read through
        :func:`shared_permutation`.
    cadence : {"cycle", "sweep"}
        See the module docstring (the model's default is the cycle cadence; :meth:`bits`
        serves both).
    """

    def __init__(self, n_lanes: int, seed0: int = 0xACE1, mode: str = "independent",
                 cadence: str = "cycle"):
        if cadence not in CADENCES:
            raise ValueError(f"cadence must be one of {CADENCES}, not {cadence!r}")
        if cadence == "sweep" and mode != "independent":
            raise ValueError("the sweep cadence keeps one state per lane: mode must be 'independent'")
        self.cadence = cadence
        if not isinstance(n_lanes, (int, np.integer)) or n_lanes < 1:
            raise ValueError(f"n_lanes must be a positive integer, not {n_lanes!r}")
        if not isinstance(seed0, (int, np.integer)) or not 0 <= seed0 <= 0xFFFF:
            raise ValueError(f"seed0 must be an integer in 0..65535, not {seed0!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.n_lanes = int(n_lanes)
        self.seed0 = int(seed0)
        self.mode = mode
        _, pos = _period()
        if mode == "independent":
            self._phase = np.array([pos[lane_seed(seed0, k)] for k in range(self.n_lanes)], dtype=np.int64)
        else:
            self._phase = np.full(self.n_lanes, pos[lane_seed(seed0, 0)], dtype=np.int64)
        self.cycle = 0  # steps taken so far
        # sweep cadence: the bits held before edge `edge`, and the edge itself
        self.period = sweep_period(self.n_lanes)
        self.held = np.zeros(self.n_lanes, dtype=bool)
        self.edge = 0

    def states(self, n_cycles: int, advance: bool = True) -> np.ndarray:
        """The lane values compared with the codes in the next ``n_cycles`` cycles, shape (n, K).

        In shared mode these are the permuted views of the shared state.
        """
        if n_cycles < 0:
            raise ValueError(f"n_cycles must be >= 0, not {n_cycles}")
        t = self.cycle + np.arange(n_cycles, dtype=np.int64)
        idx = (self._phase[None, :] + t[:, None]) % LFSR_PERIOD
        if self.mode == "independent":
            seq, _ = _period()
            out = seq[idx]
        else:
            out = np.empty((n_cycles, self.n_lanes), dtype=np.uint16)
            for k in range(self.n_lanes):
                out[:, k] = _shared_period(shared_permutation(k))[idx[:, k]]
        if advance:
            self.cycle += n_cycles
        return out

    def run(self, codes, n_cycles: int) -> np.ndarray:
        """Output bits for ``n_cycles`` cycles, shape (n_cycles, K), dtype bool.

        ``codes`` is one density code per lane (or a scalar for all lanes),
        each 0 .. 65535. Compare, then step: the bit is ``state < code``.
        """
        c = np.broadcast_to(np.asarray(codes, dtype=np.int64), (self.n_lanes,))
        if c.size and (c.min() < 0 or c.max() > 0xFFFF):
            raise ValueError(f"density codes must be in 0..65535, got {int(c.min())}..{int(c.max())}")
        return self.states(n_cycles) < c[None, :]

    def step(self, codes) -> np.ndarray:
        """One clock edge: the K output bits of this cycle (compare, then step)."""
        return self.run(codes, 1)[0]

    def reset(self) -> None:
        """Back to the seeds."""
        self.cycle = 0

    def bits(self, codes, n: int, edge: int | None = None) -> np.ndarray:
        """The bits seen before edges ``edge .. edge + n - 1`` (edge 0: the first after reset;
        default: where the last call ended), shape (n, K), with ``codes`` in force at every
        visit in that stretch; advances to ``edge + n``. Stretches must not go back in time."""
        c = np.broadcast_to(np.asarray(codes, dtype=np.int64), (self.n_lanes,))
        t0 = self.edge if edge is None else int(edge)
        if self.cadence == "cycle":
            self.cycle = t0
            return self.states(n) < c[None, :]
        if t0 < self.edge:
            raise ValueError(f"edge {t0} is before edge {self.edge}, where the lanes already are")
        rows = self._sweep_rows(c, t0, n + 1)
        self.held = rows[-1].copy()
        self.edge = t0 + n
        return rows[:-1]

    def _sweep_rows(self, c, t0: int, n: int, kernel: str | None = None) -> np.ndarray:
        # Bits before edges t0 .. t0 + n - 1. Lane k's visits: t = first_k + j S, j >= 0, with
        # first_k = (k + 1) mod S; visit j compares state j with the code of that edge.
        # ``kernel``: "numba" (compiled, when numba is installed) or "numpy"; default the first
        # of KERNELS; both give the same bits.
        S, K = self.period, self.n_lanes
        first = (np.arange(K) + 1) % S
        if (KERNELS[0] if kernel is None else kernel) == "numba":
            out = np.empty((n, K), dtype=bool)
            seq, _ = _period()
            _sweep_rows_kernel(first, self._phase, seq, np.ascontiguousarray(c), self.held, self.edge, t0, S, out)
            return out
        t = t0 + np.arange(n)[:, None]
        j = (t - 1 - first[None, :]) // S                # the latest visit at or before t - 1
        fresh = (j >= 0) & (first[None, :] + j * S >= self.edge)   # visited since the held bits
        seq, _ = _period()
        value = seq[(self._phase[None, :] + np.maximum(j, 0)) % LFSR_PERIOD] < c[None, :]
        held = np.broadcast_to(self.held, (n, K)) & (j >= 0)
        return np.where(fresh, value, held)

    @staticmethod
    def density(code: int) -> float:
        """Exact density over one full period: (code - 1) / 65535, and 0 for code 0."""
        if not 0 <= code <= 0xFFFF:
            raise ValueError(f"density code must be in 0..65535, not {code}")
        return 0.0 if code == 0 else (code - 1) / LFSR_PERIOD


@jit.njit(cache=True)
def _sweep_rows_kernel(first, phase, seq, c, held, edge, t0, S, out):
    """:meth:`StochasticLanes._sweep_rows` in scalar loops (compiled by numba), into ``out`` (n, K)."""
    n, K = out.shape
    for i in range(n):
        t = t0 + i
        for k in range(K):
            j = (t - 1 - first[k]) // S
            if j < 0:
                out[i, k] = False
            elif first[k] + j * S >= edge:
                out[i, k] = seq[(phase[k] + j) % LFSR_PERIOD] < c[k]
            else:
                out[i, k] = held[k]


#: Kernels of the sweep cadence's bits, the default first.
KERNELS = ("numba", "numpy") if jit.ENABLED else ("numpy",)


def scc(x, y) -> float:
    """Stochastic computing correlation of two bitstreams (Alaghi & Hayes 2013).

    +1 for maximal overlap, 0 for independent-looking streams, -1 for
    minimal overlap. Defined as 0 when either stream is constant.
    """
    x = np.asarray(x, dtype=bool)
    y = np.asarray(y, dtype=bool)
    if x.shape != y.shape:
        raise ValueError(f"streams differ in shape: {x.shape} vs {y.shape}")
    n = x.size
    px, py = x.sum() / n, y.sum() / n
    pxy = np.logical_and(x, y).sum() / n
    delta = pxy - px * py
    if delta > 0:
        den = min(px, py) - px * py
    else:
        den = px * py - max(px + py - 1.0, 0.0)
    return 0.0 if den == 0 else float(delta / den)
