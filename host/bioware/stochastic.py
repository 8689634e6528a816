"""Address events to stochastic-computing bitstreams, and back to rates.

For neuron n with k_n events in a frame the converter forms the
probability p_n = k_n / (k_n + K) (K the smoothing constant: one event
gives 1/(1+K), many events approach 1), turns it into a 16-bit density code
and draws the Bernoulli bitstream from the very LFSR the gateware's
StochasticLanes use (DESIGN.md §4), lane n for neuron n. The host stream is
therefore the one the board would produce for that code, bit for bit.

Density code (DESIGN.md §2): a lane outputs 1 while its LFSR state is
below the code; the LFSR visits every state 1..65535 once per period, so
over a full period the density is exactly (code - 1) / 65535. Hence

    code(p) = 0                              for p = 0 (never on),
    code(p) = min(round(p · 65535) + 1, 65535) for p > 0,

which makes the full-period density round(p · 65535) / 65535, within
1/131070 of p (p = 1 saturates at 65534/65535).
"""

from __future__ import annotations

import math

import numpy as np

from .transcoding import AEREvent

__all__ = ["AERToSCConverter", "density_code", "code_density", "decode_bitstream_rate"]

_PERIOD = 65535  # LFSR period; also the largest density code


def density_code(p) -> np.ndarray:
    """16-bit density codes for probabilities ``p`` in [0, 1] (see module notes)."""
    p = np.asarray(p, dtype=np.float64)
    if p.size and (not np.isfinite(p).all() or p.min() < 0 or p.max() > 1):
        raise ValueError("probabilities must be finite and within [0, 1]")
    code = np.minimum(np.round(p * _PERIOD) + 1, _PERIOD)
    return np.where(p > 0, code, 0).astype(np.uint16)


def code_density(code) -> np.ndarray:
    """Exact full-period density of density codes: (code - 1) / 65535, 0 for code 0."""
    c = np.asarray(code, dtype=np.int64)
    return np.where(c > 0, (c - 1) / _PERIOD, 0.0)


class _LaneStates:
    """Cached first L states of each lane, from the StochasticLanes model's period table.

    Every call restarts the lanes from their seeds, so a lane's states for a
    given L never change and can be kept.
    """

    def __init__(self, seed0: int):
        from bioloop.host.models.stochastic_lanes import lane_seed, lfsr_states
        self._seed = lambda k: lane_seed(seed0, k)
        self._states = lfsr_states
        self._rows: dict[tuple[int, int], np.ndarray] = {}

    def states(self, lane: int, length: int) -> np.ndarray:
        key = (lane, length)
        row = self._rows.get(key)
        if row is None:
            row = self._states(self._seed(lane), length)
            if len(self._rows) < 65536:
                self._rows[key] = row
        return row


_TABLES: dict[int, _LaneStates] = {}


def _table(seed0: int) -> _LaneStates:
    t = _TABLES.get(seed0)
    if t is None:
        t = _TABLES[seed0] = _LaneStates(seed0)
    return t


class AERToSCConverter:
    """Per-neuron Bernoulli bitstreams from event counts.

    Parameters
    ----------
    bitstream_length : int
        L, bits per stream (>= 1).
    smoothing_constant : float
        K in p = k / (k + K) (> 0).
    seed0 : int
        Seed of lane 0; lane k starts at (seed0 + 7919·k) mod 2**16 (0 -> 1),
        as in the gateware.
    num_neurons : int, optional
        If given, neuron ids must be below it.

    Notes
    -----
    Every call starts each lane from its seed, so the same counts give the
    same bytes (and SC-NeuroCore's encoder, which also restarts from the
    seed, can be compared bit for bit).
    """

    def __init__(self, bitstream_length: int = 1024, smoothing_constant: float = 1.0,
                 seed0: int = 0xACE1, num_neurons: int | None = None):
        if isinstance(bitstream_length, bool) or not isinstance(bitstream_length, (int, np.integer)) \
                or bitstream_length < 1:
            raise ValueError(f"bitstream_length must be an integer >= 1, not {bitstream_length!r}")
        if isinstance(smoothing_constant, bool) or not isinstance(smoothing_constant, (int, float)) \
                or not math.isfinite(smoothing_constant) or smoothing_constant <= 0:
            raise ValueError(f"smoothing_constant must be finite and > 0, not {smoothing_constant!r}")
        if not isinstance(seed0, (int, np.integer)) or not 0 <= seed0 < 1 << 16:
            raise ValueError(f"seed0 must be a 16-bit integer, not {seed0!r}")
        if num_neurons is not None and (not isinstance(num_neurons, (int, np.integer))
                                        or num_neurons < 1):
            raise ValueError(f"num_neurons must be an integer >= 1, not {num_neurons!r}")
        self.bitstream_length = int(bitstream_length)
        self.smoothing_constant = float(smoothing_constant)
        self.seed0 = int(seed0)
        self.num_neurons = num_neurons

    def probability(self, counts) -> np.ndarray:
        """p = k / (k + K) for event counts k >= 0."""
        k = np.asarray(counts, dtype=np.float64)
        if k.size and (not np.isfinite(k).all() or k.min() < 0):
            raise ValueError("event counts must be finite and >= 0")
        return k / (k + self.smoothing_constant)

    def convert_counts(self, neuron_ids, counts) -> dict[int, np.ndarray]:
        """Bitstreams (uint8 0/1, length L) for the given neurons and event counts."""
        ids = np.asarray(neuron_ids, dtype=np.int64)
        if ids.size and ids.min() < 0:
            raise ValueError(f"neuron id {int(ids.min())} is negative")
        if self.num_neurons is not None and ids.size and ids.max() >= self.num_neurons:
            raise ValueError(f"neuron id {int(ids.max())} >= num_neurons {self.num_neurons}")
        return self._streams(ids, self.probability(counts))

    def _streams(self, ids: np.ndarray, p: np.ndarray) -> dict[int, np.ndarray]:
        """Bitstreams for checked neuron ids and probabilities."""
        code = np.minimum(np.round(p * _PERIOD) + 1, _PERIOD)
        codes = np.where(p > 0, code, 0).astype(np.uint16)
        table = _table(self.seed0)
        L = self.bitstream_length
        return {n: (table.states(n, L) < c).view(np.uint8)
                for n, c in zip(ids.tolist(), codes.tolist(), strict=True)}

    def convert(self, events: list[AEREvent]) -> dict[int, np.ndarray]:
        """Bitstreams for every neuron with at least one valid event, keyed by neuron id."""
        ids = np.fromiter((e.neuron_id for e in events if e.valid), np.int64)
        uniq, counts = np.unique(ids, return_counts=True)
        return self.convert_counts(uniq, counts)


def decode_bitstream_rate(bitstream, smoothing_constant: float | None = None,
                          duration_s: float | None = None) -> float:
    """Decode a bitstream back into what it encodes.

    Returns the density d = mean(bits); with ``smoothing_constant`` K the
    event count k = K·d / (1 - d) that p = k / (k + K) inverts to; with
    ``duration_s`` too, that count as a rate k / duration in Hz.

    Raises
    ------
    ValueError
        Empty stream, values other than 0/1, d = 1 with K given (the count
        is unbounded), or a non-positive duration.
    """
    b = np.asarray(bitstream)
    if b.ndim != 1 or b.size == 0:
        raise ValueError(f"bitstream must be a non-empty 1-D array, not shape {b.shape}")
    if b.dtype.kind not in "biu" or (b.dtype.kind != "b" and b.max() > 1):
        raise ValueError("bitstream must hold only 0 and 1")
    d = float(np.count_nonzero(b)) / b.size
    if smoothing_constant is None:
        if duration_s is not None:
            raise ValueError("duration_s needs smoothing_constant to turn density into a count")
        return d
    if not math.isfinite(smoothing_constant) or smoothing_constant <= 0:
        raise ValueError(f"smoothing_constant must be finite and > 0, not {smoothing_constant!r}")
    if d >= 1.0:
        raise ValueError("density 1 decodes to an unbounded count; use a longer bitstream")
    k = smoothing_constant * d / (1.0 - d)
    if duration_s is None:
        return k
    if not math.isfinite(duration_s) or duration_s <= 0:
        raise ValueError(f"duration_s must be finite and > 0, not {duration_s!r}")
    return k / duration_s
