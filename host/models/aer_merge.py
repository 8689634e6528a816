"""Cycle-exact model of the gateware AERMerge (the Core's AER output merge)."""

from __future__ import annotations

__all__ = ["AERMerge"]


class AERMerge:
    """Model of :class:`bioloop.gateware.aer_merge.AERMerge`; one :meth:`step` per clock edge.

    :meth:`select` tells, before the edge, which input is offered on the output
    (so a caller can derive the inputs' ready); :meth:`step` then takes the edge.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.locked = False
        self.lock_stim = False
        self.last_stim = False
        self.blk = 0

    def restart(self) -> None:
        """``restart`` (soft reset) seen at an edge: the lock and the block count clear."""
        self.locked = False
        self.blk = 0

    @property
    def idle(self) -> bool:
        """No word is locked on the output."""
        return not self.locked

    def select(self, host_valid: bool, stim_valid: bool) -> bool:
        """Whether the STIM input is the one offered before the coming edge."""
        if self.locked:
            return self.lock_stim
        return bool(stim_valid and (not host_valid or not self.last_stim))

    def step(self, host_valid: bool, stim_valid: bool, out_ready: bool, block_words: int):
        """One edge; returns ``(sel_stim, taken, last)``: which input was offered, whether the
        output handshake happened and, if so, the TLAST of the word taken."""
        sel_stim = self.select(host_valid, stim_valid)
        out_valid = stim_valid if sel_stim else host_valid
        last = self.blk + 1 >= block_words
        if out_valid and out_ready:
            self.blk = 0 if last else self.blk + 1
            self.locked = False
            self.last_stim = sel_stim
            return sel_stim, True, last
        if out_valid:
            self.locked, self.lock_stim = True, sel_stim
        return sel_stim, False, False
