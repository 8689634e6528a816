"""AERMerge: the Core's AER output, the router's host port and the STIM words merged without loss.

Bit-exact with :class:`bioloop.host.models.aer_merge.AERMerge`; the cocotb bench
``tests/gateware/test_aer_merge.py`` scores it against that model under random
idle and backpressure.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .layouts import AERWord, aer_stream

__all__ = ["AERMerge", "AEROutBeat", "BLOCK_BITS"]

#: One 64-bit AXI-Stream beat of the AER output: the word and TLAST.
AEROutBeat = data.StructLayout({"data": AERWord, "last": 1})
#: Width of the words-per-block setting (``aer_block_words``).
BLOCK_BITS = 16


class AERMerge(wiring.Component):
    """2:1 merge of AER word streams onto the framed output stream.

    Round-robin when both inputs are valid (the STIM words win only if the
    previous grant went to the host port); once a word is offered it stays
    offered (locked) until taken, as AXI-Stream requires. ``last`` (TLAST)
    marks every ``block_words``-th word taken, so a DMA transfer ends on it.

    Members
    -------
    host : In(stream of AERWord)
        The router's host port (SPIKE copies, relays, OVERFLOW).
    stim : In(stream of AERWord)
        The STIM words (and their OVERFLOW words) from the StimPath.
    out : Out(stream of AEROutBeat)
        The merged words with TLAST.
    block_words : In(16)
        Words per DMA block (1..65535); TLAST on the word that completes one.
    restart : In(1)
        Drops the lock and restarts the block count (``soft_reset``); the
        round-robin memory is kept.
    """

    def __init__(self):
        super().__init__({
            "host": In(aer_stream()),
            "stim": In(aer_stream()),
            "out": Out(stream.Signature(AEROutBeat)),
            "block_words": In(BLOCK_BITS),
            "restart": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        hv, sv = self.host.valid, self.stim.valid
        locked = Signal()
        lock_stim = Signal()
        last_stim = Signal()          # the previous grant went to the STIM words
        sel_stim = Signal()
        m.d.comb += sel_stim.eq(Mux(locked, lock_stim, sv & (~hv | ~last_stim)))
        out = self.out
        blk = Signal(BLOCK_BITS)
        m.d.comb += [
            out.valid.eq(Mux(sel_stim, sv, hv)),
            out.payload.data.eq(Mux(sel_stim, self.stim.payload, self.host.payload)),
            out.payload.last.eq(blk + 1 >= self.block_words),
            self.host.ready.eq(out.ready & ~sel_stim),
            self.stim.ready.eq(out.ready & sel_stim),
        ]
        with m.If(out.valid & out.ready):
            m.d.sync += [locked.eq(0), last_stim.eq(sel_stim), blk.eq(Mux(out.payload.last, 0, blk + 1))]
        with m.Elif(out.valid):
            m.d.sync += [locked.eq(1), lock_stim.eq(sel_stim)]
        with m.If(self.restart):
            m.d.sync += [locked.eq(0), blk.eq(0)]
        return m
