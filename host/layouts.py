"""The data contract of bioloop in plain Python (DESIGN.md §2-§4).

Every width and constant the gateware, the models, the driver and the host
share is written down once here, together with the enumerations of the AER
word and the field lists of every packed word. This module imports nothing
but the standard library, so it runs on the board (Python 3.10, no
amaranth): :mod:`bioloop.gateware.layouts` *builds* its Amaranth
``StructLayout`` objects from the field lists below, never the reverse.

A packed word is a :class:`Layout`: an ordered list of :class:`Member`
fields, least significant first. :func:`pack` and :func:`unpack` are the one
way to turn field values into the bits and back (two's complement for
signed members); :mod:`bioloop.host.aer` applies the same offsets to numpy
arrays of 64-bit AER words.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "FCLK_HZ", "ADDRESS_BITS", "SOURCE_BITS", "TYPE_BITS", "TIMESTAMP_BITS", "POLARITY_BITS", "PORT_BITS", "LANE_BITS",
    "SAMPLE_BITS", "WEIGHT_BITS", "THETA_BITS", "THETA_MIN", "THETA_MAX", "THETA_INIT",
    "HOMEO_COUNT_BITS", "HOMEO_TARGET_BITS", "HOMEO_GAIN_BITS", "HOMEO_SHIFT_BITS", "HOMEO_WINDOW_BITS",
    "LATENCY_BITS", "PROBE_OFFSET",
    "AERType", "Polarity", "Port", "ENUM_BITS",
    "Member", "Layout", "AER_WORD", "SAMPLE_BEAT", "ROUTE_ENTRY", "ROUTED_ENTRY", "LAYOUTS",
    "pack", "unpack",
]

#: PYNQ-Z2 fabric clock FCLK0; every time in cycles converts to ns through this.
FCLK_HZ = 100_000_000

#: Address field of an AER word (recording channel, or stim lane for STIM words).
ADDRESS_BITS = 20
#: Source field of an AER word (well or chip id).
SOURCE_BITS = 8
#: Type field of an AER word (:class:`AERType`; values 4..15 are reserved).
TYPE_BITS = 4
#: Timestamp field of an AER word, in frames.
TIMESTAMP_BITS = 32
#: Polarity of a Detector channel (:class:`Polarity`).
POLARITY_BITS = 2
#: Port of a routing-table entry (:class:`Port`).
PORT_BITS = 1
#: Stim lanes are addressed with 12 bits (up to 4096 lanes).
LANE_BITS = 12
#: ADC sample codes are int16.
SAMPLE_BITS = 16
#: Route weights are signed Q8.8 (int16).
WEIGHT_BITS = 16
#: θ of a stim lane is unsigned Q8.8 (1.0 = 256).
THETA_BITS = 16
#: Default clamps of θ (Q8.8): 0.25 and 2.0 (DESIGN.md §4, Homeostasis).
THETA_MIN = 64
THETA_MAX = 512
#: θ of every lane after reset (Q8.8): 1.0.
THETA_INIT = 256

# Homeostasis (DESIGN.md §4): θ ← clamp(θ + ((c·2^8 − c*)·g) >> s, θ_min, θ_max).
#: Per-lane spike count per window, saturating.
HOMEO_COUNT_BITS = 16
#: c*, the target count per window, UQ16.8 (up to 65535.996 spikes per window).
HOMEO_TARGET_BITS = 24
#: g, unsigned gain, normalised into [2^16, 2^17) when the shift allows (a 25 x 18
#: signed product fits one DSP48E1).
HOMEO_GAIN_BITS = 17
#: s, right shift 0..63.
HOMEO_SHIFT_BITS = 6
#: W, frames per window.
HOMEO_WINDOW_BITS = 24

# Latency probe (DESIGN.md §6).
#: Width of the probe's cycle stamps and of the latency measurements.
LATENCY_BITS = 16
#: The probe stamps the cycle in which a detection is visible at the Detector's
#: output, two edges after the handshake of the beat carrying the crossing;
#: adding this gives the latency from that handshake.
PROBE_OFFSET = 2


class AERType(enum.IntEnum):
    """Type field of an AER word (bits 28-31)."""
    SPIKE = 0
    STIM = 1
    TICK = 2
    OVERFLOW = 3


class Polarity(enum.IntEnum):
    """Which side of the threshold a Detector channel watches.

    A sample ``x`` is *beyond* a threshold magnitude ``θ`` when
    ``x <= -θ`` (NEGATIVE), ``x >= θ`` (POSITIVE), or either (BOTH).
    Equality counts as beyond. OFF disables the channel.
    """
    NEGATIVE = 0
    POSITIVE = 1
    BOTH = 2
    OFF = 3


class Port(enum.IntEnum):
    """Destination port of a routing-table entry."""
    STIM = 0
    HOST = 1


#: Width of each enumeration where it is stored in the gateware.
ENUM_BITS = {AERType: TYPE_BITS, Polarity: POLARITY_BITS, Port: PORT_BITS}


@dataclass(frozen=True)
class Member:
    """One field of a packed word.

    Parameters
    ----------
    name : str
        Field name (the Amaranth layout uses the same name).
    width : int or Layout
        Bits of one element, or a nested layout.
    signed : bool
        Two's complement.
    enum : type of enum.IntEnum, optional
        The values the field holds (the width still comes from ``width``).
    count : int, optional
        An array of ``count`` elements of ``width`` bits (element 0 lowest).
    """
    name: str
    width: "int | Layout"
    signed: bool = False
    enum: type | None = None
    count: int | None = None

    @property
    def element_bits(self) -> int:
        return self.width.size if isinstance(self.width, Layout) else self.width

    @property
    def size(self) -> int:
        return self.element_bits * (self.count or 1)


class Layout:
    """An ordered list of :class:`Member` fields, least significant first."""

    def __init__(self, name: str, members):
        self.name = name
        self.members = tuple(members)
        self.offsets = {}
        offset = 0
        for m in self.members:
            if m.name in self.offsets:
                raise ValueError(f"layout {name}: field {m.name} defined twice")
            self.offsets[m.name] = offset
            offset += m.size
        self.size = offset
        # How unpack reads each scalar member: (name, offset, mask, sign bit or 0, enum).
        self._plan = tuple(
            (m.name, self.offsets[m.name], (1 << m.width) - 1, (1 << (m.width - 1)) if m.signed else 0, m.enum)
            for m in self.members if not m.count and not isinstance(m.width, Layout))

    def __getitem__(self, name: str) -> Member:
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(f"layout {self.name} has no field {name!r}")

    def __iter__(self):
        return iter(self.members)

    def field(self, name: str) -> tuple[int, int]:
        """``(offset, width)`` of a scalar field."""
        return self.offsets[name], self[name].size

    def __repr__(self):
        return f"Layout({self.name!r}, {[m.name for m in self.members]})"


def _to_bits(member: Member, value, what: str) -> int:
    if isinstance(member.width, Layout):
        return value if isinstance(value, int) else pack(member.width, **value)
    w = member.width
    lo, hi = ((-(1 << (w - 1)), (1 << (w - 1)) - 1) if member.signed else (0, (1 << w) - 1))
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            iv = int(value)
        except (TypeError, ValueError):
            raise TypeError(f"{what} takes an integer, not {value!r}") from None
        if iv != value:
            raise TypeError(f"{what} takes an integer, not {value!r}")
        value = iv
    if not lo <= value <= hi:
        raise ValueError(f"{what} = {value} is out of range {lo}..{hi}")
    return value & ((1 << w) - 1)


def _from_bits(member: Member, raw: int):
    if isinstance(member.width, Layout):
        return unpack(member.width, raw)
    w = member.width
    if member.signed and raw >> (w - 1):
        raw -= 1 << w
    if member.enum is not None:
        try:
            return member.enum(raw)
        except ValueError:
            return raw
    return raw


def pack(layout: Layout, **values) -> int:
    """Pack field values into the bits of ``layout`` (a Python int).

    Missing fields are 0; an array member takes a sequence of ``count``
    values. Raises ``TypeError`` for a non-integer value, ``ValueError`` for
    a value that does not fit its field or an unknown field name.
    """
    unknown = set(values) - set(layout.offsets)
    if unknown:
        raise ValueError(f"layout {layout.name} has no field(s) {sorted(unknown)}")
    bits = 0
    for m in layout.members:
        value = values.get(m.name, 0)
        off = layout.offsets[m.name]
        if m.count:
            seq = [0] * m.count if value == 0 else list(value)
            if len(seq) != m.count:
                raise ValueError(f"{layout.name}.{m.name} takes {m.count} values, not {len(seq)}")
            for i, v in enumerate(seq):
                bits |= _to_bits(m, v, f"{layout.name}.{m.name}[{i}]") << (off + i * m.element_bits)
        else:
            bits |= _to_bits(m, value, f"{layout.name}.{m.name}") << off
    return bits


def unpack(layout: Layout, bits: int) -> dict:
    """The field values held in ``bits`` (signed members sign-extended, enums as members)."""
    bits = int(bits)
    out = {}
    for name, off, mask, sign, enum_ in layout._plan:
        raw = (bits >> off) & mask
        if sign and raw & sign:
            raw -= sign << 1
        if enum_ is not None:
            try:
                raw = enum_(raw)
            except ValueError:
                pass
        out[name] = raw
    if len(out) == len(layout.members):
        return out
    for m in layout.members:
        if m.name in out:
            continue
        off = layout.offsets[m.name]
        mask = (1 << m.element_bits) - 1
        if m.count:
            out[m.name] = [_from_bits(m, (bits >> (off + i * m.element_bits)) & mask)
                           for i in range(m.count)]
        else:
            out[m.name] = _from_bits(m, (bits >> off) & mask)
    return out


#: 64-bit little-endian AER word: bits 0-19 address, 20-27 source,
#: 28-31 type, 32-63 timestamp in frames.
AER_WORD = Layout("AERWord", [
    Member("address", ADDRESS_BITS),
    Member("source", SOURCE_BITS),
    Member("type", TYPE_BITS, enum=AERType),
    Member("timestamp", TIMESTAMP_BITS),
])
assert AER_WORD.size == 64

#: One 32-bit AXI-Stream beat of samples: channel 2i in the low half, 2i+1 in
#: the high half, ``last`` on the final beat of a frame (TLAST).
SAMPLE_BEAT = Layout("SampleBeat", [
    Member("data", SAMPLE_BITS, signed=True, count=2),
    Member("last", 1),
])

#: One routing-table entry as stored in block RAM: destination port, target
#: (stim lane for STIM, relayed address for HOST) and signed Q8.8 weight.
ROUTE_ENTRY = Layout("RouteEntry", [
    Member("port", PORT_BITS, enum=Port),
    Member("target", ADDRESS_BITS),
    Member("weight", WEIGHT_BITS, signed=True),
])

#: A routed entry on the router's stim port: the entry plus the source
#: address and timestamp of the SPIKE word that caused it.
ROUTED_ENTRY = Layout("RoutedEntry", [
    Member("target", LANE_BITS),
    Member("weight", WEIGHT_BITS, signed=True),
    Member("address", ADDRESS_BITS),
    Member("timestamp", TIMESTAMP_BITS),
])

#: Every packed word of the contract, by its layout name.
LAYOUTS = {layout.name: layout for layout in (AER_WORD, SAMPLE_BEAT, ROUTE_ENTRY, ROUTED_ENTRY)}
