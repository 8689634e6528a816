"""Packed words and stream signatures shared by the gateware, the models and the tests.

The field lists and widths are defined once, in plain Python, in
:mod:`bioloop.host.layouts` (DESIGN.md §3); this module builds the Amaranth
layouts and shaped enums from them, so the gateware, the models, the driver
and the host cannot disagree about a word.
"""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import Out

from bioloop.host import layouts as _contract
from bioloop.host.layouts import (ADDRESS_BITS, FCLK_HZ, LANE_BITS, SOURCE_BITS,  # noqa: F401 (re-exported)
                                  TIMESTAMP_BITS)

__all__ = [
    "FCLK_HZ", "ADDRESS_BITS", "SOURCE_BITS", "TIMESTAMP_BITS", "LANE_BITS",
    "AERType", "AERWord", "SampleBeat", "Polarity", "Port", "RouteEntry", "RoutedEntry",
    "aer_stream", "sample_stream", "routed_stream", "WritePort", "struct_layout",
]


def _shaped_enum(py_enum):
    """An Amaranth ``IntEnum`` with the members of ``py_enum`` and its contract width.

    Members compare equal to the plain :mod:`bioloop.host.layouts` ones (both
    are ints), and signals of this shape carry the enum's name into the RTL.
    """
    ns = enum.EnumType.__prepare__(py_enum.__name__, (enum.IntEnum,))
    for member in py_enum:
        ns[member.name] = member.value
    ns["__doc__"] = py_enum.__doc__
    ns["__module__"] = __name__
    ns["__qualname__"] = py_enum.__name__
    return enum.EnumType(py_enum.__name__, (enum.IntEnum,), ns,
                         shape=unsigned(_contract.ENUM_BITS[py_enum]))


AERType = _shaped_enum(_contract.AERType)
Polarity = _shaped_enum(_contract.Polarity)
Port = _shaped_enum(_contract.Port)
_ENUMS = {_contract.AERType: AERType, _contract.Polarity: Polarity, _contract.Port: Port}


def _member_shape(m: _contract.Member):
    if isinstance(m.width, _contract.Layout):
        shape = struct_layout(m.width)
    elif m.enum is not None:
        shape = _ENUMS[m.enum]
        assert shape.as_shape().width == m.width, m
    else:
        shape = signed(m.width) if m.signed else unsigned(m.width)
    return data.ArrayLayout(shape, m.count) if m.count else shape


def struct_layout(layout: _contract.Layout) -> data.StructLayout:
    """The Amaranth ``StructLayout`` of a :class:`bioloop.host.layouts.Layout` (same bits)."""
    built = data.StructLayout({m.name: _member_shape(m) for m in layout.members})
    assert built.size == layout.size, layout
    return built


#: 64-bit little-endian AER word (:data:`bioloop.host.layouts.AER_WORD`).
AERWord = struct_layout(_contract.AER_WORD)
#: One 32-bit AXI-Stream beat of samples (:data:`bioloop.host.layouts.SAMPLE_BEAT`).
SampleBeat = struct_layout(_contract.SAMPLE_BEAT)
#: One routing-table entry (:data:`bioloop.host.layouts.ROUTE_ENTRY`).
RouteEntry = struct_layout(_contract.ROUTE_ENTRY)
#: A routed entry on the router's stim port (:data:`bioloop.host.layouts.ROUTED_ENTRY`).
RoutedEntry = struct_layout(_contract.ROUTED_ENTRY)


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
