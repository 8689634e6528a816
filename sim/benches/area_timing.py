"""Area per block, longest path and pre-route arrival of the Core (issue 14).

Writes ``docs/bench/area_timing.md`` from :mod:`bioloop.gateware.area_timing`:
one Yosys run per parameter set of ``CASES`` (the default sweep cadences at
(64, 64, 16) and (256, 64, 16), and every block in its original per-cycle
cadence at (64, 64, 16)); several CPU-minutes each, the per-cycle core the
slowest. Synthesis is deterministic.
"""

from __future__ import annotations

import datetime
import platform
from pathlib import Path

from bioloop.sim.measure import DOCS_BENCH, cpu_model


def main(out: Path = DOCS_BENCH, smoke: bool = False) -> Path:
    from bioloop.gateware.area_timing import CASES, measure_core
    cases = [("(2, 1, 1), smoke", (2, 1, 1), {})] if smoke else CASES
    results = []
    for title, (N, K, F), params in cases:
        print(f"measuring {title} ...", flush=True)
        results.append((title, measure_core(N, K, F, **params)))
    return write(results, out)


def write(results, out: Path = DOCS_BENCH, note: str = "", extra: str = "") -> Path:
    """``docs/bench/area_timing.md`` from ``[(title, AreaTiming), ...]``; ``note`` is added to the
    header, ``extra`` (Markdown) after the sections."""
    from bioloop.gateware.area_timing import fragment
    header = "\n".join([
        "## Area and timing on the xc7z020 (issue 14)",
        "",
        f"Measured {datetime.date.today().isoformat()} on {platform.machine()}, {cpu_model()} "
        f"(`bioloop.sim.benches.area_timing`, `bioloop.gateware.area_timing`): {results[0][1].yosys} "
        "`synth_xilinx -family xc7 -noiopad -noclkbuf` with the hierarchy kept (area per block), then "
        "flattened and cut at flip-flops, block RAMs and DSPs: the combinational path with the most LUT "
        "levels, a LUTRAM read counted as one as Vivado counts it (`write_json`, `deepest_path`; with the CARRY4 "
        "and MUXF7/8 cells on that path; records before 2026-11-29 13:45 UTC also cut at LUTRAMs, so a path "
        "through a LUTRAM's read counted only its longer side, and records before 11:00 UTC took this column "
        "from Yosys `ltp`, which hid deeper LUT paths behind carry chains); the worst arrival before routing, "
        "every path the library describes timed with the cell delays of Yosys's `cells_sim.v` (`worst_arrival`; "
        "records before 2026-11-29 12:30 UTC gave only Yosys `sta`'s figure, which misses paths: it is kept as "
        "the last column). "
        "Budget (DESIGN.md §4, issue 14): (64, 64, 16) within 10 % of 53,200 LUTs and 106,400 FFs, "
        "(256, 64, 16) within 25 %, worst pre-route arrival <= 6 ns, <= 8 LUT levels."
        + (f" {note}" if note else ""),
    ])
    path = Path(out) / "area_timing.md"
    path.write_text(fragment(results, header).rstrip() + "\n" + (f"\n{extra.strip()}\n" if extra else ""))
    return path
