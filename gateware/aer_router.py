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
    """

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
        m.submodules.ports = ports = memory.Memory(shape=1, depth=n * F, init=[])
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
        h_free = ~h_valid | self.host.ready
        p_done = p_valid & Mux(p_is_stim, self.stim.ready, h_free)
        advance = ~p_valid | p_done
        p_wants_host = p_valid & ~p_is_stim

        m.d.comb += [
            self.stim.valid.eq(p_valid & p_is_stim),
            self.stim.payload.target.eq(entry.target[:LANE_BITS]),
            self.stim.payload.weight.eq(entry.weight),
            self.stim.payload.address.eq(p_word.address),
            self.stim.payload.timestamp.eq(p_word.timestamp),
            self.aer.ready.eq((rem == 0) & advance & h_free & ~p_wants_host),
        ]

        accept = self.aer.valid & self.aer.ready
        in_range = word.address < n
        m.d.comb += cnt_rd.addr.eq(word.address[:self.addr_bits])
        routable = Signal()
        m.d.comb += routable.eq(accept & (word.type == AERType.SPIKE) & in_range & (cnt_rd.data != 0))

        issue_busy = (rem != 0) & advance
        m.d.comb += rd.en.eq(0)    # the read port's enable defaults to 1: hold the entry while stalled
        m.d.comb += port_rd.addr.eq(rd.addr)
        with m.If(issue_busy):
            m.d.comb += [rd.addr.eq(busy.address[:self.addr_bits] * F + j), rd.en.eq(1)]
            m.d.sync += [rem.eq(rem - 1), j.eq(j + 1), p_valid.eq(1), p_word.eq(busy),
                         p_host.eq(port_rd.data)]
        with m.Elif(routable):
            m.d.comb += [rd.addr.eq(word.address[:self.addr_bits] * F), rd.en.eq(1)]
            m.d.sync += [rem.eq(cnt_rd.data - 1), j.eq(1), busy.eq(word), p_valid.eq(1), p_word.eq(word),
                         p_host.eq(port_rd.data)]
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

        count_saturating(m, self.routed, p_done, self.clear)
        count_saturating(m, self.unmapped,
                         accept & (word.type == AERType.SPIKE) & ~(in_range & (cnt_rd.data != 0)), self.clear)
        return m
