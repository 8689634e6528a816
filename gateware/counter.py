"""Saturating event counters shared by the blocks (DESIGN.md §5: counters saturate and clear)."""

from amaranth import Module, Mux, Signal, Value

__all__ = ["count_saturating"]


def count_saturating(m: Module, counter: Signal, inc, clear, *, most: int | None = None) -> None:
    """Add ``inc`` to ``counter`` each cycle, sticking at all-ones; ``clear`` wins.

    With ``most`` (``inc`` never exceeds it), ``counter + k`` for k = 1 .. most are formed from
    the counter alone and ``inc`` only selects among them: the carry chains start at the
    counter's flip-flops, not behind the logic that makes ``inc`` (issue 14)."""
    top = (1 << len(counter)) - 1
    if most is not None:
        width = len(counter)
        plus = []
        for k in range(1, most + 1):
            t = Signal(width + 1, name=f"{counter.name}_plus{k}")
            m.d.comb += t.eq(counter + k)
            plus.append((k, t))
        with m.If(clear):
            m.d.sync += counter.eq(0)
        with m.Else():
            with m.Switch(inc):
                for k, t in plus:
                    with m.Case(k):
                        m.d.sync += counter.eq(Mux(t[width], top, t[:width]))
        return
    total = Signal(len(counter) + 1 + max(0, len(Value.cast(inc)) - len(counter)), name=f"{counter.name}_next")
    m.d.comb += total.eq(counter + inc)
    with m.If(clear):
        m.d.sync += counter.eq(0)
    with m.Elif(total[len(counter):].any()):        # a carry out: no wide compare
        m.d.sync += counter.eq(top)
    with m.Else():
        m.d.sync += counter.eq(total)
