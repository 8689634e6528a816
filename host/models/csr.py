"""Transaction-level model of the CSR bank (:class:`bioloop.gateware.csr.CSRBank`).

The executable specification the cocotb bench scores the bank against, and
the register file of the ``model`` backend. Plain Python: it reads the
register map of :mod:`bioloop.host.regmap` and imports no amaranth.
"""

from __future__ import annotations

from bioloop.host.regmap import DATA_BITS, OKAY, SLVERR, Access, RegisterMap

__all__ = ["CSRBankModel", "check_counter_bits"]


def check_counter_bits(counter_bits) -> int:
    """Width at which the bank's counters saturate: an integer in 2..32."""
    if not isinstance(counter_bits, int) or not 2 <= counter_bits <= DATA_BITS:
        raise ValueError(f"counter_bits must be an integer in 2..{DATA_BITS}, not {counter_bits!r}")
    return counter_bits


class CSRBankModel:
    """Transaction-level model of :class:`CSRBank` (same map, same semantics).

    Writes and reads return what the bus would; datapath events are fed with
    :meth:`increment` and :meth:`measure`; table commits and pulses are
    appended to :attr:`table_writes` and :attr:`pulses`.

    Attributes
    ----------
    table_writes : list of (str, int, dict)
        ``(table, entry, {field: value})`` for every committed entry.
    pulses : list of str
        Names of pulse fields fired, in order.
    """

    def __init__(self, regmap: RegisterMap, counter_bits: int = DATA_BITS):
        self.regmap = regmap
        self.counter_max = (1 << check_counter_bits(counter_bits)) - 1
        self.values = {f.name: f.reset for f in regmap.fields() if f.access is not Access.CONST}
        for f in regmap.fields(Access.PULSE, Access.COUNTER, Access.LATEST, Access.MAXIMUM,
                               Access.W1C, Access.RO):
            self.values[f.name] = 0
        self.staged = {t.name: [0] * (t.words - 1) for t in regmap.tables}
        self.table_writes: list[tuple[str, int, dict]] = []
        self.pulses: list[str] = []

    # -- datapath side --------------------------------------------------------------------

    def increment(self, counter: str, n: int = 1) -> None:
        """``n`` events of ``counter`` (sets the status bits it sources)."""
        _, f = self.regmap.field(counter)
        if f.access is not Access.COUNTER:
            raise KeyError(f"{counter} is not a counter")
        if n <= 0:
            return
        self.values[counter] = min(self.values[counter] + n, self.counter_max)
        for s in self.regmap.fields(Access.W1C):
            if s.source == counter:
                self.values[s.name] = 1

    def measure(self, probe: str, cycles: int) -> None:
        """One latency measurement of ``cycles`` on ``probe``."""
        for f in self.regmap.fields(Access.LATEST, Access.MAXIMUM, Access.COUNTER):
            if f.source != probe:
                continue
            if f.access is Access.LATEST:
                self.values[f.name] = cycles
            elif f.access is Access.MAXIMUM:
                self.values[f.name] = max(self.values[f.name], cycles)
            else:
                self.increment(f.name)

    # -- bus side -------------------------------------------------------------------------

    def read(self, addr: int) -> tuple[int, int]:
        """``(data, resp)`` of an AXI read of byte address ``addr``."""
        hit = self.regmap.decode(addr)
        if hit is None:
            return 0, SLVERR
        if hit[0] == "table":
            return 0, OKAY
        reg = hit[1]
        value = 0
        for f in reg.fields:
            if f.access is Access.CONST:
                value |= f.encode(f.reset)
            elif f.access is not Access.PULSE:
                value |= f.encode(self.values[f.name])
        return value, OKAY

    def write(self, addr: int, data: int, strb: int = 0xF) -> int:
        """Apply an AXI write; returns BRESP."""
        hit = self.regmap.decode(addr)
        if hit is None:
            return SLVERR
        mask = 0
        for b in range(4):
            if strb >> b & 1:
                mask |= 0xFF << (8 * b)
        wm = data & mask
        if hit[0] == "table":
            _, t, entry, word = hit
            if word < t.words - 1:
                self.staged[t.name][word] = wm
            else:
                words = [*self.staged[t.name], wm]
                self.table_writes.append((t.name, entry, {f.name: f.decode(words[f.word])
                                                          for f in t.fields}))
            return OKAY
        reg = hit[1]
        clear = False
        for f in reg.fields:
            if f.access is Access.RW:
                old = f.encode(self.values[f.name])
                self.values[f.name] = f.decode(wm | (old & ~mask))
            elif f.access is Access.PULSE and wm >> f.lsb & 1:
                self.pulses.append(f.name)
                clear |= f.name == "clear_counters"
            elif f.access is Access.W1C and wm >> f.lsb & 1:
                self.values[f.name] = 0
        if clear:
            for f in self.regmap.fields(Access.COUNTER, Access.LATEST, Access.MAXIMUM):
                self.values[f.name] = 0
        return OKAY

    def set_input(self, name: str, value: int) -> None:
        """Drive a read-only (``ro``) input such as ``theta_value``."""
        _, f = self.regmap.field(name)
        if f.access is not Access.RO:
            raise KeyError(f"{name} is not a read-only input")
        self.values[name] = f.decode(f.encode(value))
