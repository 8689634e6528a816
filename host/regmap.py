"""The register map of bioloop's ``Core``, defined once (DESIGN.md §5).

Everything that knows a register address takes it from here: the CSR bank
(:mod:`bioloop.gateware.csr`), the generated ``hdl/regmap.json``,
``hdl/regmap.h`` and ``docs/regmap.md`` (:mod:`bioloop.gateware.regmap_export`),
and the host driver (:mod:`bioloop.host.driver`). No other module writes an
address down. The map is plain Python data (no amaranth), so the driver can
use it on the board.

The map is parametric in the number of recording channels ``N``, stim lanes
``K`` and route fanout ``F``. Scalar registers live in the first 4 KiB page
at fixed offsets that do not depend on the parameters (so a driver can read
``n_channels``, ``n_lanes`` and ``fanout`` before it knows the rest); table
windows follow from 0x1000, each aligned to its own power-of-two size so
that decoding a window is a prefix compare.

Access kinds (:class:`Access`):

``const``
    Read-only, fixed at elaboration (ID, version, N, K, F, clock).
``ro``
    Read-only, driven by the datapath through an ``In`` port of the bank.
``rw``
    Configuration held in the bank, visible to the datapath as an ``Out``
    port. Writes honour WSTRB byte by byte.
``pulse``
    Write 1 to make the ``Out(1)`` port high for exactly one cycle. Reads 0.
``w1c``
    Sticky status bit, set by the datapath event named in ``source`` and
    cleared by writing 1 (a set in the same cycle as the clear wins, so no
    event is lost).
``counter``
    32-bit saturating event counter kept by the bank, incremented by an
    ``In`` port (or by the probe named in ``source``); cleared by
    ``control.clear_counters``. An increment in the clearing cycle counts
    into the new epoch. Writes are ignored.
``latest`` / ``maximum``
    The latency probe: the last measurement and the maximum since
    ``clear_counters``, in clock cycles.

Table windows are write-only: each write of a table's last word commits one
entry to the datapath through a :class:`~bioloop.gateware.layouts.WritePort`
(earlier words of a multi-word entry are staged). Reads of a table window
return 0 with OKAY; the driver keeps a shadow of what it wrote.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .layouts import (THETA_INIT, ADDRESS_BITS, FCLK_HZ, HOMEO_GAIN_BITS, HOMEO_SHIFT_BITS, HOMEO_TARGET_BITS,
                      HOMEO_WINDOW_BITS, LATENCY_BITS, ROUTE_ENTRY, THETA_BITS, THETA_MAX, THETA_MIN,
                      Polarity)
from .models.core_budget import min_frame_cycles

__all__ = [
    "Access", "Field", "Register", "Table", "RegisterMap", "ID_VALUE", "VERSION",
    "TABLE_BASE", "DATA_BITS", "OKAY", "SLVERR",
]

#: ASCII "BLOP" — a fixed value the driver checks before trusting the map.
ID_VALUE = 0x424C4F50
#: Register map version: major in bits 31-16, minor in bits 15-0. Bump the
#: major when an existing register moves or changes meaning.
VERSION = (1 << 16) | 1
#: AXI4-Lite data width.
DATA_BITS = 32
#: AXI response codes (AMBA AXI4-Lite, IHI 0022).
OKAY = 0b00
SLVERR = 0b10
#: Build-time defaults of Core (bioloop.gateware.core.Core) that the map reports as the
#: values after reset; tests/host/test_regmap_reset.py reads them back from the RTL.
SAFETY_DUTY_WINDOW = 1_000_000
PULSE_INIT = 20
#: First byte address of the table windows (scalar registers stay below).
TABLE_BASE = 0x1000
_COUNTER_MAX = (1 << 32) - 1


class Access(enum.Enum):
    """How software and the datapath see a field (see the module docstring)."""
    CONST = "const"
    RO = "ro"
    RW = "rw"
    PULSE = "pulse"
    W1C = "w1c"
    COUNTER = "counter"
    LATEST = "latest"
    MAXIMUM = "maximum"


#: Accesses whose value software can change by writing.
WRITABLE = frozenset({Access.RW, Access.PULSE, Access.W1C})


@dataclass(frozen=True)
class Field:
    """A field of a register, or of one entry of a table.

    Parameters
    ----------
    name : str
        Globally unique name; it is also the CSR bank's port name and the
        driver's accessor name.
    width : int
        Bits.
    access : Access
        See :class:`Access`.
    lsb : int
        Bit position in its 32-bit word.
    word : int
        For table fields: which 32-bit word of the entry holds the field.
    signed : bool
        Two's complement value.
    reset : int
        Value after reset.
    lo, hi : int
        Inclusive range of values the driver accepts (default: all the
        width can hold).
    unit : str
        Unit of the value, for documentation.
    doc : str
        One line for the register table.
    source : str
        For ``w1c``: the counter whose increments set the bit. For
        ``counter``: a probe whose measurements it counts (else the bank has
        an increment port). For ``latest``/``maximum``: the probe.
    inc_width : int
        For ``counter``: width of the increment port (events per cycle).
    member : str
        For fields of a multi-field table: the member of the table's
        ``layout`` that carries the field.
    reset_rule : str
        ``"index"`` when each table entry resets to its own index (``reset``
        is then only the value of entry 0).
    """
    name: str
    width: int
    access: Access
    lsb: int = 0
    word: int = 0
    signed: bool = False
    reset: int = 0
    lo: int | None = None
    hi: int | None = None
    unit: str = ""
    doc: str = ""
    source: str | None = None
    inc_width: int = 1
    member: str | None = None
    reset_rule: str = ""

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"field name {self.name!r} is not an identifier")
        if not 1 <= self.width <= DATA_BITS or self.lsb + self.width > DATA_BITS:
            raise ValueError(f"field {self.name}: bits {self.lsb}..{self.lsb + self.width - 1} "
                             f"do not fit a {DATA_BITS}-bit word")
        full_lo, full_hi = ((-(1 << (self.width - 1)), (1 << (self.width - 1)) - 1) if self.signed
                            else (0, (1 << self.width) - 1))
        lo = full_lo if self.lo is None else self.lo
        hi = full_hi if self.hi is None else self.hi
        if not full_lo <= lo <= hi <= full_hi:
            raise ValueError(f"field {self.name}: range {lo}..{hi} does not fit "
                             f"{'signed' if self.signed else 'unsigned'}({self.width})")
        if not lo <= self.reset <= hi and self.access is not Access.CONST:
            raise ValueError(f"field {self.name}: reset {self.reset} outside {lo}..{hi}")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @property
    def mask(self) -> int:
        """Mask of the field within its 32-bit word."""
        return ((1 << self.width) - 1) << self.lsb

    def encode(self, value: int) -> int:
        """Place ``value`` (already range checked) in its word."""
        return (int(value) & ((1 << self.width) - 1)) << self.lsb

    def decode(self, word: int) -> int:
        """Extract the field from a 32-bit word (sign-extended if signed)."""
        raw = (int(word) >> self.lsb) & ((1 << self.width) - 1)
        if self.signed and raw >> (self.width - 1):
            raw -= 1 << self.width
        return raw

    def check(self, value, what: str | None = None) -> int:
        """Return ``value`` as an int, or raise ``ValueError`` naming the field."""
        name = what or self.name
        try:
            iv = int(value)
        except (TypeError, ValueError):
            raise TypeError(f"{name} takes an integer, not {value!r}") from None
        if iv != value or isinstance(value, bool):
            raise TypeError(f"{name} takes an integer, not {value!r}")
        if not self.lo <= iv <= self.hi:
            raise ValueError(f"{name} = {iv} is out of range {self.lo}..{self.hi}"
                             + (f" ({self.unit})" if self.unit else ""))
        return iv


@dataclass(frozen=True)
class Register:
    """One 32-bit register: a name, its fields and (once placed) its byte offset."""
    name: str
    fields: tuple[Field, ...]
    doc: str = ""
    offset: int = -1

    @property
    def access(self) -> str:
        kinds = {f.access for f in self.fields}
        return next(iter(kinds)).value if len(kinds) == 1 else "mixed"

    @property
    def reset(self) -> int:
        value = 0
        for f in self.fields:
            if f.access in (Access.RW, Access.CONST, Access.RO):
                value |= f.encode(f.reset)
        return value


@dataclass(frozen=True)
class Table:
    """A write-only table window: ``depth`` entries of ``words`` 32-bit words each.

    The CSR bank drives a ``WritePort(addr_width, shape)`` for it; a write
    to the last word of an entry commits the entry. ``layout`` names what the
    port carries when it is not a plain integer of the field's width: a
    :class:`bioloop.host.layouts.Layout` whose members the fields fill
    (``Field.member``), or an enumeration of :mod:`bioloop.host.layouts`.
    """
    name: str
    depth: int
    fields: tuple[Field, ...]
    doc: str = ""
    layout: object = None
    index: str = ""
    offset: int = -1

    @property
    def words(self) -> int:
        return max(f.word for f in self.fields) + 1

    @property
    def stride(self) -> int:
        """Bytes per entry."""
        return 4 * self.words

    @property
    def addr_width(self) -> int:
        return max(1, (self.depth - 1).bit_length())

    @property
    def size(self) -> int:
        """Bytes of the (power-of-two) window."""
        return 1 << (self.depth * self.stride - 1).bit_length()


def _bits_for(n: int) -> int:
    return max(1, int(n).bit_length())


class RegisterMap:
    """The register map of one elaboration of ``Core``.

    Parameters
    ----------
    N : int
        Recording channels (even, 2..4096).
    K : int
        Stim lanes (1..4096).
    F : int
        Maximum route fanout per source address (1..256).

    Attributes
    ----------
    registers : tuple of Register
        Scalar registers with their byte offsets.
    tables : tuple of Table
        Table windows with their byte offsets.
    addr_width : int
        Byte-address bits the AXI4-Lite slave decodes.
    """

    def __init__(self, N: int = 64, K: int = 64, F: int = 16):
        for name, value, lo, hi in (("N", N, 2, 4096), ("K", K, 1, 4096), ("F", F, 1, 256)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            if not lo <= value <= hi:
                raise ValueError(f"{name} = {value} is out of range {lo}..{hi}")
        if N % 2:
            raise ValueError(f"N = {N} must be even: a sample beat carries two channels")
        self.N, self.K, self.F = N, K, F
        self.registers = tuple(self._place_registers(self._define_registers()))
        self.tables = tuple(self._place_tables(self._define_tables()))
        end = max(t.offset + t.size for t in self.tables)
        self.addr_width = (end - 1).bit_length()
        self._fields = {}
        for r in self.registers:
            for f in r.fields:
                if f.name in self._fields:
                    raise ValueError(f"field name {f.name} is defined twice")
                self._fields[f.name] = (r, f)
        self._registers = {r.name: r for r in self.registers}
        self._tables = {t.name: t for t in self.tables}
        if set(self._registers) & set(self._tables):
            raise ValueError("a table and a register share a name")

    # -- the definition ------------------------------------------------------------------

    def _define_registers(self):
        """Sections of scalar registers: (base offset, [Register, ...])."""
        N, K, F = self.N, self.K, self.F
        C, RO, RW, P, W1C, CNT = (Access.CONST, Access.RO, Access.RW, Access.PULSE,
                                   Access.W1C, Access.COUNTER)

        def reg(name, width=32, access=RW, doc="", **kw):
            return Register(name, (Field(name, width, access, doc=doc, **kw),), doc)

        def const(name, value, doc):
            return reg(name, 32, C, doc, reset=value)

        def counter(name, doc, **kw):
            return reg(name, 32, CNT, doc, unit="events", **kw)

        identity = [
            const("id", ID_VALUE, "Identifies a bioloop core: ASCII 'BLOP'"),
            const("version", VERSION, "Register map version (major << 16 | minor)"),
            const("n_channels", N, "Recording channels N"),
            const("n_lanes", K, "Stim lanes K"),
            const("fanout", F, "Maximum route fanout F per source address"),
            const("fclk_hz", FCLK_HZ, "Fabric clock in Hz (cycles to ns)"),
            reg("min_frame_cycles", 16, RO, "Fewest clock cycles between two frames' last beats "
                "(build-time constant; a last beat waits until then)", unit="cycles",
                reset=min_frame_cycles(K, "sweep")),       # the Core's default cadence
        ]
        control = [
            Register("control", (
                Field("enable", 1, RW, lsb=0, doc="Run the datapath"),
                Field("homeo_enable", 1, RW, lsb=1, doc="Let Homeostasis move θ"),
                Field("soft_reset", 1, P, lsb=8,
                      doc="Pulse: clear datapath state (pipelines, accumulators); keeps configuration"),
                Field("clear_counters", 1, P, lsb=9,
                      doc="Pulse: clear every counter and the latency probe"),
            ), "Control"),
            Register("status", (
                Field("framing_error", 1, W1C, lsb=0, source="framing_errors",
                      doc="A TLAST fell elsewhere than on a frame's last beat"),
                Field("overflow", 1, W1C, lsb=1, source="overflows",
                      doc="A spike (AEREncoder) or a STIM word (StimUnit FIFO) was lost; an OVERFLOW word reports how many"),
                Field("unmapped", 1, W1C, lsb=2, source="unmapped_words",
                      doc="A SPIKE word had no route"),
                Field("safety_clamp", 1, W1C, lsb=3, source="safety_clamps",
                      doc="Safety turned off a lane that wanted light (a cap clamped) in some cycle"),
            ), "Sticky status, write 1 to clear"),
            reg("scratch", 32, RW, "Free for software; checks the bus"),
            reg("theta_select", _bits_for(K - 1), RW, "Lane whose θ theta_value shows",
                hi=K - 1),
            reg("theta_value", THETA_BITS, RO, "Current θ of lane theta_select (Q8.8)", unit="Q8.8",
                reset=THETA_INIT),
        ]
        counters = [
            counter("frames", "Sample frames received (N/2 beats, or ended by TLAST)"),
            counter("framing_errors", "TLASTs not on a frame's last beat (frame ended there)"),
            counter("detections", "Detector crossings", inc_width=2),
            counter("aer_words", "AER words sent to the host port"),
            counter("overflows", "Events lost: spikes in the AEREncoder and STIM words in the StimUnit FIFO", inc_width=2),
            counter("routed_entries", "Route entries emitted to the stim port"),
            counter("unmapped_words", "SPIKE words without a route"),
            counter("stim_fires", "StimUnit fires"),
            reg("safety_clamps", 32, CNT, "Cycles in which any Safety cap turned a lane off",
                unit="cycles"),
            counter("latency_samples", "Loop latency measurements", source="latency"),
        ]
        probe = [
            reg("latency_last", LATENCY_BITS, Access.LATEST, "Last loop latency: SPIKE beat to first LED cycle",
                unit="cycles", source="latency"),
            reg("latency_max", LATENCY_BITS, Access.MAXIMUM, "Maximum loop latency since clear_counters",
                unit="cycles", source="latency"),
        ]
        config = [
            reg("refractory", 16, RW, "Detector refractory period R", unit="frames", reset=30),
            reg("aer_source", 8, RW, "Source field of every AER word (well or chip id)"),
            reg("aer_block_words", 16, RW, "AER words per DMA block (TLAST every this many)",
                unit="words", lo=1, reset=256),
            reg("leak_shift", 4, RW, "StimUnit leak: acc -= acc >> leak_shift per frame (0: no leak)",
                unit="shift"),
            reg("homeo_window", HOMEO_WINDOW_BITS, RW, "Homeostasis window W", unit="frames", lo=1, reset=3000),
            # g lies in [2^16, 2^17) so that the integer update agrees with the float rule
            # within 1 LSB (host/models/homeostasis.py): 17 bits, and a 6-bit shift.
            reg("homeo_gain", HOMEO_GAIN_BITS, RW, "Homeostasis gain g", reset=0),
            reg("homeo_shift", HOMEO_SHIFT_BITS, RW, "Homeostasis shift s", unit="shift"),
            reg("theta_min", THETA_BITS, RW, "Lower clamp of θ", unit="Q8.8", reset=THETA_MIN),
            reg("theta_max", THETA_BITS, RW, "Upper clamp of θ", unit="Q8.8", reset=THETA_MAX),
            # Safety counts clock cycles, not frames: a cap must still end a pulse if frames
            # stop (a stalled DMA). The window is fixed at build time (read-only), so software
            # cannot widen the duty fraction; registers can only tighten the build-time limits.
            reg("safety_max_pulse", 20, RW, "Safety: longest pulse", unit="cycles", reset=500_000),
            reg("safety_duty_window", 20, RO, "Safety: window of the duty cap (build-time constant)",
                unit="cycles", reset=SAFETY_DUTY_WINDOW),
            reg("safety_max_duty", 20, RW, "Safety: lit cycles per lane per window", unit="cycles",
                reset=500_000),
            reg("safety_max_lanes", _bits_for(K), RW, "Safety: lanes lit at once", unit="lanes",
                hi=K, reset=K),
        ]
        return [(0x000, identity), (0x040, control), (0x080, counters), (0x100, probe),
                (0x200, config)]

    def _define_tables(self):
        N, K, F = self.N, self.K, self.F
        RW = Access.RW
        return [
            Table("thresholds", N, (Field("thresholds", 16, RW, hi=32767, unit="ADC codes",
                                          reset=32767),),
                  "Detector threshold magnitude θ_det[c]", index="channel"),
            Table("polarity", N, (Field("polarity", 2, RW, hi=max(p.value for p in Polarity),
                                        doc="0 negative, 1 positive, 2 both, 3 off"),),
                  "Detector polarity per channel (0 negative, 1 positive, 2 both, 3 off: never detects)",
                  layout=Polarity, index="channel"),
            Table("route_count", N, (Field("route_count", _bits_for(F), RW, hi=F, unit="entries"),),
                  "Number of route entries used per source address", index="channel"),
            Table("routes", N * F, (
                Field("route_target", ADDRESS_BITS, RW, lsb=0, word=0, member="target",
                      doc="Stim lane (STIM) or relayed address (HOST)"),
                Field("route_port", 1, RW, lsb=31, word=0, member="port", doc="0 STIM, 1 HOST"),
                Field("route_weight", 16, RW, lsb=0, word=1, signed=True, unit="Q8.8", member="weight",
                      doc="Signed Q8.8 weight"),
            ), "Route entry slot of address c: index c*F + slot; word 1 commits",
                layout=ROUTE_ENTRY, index="channel*F+slot"),
            Table("theta", K, (Field("theta", THETA_BITS, RW, unit="Q8.8", reset=THETA_INIT),),
                  "StimUnit fire threshold θ_k (Homeostasis moves it)", index="lane"),
            Table("homeo_src", K, (Field("homeo_src", _bits_for(N - 1), RW, hi=N - 1,
                                         unit="channel", reset_rule="index",
                                         doc="Resets to k: lane k watches channel k"),),
                  "Recording channel whose spikes Homeostasis counts for lane k", index="lane"),
            Table("homeo_target", K, (Field("homeo_target", HOMEO_TARGET_BITS, RW, unit="UQ16.8 spikes/window"),),
                  "Homeostasis target count c* per window (UQ.8)", index="lane"),
            Table("lane_codes", K, (Field("lane_codes", 16, RW, unit="density code"),),
                  "StochasticLanes density code: LED on when LFSR < code", index="lane"),
            Table("pulse_lengths", K, (Field("pulse_lengths", 16, RW, unit="frames",
                                             reset=PULSE_INIT),),
                  "Pulse length per fire", index="lane"),
        ]

    @staticmethod
    def _place_registers(sections):
        placed, end = [], 0
        for base, regs in sections:
            if base < end:
                raise ValueError(f"register section at {base:#x} overlaps the previous one")
            for i, r in enumerate(regs):
                placed.append(Register(r.name, r.fields, r.doc, base + 4 * i))
            end = base + 4 * len(regs)
        if end > TABLE_BASE:
            raise ValueError("scalar registers overflow into the table windows")
        return placed

    @staticmethod
    def _place_tables(tables):
        placed, offset = [], TABLE_BASE
        for t in tables:
            offset = -(-offset // t.size) * t.size  # align to the window size
            placed.append(Table(t.name, t.depth, t.fields, t.doc, t.layout, t.index, offset))
            offset += t.size
        return placed

    # -- lookup --------------------------------------------------------------------------

    def register(self, name: str) -> Register:
        try:
            return self._registers[name]
        except KeyError:
            raise KeyError(f"no register named {name!r}") from None

    def table(self, name: str) -> Table:
        try:
            return self._tables[name]
        except KeyError:
            raise KeyError(f"no table named {name!r}") from None

    def field(self, name: str) -> tuple[Register, Field]:
        """The register holding field ``name`` and the field itself."""
        try:
            return self._fields[name]
        except KeyError:
            raise KeyError(f"no register field named {name!r}") from None

    def fields(self, *accesses: Access):
        """All register fields (of the given accesses), in address order."""
        return [f for r in self.registers for f in r.fields if not accesses or f.access in accesses]

    def counters(self) -> list[str]:
        return [f.name for f in self.fields(Access.COUNTER)]

    def decode(self, addr: int):
        """What a byte address hits: ``("register", Register)``,
        ``("table", Table, entry, word)`` or ``None`` (unmapped)."""
        word_addr = addr & ~3
        for r in self.registers:
            if r.offset == word_addr:
                return ("register", r)
        for t in self.tables:
            if t.offset <= word_addr < t.offset + t.depth * t.stride:
                i = (word_addr - t.offset) // 4
                return ("table", t, i // t.words, i % t.words)
        return None

    def __repr__(self):
        return f"RegisterMap(N={self.N}, K={self.K}, F={self.F})"
