"""AEREncoder: spike vector in, 64-bit AER words out, round-robin, nothing lost silently."""

from amaranth import Array, C, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .counter import count_saturating
from bioloop.host.parameters import check_addresses, check_ts_bits, validated

from .layouts import ADDRESS_BITS, SOURCE_BITS, TIMESTAMP_BITS, AERType, aer_stream

__all__ = ["AEREncoder", "lowest_set"]


def lowest_set(m: Module, vector: Value, name: str) -> tuple[Signal, Signal]:
    """Index of the lowest set bit of ``vector`` and whether any bit is set.

    A tree of 2:1 choices, log2(width) levels deep, with no carry chain: each node keeps the
    lower half's index if the lower half has a set bit, else the upper half's (issue 14)."""
    width = len(vector)
    bits = max(1, (width - 1).bit_length())
    nodes = [(vector[i], Const(0, 0)) for i in range(width)]      # (any set, index within)
    level = 0
    while len(nodes) > 1:
        nxt = []
        for j in range(0, len(nodes), 2):
            if j + 1 == len(nodes):
                lo_any, lo_idx = nodes[j]
                nxt.append((lo_any, Cat(lo_idx, Const(0, 1))))
                continue
            (lo_any, lo_idx), (hi_any, hi_idx) = nodes[j], nodes[j + 1]
            any_ = Signal(name=f"{name}_any{level}_{j // 2}")
            idx = Signal(level + 1, name=f"{name}_idx{level}_{j // 2}")
            m.d.comb += [any_.eq(lo_any | hi_any),
                         idx.eq(Mux(lo_any, Cat(lo_idx, Const(0, 1)), Cat(hi_idx, Const(1, 1))))]
            nxt.append((any_, idx))
        nodes = nxt
        level += 1
    index = Signal(bits, name=f"{name}_index")
    m.d.comb += index.eq(nodes[0][1])
    return index, nodes[0][0]


class AEREncoder(wiring.Component):
    """Address-event encoder with one pending bit per address and round-robin grant.

    Each cycle, the addresses set in ``spikes`` (all stamped with
    ``timestamp``) become pending. One pending address per cycle is granted,
    round-robin, and leaves as a SPIKE word; the word is held while
    ``aer.ready`` is low. Behind the output register a skid register takes
    one more granted word while the output is held, and granting pauses only
    while the skid register is full: ``aer.ready`` drives no grant logic
    (issue 14). A spike on an address that is still pending (and
    not granted in that cycle) is lost. Losses accumulate into an OVERFLOW
    word (address = losses since the previous OVERFLOW word, saturating at
    2^20-1) that takes part in the round-robin as requester ``n_addresses``;
    a loss joins that count two cycles after the cycle it happens in (the
    lost addresses are registered, then counted).
    A new spike is eligible in the cycle it arrives.

    Worst-case wait: with ``aer.ready`` high, a pending address is granted
    within ``n_addresses + 1`` cycles (every other requester is granted at
    most once before the pointer reaches it).

    Pending timestamps are kept as their ``ts_bits`` low bits and rebuilt
    from ``now`` when granted; to keep that exact, a spike still pending a
    whole epoch of 2^(ts_bits-2) frames after it arrived (only possible if
    the host stalls the stream that long) is dropped and counted as lost.

    Parameters
    ----------
    n_addresses : int
        Width of the spike vector, 1..4096.
    ts_bits : int
        Stored timestamp bits per pending address, 4..32 (default 16).

    Members
    -------
    spikes : In(n_addresses)
        New spikes this cycle.
    timestamp : In(32)
        Frame of the spikes on ``spikes``.
    now : In(32)
        Current frame (>= every pending timestamp); stamps OVERFLOW words.
    source : In(8)
        Source field of every word (well or chip id).
    aer : Out(stream of AERWord)
        The words.
    clear : In(1)
        Clears the counters.
    words, lost : Out(32)
        Saturating counters of words emitted and spikes lost.
    formal_observer : object or None
        Formal hook (docs/verification.md), default None. A proof harness
        may attach an observer with a signal ``in_flight`` (spikes that
        entered minus SPIKE words and OVERFLOW counts that left); elaborated
        for the ``"formal"`` platform, the encoder then asserts that its
        pending spikes, its unreported losses and the word it holds on
        ``aer`` account for exactly ``in_flight``.
    """

    formal_observer = None

    @validated
    def __init__(self, n_addresses: int = 64, *, ts_bits: int = 16):
        self.n_addresses = check_addresses(n_addresses)
        self.ts_bits = check_ts_bits(ts_bits)
        super().__init__({
            "spikes": In(n_addresses),
            "timestamp": In(TIMESTAMP_BITS),
            "now": In(TIMESTAMP_BITS),
            "source": In(SOURCE_BITS),
            "aer": Out(aer_stream()),
            "clear": In(1),
            "words": Out(32),
            "lost": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        n, b = self.n_addresses, self.ts_bits
        nreq = n + 1                         # requester n is the OVERFLOW word
        ptr_bits = max(1, (nreq - 1).bit_length())

        pending = Signal(n)
        stored = [Signal(b, name=f"stored{a}") for a in range(n)]
        lost_pending = Signal(ADDRESS_BITS)  # losses not yet reported, saturating
        ptr = Signal(ptr_bits)

        new = self.spikes
        # The output is a register with a skid register behind it (issue 14): the encoder grants
        # whenever the skid register is empty, so ``aer.ready`` reaches no grant logic; it only
        # chooses where the granted word goes and moves the skid word out.
        skid_valid = Signal()
        skid_word = Signal.like(self.aer.payload)
        advance = Signal()
        m.d.comb += advance.eq(~skid_valid)

        # Epoch flush keeps the rebuilt timestamps exact (see class docstring).
        if b < TIMESTAMP_BITS:
            tag = self.now[b - 2:b]
            prev_tag = Signal(2)
            m.d.sync += prev_tag.eq(tag)
            old_tag = (tag - 2)[:2]
            stale = Cat((tag != prev_tag) & (stored[a][b - 2:b] == old_tag) for a in range(n))
        else:
            stale = C(0, n)

        # Round-robin over pending | new spikes | overflow report.
        req = Signal(nreq)
        m.d.comb += req.eq(Cat(pending | new, lost_pending != 0))
        mask = Signal(nreq)                   # requesters at or above the pointer (no carry chain)
        m.d.comb += mask.eq(Cat(ptr <= i for i in range(nreq)))
        hi_idx, hi_any = lowest_set(m, req & mask, "rr_hi")
        lo_idx, lo_any = lowest_set(m, req, "rr_lo")
        grant_idx = Signal(ptr_bits)
        m.d.comb += grant_idx.eq(Mux(hi_any, hi_idx, lo_idx))
        granting = Signal()
        m.d.comb += granting.eq(advance & lo_any)
        g = Signal(n)                         # one-hot grant among addresses
        m.d.comb += g.eq(Mux(granting & (grant_idx < n), C(1, n) << grant_idx, 0))

        was = pending
        keep = Signal(n)
        m.d.comb += keep.eq(was & ~g & ~stale)
        store = Signal(n)
        m.d.comb += store.eq(new & ~keep & ~(~was & g))
        m.d.sync += pending.eq(keep | store)
        for a in range(n):
            with m.If(store[a]):
                m.d.sync += stored[a].eq(self.timestamp[:b])
        # This cycle's losses (a new spike on a pending address; stale spikes flushed), one bit
        # per address: registered as a vector, counted in the next cycle (no popcount behind a
        # grant), added to the report one cycle after that.
        lost_vec = Signal(n)
        m.d.sync += lost_vec.eq((new & keep) | (was & ~g & stale))

        # The granted word.
        nw = Signal.like(self.aer.payload)
        granted_ts = Signal(TIMESTAMP_BITS)
        gstored = Array(stored)[grant_idx[:max(1, (n - 1).bit_length())] if n > 1 else 0]
        if b < TIMESTAMP_BITS:
            rebuilt = (self.now - ((self.now - gstored)[:b]))[:TIMESTAMP_BITS]
        else:
            rebuilt = gstored
        m.d.comb += granted_ts.eq(Mux((was & g).any(), rebuilt, self.timestamp))
        reported = Signal()
        m.d.comb += [reported.eq(granting & (grant_idx == n)), nw.source.eq(self.source)]
        with m.If(grant_idx == n):
            m.d.comb += [nw.type.eq(AERType.OVERFLOW), nw.address.eq(lost_pending),
                         nw.timestamp.eq(self.now)]
        with m.Else():
            m.d.comb += [nw.type.eq(AERType.SPIKE), nw.address.eq(grant_idx),
                         nw.timestamp.eq(granted_ts)]
        with m.If(granting):
            m.d.sync += ptr.eq(Mux(grant_idx == nreq - 1, 0, grant_idx + 1))

        # Output and skid registers.
        word = self.aer.payload
        with m.If(skid_valid):
            with m.If(self.aer.ready):
                m.d.sync += [word.eq(skid_word), skid_valid.eq(0)]
        with m.Elif(granting):
            with m.If(self.aer.valid & ~self.aer.ready):
                m.d.sync += [skid_valid.eq(1), skid_word.eq(nw)]
            with m.Else():
                m.d.sync += [self.aer.valid.eq(1), word.eq(nw)]
        with m.Elif(self.aer.ready):
            m.d.sync += self.aer.valid.eq(0)

        lost_new = Signal(range(n + 1))
        m.d.sync += lost_new.eq(sum(lost_vec[a] for a in range(n)))
        top = (1 << ADDRESS_BITS) - 1
        base = Mux(reported, 0, lost_pending)
        total = Signal(ADDRESS_BITS + 2)
        m.d.comb += total.eq(base + lost_new)
        m.d.sync += lost_pending.eq(Mux(total[ADDRESS_BITS:].any(), top, total))

        count_saturating(m, self.words, self.aer.valid & self.aer.ready, self.clear)
        count_saturating(m, self.lost, lost_new, self.clear)

        # Formal only: account for the attached observer's spikes in flight (docs/verification.md).
        observer = self.formal_observer
        if platform == "formal" and observer is not None:
            from amaranth.hdl import Assert
            def held_by(valid, w):
                return Mux(valid, Mux(w.type == AERType.SPIKE, 1, Mux(w.type == AERType.OVERFLOW, w.address, 0)), 0)
            held = held_by(self.aer.valid, word) + held_by(skid_valid, skid_word)
            m.d.comb += [
                Assert(~self.aer.valid | (word.type == AERType.SPIKE) | (word.type == AERType.OVERFLOW),
                       "the encoder holds a word that is neither SPIKE nor OVERFLOW"),
                Assert(~skid_valid | self.aer.valid, "the skid register is full behind an empty output"),
                Assert(~skid_valid | ((skid_word.type == AERType.SPIKE) & (skid_word.address < n))
                       | (skid_word.type == AERType.OVERFLOW),
                       "the skid register holds a word that is neither SPIKE for an address nor OVERFLOW"),
                Assert(observer.in_flight == sum(pending[a] for a in range(n)) + lost_pending + lost_new
                       + sum(lost_vec[a] for a in range(n)) + held,
                       "spikes in flight are not all pending, unreported (or just registered) losses or the held words"),
            ]
        return m
