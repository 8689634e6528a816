"""Cycle-exact model of the gateware AEREncoder (DESIGN.md §4).

Vectors of addresses are Python ints used as bit sets, which keeps the model
short and fast enough for thousands of addresses.
"""

from __future__ import annotations

from collections import deque

from bioloop.host.layouts import ADDRESS_BITS, AERType
from bioloop.host.parameters import check_addresses, check_encoder_cadence, check_queue_depth, check_ts_bits
from bioloop.host.aer import pack_one

__all__ = ["AEREncoder"]

_MASK32 = (1 << 32) - 1


class AEREncoder:
    """Model of :class:`bioloop.gateware.aer_encoder.AEREncoder`; one :meth:`step` per clock edge.

    Same parameters and the same rules (the gateware's docstring); in the queue cadence
    :meth:`step` refuses spikes outside one pair ``2j, 2j+1`` with a ValueError.
    """

    def __init__(self, n_addresses: int, ts_bits: int = 16, source: int = 0, *, cadence: str = "cycle",
                 queue_depth: int | None = None):
        self.n = check_addresses(n_addresses)
        self.ts_bits = check_ts_bits(ts_bits)
        self.cadence = check_encoder_cadence(cadence)
        if self.cadence == "cycle" and queue_depth is not None:
            raise ValueError(f"queue_depth={queue_depth} applies to cadence='queue' only, not 'cycle'")
        self.queue_depth = check_queue_depth(n_addresses, queue_depth) if self.cadence == "queue" else None
        self.source = source
        self.reset()

    def reset(self):
        # queue cadence: entries [pair, hits, timestamp], oldest first; the head's 2j word gone
        self.queue: deque[list[int]] = deque()
        self.half = False
        self.since = 0                   # SPIKE words since the last OVERFLOW word, saturating at the depth
        self.pending = 0
        self.stored = [0] * self.n
        self.lost_pending = 0
        self.lost_reg = 0                # addresses lost in the last cycle (the gateware's registered vector, counted)
        self.lost_new = 0                # losses counted, not yet added to the report
        self.ptr = 0
        self.prev_tag = 0
        self.valid = False
        self.word = 0
        self.skid_valid = False          # the skid register behind the output register
        self.skid_word = 0
        self.words = 0
        self.lost = 0

    @property
    def idle(self) -> bool:
        """Nothing pending or queued, no word offered or in the skid register, no loss to count or report."""
        return not (self.pending or self.queue or self.valid or self.skid_valid or self.lost_pending
                    or self.lost_reg or self.lost_new)

    def follow(self, now: int) -> None:
        """What an idle :meth:`step` at frame ``now`` does: the epoch tag follows the frame (cycle cadence)."""
        if not self.idle:
            raise ValueError("AEREncoder.follow needs an idle encoder")
        if self.cadence == "cycle" and self.ts_bits < 32:
            self.prev_tag = (now >> (self.ts_bits - 2)) & 3

    def _grant(self, req: int) -> int | None:
        if not req:
            return None
        hi = req >> self.ptr << self.ptr
        pick = hi if hi else req
        return (pick & -pick).bit_length() - 1

    def step(self, spikes: int = 0, timestamp: int = 0, now: int = 0, ready: bool = True) -> int | None:
        """Advance one clock edge; return the word handed over at this edge, if any.

        ``spikes`` is the address bit set presented this cycle, stamped
        ``timestamp``; ``now`` is the current frame; ``ready`` is the
        consumer's ready at this edge.
        """
        if self.cadence == "queue":
            return self._step_queue(spikes, timestamp, now, ready)
        return self._step_cycle(spikes, timestamp, now, ready)

    def _step_queue(self, spikes: int, timestamp: int, now: int, ready: bool) -> int | None:
        """The queue cadence's edge (gateware ``_elaborate_queue``)."""
        hits = 0
        j = 0
        if spikes:
            j = ((spikes & -spikes).bit_length() - 1) >> 1
            hits = spikes >> (2 * j)
            if hits > 3 or spikes >> self.n:
                raise ValueError(
                    f"AEREncoder (queue cadence) takes spikes of one beat per cycle (addresses 2j, 2j+1), "
                    f"got addresses {[a for a in range(spikes.bit_length()) if spikes >> a & 1]}")
        out = self.word if (self.valid and ready) else None
        if out is not None:
            self.words += 1
        advance = not self.valid or ready         # no skid register in this cadence
        q, depth = self.queue, self.queue_depth
        empty = not q
        if empty:
            src_j, src_hits, src_ts, src_half = j, hits, timestamp, False
        else:
            src_j, src_hits, src_ts = q[0]
            src_half = self.half
        both = src_hits == 3
        spike_req = bool(q) or bool(hits)
        grant_ovf = advance and self.lost_pending != 0 and (not spike_req or self.since == depth)
        grant_spk = advance and spike_req and not grant_ovf
        pop = grant_spk and not empty and (not both or self.half)
        push_want = bool(hits) and not (empty and grant_spk and not both)
        push = push_want and (len(q) < depth or pop)
        lost_now = bin(hits).count("1") if push_want and not push else 0

        if grant_ovf:
            new = pack_one(self.lost_pending, self.source, AERType.OVERFLOW, now)
        elif grant_spk:
            second = (src_hits >> 1) & 1 and (not src_hits & 1 or src_half)
            new = pack_one(2 * src_j + int(second), self.source, AERType.SPIKE, src_ts)
        if grant_spk:
            self.half = both and not src_half
        if pop:
            q.popleft()
        if push:
            q.append([j, hits, timestamp & _MASK32])
        if grant_ovf:
            self.since = 0
        elif grant_spk and self.since != depth:
            self.since += 1

        if grant_ovf or grant_spk:
            self.valid, self.word = True, new
        elif ready:
            self.valid = False

        top = (1 << ADDRESS_BITS) - 1
        self.lost_pending = min((0 if grant_ovf else self.lost_pending) + lost_now, top)
        self.lost = min(self.lost + lost_now, _MASK32)
        return out

    def _step_cycle(self, spikes: int, timestamp: int, now: int, ready: bool) -> int | None:
        """The cycle cadence's edge (gateware ``_elaborate_cycle``)."""
        n, b = self.n, self.ts_bits
        out = self.word if (self.valid and ready) else None
        if out is not None:
            self.words += 1
        advance = not self.skid_valid

        stale = 0
        if b < 32:
            tag = (now >> (b - 2)) & 3
            if tag != self.prev_tag:
                old = (tag - 2) & 3
                for a in range(n):
                    if (self.pending >> a) & 1 and (self.stored[a] >> (b - 2)) & 3 == old:
                        stale |= 1 << a
            self.prev_tag = tag

        req = self.pending | spikes | ((1 << n) if self.lost_pending else 0)
        idx = self._grant(req) if advance else None
        g = (1 << idx) if idx is not None and idx < n else 0

        was = self.pending
        keep = was & ~g & ~stale
        lost_vec = (spikes & keep) | (was & ~g & stale)
        store = spikes & ~keep & ~(~was & g)

        reported = False
        if idx is not None:
            self.ptr = 0 if idx == n else idx + 1
            if idx == n:
                reported = True
                new = pack_one(self.lost_pending, self.source, AERType.OVERFLOW, now)
            else:
                if was & g:
                    age = (now - self.stored[idx]) & ((1 << b) - 1)
                    ts = (now - age) & _MASK32
                else:
                    ts = timestamp
                new = pack_one(idx, self.source, AERType.SPIKE, ts)
        if self.skid_valid:
            if ready:
                self.word, self.skid_valid = self.skid_word, False
        elif idx is not None:
            if self.valid and not ready:
                self.skid_valid, self.skid_word = True, new
            else:
                self.valid, self.word = True, new
        elif ready:
            self.valid = False

        self.pending = keep | store
        mask = (1 << b) - 1
        for a in range(n):
            if (store >> a) & 1:
                self.stored[a] = timestamp & mask
        # This cycle's losses are registered as a vector, counted at the next edge and added at
        # the one after (the gateware keeps the popcount away from the grant and the adder).
        top = (1 << ADDRESS_BITS) - 1
        self.lost_pending = min((0 if reported else self.lost_pending) + self.lost_new, top)
        self.lost = min(self.lost + self.lost_new, _MASK32)
        self.lost_new = self.lost_reg
        self.lost_reg = bin(lost_vec).count("1")
        return out
