"""Checks of elaboration parameters, shared by every gateware component and its model.

A block and its model take the same parameters and must refuse the same
values with the same message, so each check is written once, here, in plain
Python (the models run on the board without amaranth). Wrong type raises
``TypeError``, right type but out of range ``ValueError``, naming the
parameter and the allowed range.

:func:`validated` wraps a component's ``__init__`` so that a refused
component does not also warn "created but never used" (Amaranth's
``UnusedElaboratable``) on top of the exception.
"""

from __future__ import annotations

import functools

from .layouts import LANE_BITS, TIMESTAMP_BITS

__all__ = [
    "check_int", "check_uint", "check_addresses", "check_channels", "check_fanout",
    "check_lanes", "check_ts_bits", "TS_BITS_MIN", "lane_addr_width", "validated", "silence_unused",
    "ENCODER_CADENCES", "QUEUE_DEPTH_MAX", "check_encoder_cadence", "check_queue_depth", "queue_entry_bits",
]

#: Largest number of recording channels (and AER addresses) a core takes.
MAX_CHANNELS = 4096
#: Largest route fanout.
MAX_FANOUT = 256


def check_int(name: str, value, lo: int, hi: int) -> int:
    """``value`` as an int in ``lo..hi``, else ``TypeError``/``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__} {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, not {value}")
    return value


def check_uint(name: str, value, bits: int, minimum: int = 0) -> int:
    """Validate an integer parameter that must fit ``bits`` unsigned bits."""
    return check_int(name, value, minimum, (1 << bits) - 1)


def check_addresses(n_addresses) -> int:
    """Validate the number of AER addresses (1..4096)."""
    return check_int("n_addresses", n_addresses, 1, MAX_CHANNELS)


#: Fewest timestamp bits the AEREncoder keeps per pending spike: the two top bits tag the
#: epoch (2^(ts_bits-2) frames) a stored stamp belongs to, so at least two more are needed.
TS_BITS_MIN = 4


def check_ts_bits(ts_bits) -> int:
    """Validate the AEREncoder's stored timestamp width (4..TIMESTAMP_BITS)."""
    return check_int("ts_bits", ts_bits, TS_BITS_MIN, TIMESTAMP_BITS)


#: The AEREncoder's cadences: "queue" (one beat of spikes per cycle into a LUTRAM queue, the
#: Core's) and "cycle" (the original per-address pending bits and round-robin, any spike vector).
ENCODER_CADENCES = ("cycle", "queue")
#: Most entries of the AEREncoder's queue: it is read asynchronously (the head feeds the output
#: register in the cycle it is needed), so it must be distributed RAM; 256 entries of 45 bits
#: (N = 4096) are already 11,520 bits of it.
QUEUE_DEPTH_MAX = 256


def check_encoder_cadence(cadence, name: str = "cadence") -> str:
    """Validate the AEREncoder's cadence (``name``: the option as the caller spells it)."""
    if not isinstance(cadence, str):
        raise TypeError(f"{name} must be a str, one of {ENCODER_CADENCES}, not {type(cadence).__name__} {cadence!r}")
    if cadence not in ENCODER_CADENCES:
        raise ValueError(f"{name} must be one of {ENCODER_CADENCES}, not {cadence!r}")
    return cadence


def queue_entry_bits(n_addresses: int) -> int:
    """Bits of one queue entry: the pair index, its two hit bits, the 32-bit timestamp."""
    pairs = (n_addresses + 1) // 2
    return max(1, (pairs - 1).bit_length()) + 2 + TIMESTAMP_BITS


def check_queue_depth(n_addresses: int, queue_depth) -> int:
    """Validate (or choose) the AEREncoder's queue depth: a power of two, 2..QUEUE_DEPTH_MAX.

    The default is ``ceil(n_addresses / 2)`` rounded up to a power of two (lossless with the
    output ready, docs/aer_path.md), at most QUEUE_DEPTH_MAX (N > 512: losses become possible,
    and are counted)."""
    if queue_depth is None:
        pairs = (n_addresses + 1) // 2
        return min(QUEUE_DEPTH_MAX, max(2, 1 << (pairs - 1).bit_length()))
    if isinstance(queue_depth, bool) or not isinstance(queue_depth, int):
        raise TypeError(f"queue_depth must be an int, not {type(queue_depth).__name__} {queue_depth!r}")
    if queue_depth > QUEUE_DEPTH_MAX:
        raise ValueError(
            f"queue_depth={queue_depth} entries of {queue_entry_bits(n_addresses)} bits "
            f"({queue_depth * queue_entry_bits(n_addresses)} bits) do not fit the AEREncoder's distributed RAM "
            f"(asynchronous read): at most {QUEUE_DEPTH_MAX} entries")
    if queue_depth < 2 or queue_depth & (queue_depth - 1):
        raise ValueError(f"queue_depth must be a power of two in 2..{QUEUE_DEPTH_MAX}, not {queue_depth}")
    return queue_depth


def check_channels(n_channels) -> int:
    """Validate a channel count: an even integer from 2 to 4096."""
    check_int("n_channels", n_channels, 2, MAX_CHANNELS)
    if n_channels % 2:
        raise ValueError(f"n_channels must be even (two channels per 32-bit beat), not {n_channels}")
    return n_channels


def check_fanout(fanout) -> int:
    """Validate the route fanout F (1..256)."""
    return check_int("fanout", fanout, 1, MAX_FANOUT)


def check_lanes(n_lanes) -> int:
    """Validate K, the number of stim lanes (1 .. 2^LANE_BITS)."""
    if isinstance(n_lanes, bool) or not isinstance(n_lanes, int):
        raise TypeError(f"n_lanes must be an int, not {type(n_lanes).__name__} {n_lanes!r}")
    if not 1 <= n_lanes <= 1 << LANE_BITS:
        raise ValueError(f"n_lanes must be in 1..{1 << LANE_BITS} (LANE_BITS={LANE_BITS}), not {n_lanes}")
    return n_lanes


def lane_addr_width(n_lanes: int) -> int:
    """Address width of a per-lane table's write port (at least 1)."""
    return max(1, (n_lanes - 1).bit_length())


def silence_unused(*objs, _seen=None) -> None:
    """Mark components as deliberately unused (Amaranth's ``MustUse``): they were refused.

    Sub-components a refused component already built (an ``AERPath``'s Detector, say) are
    silenced too, however deep."""
    seen = set() if _seen is None else _seen
    for obj in objs:
        if id(obj) in seen or not hasattr(obj, "_MustUse__used"):
            continue
        seen.add(id(obj))
        obj._MustUse__silence = True
        silence_unused(*vars(obj).values(), _seen=seen)


def validated(init):
    """Decorate a component's ``__init__``: when it rejects a parameter, the half-built
    component (and any sub-components it already made) must not warn "created but never used"
    on top of the exception."""
    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except (TypeError, ValueError):
            silence_unused(self, *vars(self).values())
            raise
    return wrapper
