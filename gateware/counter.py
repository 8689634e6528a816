"""Saturating event counters shared by the blocks (DESIGN.md §5: counters saturate and clear)."""

from amaranth import Module, Signal, Value

__all__ = ["count_saturating"]


def count_saturating(m: Module, counter: Signal, inc, clear) -> None:
    """Add ``inc`` to ``counter`` each cycle, sticking at all-ones; ``clear`` wins."""
    top = (1 << len(counter)) - 1
    total = Signal(len(counter) + 1 + max(0, len(Value.cast(inc)) - len(counter)), name=f"{counter.name}_next")
    m.d.comb += total.eq(counter + inc)
    with m.If(clear):
        m.d.sync += counter.eq(0)
    with m.Elif(total[len(counter):].any()):        # a carry out: no wide compare
        m.d.sync += counter.eq(top)
    with m.Else():
        m.d.sync += counter.eq(total)
