"""What a Core's parameters cost: cycles per frame and memory bits, checked against the part.

A frame lasts ``FCLK_HZ / sample_rate_hz`` cycles (5,000 at 20 kHz and 100 MHz).
The Core needs at least ``N / 2`` of them to take a frame's beats (two
channels per beat) and, with the StimUnit's sweep cadence, ``K + 2``
between two frames' last beats (:func:`min_frame_cycles`). Its memories
(routing table, detector, homeostasis banks, lane tables, the AEREncoder's
queue, which is LUTRAM but counted here too) must fit the
xc7z020's 140 block RAMs of 36 Kb. :func:`check_core_budget` refuses a
parameter set that cannot meet either, with the numbers; the gateware Core
and its model call it with the same arguments.
"""

from __future__ import annotations

from bioloop.host.layouts import ADDRESS_BITS, FCLK_HZ
from bioloop.host.parameters import check_queue_depth, queue_entry_bits

__all__ = ["min_frame_cycles", "memory_bits", "check_core_budget", "BRAM_BITS"]

#: Block RAM of the xc7z020: 140 tiles of 36 Kb (DS190).
BRAM_BITS = 140 * 36 * 1024


def min_frame_cycles(n_lanes: int, stim_cadence: str = "sweep") -> int:
    """Fewest cycles between two frames' last beats (TLAST handshakes) when no routed entry
    arrives during the StimUnit's per-frame sweep: K + 2 in the sweep cadence, else 1."""
    return n_lanes + 2 if stim_cadence == "sweep" else 1


def memory_bits(n_channels: int, n_lanes: int, fanout: int) -> dict[str, int]:
    """Bits of the Core's larger memories (the ones that can outgrow the part)."""
    N, K, F = n_channels, n_lanes, fanout
    entry = 1 + ADDRESS_BITS + 16                      # port, target, weight
    return {
        "routing table (N x F entries)": N * F * entry,
        "route counts": N * max(1, F.bit_length()),
        "detector thresholds, polarity and state": N * (16 + 2 + 1 + 16),
        "homeostasis count banks (2 x N)": 2 * N * 16,
        "latency probe stamps": (N // 2) * 16,
        "AEREncoder queue (LUTRAM, the default depth)": check_queue_depth(N, None) * queue_entry_bits(N),
        "lane tables (StimUnit, lanes, homeostasis, Safety)": K * (32 + 16 + 32 + 44 + 40),
    }


def check_core_budget(n_channels: int, n_lanes: int, fanout: int, *, sample_rate_hz: float = 20_000,
                      stim_cadence: str = "sweep") -> int:
    """Refuse (``ValueError``, with the numbers) a Core that cannot take a frame per sample period
    or whose memories do not fit the xc7z020; return the cycles a frame lasts."""
    if isinstance(sample_rate_hz, bool) or not isinstance(sample_rate_hz, (int, float)):
        raise TypeError(f"sample_rate_hz must be a number, not {sample_rate_hz!r}")
    if not 0 < sample_rate_hz <= FCLK_HZ:
        raise ValueError(f"sample_rate_hz must be in (0, {FCLK_HZ}], not {sample_rate_hz}")
    budget = int(FCLK_HZ // sample_rate_hz)
    beats = n_channels // 2
    sweep = min_frame_cycles(n_lanes, stim_cadence)
    need = max(beats, sweep)
    if need > budget:
        raise ValueError(
            f"Core({n_channels}, {n_lanes}, {fanout}) needs {need} cycles per frame ({beats} beats for "
            f"N = {n_channels} channels; {sweep} for the StimUnit's sweep of K = {n_lanes} lanes), but "
            f"at sample_rate_hz={sample_rate_hz:g} a frame lasts {budget} cycles of the "
            f"{FCLK_HZ / 1e6:g} MHz clock; lower the sample rate or N/K")
    bits = memory_bits(n_channels, n_lanes, fanout)
    total = sum(bits.values())
    if total > BRAM_BITS:
        big = max(bits, key=bits.get)
        raise ValueError(
            f"Core({n_channels}, {n_lanes}, {fanout}) needs {total:,} bits of memory ({big}: "
            f"{bits[big]:,}); the xc7z020 has {BRAM_BITS:,} bits of block RAM (140 x 36 Kb); "
            f"lower N or the fanout F")
    return budget
