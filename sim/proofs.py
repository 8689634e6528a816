"""The properties bioloop proves about its gateware, as harnesses for :func:`bioloop.sim.formal.prove`.

Each harness instantiates a block (or a mutant of it: the same ports, one
cycle or one count looser), drives every configuration input with
``AnyConst`` and every data input with ``AnySeq``, observes the block's
outputs with counters of its own, and asserts the block's specification.
The harness reads only the block's ports and elaboration parameters, never
its internals; a block adds its own invariants when elaborated for the
``"formal"`` platform.

Properties (docs/verification.md):

:class:`SafetyCaps`
    For any register programming and any pulse/bit/fire input, in either
    cadence: no lane lit more than ``min(max_pulse, limit_pulse)``
    consecutive cycles; at most ``min(max_lanes, limit_lanes)`` lanes lit
    at once; no lane lit more than ``min(max_duty, limit_duty)`` cycles in
    any of its duty windows (the sweep cadence: ``S * floor(cap / S)``).
:class:`EncoderConservation`
    AEREncoder: every spike leaves as one SPIKE word or is counted in one
    OVERFLOW report.
:class:`CSRBankProtocol`
    CSRBank: AXI4-Lite (one response per request, in order, held until
    READY, SLVERR exactly for unmapped addresses, pulse fields), and with
    ``registers=True`` every read value and ``rw`` output as the map says.
:class:`RouterDelivery`
    AERRouter: every accepted word delivered once, with exactly its row's
    fanout, under any backpressure.

:data:`CATALOGUE` lists every proof with its sizes; :meth:`Proof.run` runs one.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Cat, Const, Elaboratable, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.asserts import AnyConst, AnySeq   # not re-exported by amaranth.hdl in 0.5
from amaranth.hdl import Assert, Assume

__all__ = ["Observer", "attach", "SafetyCaps", "CSRBankProtocol", "Mutant", "looser_safety", "looser_csr_bank", "looser_csr_reads", "EncoderConservation", "looser_encoder", "RouterDelivery", "looser_router", "Proof", "CATALOGUE", "mapped_predicate"]


def _min(a, b):
    return Mux(a > b, b, a)


class Observer:
    """A harness's observer: a namespace of its counters (Signals), the ones a block's formal hook documents."""

    def __repr__(self):
        return f"Observer({', '.join(sorted(vars(self)))})"


def attach(block, observer):
    """Attach ``observer`` to ``block``'s formal hook (``block.formal_observer``), through any :class:`Mutant`.

    Called in a harness's ``elaborate``, before the block itself is
    elaborated. Elaborated for the ``"formal"`` platform, the block then
    asserts how its state explains the observer's counters; that is what
    makes the harness's properties provable by k-induction of small depth.
    A block that has no hook is left alone (the proof is then plain).
    """
    while isinstance(block, Mutant):
        block = block.inner
    if hasattr(type(block), "formal_observer"):
        block.formal_observer = observer


class _Harness(Elaboratable):
    """A proof harness. ``link`` (default True): attach the observer to the block's formal hook.

    A mutant's harness is built with ``link=False``: the wrapped block's hook would state how
    *its* state explains counters of the *mutant's* outputs, which the mutant breaks by
    construction, so the mutant must fail on the property itself (a plain bounded check).
    """

    link = True


class SafetyCaps(_Harness):
    """Safety's three caps, observed at the LED outputs, for either cadence.

    Every cap register is ``AnyConst``; ``pulse``, ``bits``, ``fire`` and
    ``fire_lane`` are ``AnySeq``; nothing is assumed. Asserted, with
    ``e`` the index of the edge after which an LED value is seen (edge 0
    the first after reset):

    - pulse: no lane lit more than ``min(max_pulse, limit_pulse)``
      consecutive cycles;
    - lanes: at most ``min(max_lanes, limit_lanes)`` lanes lit at once;
    - duty: no lane lit more than ``min(max_duty, limit_duty)`` cycles in
      one of its duty windows of ``W = duty_window`` cycles (the window in
      force).

    Sweep cadence: the pulse and duty caps asserted are the sweep's rule,
    ``S * floor(cap / S)`` cycles with ``S`` the sweep period (the counters
    count S-cycle intervals), which is at most the cap. Cycle cadence: the windows are the LED values after edges
      ``jW .. jW + W - 1``. Sweep cadence: lane ``k``'s windows are the LED
      values after edges ``W + k + 2 + jW .. 2W + k + 1 + jW`` (they start
      just after the lane's visits at edges ``(n - 1) mod W == k``, the
      interval ending at such a visit counting in the window before), and
      its first window, from reset, is edges ``0 .. W + k + 1``.

    The observer (``Observer``, attached to the block's formal hook):
    ``lit_run[k]``, ``duty_pos`` (``e mod W``), ``lit_in_window[k]`` (lit
    cycles of the current window before this one), ``window_total[k]``
    (with this one) and, for the sweep cadence, ``age``
    (``min(e + 1, W + S + 3)``).

    Parameters
    ----------
    safety : Safety (or a mutant with its ports and parameters)
    caps : iterable of {"pulse", "lanes", "duty"}
        The caps to assert (default: all three).
    lanes : {"all", "any"}
        ``"all"``: the pulse and duty caps are observed and asserted on every
        lane. ``"any"``: on one lane ``j``, free but constant (``AnyConst``),
        so the proof still covers every lane; the observer then also has
        ``lane`` (= ``j``) and its per-lane lists have the one entry of lane
        ``j``, and the block states the invariants of lane ``j`` only. That
        keeps the proof's size from growing lane by lane (the default K = 64).
    """

    def __init__(self, safety, caps=("pulse", "lanes", "duty"), lanes: str = "all"):
        unknown = set(caps) - {"pulse", "lanes", "duty"}
        if unknown:
            raise ValueError(f"unknown caps {sorted(unknown)}; choose from pulse, lanes, duty")
        if lanes not in ("all", "any"):
            raise ValueError(f"lanes must be 'all' or 'any', not {lanes!r}")
        self.safety = safety
        self.caps = tuple(caps)
        self.lanes = lanes

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.safety
        K = dut.n_lanes
        max_pulse = AnyConst(len(dut.max_pulse))
        max_duty = AnyConst(len(dut.max_duty))
        max_lanes = AnyConst(len(dut.max_lanes))
        m.d.comb += [
            dut.max_pulse.eq(max_pulse), dut.max_duty.eq(max_duty), dut.max_lanes.eq(max_lanes),
            dut.pulse.eq(AnySeq(K)), dut.bits.eq(AnySeq(K)),
            dut.fire.eq(AnySeq(1)), dut.fire_lane.eq(AnySeq(len(dut.fire_lane))),
        ]
        led = dut.led
        spec = Observer()
        sweep = getattr(dut, "cadence", "cycle") == "sweep"
        if self.lanes == "any":
            spec.lane = j = Signal(range(K), name="lane")
            m.d.comb += j.eq(AnyConst(range(K)))
            m.d.comb += Assume(j < K)
            observed = [(j, led.bit_select(j, 1))]
        else:
            observed = [(k, led[k]) for k in range(K)]

        # The sweep cadence grants light S cycles at a time and counts in units of S cycles: its caps
        # in force are S * floor(cap / S) cycles, at most the cap (docs/verification.md).
        def in_force(cap):
            if not sweep:
                return cap
            sb = dut.period.bit_length() - 1
            return (cap >> sb) << sb

        if "pulse" in self.caps:
            cap = in_force(_min(max_pulse, dut.limit_pulse))
            top = dut.limit_pulse + 1                  # saturate just above any legal run
            spec.lit_run = []
            for k, lit in observed:
                name = f"lane {k}" if isinstance(k, int) else "lane j"
                run = Signal(range(top + 1), name=f"lit_run{k}" if isinstance(k, int) else "lit_run_j")
                spec.lit_run.append(run)
                m.d.sync += run.eq(Mux(lit, Mux(run == top, top, run + 1), 0))
                m.d.comb += Assert(Mux(lit, run + 1, 0) <= cap,
                                   f"{name} lit longer than min(max_pulse, limit_pulse)")

        if "lanes" in self.caps:
            lit = sum(led[k] for k in range(K))
            m.d.comb += Assert(lit <= _min(max_lanes, dut.limit_lanes),
                               "more lanes lit than min(max_lanes, limit_lanes)")

        if "duty" in self.caps:
            W = dut.duty_window
            cap = in_force(_min(max_duty, dut.limit_duty))
            # duty_pos = e mod W in the cycle after edge e (edge 0 is the first after reset; W - 1 at reset).
            # Cycle cadence: the LED of cycle t belongs to the window of cycle t - 1, so the windows start
            # at the LED after edges e = 0 mod W. Sweep cadence: lane k's windows start at the LED after
            # edges e = W + k + 2 + jW (the first window, from reset, is k + 2 cycles longer).
            pos = Signal(range(W), init=W - 1, name="duty_pos")
            m.d.sync += pos.eq(Mux(pos == W - 1, 0, pos + 1))
            spec.duty_pos, spec.lit_in_window, spec.window_total = pos, [], []
            if sweep:
                S = dut.period
                top = W + S + 3
                spec.age = age = Signal(range(top + 1), name="age")     # min(e + 1, top) after edge e
                m.d.sync += age.eq(Mux(age == top, top, age + 1))
            for k, lit in observed:
                suffix = k if isinstance(k, int) else "_j"
                before = Signal(range(2 * W + 1), name=f"lit_in_window{suffix}")
                spec.lit_in_window.append(before)
                if sweep:
                    start = (k + 2) % W if isinstance(k, int) else Mux(k + 2 >= W, k + 2 - W, k + 2)
                    starts = (pos == start) & (age >= W + k + 3)     # (k + 2 < 2W: K <= S <= W)
                else:
                    starts = pos == 0
                total = Signal(range(2 * W + 2), name=f"window_total{suffix}")
                m.d.comb += total.eq(Mux(starts, 0, before) + lit)
                spec.window_total.append(total)
                m.d.sync += before.eq(total)
                m.d.comb += Assert(total <= cap, f"lane {'j' if suffix == '_j' else k} lit more than "
                                                 "min(max_duty, limit_duty) cycles in a duty window")
        if self.link:
            attach(dut, spec)
        return m


def _ranges(words):
    """Sorted word addresses -> [(first, last)] runs of consecutive words."""
    runs = []
    for w in words:
        if runs and runs[-1][1] == w - 1:
            runs[-1][1] = w
        else:
            runs.append([w, w])
    return runs


def mapped_predicate(regmap, addr):
    """An Amaranth expression: does byte address ``addr`` hit the map (``regmap.decode``)?

    Built from the map's own decoding, address by address, not from how the
    bank decodes (prefix compares), so the two are independent.
    """
    words = [a >> 2 for a in range(0, 1 << regmap.addr_width, 4) if regmap.decode(a) is not None]
    w = addr[2:]
    terms = [(w == lo) if lo == hi else ((w >= lo) & (w <= hi)) for lo, hi in _ranges(words)]
    out = terms[0]
    for t in terms[1:]:
        out = out | t
    return out


class CSRBankProtocol(_Harness):
    """The CSR bank as an AXI4-Lite slave, for any master that follows AXI4-Lite and any datapath input.

    Assumed of the master (AMBA AXI4-Lite, IHI 0022): a VALID, once high,
    stays high with a stable payload until its READY. Asserted of the bank:

    - BVALID and RVALID, once high, stay high with a stable response and
      read data until BREADY / RREADY;
    - one response per request, in order: a B only for an accepted AW and W,
      an R only for an accepted AR, at most ``max_outstanding`` of each in
      flight;
    - BRESP / RRESP is SLVERR exactly for unmapped addresses
      (:func:`mapped_predicate`), OKAY otherwise;
    - every ``pulse`` field is high for exactly one cycle per write of 1 to
      it (on the first cycle of that write's B response), and never otherwise.
    """

    def __init__(self, bank, max_outstanding: int = 2, registers: bool = False):
        self.bank = bank
        self.max_outstanding = max_outstanding
        self.registers = registers

    def elaborate(self, platform):
        from bioloop.host.regmap import OKAY, SLVERR, Access
        m = Module()
        m.submodules.dut = dut = self.bank
        regmap = dut.regmap
        bus = dut.s_axil
        aw = len(bus.awaddr)
        # Every datapath input is free; the master's signals are free within the protocol.
        for name, member in dut.signature.members.items():
            if name == "s_axil":
                continue
            port = getattr(dut, name)
            if member.flow == In:
                if member.is_signature:
                    for path, sub_member, value in port.signature.flatten(port):
                        if sub_member.flow == Out:     # Out of an In-flipped signature: driven into the bank
                            m.d.comb += value.eq(AnySeq(len(value)))
                else:
                    m.d.comb += port.eq(AnySeq(len(port)))
        for name in ("awaddr", "awprot", "awvalid", "wdata", "wstrb", "wvalid", "bready",
                     "araddr", "arprot", "arvalid", "rready"):
            sig = getattr(bus, name)
            m.d.comb += sig.eq(AnySeq(len(sig)))

        def prev(value, name):
            r = Signal.like(value, name=f"prev_{name}", init=0)
            m.d.sync += r.eq(value)
            return r

        # The master keeps VALID and the payload until READY (AXI4-Lite).
        for valid, ready, payload, ch in ((bus.awvalid, bus.awready, [bus.awaddr, bus.awprot], "aw"),
                                          (bus.wvalid, bus.wready, [bus.wdata, bus.wstrb], "w"),
                                          (bus.arvalid, bus.arready, [bus.araddr, bus.arprot], "ar")):
            waiting = prev(valid & ~ready, f"{ch}_waiting")
            for p in payload:
                m.d.comb += Assume(~waiting | (valid & (p == prev(p, f"{ch}_{p.name}"))))
            m.d.comb += Assume(~waiting | valid)

        # The slave keeps BVALID/RVALID and the response until BREADY/RREADY.
        b_wait = prev(bus.bvalid & ~bus.bready, "b_waiting")
        r_wait = prev(bus.rvalid & ~bus.rready, "r_waiting")
        m.d.comb += [
            Assert(~b_wait | (bus.bvalid & (bus.bresp == prev(bus.bresp, "bresp"))),
                   "BVALID dropped or BRESP changed before BREADY"),
            Assert(~r_wait | (bus.rvalid & (bus.rresp == prev(bus.rresp, "rresp"))
                              & (bus.rdata == prev(bus.rdata, "rdata"))),
                   "RVALID dropped or RRESP/RDATA changed before RREADY"),
        ]

        # Outstanding requests, each remembered with what its response must be.
        depth = self.max_outstanding
        pulses = [f for f in regmap.fields(Access.PULSE)]

        # Writes: an AW and a W pair up in order; the pair's B must match.
        aw_hs = bus.awvalid & bus.awready
        w_hs = bus.wvalid & bus.wready
        b_hs = bus.bvalid & bus.bready
        ar_hs = bus.arvalid & bus.arready
        r_hs = bus.rvalid & bus.rready

        spec = Observer()

        def fifo(name, width, push, value, pop):
            count = Signal(range(depth + 2), name=f"{name}_count")
            slots = [Signal(width, name=f"{name}_{i}") for i in range(depth + 1)]
            m.d.sync += count.eq(count + push - pop)
            # pop shifts down; push writes at the (post-pop) tail
            for i in range(depth + 1):
                shifted = slots[i + 1] if i + 1 <= depth else 0
                tail = count - pop
                m.d.sync += slots[i].eq(Mux(push & (tail == i), value, Mux(pop, shifted, slots[i])))
            m.d.comb += Assert(count <= depth, f"more than {depth} {name} requests in flight")
            setattr(spec, f"{name}_count", count)
            setattr(spec, f"{name}_slots", slots)
            return count, slots[0]

        def mapped_word(word):
            return mapped_predicate(regmap, Cat(Const(0, 2), word))

        aw_count, aw_head = fifo("aw", aw - 2, aw_hs, bus.awaddr[2:aw], b_hs)
        w_rec = Cat(bus.wdata, bus.wstrb)
        w_count, w_head = fifo("w", len(w_rec), w_hs, w_rec, b_hs)
        b_first = bus.bvalid & ~b_wait
        if self.registers:
            # Each AR is remembered with the word its R must carry: the registers as of its handshake.
            expected = _register_values(m, dut, spec, b_first, aw_head, w_head, bus.araddr[2:aw])
            ar_count, ar_rec = fifo("ar", aw - 2 + 32, ar_hs, Cat(bus.araddr[2:aw], expected), r_hs)
            ar_head = ar_rec[:aw - 2]
            m.d.comb += Assert(~bus.rvalid | (bus.rdata == ar_rec[aw - 2:]),
                               "RDATA is not the register's value at the AR handshake")
        else:
            ar_count, ar_head = fifo("ar", aw - 2, ar_hs, bus.araddr[2:aw], r_hs)
        m.d.comb += [
            Assert(~bus.bvalid | ((aw_count >= 1) & (w_count >= 1)), "B response without an AW and a W"),
            Assert(~bus.rvalid | (ar_count >= 1), "R response without an AR"),
            Assert(~bus.bvalid | (bus.bresp == Mux(mapped_word(aw_head), OKAY, SLVERR)),
                   "BRESP is not SLVERR exactly for an unmapped address"),
            Assert(~bus.rvalid | (bus.rresp == Mux(mapped_word(ar_head), OKAY, SLVERR)),
                   "RRESP is not SLVERR exactly for an unmapped address"),
        ]
        if self.link:
            attach(dut, spec)

        # Pulses: exactly one cycle per write of 1, on the first cycle of its B response.
        head_word = aw_head
        head_data, head_strb = w_head[:32], w_head[32:36]
        for f in pulses:
            reg, _ = regmap.field(f.name)
            byte = f.lsb // 8
            sets = (head_word == (reg.offset >> 2)) & head_data[f.lsb] & head_strb[byte]
            m.d.comb += Assert(getattr(dut, f.name) == (b_first & sets),
                               f"{f.name} is not high exactly on the first B cycle of a write of 1")
        return m


def _register_values(m, dut, spec, b_first, aw_head, w_head, word):
    """The CSR bank's registers as the map specifies them; returns the word a read of ``word`` must see.

    A write takes effect on the first cycle of its B response (the observer
    cannot see the bank commit it earlier): ``rw`` fields become the written
    bytes merged with the old ones by WSTRB; a 1 written (and strobed) to a
    ``w1c`` bit clears it, all other bits of the register untouched; a 1 to
    ``clear_counters`` zeroes every counter, ``latest`` and ``maximum``.
    Datapath inputs act at the next edge: an event of a ``w1c`` bit's
    source counter sets it (an event in the cycle before a clearing write's
    B survives the clear, and so does a counter increment or a latency
    measurement in the cycle before a clearing B); counters add their
    increments and saturate at ``2**counter_bits - 1``; ``latest`` keeps the
    last measurement, ``maximum`` the largest; ``ro`` fields read their input
    and ``const`` fields their value. ``pulse`` fields, tables and unmapped
    addresses read 0.

    Records on ``spec`` (the bank's formal hook links them): ``status``,
    ``counts``, ``probes``: dicts of field name to the value a read sees in
    this cycle; ``rw``: the same for every ``rw`` field.
    """
    from bioloop.host.regmap import DATA_BITS, Access
    regmap = dut.regmap
    head_word, head_data, head_strb = aw_head, w_head[:DATA_BITS], w_head[DATA_BITS:DATA_BITS + 4]
    mask = Cat(*[head_strb[b].replicate(8) for b in range(4)])

    def written(reg):
        return b_first & (head_word == (reg.offset >> 2))

    def prev(value, name):
        r = Signal.like(value, name=f"prev_{name}", init=0)
        m.d.sync += r.eq(value)
        return r

    def increment(f):
        return getattr(dut.count, f.name) if f.source is None else getattr(dut, f.source).valid

    (clear_field,) = [f for f in regmap.fields(Access.PULSE) if f.name == "clear_counters"]
    clear_reg, _ = regmap.field(clear_field.name)
    clearing = written(clear_reg) & head_data[clear_field.lsb] & head_strb[clear_field.lsb // 8]
    top = (1 << dut.counter_bits) - 1
    spec.rw, spec.status, spec.counts, spec.probes = {}, {}, {}, {}
    values = {}
    for reg in regmap.registers:
        old_word = Const(0, DATA_BITS)
        for f in reg.fields:
            if f.access is Access.RW:
                held = Signal(f.width, name=f"spec_{f.name}", init=f.encode(f.reset) >> f.lsb)
                spec.rw[f.name] = held
                old_word = old_word | (held << f.lsb)
        merged = (head_data & mask) | (old_word & ~mask)
        word_value = Const(0, DATA_BITS)
        for f in reg.fields:
            if f.access is Access.CONST:
                now = Const(f.encode(f.reset) >> f.lsb, f.width)
            elif f.access is Access.RO:
                now = Value.cast(getattr(dut, f.name)).as_unsigned()
            elif f.access is Access.RW:
                held = spec.rw[f.name]
                now = Signal(f.width, name=f"spec_{f.name}_now")
                m.d.comb += now.eq(Mux(written(reg), merged[f.lsb:f.lsb + f.width], held))
                m.d.sync += held.eq(now)
                m.d.comb += Assert(Value.cast(getattr(dut, f.name)).as_unsigned() == now,
                                   f"{f.name} does not hold the last value written to it")
            elif f.access is Access.W1C:
                src = regmap.field(f.source)[1]
                event = increment(src) != 0
                held = Signal(name=f"spec_{f.name}")
                now = Signal(name=f"spec_{f.name}_now")
                cleared = written(reg) & head_data[f.lsb] & head_strb[f.lsb // 8]
                m.d.comb += now.eq(Mux(cleared, prev(event, f"event_{f.name}"), held))
                m.d.sync += held.eq(now | event)
                spec.status[f.name] = now
            elif f.access is Access.COUNTER:
                inc = increment(f)
                held = Signal(dut.counter_bits, name=f"spec_{f.name}")
                now = Signal(dut.counter_bits, name=f"spec_{f.name}_now")
                last_inc = prev(inc, f"inc_{f.name}")
                m.d.comb += now.eq(Mux(clearing, Mux(last_inc > top, top, last_inc), held))
                total = now + inc
                m.d.sync += held.eq(Mux(total > top, top, total))
                spec.counts[f.name] = now
            elif f.access in (Access.LATEST, Access.MAXIMUM):
                probe = getattr(dut, f.source)
                cycles = probe.cycles[:f.width]
                held = Signal(f.width, name=f"spec_{f.name}")
                now = Signal(f.width, name=f"spec_{f.name}_now")
                was = prev(probe.valid, f"valid_{f.name}")
                m.d.comb += now.eq(Mux(clearing, Mux(was, prev(cycles, f"cycles_{f.name}"), 0), held))
                new = cycles if f.access is Access.LATEST else Mux(cycles > now, cycles, now)
                m.d.sync += held.eq(Mux(probe.valid, new, now))
                spec.probes[f.name] = now
            else:                                   # PULSE: reads 0
                continue
            word_value = word_value | (now << f.lsb)
        values[reg.offset >> 2] = word_value
    expected = Signal(DATA_BITS, name="spec_read_word")
    with m.Switch(word):
        for w, value in values.items():
            with m.Case(w):
                m.d.comb += expected.eq(value)
    return expected


class Mutant(wiring.Component):
    """A block with one output loosened: same signature and parameters, everything else passed through.

    Parameters
    ----------
    block : wiring.Component
        The block to wrap (its parameters are readable on the mutant).
    loosen : callable(m, block, ports) -> dict
        Given the module, the inner block and a dict of the mutant's own
        output ports by path (``("led",)``, ``("s_axil", "bresp")``), returns
        ``{path: expression}`` for the outputs to replace. The expression may
        use the inner block's ports and registers of its own.
    """

    def __init__(self, block, loosen):
        self.inner = block
        self.loosen = loosen
        super().__init__(block.signature)

    def __getattr__(self, name):               # elaboration parameters (n_lanes, regmap, ...)
        inner = self.__dict__.get("inner")
        if name.startswith("_") or inner is None or name in inner.signature.members:
            raise AttributeError(name)
        return getattr(inner, name)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self.inner
        outer = {path: (member, value) for path, member, value in self.signature.flatten(self)}
        ins = {path: value for path, member, value in inner.signature.flatten(inner)}
        outputs = {path: value for path, (member, value) in outer.items() if member.flow == Out}
        replaced = self.loosen(m, inner, outputs)
        for path, (member, value) in outer.items():
            if member.flow == Out:
                m.d.comb += value.eq(replaced.get(path, ins[path]))
            else:
                m.d.comb += ins[path].eq(value)
        return m


def looser_safety(safety):
    """Safety one cycle looser: a lit run lasts one more cycle while its pulse is still requested."""
    def loosen(m, inner, outputs):
        prev, want = Signal.like(inner.led), Signal.like(inner.led)
        m.d.sync += [prev.eq(inner.led), want.eq(inner.pulse & inner.bits)]
        return {("led",): inner.led | (prev & ~inner.led & want)}
    return Mutant(safety, loosen)


def looser_csr_bank(bank):
    """The CSR bank one response looser: every write is answered OKAY, mapped or not."""
    from bioloop.host.regmap import OKAY
    return Mutant(bank, lambda m, inner, outputs: {("s_axil", "bresp"): OKAY})


def looser_csr_reads(bank):
    """The CSR bank one count looser: a read of a counter returns one count more than it counted."""
    from bioloop.host.regmap import Access

    def loosen(m, inner, outputs):
        bus = inner.s_axil
        words = [reg.offset >> 2 for reg in inner.regmap.registers
                 if any(f.access is Access.COUNTER for f in reg.fields)]
        counter_read = Signal(name="counter_read")
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += counter_read.eq(Cat(bus.araddr[2:] == w for w in words).any())
        return {("s_axil", "rdata"): bus.rdata + counter_read}
    return Mutant(bank, loosen)


def _stream_holds(m, stream, what):
    """Assert that a stream's VALID, once high, stays high with a stable payload until READY."""
    waiting = Signal(name=f"{what}_waiting")
    last = Signal.like(stream.payload.as_value(), name=f"{what}_last")
    m.d.sync += [waiting.eq(stream.valid & ~stream.ready), last.eq(stream.payload.as_value())]
    m.d.comb += Assert(~waiting | (stream.valid & (stream.payload.as_value() == last)),
                       f"{what}: VALID dropped or payload changed before READY")


class EncoderConservation(_Harness):
    """AEREncoder: every spike that enters leaves as one SPIKE word or is counted in one OVERFLOW report.

    Any spike vector, timestamps, source, clear and backpressure (``aer.ready``)
    every cycle. The observer counts ``in_flight`` = spikes that entered −
    SPIKE words accepted − the counts of OVERFLOW words accepted, and asserts:

    - it never goes negative (no SPIKE word or OVERFLOW count without a
      spike that entered: no duplicate, nothing invented);
    - every word is SPIKE for an address below ``n_addresses`` or OVERFLOW,
      and is held with a stable payload until READY.

    The encoder's formal hook asserts that its pending spikes, unreported
    losses and held word account for exactly ``in_flight``: nothing is
    dropped silently. Assumed: fewer than 2^20 − 2 n − 2 spikes are in flight
    (the OVERFLOW count saturates at 2^20 − 1, as documented).
    """

    def __init__(self, encoder):
        self.encoder = encoder

    def elaborate(self, platform):
        from bioloop.host.layouts import ADDRESS_BITS
        from bioloop.gateware.layouts import AERType
        m = Module()
        m.submodules.dut = dut = self.encoder
        n = dut.n_addresses
        m.d.comb += [dut.spikes.eq(AnySeq(n)), dut.timestamp.eq(AnySeq(len(dut.timestamp))),
                     dut.now.eq(AnySeq(len(dut.now))), dut.source.eq(AnySeq(len(dut.source))),
                     dut.clear.eq(AnySeq(1)), dut.aer.ready.eq(AnySeq(1))]
        pair_input = getattr(dut, "pair_input", False)
        if pair_input:
            # The Detector's pair j and its two bits (addresses 2j, 2j + 1) are what enters; ``spikes`` is not read.
            pair, hits = dut.pair, dut.pair_hits
            m.d.comb += [pair.eq(AnySeq(len(pair))), hits.eq(AnySeq(2)),
                         Assume(~hits[0] | (2 * pair < n)), Assume(~hits[1] | (2 * pair + 1 < n))]
        word = dut.aer.payload
        hs = dut.aer.valid & dut.aer.ready
        is_spike, is_overflow = word.type == AERType.SPIKE, word.type == AERType.OVERFLOW
        out = Mux(hs, Mux(is_spike, 1, Mux(is_overflow, word.address, 0)), 0)
        spec = Observer()
        spec.in_flight = in_flight = Signal(ADDRESS_BITS + 2, name="in_flight")
        entering = (dut.pair_hits[0] + dut.pair_hits[1]) if pair_input else sum(dut.spikes[a] for a in range(n))
        m.d.sync += in_flight.eq(in_flight + entering - out)
        top = (1 << ADDRESS_BITS) - 1
        m.d.comb += [
            Assume(in_flight < top - 2 * n - 2),
            Assert(out <= in_flight, "more spikes left (SPIKE words + OVERFLOW counts) than entered"),
            Assert(~dut.aer.valid | (is_spike & (word.address < n)) | is_overflow,
                   "a word is neither SPIKE for a mapped address nor OVERFLOW"),
        ]
        _stream_holds(m, dut.aer, "aer")
        if self.link:
            attach(dut, spec)
        return m


def looser_encoder(encoder):
    """The encoder one count looser: every OVERFLOW word reports one loss more than happened."""
    from bioloop.gateware.layouts import AERType, AERWord

    def loosen(m, inner, outputs):
        word = inner.aer.payload
        rep = Signal(AERWord, name="looser_word")
        m.d.comb += rep.eq(word)
        with m.If(word.type == AERType.OVERFLOW):
            m.d.comb += rep.address.eq(word.address + 1)
        return {("aer", "payload"): rep}
    return Mutant(encoder, loosen)


class RouterDelivery(_Harness):
    """AERRouter: every accepted word is delivered once, with exactly the fanout its table row says.

    Any input word, any backpressure on ``host`` and ``stim``, any table
    writes while the router is idle (the documented rule: rewrite a route
    while its traffic is quiet). The observer keeps its own copy of the
    table (from ``table_write`` / ``fanout_write``) and asserts, per
    accepted word: the host port carries its copy first, then one SPIKE relay
    per HOST entry of its row, in row order; the stim port carries one entry
    per STIM entry, in row order, with the word's address and timestamp;
    nothing else (no duplicate). Words are served in the order accepted: the
    stim port serves the oldest word with STIM entries left, the host port a
    word's copy as soon as the word is accepted, otherwise the next relay of
    the oldest word with relays left. At most ``in_service`` words are
    being delivered at once: a word is accepted only when, of the words
    before it, at most ``in_service - 1`` are not fully delivered (1: all of
    the last word is out before the next is accepted). Every output stream
    holds VALID and its payload until READY.

    Assumed: table writes only while no input word is offered and nothing of
    any word is outstanding; fanout values at most ``fanout`` (the driver
    checks them); table addresses within the table.

    The observer (attached to the block's formal hook): ``entries``,
    ``counts`` (its copy of the table) and ``slots``, oldest first, each with
    ``word``, ``count`` (the row's fanout at acceptance, 0 for a word with
    no entries), ``copy_sent``, ``stim_next`` and ``host_next`` (the row
    index after the last STIM entry / HOST relay delivered); an empty slot
    has its copy sent and count, stim_next and host_next 0.
    """

    def __init__(self, router, in_service: int = 1):
        self.router = router
        self.in_service = in_service

    def elaborate(self, platform):
        from bioloop.gateware.layouts import AERType, AERWord, Port, RouteEntry
        from bioloop.host.layouts import LANE_BITS
        m = Module()
        m.submodules.dut = dut = self.router
        n, F = dut.n_addresses, dut.fanout
        m.d.comb += [
            dut.aer.valid.eq(AnySeq(1)),
            dut.aer.payload.eq(AnySeq(len(dut.aer.payload.as_value()))),
            dut.host.ready.eq(AnySeq(1)), dut.stim.ready.eq(AnySeq(1)), dut.clear.eq(AnySeq(1)),
        ]
        for wp in (dut.table_write, dut.fanout_write):
            m.d.comb += [wp.addr.eq(AnySeq(len(wp.addr))), wp.data.eq(AnySeq(len(wp.data.as_value())
                                                                               if hasattr(wp.data, "as_value")
                                                                               else len(wp.data))),
                         wp.en.eq(AnySeq(1))]

        # The observer's copy of the table (like the table itself, not cleared by the domain's reset).
        entries = [Signal(RouteEntry, name=f"shadow_entry{e}", reset_less=True) for e in range(n * F)]
        counts = [Signal(range(F + 1), name=f"shadow_count{a}", reset_less=True) for a in range(n)]
        tw, fw = dut.table_write, dut.fanout_write
        m.d.comb += [Assume(tw.addr < n * F), Assume(fw.addr < n), Assume(fw.data <= F)]
        for e in range(n * F):
            with m.If(tw.en & (tw.addr == e)):
                m.d.sync += entries[e].eq(tw.data)
        for a in range(n):
            with m.If(fw.en & (fw.addr == a)):
                m.d.sync += counts[a].eq(fw.data)

        # The words in service (accepted, something of them not delivered yet), oldest first, and
        # what of each has left: the copy, the STIM entries below stim_next, the HOST relays below
        # host_next (indices into the word's table row, as it stood when the word was accepted).
        Q = self.in_service
        slots = []
        for i in range(Q):
            slot = Observer()
            slot.word = Signal(AERWord, name=f"slot{i}_word")
            slot.count = Signal(range(F + 1), name=f"slot{i}_count")
            slot.copy_sent = Signal(init=1, name=f"slot{i}_copy_sent")
            slot.stim_next = Signal(range(F + 1), name=f"slot{i}_stim_next")
            slot.host_next = Signal(range(F + 1), name=f"slot{i}_host_next")
            slot.row = [Signal(RouteEntry, name=f"slot{i}_row{j}") for j in range(F)]
            for j in range(F):
                m.d.comb += slot.row[j].eq(entries[j] if n == 1 else
                                           _select(m, entries, slot.word.address * F + j, f"slot{i}_row_sel{j}"))
            slots.append(slot)

        def first(slot, kind_stim, start, name):
            found, idx = Signal(name=f"{name}_found"), Signal(range(F + 1), name=f"{name}_idx")
            for j in reversed(range(F)):
                ok = (j >= start) & (j < slot.count) & ((slot.row[j].port == Port.STIM) == kind_stim)
                with m.If(ok):
                    m.d.comb += [found.eq(1), idx.eq(j)]
            return found, idx

        def outstanding(slot, copy_sent, stim_next, host_next):
            return (~copy_sent
                    | Cat((j >= stim_next) & (j < slot.count) & (slot.row[j].port == Port.STIM) for j in range(F)).any()
                    | Cat((j >= host_next) & (j < slot.count) & (slot.row[j].port != Port.STIM)
                          for j in range(F)).any())

        s_hs = dut.stim.valid & dut.stim.ready
        h_hs = dut.host.valid & dut.host.ready
        sp, hp = dut.stim.payload, dut.host.payload
        # The stim port serves the oldest word with STIM entries left, in row order.
        # The host port: a word's copy as soon as it is accepted (it comes first), otherwise the next
        # HOST relay of the oldest word with relays left, in row order.
        stim_ok, host_ok = Const(0), Const(0)
        stim_taken, relay_taken = Const(0), Const(0)
        copy_pending = Cat(~slot.copy_sent for slot in slots).any()
        nexts = []
        for i, slot in enumerate(slots):
            s_found, s_idx = first(slot, True, slot.stim_next, f"slot{i}_next_stim")
            h_found, h_idx = first(slot, False, slot.host_next, f"slot{i}_next_host")
            s_entry = _select(m, slot.row, s_idx, f"slot{i}_stim_row")
            h_entry = _select(m, slot.row, h_idx, f"slot{i}_host_row")
            w = slot.word
            s_here = s_found & ~stim_taken            # this slot serves the stim port now
            h_here = h_found & ~relay_taken & ~copy_pending
            stim_ok = stim_ok | (s_here & (sp.target == s_entry.target[:LANE_BITS]) & (sp.weight == s_entry.weight)
                                 & (sp.address == w.address) & (sp.timestamp == w.timestamp))
            host_ok = host_ok | (~slot.copy_sent & (hp.as_value() == w.as_value())) | (
                h_here & (hp.address == h_entry.target) & (hp.source == w.source) & (hp.type == AERType.SPIKE)
                & (hp.timestamp == w.timestamp))
            copy_next = slot.copy_sent | h_hs
            stim_next = Mux(s_hs & s_here, s_idx + 1, slot.stim_next)
            host_next = Mux(h_hs & h_here, h_idx + 1, slot.host_next)
            nexts.append((copy_next, stim_next, host_next, outstanding(slot, copy_next, stim_next, host_next)))
            stim_taken, relay_taken = stim_taken | s_found, relay_taken | h_found
        m.d.comb += [
            Assert(~s_hs | stim_ok, "a stim entry that no table row calls for next"),
            Assert(~h_hs | host_ok, "a host word that is neither a word's copy nor the next HOST relay of a row"),
            Assert(sum(~slot.copy_sent for slot in slots) <= 1, "two copies pending on the host port"),
        ]
        alive = [nxt[3] for nxt in nexts]
        accept = dut.aer.valid & dut.aer.ready
        n_alive = sum(alive)
        m.d.comb += Assert(~accept | (n_alive <= Q - 1),
                           "a word accepted while " + ("the last one" if Q == 1 else f"{Q} words")
                           + " were not delivered")
        busy = Signal(name="busy")
        m.d.comb += busy.eq(Cat(outstanding(slot, slot.copy_sent, slot.stim_next, slot.host_next)
                                for slot in slots).any())
        m.d.comb += Assume(~(tw.en | fw.en) | (~dut.aer.valid & ~busy))
        word = dut.aer.payload
        lookup = Mux((word.type == AERType.SPIKE) & (word.address < n),
                     _select(m, counts, word.address, "count_sel") if n > 1 else counts[0], 0)
        # Words fully delivered leave; the others move down; an accepted word takes the next place.
        # (An empty place has its copy sent and no entries: later table writes cannot revive it.)
        for k, target in enumerate(slots):
            m.d.sync += [target.copy_sent.eq(1), target.count.eq(0), target.stim_next.eq(0), target.host_next.eq(0)]
            placed = Const(0)
            for i, (slot, (copy_next, stim_next, host_next, live)) in enumerate(zip(slots, nexts, strict=True)):
                here = live & (sum(alive[:i]) == k) if i else live & (k == 0)
                with m.If(here & ~placed):
                    m.d.sync += [target.word.eq(slot.word), target.count.eq(slot.count),
                                 target.copy_sent.eq(copy_next), target.stim_next.eq(stim_next),
                                 target.host_next.eq(host_next)]
                placed = placed | here
            with m.If(accept & (n_alive == k)):
                m.d.sync += [target.word.eq(word), target.count.eq(lookup), target.copy_sent.eq(0),
                             target.stim_next.eq(0), target.host_next.eq(0)]
        spec = Observer()
        spec.entries, spec.counts, spec.slots = entries, counts, slots
        if self.link:
            attach(dut, spec)
        _stream_holds(m, dut.host, "host")
        _stream_holds(m, dut.stim, "stim")
        return m


def _select(m, values, index, name):
    """values[index] as a Signal (the last value when index is out of range)."""
    out = Signal.like(values[0], name=name)
    with m.Switch(index):
        for i, v in enumerate(values[:-1]):
            with m.Case(i):
                m.d.comb += out.eq(v)
        with m.Default():
            m.d.comb += out.eq(values[-1])
    return out


def looser_router(router):
    """The router one cycle looser: a stim entry stays valid one cycle after its handshake (a duplicate)."""
    def loosen(m, inner, outputs):
        again = Signal(name="stim_again")
        m.d.sync += again.eq(inner.stim.valid & inner.stim.ready)
        return {("stim", "valid"): inner.stim.valid | again}
    return Mutant(router, loosen)


# ---------------------------------------------------------------------------------------------------
# The catalogue: every proof with its sizes, shared by tests/gateware/test_proofs.py and scripts/bench_formal.py.

@dataclass(frozen=True)
class Proof:
    """One catalogued proof: a property of a block, at one size, with the mutant that must fail it.

    Members
    -------
    name : str
        ``block_property_size``, unique; names the proof's work folder.
    block, prop, size : str
        What is proved (``size`` is ``"small"``, run by ``make test``;
        ``"medium"``, a larger size, or ``"default"``, the block's default
        parameters, both run under ``BIOLOOP_LONG=1``).
    params : dict
        The block's elaboration parameters.
    depth : int
        k of the k-induction (``mode`` ``"prove"``) or the bound (``"bmc"``).
    mode : str
    """

    name: str
    block: str
    prop: str
    size: str
    params: dict
    depth: int
    mode: str = "prove"
    mutant_depth: int | None = None      # a deeper base case for a mutant whose counterexample is longer
    presat: bool = True                  # smtbmc's check that the assumptions can hold (bioloop.sim.formal.prove)
    one_lane: bool = False               # Safety: observe one free lane (SafetyCaps(lanes="any")), not each lane
    check_mutant: bool = False           # a medium/default size whose mutant is checked too (small ones always are)
    script: tuple = ()                   # Yosys commands after prep (bioloop.sim.formal.prove)
    link: bool = True                    # attach the observer to the block's hook (a BMC needs no invariants)

    def run(self, workdir, mutant: bool = False, name: str | None = None, **kwargs):
        """Prove it (or fail its mutant) with :func:`bioloop.sim.formal.prove`; returns the ProofResult."""
        from bioloop.sim.formal import prove
        name = name or (f"{self.name}_mutant" if mutant else self.name)
        depth = (self.mutant_depth or self.depth) if mutant else self.depth
        kwargs.setdefault("script", self.script)
        return prove(self.harness(mutant), name=name, depth=depth, workdir=workdir, mode=self.mode,
                     presat=self.presat, **kwargs)

    def harness(self, mutant: bool = False):
        """The harness over the block (or over its looser mutant, not linked to the block's hook)."""
        h = _BUILD[self.block](self, mutant)
        h.link = self.link and not mutant
        return h


def _safety(proof, mutant):
    from bioloop.gateware.safety import Safety
    block = Safety(**proof.params)
    return SafetyCaps(looser_safety(block) if mutant else block, caps=(proof.prop,),
                      lanes="any" if proof.one_lane else "all")


def _encoder(proof, mutant):
    from bioloop.gateware.aer_encoder import AEREncoder
    block = AEREncoder(**proof.params)
    return EncoderConservation(looser_encoder(block) if mutant else block)


def _router(proof, mutant):
    from bioloop.gateware.aer_router import AERRouter
    block = AERRouter(**proof.params)
    return RouterDelivery(looser_router(block) if mutant else block)


def _csr_bank(proof, mutant):
    from bioloop.gateware.csr import CSRBank
    from bioloop.host.regmap import RegisterMap
    params, prop = proof.params, proof.prop
    block = CSRBank(RegisterMap(*params["regmap"]), counter_bits=params["counter_bits"])
    if prop == "registers":
        return CSRBankProtocol(looser_csr_reads(block) if mutant else block, registers=True)
    return CSRBankProtocol(looser_csr_bank(block) if mutant else block)


_BUILD = {"safety": _safety, "aer_encoder": _encoder, "aer_router": _router, "csr_bank": _csr_bank}

SAFETY_SMALL = dict(n_lanes=4, pulse_bits=4, duty_window=8, limit_pulse=5, limit_duty=4)
SAFETY_DEFAULT = dict(n_lanes=64, pulse_bits=20, duty_window=1_000_000, limit_pulse=500_000)
#: The sweep cadence (the Core's): S = 4 cycles per visit, 2 sweeps per duty window, caps of up to 2 units.
SAFETY_SWEEP_SMALL = dict(n_lanes=4, pulse_bits=4, duty_window=8, limit_pulse=8, limit_duty=8, cadence="sweep")
#: The sweep cadence at the size of its cocotb bench (tests/gateware/test_safety.py): S = 8, 6 sweeps per window.
SAFETY_SWEEP_MEDIUM = dict(n_lanes=8, pulse_bits=8, duty_window=48, limit_pulse=40, limit_duty=24, limit_lanes=5,
                           cadence="sweep")
#: The Core's Safety: K = 64 (S = 64), 20-bit pulse cap register, 10 ms window, 5 ms pulse limit, the sweep cadence.
SAFETY_SWEEP_DEFAULT = dict(SAFETY_DEFAULT, cadence="sweep")

#: Every proof: ``size="small"`` ones run in ``make test``, ``"medium"`` and ``"default"`` ones (the block's
#: default parameters) under BIOLOOP_LONG=1. Safety's pulse and duty caps are proved on one free lane
#: (``one_lane``: the proof covers every lane); its lanes cap is not proved at K = 64, the encoder's default
#: queue and the router's default table only bounded (``mode="bmc"``, shallow: docs/verification.md).
CATALOGUE = [
    *(Proof(f"safety_{cap}_small", "safety", cap, "small", SAFETY_SMALL, 4, one_lane=cap != "lanes")
      for cap in ("pulse", "lanes", "duty")),
    *(Proof(f"safety_sweep_{cap}_small", "safety", cap, "small", SAFETY_SWEEP_SMALL, 1, mutant_depth=8,
            one_lane=cap != "lanes") for cap in ("pulse", "lanes", "duty")),
    *(Proof(f"safety_sweep_{cap}_medium", "safety", cap, "medium", SAFETY_SWEEP_MEDIUM, 1)
      for cap in ("pulse", "lanes", "duty")),
    # Default sizes, the pulse and duty caps (the mutant of the cycle cadence fails at this size too; the
    # sweep's shortest counterexample is longer than S = 64 cycles, so its small mutant stands for it).
    Proof("safety_pulse_default", "safety", "pulse", "default", SAFETY_DEFAULT, 1, mutant_depth=4,
          one_lane=True, check_mutant=True),
    Proof("safety_duty_default", "safety", "duty", "default", SAFETY_DEFAULT, 2, mutant_depth=4,
          one_lane=True, check_mutant=True),
    *(Proof(f"safety_sweep_{cap}_default", "safety", cap, "default", SAFETY_SWEEP_DEFAULT, 1, one_lane=True,
            script=("memory_map",)) for cap in ("pulse", "duty")),
    # The lanes cap at K = 64 only bounded, and shallow: the count of lit lanes over 64 lanes stalls Yices from the
    # fourth cycle on (docs/verification.md).
    Proof("safety_lanes_default", "safety", "lanes", "default", SAFETY_DEFAULT, 3, mode="bmc", link=False),
    Proof("safety_sweep_lanes_default", "safety", "lanes", "default", SAFETY_SWEEP_DEFAULT, 3, mode="bmc",
          link=False, script=("memory_map",)),
    Proof("aer_encoder_conservation_small", "aer_encoder", "conservation", "small",
          dict(n_addresses=3, ts_bits=4), 4, mutant_depth=8),
    Proof("aer_encoder_queue_conservation_small", "aer_encoder", "conservation", "small",
          dict(n_addresses=3, cadence="queue", queue_depth=2), 4, mutant_depth=8),
    Proof("csr_bank_axi4lite_small", "csr_bank", "axi4lite", "small", dict(regmap=(4, 2, 2), counter_bits=4), 4),
    Proof("csr_bank_registers_small", "csr_bank", "registers", "small", dict(regmap=(4, 2, 2), counter_bits=4), 4),
    Proof("aer_router_delivery_small", "aer_router", "delivery", "small", dict(n_addresses=2, fanout=2), 3,
          mutant_depth=6, presat=False),
    # The queue encoder as the Core builds it (pair input) at N = 64: proved with an 8-entry queue; the default
    # 32-entry queue only bounded (the hook's sum over the queue's entries grows too hard for Yices by induction).
    Proof("aer_encoder_queue_conservation_medium", "aer_encoder", "conservation", "medium",
          dict(n_addresses=64, cadence="queue", pair_input=True, queue_depth=8), 1),
    # The pair input's mutant at the small size (at N = 64 its shortest counterexample is longer than 14 cycles).
    Proof("aer_encoder_queue_pair_conservation_medium", "aer_encoder", "conservation", "medium",
          dict(n_addresses=4, cadence="queue", pair_input=True, queue_depth=2), 1, mutant_depth=8, check_mutant=True),
    Proof("aer_encoder_queue_conservation_default", "aer_encoder", "conservation", "default",
          dict(n_addresses=64, cadence="queue", pair_input=True), 16, mode="bmc", link=False),
    # The router with its tables as flip-flops (memory_map): without it Yices stalled on the base case from F = 4.
    *(Proof(f"aer_router_delivery_{n}x{f}_medium", "aer_router", "delivery", "medium", dict(n_addresses=n, fanout=f),
            3, presat=False, script=("memory_map",)) for n, f in ((4, 4), (8, 8))),
    Proof("aer_router_delivery_default", "aer_router", "delivery", "default", dict(n_addresses=64, fanout=16), 3,
          mode="bmc", presat=False, script=("memory_map",), link=False),
    Proof("csr_bank_axi4lite_default", "csr_bank", "axi4lite", "default", dict(regmap=(64, 64, 16), counter_bits=32),
          4),
    Proof("csr_bank_registers_default", "csr_bank", "registers", "default",
          dict(regmap=(64, 64, 16), counter_bits=32), 4),
]
