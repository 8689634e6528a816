"""AEREncoder: spikes in, 64-bit AER words out (a queue or a round-robin), nothing lost silently."""

from amaranth import Array, C, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .counter import count_saturating
from bioloop.host.parameters import (check_addresses, check_encoder_cadence, check_queue_depth,
                                     check_ts_bits, validated)

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
    """Address-event encoder: spikes in, one AER word per cycle out, nothing lost silently.

    Two cadences (elaboration parameter ``cadence``, issue 14: spend cycles,
    not area). Both emit at most one word per cycle from an output register
    that holds it while ``aer.ready`` is low. Both count every spike they cannot keep and report it in an
    OVERFLOW word (address = losses since the previous OVERFLOW word,
    saturating at 2^20-1, timestamp ``now``). A new spike is eligible in the
    cycle it arrives: an idle encoder hands it over one edge later.

    ``cadence="queue"`` (the Core's default): the input rule is the
    Detector's, at most one *beat* of spikes per cycle: ``spikes`` has bits
    only within one pair of addresses ``2j, 2j+1``. A cycle's spikes form one
    entry (pair ``j``, its two hit bits, the 32-bit ``timestamp``) of a queue
    of ``queue_depth`` entries in distributed RAM (LUTRAM, asynchronous read).
    Words leave in arrival order, one per cycle, ``2j`` before ``2j+1`` of a
    double entry; when the queue is empty and the output can take a word,
    the first spike of the cycle's entry goes out directly (bypass) and only a
    second one is queued. An entry that arrives while the queue is full (a
    pop in the same cycle frees a place) is lost, its one or two spikes
    counted at that edge. A word is made when the output register is empty or
    hands its word over (``aer.ready`` reaches the queue's grant: a few
    gates). OVERFLOW words take a cycle in which no spike word
    is waiting, or, after ``queue_depth`` spike words since the last OVERFLOW
    word, the next cycle: a loss is reported within ``queue_depth + 1`` words.
    With ``aer.ready`` high the queue never overflows when
    ``queue_depth >= ceil(n_addresses / 2)``: each address is a detection at
    most every other sample of its channel, so words waiting never exceed
    n_addresses / 2 (docs/aer_path.md). Timestamps are stored whole: no
    epoch, no stall limit.

    ``cadence="cycle"`` (the original block): any spike vector. Each cycle,
    the addresses set in ``spikes`` (all stamped with ``timestamp``) become
    pending; one pending address per cycle is granted, round-robin, and
    leaves as a SPIKE word. Behind the output register a skid register takes
    one more word while the output is held, and words are granted only while
    the skid register is empty, so ``aer.ready`` drives none of the N+1-way
    grant logic. A spike on an address that is still pending (and
    not granted in that cycle) is lost. The OVERFLOW report takes part in the
    round-robin as requester ``n_addresses``; a loss joins that count two
    cycles after the cycle it happens in (the lost addresses are registered,
    then counted). Worst-case wait: with ``aer.ready`` high, a pending
    address is granted within ``n_addresses + 1`` cycles. Pending timestamps
    are kept as their ``ts_bits`` low bits and rebuilt from ``now`` when
    granted; to keep that exact, a spike still pending a whole epoch of
    2^(ts_bits-2) frames after it arrived (only possible if the host stalls
    the stream that long) is dropped and counted as lost.

    Parameters
    ----------
    n_addresses : int
        Width of the spike vector, 1..4096.
    ts_bits : int
        Stored timestamp bits per pending address, 4..32 (default 16; the
        cycle cadence only).
    cadence : {"cycle", "queue"}
        Default "cycle" (the block's original behaviour; the Core and the
        AERPath choose "queue").
    queue_depth : int or None
        Queue entries (queue cadence): a power of two, 2..256 (the queue
        lives in LUTRAM with an asynchronous read; refused above 256 with
        the numbers); default ``ceil(n_addresses / 2)`` rounded up to a
        power of two (lossless with ready high), at most 256.
    pair_input : bool
        Queue cadence: take the cycle's pair from ``pair`` and ``pair_hits``
        (the Detector's) instead of encoding ``spikes``, which is then not
        read (default False). The formal hook's ``in_flight`` counts
        ``spikes``, so the proofs are of the default.
    counters : bool
        Build the ``words`` and ``lost`` counters (default True). The Core
        counts in its CSR bank from ``lost_inc`` and builds none (they
        then read 0).

    Members
    -------
    spikes : In(n_addresses)
        New spikes this cycle (queue cadence: within one pair ``2j, 2j+1``).
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
        Saturating counters of words emitted and spikes lost (0 without
        ``counters``).
    lost_inc : Out(2) (queue) or Out(range(n_addresses + 1)) (cycle)
        The spikes ``lost`` counts at the coming edge.
    pair, pair_hits : In(range(ceil(n_addresses / 2))), In(2)
        With ``pair_input``: the pair ``j`` of this cycle's spikes and its
        two bits (addresses 2j, 2j+1).
    formal_observer : object or None
        Formal hook (docs/verification.md), default None. A proof harness
        may attach an observer with a signal ``in_flight`` (spikes that
        entered minus SPIKE words and OVERFLOW counts that left); elaborated
        for the ``"formal"`` platform, the encoder then asserts that its
        pending (cycle) or queued (queue) spikes, its unreported losses and
        the words it holds on ``aer`` account for exactly ``in_flight``. In
        the queue cadence it also *assumes* its input rule (one pair per
        cycle) on the ``"formal"`` platform, whether or not an observer is
        attached.
    """

    formal_observer = None

    @validated
    def __init__(self, n_addresses: int = 64, *, ts_bits: int = 16, cadence: str = "cycle",
                 queue_depth: int | None = None, counters: bool = True, pair_input: bool = False):
        self.n_addresses = check_addresses(n_addresses)
        self.ts_bits = check_ts_bits(ts_bits)
        self.cadence = check_encoder_cadence(cadence)
        if self.cadence == "cycle" and queue_depth is not None:
            raise ValueError(f"queue_depth={queue_depth} applies to cadence='queue' only, not 'cycle'")
        self.queue_depth = check_queue_depth(n_addresses, queue_depth) if self.cadence == "queue" else None
        if not isinstance(counters, bool):
            raise TypeError(f"counters must be a bool, not {type(counters).__name__} {counters!r}")
        self.counters = counters
        if not isinstance(pair_input, bool):
            raise TypeError(f"pair_input must be a bool, not {type(pair_input).__name__} {pair_input!r}")
        if pair_input and self.cadence != "queue":
            raise ValueError("pair_input=True applies to cadence='queue' only")
        self.pair_input = pair_input
        pairs = (n_addresses + 1) // 2
        pair_members = {"pair": In(max(1, (pairs - 1).bit_length())), "pair_hits": In(2)} if pair_input else {}
        super().__init__({
            "spikes": In(n_addresses),
            "timestamp": In(TIMESTAMP_BITS),
            "now": In(TIMESTAMP_BITS),
            "source": In(SOURCE_BITS),
            "aer": Out(aer_stream()),
            "clear": In(1),
            "words": Out(32),
            "lost": Out(32),
            "lost_inc": Out(2 if self.cadence == "queue" else range(n_addresses + 1)),
            **pair_members,
        })

    def elaborate(self, platform):
        if self.cadence == "queue":
            return self._elaborate_queue(platform)
        return self._elaborate_cycle(platform)

    def _elaborate_cycle(self, platform):
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

        m.d.comb += self.lost_inc.eq(lost_new)
        if self.counters:
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

    def _elaborate_queue(self, platform):
        m = Module()
        n, depth = self.n_addresses, self.queue_depth
        pairs = (n + 1) // 2
        jw = max(1, (pairs - 1).bit_length())
        pw = (depth - 1).bit_length()
        spikes = Cat(self.spikes, C(0, 2 * pairs - n))

        # The cycle's entry: at most one pair has spikes (the input rule), so the pair index is an
        # OR over the pairs whose index has that bit set (no priority encoder), and the hit bits
        # are an OR over the even and the odd addresses.
        occupied = Cat(spikes[2 * j] | spikes[2 * j + 1] for j in range(pairs))
        in_j = Signal(jw)
        in_hits = Signal(2)
        if self.pair_input:                  # the Detector's row and bits: nothing to encode
            m.d.comb += [in_j.eq(self.pair), in_hits.eq(self.pair_hits)]
        else:
            m.d.comb += [
                in_j.eq(Cat(Cat(occupied[j] for j in range(pairs) if (j >> k) & 1).any() if pairs > 1 << k
                            else C(0, 1) for k in range(jw))),
                in_hits.eq(Cat(Cat(spikes[0::2]).any(), Cat(spikes[1::2]).any())),
            ]

        # The queue: entries (pair, hits, timestamp) in LUTRAM, read asynchronously at its head.
        entry_bits = jw + 2 + TIMESTAMP_BITS
        m.submodules.queue = queue = memory.Memory(shape=entry_bits, depth=depth, init=[])
        wp = queue.write_port()
        rp = queue.read_port(domain="comb")
        rd, wr = Signal(pw), Signal(pw)
        level = Signal(range(depth + 1))
        half = Signal()                      # the head is a double entry whose 2j word has left
        since = Signal(range(depth + 1))     # SPIKE words since the last OVERFLOW word, saturating
        lost_pending = Signal(ADDRESS_BITS)  # losses not yet reported, saturating
        m.d.comb += rp.addr.eq(rd)
        head_j, head_hits, head_ts = rp.data[:jw], rp.data[jw:jw + 2], rp.data[jw + 2:]

        # No skid register in this cadence: the consumer's ready may reach its grant. Every next state
        # is computed twice from registers and the cycle's input, for a cycle in which the output
        # register takes a word (``_a``) and for one in which it holds it (``_h``: nothing granted,
        # nothing popped), and ``advance`` only chooses between the two at the end (issue 14: the
        # ready chain from the AERMerge through the router adds one LUT level here, not the grant,
        # the pointers and the adders behind it).
        advance = Signal()
        m.d.comb += advance.eq(~self.aer.valid | self.aer.ready)

        empty = Signal()
        m.d.comb += empty.eq(level == 0)
        full = Signal()
        m.d.comb += full.eq(level == depth)
        src_j = Signal(jw)
        src_hits = Signal(2)
        src_ts = Signal(TIMESTAMP_BITS)
        src_half = Signal()
        m.d.comb += [
            src_j.eq(Mux(empty, in_j, head_j)), src_hits.eq(Mux(empty, in_hits, head_hits)),
            src_ts.eq(Mux(empty, self.timestamp, head_ts)), src_half.eq(~empty & half),
        ]
        both = src_hits == 0b11
        spike_req = ~empty | in_hits.any()
        overflow_req = lost_pending != 0
        arrived = in_hits.any()
        lost_in = Mux(in_hits == 0b11, 2, in_hits.any())       # the spikes of an entry that finds no place
        top = (1 << ADDRESS_BITS) - 1

        def saturated(total):
            return Mux(total[ADDRESS_BITS], top, total[:ADDRESS_BITS])

        # Advancing: the grant, the pop, the push.
        grant_ovf_a, grant_spk_a, pop_a, push_want_a, push_a = (Signal(name=f"{n}_a") for n in
                                                                ("grant_ovf", "grant_spk", "pop", "push_want", "push"))
        m.d.comb += [
            grant_ovf_a.eq(overflow_req & (~spike_req | (since == depth))),
            grant_spk_a.eq(spike_req & ~grant_ovf_a),
            pop_a.eq(grant_spk_a & ~empty & (~both | half)),
            push_want_a.eq(arrived & ~(empty & grant_spk_a & ~both)),
            push_a.eq(push_want_a & (~full | pop_a)),
        ]
        lost_a, lost_h = Signal(2), Signal(2)
        m.d.comb += [lost_a.eq(Mux(push_want_a & ~push_a, lost_in, 0)), lost_h.eq(Mux(full, lost_in, 0))]
        level_a, level_h = Signal.like(level), Signal.like(level)
        m.d.comb += [level_a.eq(level + push_a - pop_a), level_h.eq(level + (arrived & ~full))]
        total_a, total_h = Signal(ADDRESS_BITS + 1), Signal(ADDRESS_BITS + 1)
        m.d.comb += [total_a.eq(Mux(grant_ovf_a, 0, lost_pending) + lost_a), total_h.eq(lost_pending + lost_h)]
        since_a = Signal.like(since)
        m.d.comb += since_a.eq(Mux(grant_ovf_a, 0, Mux(grant_spk_a & (since != depth), since + 1, since)))

        # Holding: an arriving entry is queued if there is a place, else lost.
        grant_ovf, grant_spk, pop, push, lost_now = Signal(), Signal(), Signal(), Signal(), Signal(2)
        m.d.comb += [
            grant_ovf.eq(advance & grant_ovf_a),
            grant_spk.eq(advance & grant_spk_a),
            pop.eq(advance & pop_a),
            push.eq(Mux(advance, push_a, arrived & ~full)),
            lost_now.eq(Mux(advance, lost_a, lost_h)),
            wp.addr.eq(wr), wp.data.eq(Cat(in_j, in_hits, self.timestamp)), wp.en.eq(push),
        ]
        with m.If(grant_spk):
            m.d.sync += half.eq(both & ~src_half)
        m.d.sync += [rd.eq(rd + pop), wr.eq(wr + push), level.eq(Mux(advance, level_a, level_h)),
                     since.eq(Mux(advance, since_a, since)),
                     lost_pending.eq(Mux(advance, saturated(total_a), saturated(total_h)))]

        # The word: the lower remaining spike of the source entry, or the OVERFLOW report.
        nw = Signal.like(self.aer.payload)
        second = src_hits[1] & (~src_hits[0] | src_half)
        m.d.comb += nw.source.eq(self.source)
        with m.If(grant_ovf_a):
            m.d.comb += [nw.type.eq(AERType.OVERFLOW), nw.address.eq(lost_pending), nw.timestamp.eq(self.now)]
        with m.Else():
            m.d.comb += [nw.type.eq(AERType.SPIKE), nw.address.eq(Cat(second, src_j)), nw.timestamp.eq(src_ts)]
        granting_a = grant_ovf_a | grant_spk_a

        # Holding means a word is held (valid and not ready): valid stays; advancing, valid is the grant.
        word = self.aer.payload
        m.d.sync += self.aer.valid.eq(~advance | granting_a)
        with m.If(advance & granting_a):
            m.d.sync += word.eq(nw)

        m.d.comb += self.lost_inc.eq(lost_now)
        if self.counters:
            count_saturating(m, self.words, self.aer.valid & self.aer.ready, self.clear)
            count_saturating(m, self.lost, lost_now, self.clear, most=2)

        if platform == "formal":
            from amaranth.hdl import Assert, Assume
            # The input rule (one beat's pair per cycle) is part of this cadence's specification.
            # With pair_input the rule holds by construction and ``spikes`` is not read.
            if not self.pair_input:
                m.d.comb += Assume((occupied & (occupied - 1)) == 0)
            observer = self.formal_observer
            if observer is not None:
                # Every live entry's spikes, read through one asynchronous port per row (formal only).
                live_words = []
                for s in range(depth):
                    row = queue.read_port(domain="comb")
                    m.d.comb += row.addr.eq(s)
                    row_j, hits = row.data[:jw], row.data[jw:jw + 2]
                    live = ((s - rd)[:pw] < level) if depth > 1 else level != 0
                    m.d.comb += Assert(~live | ((hits != 0) & (Cat(hits[1], row_j) < n) & (row_j < pairs)),
                                       "a queued entry holds no spike, or one beyond the addresses")
                    live_words.append(Mux(live, hits[0] + hits[1], 0))

                def held_by(valid, w):
                    return Mux(valid, Mux(w.type == AERType.SPIKE, 1, Mux(w.type == AERType.OVERFLOW, w.address, 0)), 0)
                held = held_by(self.aer.valid, word)
                m.d.comb += [
                    Assert(level <= depth, "the queue holds more entries than its depth"),
                    Assert(since <= depth, "the SPIKE words since the last report count beyond the depth"),
                    Assert(~self.aer.valid | (word.type == AERType.OVERFLOW) | (word.address < n),
                           "the encoder holds a SPIKE word beyond the addresses"),
                    Assert(((wr - rd)[:pw] == level[:pw]), "the queue's pointers disagree with its level"),
                    Assert(~half | (~empty & (head_hits == 0b11)), "half set without a double entry at the head"),
                    Assert(~self.aer.valid | (word.type == AERType.SPIKE) | (word.type == AERType.OVERFLOW),
                           "the encoder holds a word that is neither SPIKE nor OVERFLOW"),
                    Assert(observer.in_flight == sum(live_words) - half + lost_pending + held,
                           "spikes in flight are not all queued, unreported losses or the held words"),
                ]
        return m
