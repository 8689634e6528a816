"""AERRouter: multicast routing table in block RAM, one entry per cycle, never drops input."""

from amaranth import Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .counter import count_saturating
from bioloop.host.parameters import check_addresses, check_fanout, validated

from .layouts import (LANE_BITS, AERType, AERWord, Port, RouteEntry, WritePort,
                      aer_stream, routed_stream)

__all__ = ["AERRouter"]


class AERRouter(wiring.Component):
    """Routes SPIKE words through a table of (port, target, signed Q8.8 weight) entries.

    Every accepted word is copied to the host port (SPIKE words as a copy,
    STIM, TICK and OVERFLOW words forwarded). A SPIKE word whose address has
    ``k > 0`` entries then emits them one per cycle: STIM entries as
    :data:`RoutedEntry` on the stim port, HOST entries as a SPIKE word for
    address ``target`` on the host port (a relay to a host-side neuron).
    While it fans out, ``aer.ready`` is low: input is held back, never
    dropped. SPIKE words with no entries (fanout 0, or an address beyond the
    table) are counted as unmapped.

    Timing: one word per cycle when every fanout is 0 or 1, otherwise one
    entry per cycle. The host copy is valid one cycle after the input
    handshake, the first stim entry too. The entries' port bits are kept a
    second time in LUTRAM and registered at the read, so ``aer.ready`` and
    the output valids depend on no block RAM output (issue 14).

    Table writes take effect for words accepted after the write; rewrite a
    route while traffic for that address is quiet to avoid a mixed fanout.

    Parameters
    ----------
    n_addresses : int
        Table rows (source addresses), 1..4096.
    fanout : int
        Entries per row F, 1..256 (default 16).

    Members
    -------
    aer : In(stream of AERWord)
        Words from the encoder.
    host : Out(stream of AERWord)
        Every word, plus HOST-port relays.
    stim : Out(stream of RoutedEntry)
        STIM-port entries with the source address and timestamp.
    table_write : In(WritePort(entry_bits, RouteEntry))
        Entry ``address * fanout + j``.
    fanout_write : In(WritePort(address_bits, range(fanout + 1)))
        Number of valid entries of a row.
    clear : In(1)
        Clears the counters.
    routed, unmapped : Out(32)
        Saturating counters of entries emitted and unmapped SPIKE words.
    formal_observer : object or None
        Formal hook (docs/verification.md), default None. A proof harness
        (:class:`bioloop.sim.proofs.RouterDelivery`) may attach an observer
        with its copy of the table (``entries``, ``counts``) and one slot
        (``slots[0]``: the word in service, its row, its ``count``,
        ``copy_sent``, ``stim_next``, ``host_next``); elaborated for the
        ``"formal"`` platform, the router then asserts that its tables are
        the observer's and how its sequencer, output stage and host register
        account for what of the word is not yet delivered. Nothing of it
        exists on any other platform.
    """

    formal_observer = None

    @validated
    def __init__(self, n_addresses: int = 64, fanout: int = 16):
        self.n_addresses = check_addresses(n_addresses)
        self.fanout = check_fanout(fanout)
        self.addr_bits = max(1, (n_addresses - 1).bit_length())
        self.entry_bits = max(1, (n_addresses * fanout - 1).bit_length())
        super().__init__({
            "aer": In(aer_stream()),
            "host": Out(aer_stream()),
            "stim": Out(routed_stream()),
            "table_write": In(WritePort(self.entry_bits, RouteEntry)),
            "fanout_write": In(WritePort(self.addr_bits, range(fanout + 1))),
            "clear": In(1),
            "routed": Out(32),
            "unmapped": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        n, F = self.n_addresses, self.fanout

        m.submodules.entries = entries = memory.Memory(shape=RouteEntry, depth=n * F, init=[])
        m.submodules.counts = counts = memory.Memory(shape=range(F + 1), depth=n, init=[])
        for mem, wp in ((entries, self.table_write), (counts, self.fanout_write)):
            port = mem.write_port()
            m.d.comb += [port.addr.eq(wp.addr), port.data.eq(wp.data), port.en.eq(wp.en)]
        rd = entries.read_port()
        cnt_rd = counts.read_port(domain="comb")
        # The port bit of every entry again in LUTRAM, read with the block RAM at the issue and
        # registered: the handshake logic (ready, which output) then depends on no block RAM
        # output, whose clock-to-out (about 2.5 ns on the xc7z020) started the core's longest path
        # (issue 14). The RAM's data goes only into registers (the host word, the StimUnit).
        # ``ram_style``: once the output stage loads it with the read port's own enable, Yosys would move
        # a large table (N·F >= 4096) into a block RAM, whose output is what this copy keeps off ``ready``.
        m.submodules.ports = ports = memory.Memory(shape=1, depth=n * F, init=[],
                                                   attrs={"ram_style": "distributed"})
        pw = ports.write_port()
        m.d.comb += [pw.addr.eq(self.table_write.addr), pw.data.eq(self.table_write.data.port != Port.STIM),
                     pw.en.eq(self.table_write.en)]
        port_rd = ports.read_port(domain="comb")

        word = self.aer.payload
        # Fan-out sequencer: the SPIKE word being expanded and its next entry.
        busy = Signal(AERWord)
        rem = Signal(range(F + 1))
        j = Signal(range(F + 1))
        # Output stage: the entry read last cycle, with the word it belongs to.
        p_valid = Signal()
        p_word = Signal(AERWord)
        entry = rd.data
        # Host output register.
        h_valid = self.host.valid
        h_word = self.host.payload

        p_host = Signal()                  # the port of the entry on rd.data, registered at its issue
        p_is_stim = ~p_host
        # ``rem == 0`` kept in a register: ``aer.ready`` is then one 6-input function of registers and
        # the two consumers' readies, so the ready chain from the AERMerge through this block into
        # the encoder stays short (issue 14: no path over 8 LUT levels).
        rem_zero = Signal(init=1)
        h_free = ~h_valid | self.host.ready
        p_done = p_valid & Mux(p_is_stim, self.stim.ready, h_free)
        advance = ~p_valid | p_done

        m.d.comb += [
            self.stim.valid.eq(p_valid & p_is_stim),
            self.stim.payload.target.eq(entry.target[:LANE_BITS]),
            self.stim.payload.weight.eq(entry.weight),
            self.stim.payload.address.eq(p_word.address),
            self.stim.payload.timestamp.eq(p_word.timestamp),
            # rem == 0, the host register free, and the output stage empty or handing a STIM entry over
            # (a HOST entry in it needs the host register first).
            self.aer.ready.eq(rem_zero & h_free & (~p_valid | (p_is_stim & self.stim.ready))),
        ]

        accept = self.aer.valid & self.aer.ready
        in_range = word.address < n
        m.d.comb += cnt_rd.addr.eq(word.address[:self.addr_bits])
        routable = Signal()
        m.d.comb += routable.eq(accept & (word.type == AERType.SPIKE) & in_range & (cnt_rd.data != 0))

        # The read address depends on registers only (the next entry of the word in service, else
        # the first entry of the input word), and both tables are read whenever the output stage
        # advances: when nothing is issued the stage empties and what was read is not used. The
        # readies then reach no RAM address, only the enables.
        m.d.comb += [
            rd.addr.eq(Mux(rem_zero, word.address[:self.addr_bits] * F, busy.address[:self.addr_bits] * F + j)),
            rd.en.eq(advance),     # hold the entry while the output stage is stalled
            port_rd.addr.eq(rd.addr),
        ]
        with m.If(advance):
            m.d.sync += p_host.eq(port_rd.data)
        with m.If(~rem_zero & advance):
            m.d.sync += [rem.eq(rem - 1), rem_zero.eq(rem == 1), j.eq(j + 1), p_valid.eq(1), p_word.eq(busy)]
        with m.Elif(routable):
            m.d.sync += [rem.eq(cnt_rd.data - 1), rem_zero.eq(cnt_rd.data == 1), j.eq(1), busy.eq(word),
                         p_valid.eq(1), p_word.eq(word)]
        with m.Elif(advance):
            m.d.sync += p_valid.eq(0)

        with m.If(accept):
            m.d.sync += [h_valid.eq(1), h_word.eq(word)]
        with m.Elif(p_done & ~p_is_stim):
            m.d.sync += [
                h_valid.eq(1),
                h_word.address.eq(entry.target),
                h_word.source.eq(p_word.source),
                h_word.type.eq(AERType.SPIKE),
                h_word.timestamp.eq(p_word.timestamp),
            ]
        with m.Elif(self.host.ready):
            m.d.sync += h_valid.eq(0)

        if platform == "formal":
            self._formal(m, entries, counts, ports, busy, rem, rem_zero, j, p_valid, p_word, entry, p_host)

        count_saturating(m, self.routed, p_done, self.clear)
        count_saturating(m, self.unmapped,
                         accept & (word.type == AERType.SPIKE) & ~(in_range & (cnt_rd.data != 0)), self.clear)
        return m

    def _formal(self, m, entries, counts, ports, busy, rem, rem_zero, j, p_valid, p_word, entry, p_host):
        """Formal only: how the router's state explains the attached observer's (docs/verification.md)."""
        from amaranth import Cat
        from amaranth.hdl import Assert
        n, F = self.n_addresses, self.fanout
        m.d.comb += [Assert(~(rem != 0) | p_valid, "entries left to issue only behind an issued one"),
                     Assert((j <= F) & (rem <= F), "sequencer in range"),
                     Assert(rem_zero == (rem == 0), "rem_zero is rem == 0")]
        obs = self.formal_observer
        if obs is None:
            return
        # The table is the observer's copy of it.
        for e in range(n * F):
            r = entries.read_port(domain="comb")
            rp = ports.read_port(domain="comb")
            m.d.comb += [r.addr.eq(e), rp.addr.eq(e),
                         Assert(r.data.as_value() == obs.entries[e].as_value(), f"table entry {e}"),
                         Assert(rp.data == (obs.entries[e].port != Port.STIM), f"port bit of table entry {e}")]
        for a in range(n):
            r = counts.read_port(domain="comb")
            m.d.comb += [r.addr.eq(a), Assert((r.data == obs.counts[a]) & (r.data <= F), f"table fanout {a}")]
        (slot,) = obs.slots
        row = slot.row
        issuing = p_valid | (rem != 0)
        hand = Signal(range(F + 1), name="formal_handed")    # entries of the word that left the output stage
        m.d.comb += hand.eq(Mux(issuing, j - p_valid, slot.count))
        is_stim = [row[k].port == Port.STIM for k in range(F)]
        h_word = self.host.payload
        # The first HOST relay not yet delivered, if it has left the output stage.
        h_found, h_idx = Signal(name="formal_relay_found"), Signal(range(F + 1), name="formal_relay_idx")
        for k in reversed(range(F)):
            with m.If((k >= slot.host_next) & (k < hand) & ~is_stim[k]):
                m.d.comb += [h_found.eq(1), h_idx.eq(k)]
        relay = Signal(RouteEntry, name="formal_relay")
        m.d.comb += relay.eq(_pick(m, [r.as_value() for r in row], h_idx))
        relay_held = self.host.valid & slot.copy_sent
        m.d.comb += [
            Assert((slot.count <= F) & (slot.stim_next <= F) & (slot.host_next <= F), "observer in range"),
            Assert(~issuing | ((busy.as_value() == slot.word.as_value()) & (p_word.as_value() == slot.word.as_value())
                               & (j + rem == slot.count) & (j >= 1)), "the word being issued is the observer's"),
            Assert(~p_valid | (entry.as_value() == _pick(m, [r.as_value() for r in row], j - 1)),
                   "the output stage holds row entry j - 1"),
            Assert(~p_valid | (p_host == (entry.port != Port.STIM)), "the registered port bit is the entry's"),
            Assert(slot.stim_next <= hand, "no STIM entry delivered before it left the output stage"),
            Assert(~Cat((k >= slot.stim_next) & (k < hand) & is_stim[k] for k in range(F)).any(),
                   "a STIM entry left the output stage but was not delivered"),
            Assert(slot.host_next <= hand, "no relay delivered before it left the output stage"),
            Assert(~slot.copy_sent | ~self.host.valid | h_found, "the host register holds a relay"),
            Assert(~relay_held | ((h_word.address == relay.target) & (h_word.source == slot.word.source)
                                  & (h_word.type == AERType.SPIKE) & (h_word.timestamp == slot.word.timestamp)),
                   "the host register holds the next relay"),
            Assert(~Cat((k >= slot.host_next) & (k < hand) & ~is_stim[k] & ~(relay_held & (k == h_idx))
                        for k in range(F)).any(), "a relay left the output stage but is neither held nor delivered"),
            Assert(slot.copy_sent | (self.host.valid & (h_word.as_value() == slot.word.as_value())),
                   "the copy not yet delivered is in the host register"),
            Assert((slot.count == 0) | ((slot.word.type == AERType.SPIKE) & (slot.word.address < n)),
                   "only a SPIKE word of the table has entries"),
        ]


def _pick(m, values, index):
    out = Signal.like(values[0], name="formal_pick")
    with m.Switch(index):
        for i, v in enumerate(values):
            with m.Case(i):
                m.d.comb += out.eq(v)
    return out
