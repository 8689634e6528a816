"""One bit per lane in a K-bit vector, written at a variable lane with masks, not a case per lane.

Amaranth writes ``vector.bit_select(i, 1).eq(v)`` and ``Array(...)[i].eq(v)`` as a ``case`` with
one arm per lane, which Verilator evaluates as a chain of compares every cycle (issue 13: the
compiled backend's time goes into that per-cycle code). The masks below are a few 64-bit
operations in Verilator's C++ and the same decoder after synthesis.
"""

from amaranth import Cat, Const, Mux, Value

__all__ = ["one_hot", "with_bit"]


def one_hot(index, width: int, enable=1) -> Value:
    """``1 << index`` as a ``width``-bit value: 0 when ``enable`` is low or ``index >= width``.

    A decoder in two halves, each a right shift of a constant (a left shift by an n-bit value
    would be ``width + 2^n - 1`` bits wide): the low bits of ``index`` pick one bit in every
    group of ``2^(n // 2)`` lanes, the high bits pick the group. Yosys maps the two halves to
    two small predecoders (fewer LUTs than one shift by the whole index, issue 14's budget);
    Verilator evaluates two shifts and an AND.
    """
    index = Value.cast(index)
    n = max(1, (width - 1).bit_length())
    span = 1 << n
    if len(index) < n:
        index = index.as_unsigned() + Const(0, n)       # zero-extended to n bits
    inside = 1
    if len(index) > n:                                  # a wider index: past the end selects nothing
        inside = index < width
        index = index[:n]
    if n == 1:
        bits = Const(0b10, 2) >> ~index[0]
    else:
        low = n // 2
        group = 1 << low
        top_of_each_group = sum(1 << (g * group + group - 1) for g in range(span // group))
        in_group = Const(top_of_each_group, span) >> (~index[:low])[:low]
        groups = Const(((1 << group) - 1) << (span - group), span) >> Cat(Const(0, low), ~index[low:n])
        bits = in_group & groups
    return Mux(enable & inside, bits[:width], 0)


def with_bit(vector: Value, select: Value, value) -> Value:
    """``vector`` with the bits set in ``select`` (a :func:`one_hot`) replaced by ``value`` (1 bit)."""
    return (vector & ~select) | Mux(value, select, 0)
