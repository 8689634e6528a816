"""Packed words and stream signatures shared by the gateware, the models and the tests.

Each layout is defined once here (DESIGN.md §3); the Python models pack and
unpack through :mod:`bioloop.host.aer`, which reads its field offsets from
these same objects.
"""

from amaranth.hdl import signed
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import Out

__all__ = [
    "FCLK_HZ", "ADDRESS_BITS", "SOURCE_BITS", "TIMESTAMP_BITS", "LANE_BITS",
    "AERType", "AERWord", "SampleBeat", "Polarity", "Port", "RouteEntry", "RoutedEntry",
    "aer_stream", "sample_stream", "routed_stream", "WritePort",
]

#: PYNQ-Z2 fabric clock FCLK0; every time in cycles converts to ns through this.
FCLK_HZ = 100_000_000

ADDRESS_BITS = 20
SOURCE_BITS = 8
TIMESTAMP_BITS = 32
#: Stim lanes are addressed with 12 bits (up to 4096 lanes).
LANE_BITS = 12


class AERType(enum.Enum, shape=4):
    """Type field of an AER word (bits 28-31)."""
    SPIKE = 0
    STIM = 1
    TICK = 2
    OVERFLOW = 3


#: 64-bit little-endian AER word: bits 0-19 address, 20-27 source,
#: 28-31 type, 32-63 timestamp in frames.
AERWord = data.StructLayout({
    "address": ADDRESS_BITS,
    "source": SOURCE_BITS,
    "type": AERType,
    "timestamp": TIMESTAMP_BITS,
})
assert AERWord.size == 64

#: One 32-bit AXI-Stream beat of samples: channel 2i in the low half, 2i+1 in
#: the high half, ``last`` on the final beat of a frame (TLAST).
SampleBeat = data.StructLayout({
    "data": data.ArrayLayout(signed(16), 2),
    "last": 1,
})


class Polarity(enum.Enum, shape=2):
    """Which side of the threshold a Detector channel watches.

    A sample ``x`` is *beyond* a threshold magnitude ``θ`` when
    ``x <= -θ`` (NEGATIVE), ``x >= θ`` (POSITIVE), or either (BOTH).
    Equality counts as beyond. OFF disables the channel.
    """
    NEGATIVE = 0
    POSITIVE = 1
    BOTH = 2
    OFF = 3


class Port(enum.Enum, shape=1):
    """Destination port of a routing-table entry."""
    STIM = 0
    HOST = 1


#: One routing-table entry as stored in block RAM: destination port, target
#: (stim lane for STIM, relayed address for HOST) and signed Q8.8 weight.
RouteEntry = data.StructLayout({
    "port": Port,
    "target": ADDRESS_BITS,
    "weight": signed(16),
})

#: A routed entry on the router's stim port: the entry plus the source
#: address and timestamp of the SPIKE word that caused it.
RoutedEntry = data.StructLayout({
    "target": LANE_BITS,
    "weight": signed(16),
    "address": ADDRESS_BITS,
    "timestamp": TIMESTAMP_BITS,
})


def aer_stream() -> stream.Signature:
    """A stream of AER words (valid/ready/payload)."""
    return stream.Signature(AERWord)


def sample_stream() -> stream.Signature:
    """The 32-bit sample stream (AXI-Stream with TLAST in the payload)."""
    return stream.Signature(SampleBeat)


def routed_stream() -> stream.Signature:
    """The router's stim-port stream of routed entries."""
    return stream.Signature(RoutedEntry)


class WritePort(wiring.Signature):
    """A simple synchronous write port into a table (driven by the CSR bank).

    Members
    -------
    addr : Out(addr_width)
        Table index.
    data : Out(data_width)
        Value to store.
    en : Out(1)
        Write strobe; the table holds the value from the next cycle on.
    """

    def __init__(self, addr_width: int, data_width):
        if not isinstance(addr_width, int) or addr_width < 1:
            raise ValueError(f"addr_width must be a positive integer, not {addr_width!r}")
        self.addr_width = addr_width
        self.data_width = data_width
        super().__init__({
            "addr": Out(addr_width),
            "data": Out(data_width),
            "en": Out(1),
        })

    def __eq__(self, other):
        return (isinstance(other, WritePort) and self.addr_width == other.addr_width
                and self.data_width == other.data_width)

    def __repr__(self):
        return f"WritePort({self.addr_width}, {self.data_width!r})"
