"""The AXI4-Lite CSR bank of ``Core``, generated from the register map (DESIGN.md §5).

:class:`CSRBank` is an AXI4-Lite slave whose registers, counters, status
bits and table write ports all come from one
:class:`~bioloop.host.regmap.RegisterMap`; its transaction-level Python model
is :class:`bioloop.host.models.csr.CSRBankModel` (the executable specification
the cocotb bench scores against, and the register file of the ``model``
backend).

AXI4-Lite behaviour
-------------------
- AW and W are each taken into a one-entry holding register as soon as they
  are valid, in either order or in the same cycle; the write happens once
  both are held and no B response is pending. One write and one read can be
  in flight at a time; the B and R channels hold their response until
  accepted (AXI4-Lite allows a slave to serialise like this).
- BRESP/RRESP is OKAY for every mapped address and SLVERR for unmapped ones
  (a write to an unmapped address changes nothing). Writes to read-only
  registers are ignored with OKAY. Address bits 1..0 are ignored (WSTRB
  selects bytes).
- WSTRB: unstrobed bytes of a ``rw`` register keep their value; unstrobed
  bytes of ``pulse``, ``w1c`` and table words are written as zeros.
- Latencies: AW and W together to BVALID in 2 cycles; AR to RVALID in 1.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bioloop.host.layouts import Layout
from bioloop.host.models.csr import check_counter_bits as _check_counter_bits
from bioloop.host.parameters import validated
from bioloop.host.regmap import DATA_BITS, OKAY, SLVERR, Access, RegisterMap

from . import layouts
from .layouts import WritePort

__all__ = ["AXI4LiteSignature", "CSRBank", "field_shape", "table_shape"]

#: Word-address bits the read multiplexer's first level decodes (groups of 32 registers).
READ_GROUP_BITS = 5



def field_shape(f):
    """The Amaranth shape of a register-map field."""
    return signed(f.width) if f.signed else unsigned(f.width)


def table_shape(t):
    """The Amaranth shape of the data a table's ``WritePort`` carries."""
    if t.layout is None:
        (only,) = t.fields
        return field_shape(only)
    if isinstance(t.layout, Layout):
        return layouts.struct_layout(t.layout)
    return getattr(layouts, t.layout.__name__)     # a contract enum: its shaped twin


class AXI4LiteSignature(wiring.Signature):
    """AXI4-Lite, 32-bit data, seen from the master (flip it for a slave).

    Member names are the AXI signal names in lower case, so a slave member
    ``s_axil`` flattens to ``s_axil__awaddr`` etc.; cocotbext-axi binds to it
    with ``AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__")``.
    """

    def __init__(self, addr_width: int):
        if not isinstance(addr_width, int) or not 2 < addr_width <= 32:
            raise ValueError(f"AXI4-Lite addr_width must be 3..32, not {addr_width!r}")
        self.addr_width = addr_width
        super().__init__({
            "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(DATA_BITS), "wstrb": Out(DATA_BITS // 8), "wvalid": Out(1), "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(DATA_BITS), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })

    def __eq__(self, other):
        return isinstance(other, AXI4LiteSignature) and other.addr_width == self.addr_width

    def __repr__(self):
        return f"AXI4LiteSignature({self.addr_width})"


def _probes(regmap: RegisterMap) -> dict[str, int]:
    """Probe name -> measurement width."""
    widths = {}
    for f in regmap.fields(Access.LATEST, Access.MAXIMUM):
        widths[f.source] = max(widths.get(f.source, 0), f.width)
    return widths


def _bank_signature(regmap: RegisterMap) -> dict:
    members = {"s_axil": In(AXI4LiteSignature(regmap.addr_width))}
    counts = {}
    for f in regmap.fields():
        if f.access in (Access.RW,):
            members[f.name] = Out(field_shape(f), init=f.reset)
        elif f.access is Access.PULSE:
            members[f.name] = Out(1)
        elif f.access is Access.RO:
            members[f.name] = In(field_shape(f))
        elif f.access is Access.COUNTER and f.source is None:
            counts[f.name] = Out(f.inc_width)
    if counts:
        members["count"] = In(wiring.Signature(counts))
    for probe, width in _probes(regmap).items():
        members[probe] = In(wiring.Signature({"cycles": Out(width), "valid": Out(1)}))
    for t in regmap.tables:
        members[t.name] = Out(WritePort(t.addr_width, table_shape(t)))
    return members


class CSRBank(wiring.Component):
    """AXI4-Lite register bank generated from a :class:`RegisterMap`.

    Parameters
    ----------
    regmap : RegisterMap
        The map to implement (``RegisterMap(N, K, F)``).
    counter_bits : int
        Width at which counters saturate (default: the map's 32 bits).
        Narrower counters exist so a testbench can reach saturation; a
        ``Core`` always uses the default.

    Members
    -------
    s_axil : In(AXI4LiteSignature(regmap.addr_width))
        The AXI4-Lite slave port.
    <rw field> : Out(shape)
        Configuration value, one member per ``rw`` field, named like the field
        (``enable``, ``refractory``, ``theta_min``...). Changes the cycle after
        the write.
    <pulse field> : Out(1)
        High for exactly one cycle after a write of 1 (``soft_reset``,
        ``clear_counters``).
    <ro field> : In(shape)
        Read-only value shown to software (``theta_value``).
    count : In(Signature)
        One increment input per counter (``count.frames``...), in events per
        cycle; the bank keeps the saturating 32-bit count and sets the sticky
        status bits whose ``source`` is that counter.
    latency : In(Signature({"cycles", "valid"}))
        A loop-latency measurement in cycles, taken when ``valid`` is high;
        the bank keeps the last one, the maximum since clear and their number.
    <table> : Out(WritePort(addr_width, shape))
        One write port per table window; ``en`` is high for one cycle with
        the entry's index and value (the cycle after the committing write).
    formal_observer : object or None
        Formal hook (docs/verification.md), default None. A proof harness
        may attach an observer of the bus with the counts of requests in
        flight, ``aw_count``, ``w_count``, ``ar_count`` (accepted, response
        not yet accepted) and their records in order, ``aw_slots`` (word
        address), ``w_slots`` (``Cat(wdata, wstrb)``); elaborated for the
        ``"formal"`` platform, the bank then asserts that its held AW and W,
        its pending B and its pending R account for exactly those. An
        observer of the registers may add ``status``, ``counts`` and
        ``probes``, dicts of field name to the value a read would see in
        this cycle (:func:`bioloop.sim.proofs.CSRBankProtocol`); the bank
        then asserts that its sticky bits, counters and latency values are
        those.
    """

    formal_observer = None

    @validated
    def __init__(self, regmap: RegisterMap, counter_bits: int = DATA_BITS):
        if not isinstance(regmap, RegisterMap):
            raise TypeError(f"CSRBank needs a RegisterMap, not {regmap!r}")
        self.regmap = regmap
        self.counter_bits = _check_counter_bits(counter_bits)
        super().__init__(_bank_signature(regmap))

    def elaborate(self, platform):
        m = Module()
        aw_word, do_write, mask, wmasked, write_mapped = self._write_channel(m, platform)
        ar_word, read_value, read_mapped = self._read_channel(m)
        value_of = self._registers(m, aw_word, do_write, mask, wmasked, platform)
        table_hits, table_read_hits = self._tables(m, aw_word, ar_word, do_write, wmasked)
        self._decode(m, aw_word, ar_word, value_of, table_hits, table_read_hits,
                     write_mapped, read_value, read_mapped)
        return m

    def _write_channel(self, m: Module, platform=None):
        """AW and W held independently; the write happens when both are held (no B pending)."""
        bus = self.s_axil
        word_bits = self.regmap.addr_width - 2
        # ---- write channel: hold AW and W independently, write when both are held
        aw_held = Signal()
        aw_word = Signal(word_bits)
        w_held = Signal()
        w_data = Signal(DATA_BITS)
        w_strb = Signal(4)
        m.d.comb += [bus.awready.eq(~aw_held), bus.wready.eq(~w_held)]
        with m.If(bus.awvalid & bus.awready):
            m.d.sync += [aw_held.eq(1), aw_word.eq(bus.awaddr[2:])]
        with m.If(bus.wvalid & bus.wready):
            m.d.sync += [w_held.eq(1), w_data.eq(bus.wdata), w_strb.eq(bus.wstrb)]
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += bus.bvalid.eq(0)

        do_write = Signal()
        m.d.comb += do_write.eq(aw_held & w_held & ~bus.bvalid)
        mask = Signal(DATA_BITS)
        m.d.comb += mask.eq(Cat(*[b.replicate(8) for b in w_strb]))
        wmasked = Signal(DATA_BITS)
        m.d.comb += wmasked.eq(w_data & mask)

        write_mapped = Signal()
        with m.If(do_write):
            m.d.sync += [aw_held.eq(0), w_held.eq(0), bus.bvalid.eq(1),
                         bus.bresp.eq(Mux(write_mapped, OKAY, SLVERR))]

        # Formal only: the observer's requests in flight are the held AW/W and the pending B.
        observer = self.formal_observer
        if platform == "formal" and observer is not None:
            from amaranth.hdl import Assert
            aw_rec = Mux(bus.bvalid, observer.aw_slots[1], observer.aw_slots[0])
            w_rec = Mux(bus.bvalid, observer.w_slots[1], observer.w_slots[0])
            m.d.comb += [
                Assert(observer.aw_count == aw_held + bus.bvalid, "AWs in flight are not the held AW and the B"),
                Assert(observer.w_count == w_held + bus.bvalid, "Ws in flight are not the held W and the B"),
                Assert(~aw_held | (aw_rec == aw_word), "the held AW is not the observer's"),
                Assert(~w_held | (w_rec == Cat(w_data, w_strb)), "the held W is not the observer's"),
                Assert(observer.ar_count == bus.rvalid, "ARs in flight are not the pending R"),
            ]

        return aw_word, do_write, mask, wmasked, write_mapped

    def _read_channel(self, m: Module):
        """One read at a time; the data is registered at the AR handshake."""
        bus = self.s_axil
        word_bits = self.regmap.addr_width - 2
        # ---- read channel: one read at a time, data registered at AR handshake
        ar_word = Signal(word_bits)
        m.d.comb += [bus.arready.eq(~bus.rvalid), ar_word.eq(bus.araddr[2:])]
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        read_value = Signal(DATA_BITS)
        read_mapped = Signal()
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += [bus.rvalid.eq(1), bus.rdata.eq(read_value),
                         bus.rresp.eq(Mux(read_mapped, OKAY, SLVERR))]

        return ar_word, read_value, read_mapped

    def _registers(self, m: Module, aw_word, do_write, mask, wmasked, platform=None) -> dict:
        """Storage, read values and write effects of every scalar register."""
        rm = self.regmap
        # Formal only: the observer's view of each status bit, counter and probe value is this bank's.
        observer = self.formal_observer if platform == "formal" else None
        links = []
        # ---- registers: storage, read values, write effects
        clear_now = Signal()          # clear_counters written this cycle
        value_of = {}                 # register name -> 32-bit read value expression

        for reg in rm.registers:
            hit = Signal(name=f"hit_{reg.name}")
            m.d.comb += hit.eq(do_write & (aw_word == (reg.offset >> 2)))
            parts = Const(0, DATA_BITS)
            for f in reg.fields:
                port = getattr(self, f.name, None)
                if f.access is Access.CONST:
                    parts = parts | Const(f.encode(f.reset), DATA_BITS)
                elif f.access is Access.RW:
                    # The Out port is the storage (its init is the reset value). Each byte lane of the
                    # field is written when its strobe is set: the strobe enables the flip-flops, which
                    # take the write data as it is (no per-bit merge of old and new values).
                    value = Value.cast(port)
                    for lo in range(f.lsb, f.lsb + f.width):
                        if lo == f.lsb or lo % 8 == 0:
                            hi = min(f.lsb + f.width, (lo // 8 + 1) * 8)
                            with m.If(hit & mask[lo]):
                                m.d.sync += value[lo - f.lsb:hi - f.lsb].eq(wmasked[lo:hi])
                    parts = parts | (Value.cast(port).as_unsigned() << f.lsb)
                elif f.access is Access.PULSE:
                    fire = Signal(name=f"fire_{f.name}")
                    m.d.comb += fire.eq(hit & wmasked[f.lsb])
                    m.d.sync += port.eq(fire)
                    if f.name == "clear_counters":
                        m.d.comb += clear_now.eq(fire)
                elif f.access is Access.RO:
                    parts = parts | (Value.cast(port).as_unsigned() << f.lsb)
                elif f.access is Access.W1C:
                    bit = Signal(name=f"status_{f.name}")
                    src = rm.field(f.source)[1]
                    event = self._increment(src) != 0
                    m.d.sync += bit.eq((bit & ~(hit & wmasked[f.lsb])) | event)
                    parts = parts | (bit << f.lsb)
                    links.append(("status", f.name, bit))
                elif f.access is Access.COUNTER:
                    width = self.counter_bits
                    count = Signal(width, name=f"count_{f.name}")
                    inc = Value.cast(self._increment(f))
                    w = len(inc)
                    if width > w:
                        # count = upper * 2^w + low, with ``low`` as wide as the increment: the carry out
                        # of ``low + inc`` is a single event for ``upper``, whose ``upper + 1`` is formed
                        # from the register alone (its carry out is "upper is all ones") and which the
                        # event only enables. Saturation: a carry into a full ``upper`` sets ``low`` to
                        # all ones. No per-bit saturation multiplexer, no wide compare (issue 14).
                        low, upper = count[:w], count[w:]
                        low_sum = Signal(w + 1, name=f"low_{f.name}")
                        up1 = Signal(width - w + 1, name=f"up1_{f.name}")
                        m.d.comb += [low_sum.eq(low + inc), up1.eq(upper + 1)]
                        carry, upper_full = low_sum[w], up1[-1]
                        with m.If(clear_now):
                            m.d.sync += count.eq(inc)
                        with m.Else():
                            m.d.sync += low.eq(Mux(carry & upper_full, (1 << w) - 1, low_sum[:w]))
                            with m.If(carry & ~upper_full):
                                m.d.sync += upper.eq(up1[:-1])
                    else:
                        total = Signal(width + 1, name=f"total_{f.name}")
                        m.d.comb += total.eq(count + inc)
                        with m.If(clear_now):
                            m.d.sync += count.eq(inc)
                        with m.Else():
                            m.d.sync += count.eq(Mux(total[-1], (1 << width) - 1, total))
                    parts = parts | (count << f.lsb)
                    links.append(("counts", f.name, count))
                elif f.access in (Access.LATEST, Access.MAXIMUM):
                    probe = getattr(self, f.source)
                    value = Signal(f.width, name=f"{f.name}")
                    cycles = probe.cycles
                    if f.access is Access.LATEST:
                        new = cycles
                    else:
                        new = Mux(cycles > value, cycles, value)
                    with m.If(clear_now):
                        m.d.sync += value.eq(Mux(probe.valid, cycles, 0))
                    with m.Elif(probe.valid):
                        m.d.sync += value.eq(new)
                    parts = parts | (value << f.lsb)
                    links.append(("probes", f.name, value))
                else:  # pragma: no cover - the map validates accesses
                    raise AssertionError(f.access)
            value_of[reg.name] = parts

        if observer is not None:
            from amaranth.hdl import Assert
            for kind, name, state in links:
                seen = getattr(observer, kind, {})
                if name in seen:
                    m.d.comb += Assert(state == seen[name], f"{name}: the observer's value is not the bank's")
        return value_of

    def _tables(self, m: Module, aw_word, ar_word, do_write, wmasked):
        """Table windows: early words of an entry staged, the last one commits it."""
        rm = self.regmap
        # ---- tables: stage early words, commit on the last one
        table_hits, table_read_hits = [], []
        for t in rm.tables:
            port = getattr(self, t.name)
            m.d.sync += port.en.eq(0)
            base_word = t.offset >> 2
            span_bits = (t.size >> 2).bit_length() - 1      # words in the window = 2**span_bits
            index = aw_word[:span_bits] if span_bits else Const(0, 1)
            in_window = (aw_word[span_bits:] == (base_word >> span_bits)) & (index < t.depth * t.words)
            table_hits.append(in_window)
            rindex = ar_word[:span_bits] if span_bits else Const(0, 1)
            table_read_hits.append((ar_word[span_bits:] == (base_word >> span_bits))
                                   & (rindex < t.depth * t.words))
            word_bits_t = (t.words - 1).bit_length()
            entry = index[word_bits_t:]
            which = index[:word_bits_t] if word_bits_t else Const(0, 1)
            staged = [Signal(DATA_BITS, name=f"{t.name}_word{w}") for w in range(t.words - 1)]
            words = [*staged, wmasked]
            with m.If(do_write & in_window):
                for w, s in enumerate(staged):
                    with m.If(which == w):
                        m.d.sync += s.eq(wmasked)
                with m.If(which == t.words - 1):
                    m.d.sync += [port.en.eq(1), port.addr.eq(entry)]
                    data = Value.cast(port.data)
                    if len(t.fields) == 1:
                        (f,) = t.fields
                        m.d.sync += data.eq(words[f.word][f.lsb:f.lsb + f.width])
                    else:
                        for f in t.fields:
                            member = table_shape(t)[f.member]
                            m.d.sync += data[member.offset:member.offset + member.width].eq(
                                words[f.word][f.lsb:f.lsb + f.width])

        return table_hits, table_read_hits

    def _decode(self, m: Module, aw_word, ar_word, value_of, table_hits, table_read_hits,
                write_mapped, read_value, read_mapped) -> None:
        """Which addresses are mapped (OKAY or SLVERR), and the read multiplexer."""
        rm = self.regmap
        m.d.comb += write_mapped.eq(
            Cat(*[aw_word == (r.offset >> 2) for r in rm.registers], *table_hits).any())

        # ---- read mux, in two levels: the low word-address bits choose within each group of
        # 2**READ_GROUP_BITS words, the upper bits choose the group. The same cases as one flat
        # switch over the whole address (Yosys maps that as a 40-way AND-OR per bit), in about
        # 130 fewer LUTs at RegisterMap(64, 64, 16) (issue 14).
        lo = min(READ_GROUP_BITS, len(ar_word))
        groups = {}
        for reg in rm.registers:
            groups.setdefault((reg.offset >> 2) >> lo, []).append(reg)
        table_read = Cat(*table_read_hits).any()
        inner = {}
        for g, regs in groups.items():
            v, hit = Signal(DATA_BITS, name=f"read_group{g}"), Signal(name=f"read_group{g}_hit")
            with m.Switch(ar_word[:lo]):
                for reg in regs:
                    with m.Case((reg.offset >> 2) & ((1 << lo) - 1)):
                        m.d.comb += [v.eq(value_of[reg.name]), hit.eq(1)]
            inner[g] = (v, hit)
        if lo == len(ar_word):
            ((v, hit),) = inner.values()
            m.d.comb += [read_value.eq(v), read_mapped.eq(hit | table_read)]
            return
        with m.Switch(ar_word[lo:]):
            for g, (v, hit) in inner.items():
                with m.Case(g):
                    m.d.comb += [read_value.eq(v), read_mapped.eq(hit | table_read)]
            with m.Default():
                m.d.comb += [read_value.eq(0), read_mapped.eq(table_read)]

    def _increment(self, f):
        """The increment input of counter field ``f`` (events this cycle)."""
        if f.source is None:
            return getattr(self.count, f.name)
        return getattr(self, f.source).valid
