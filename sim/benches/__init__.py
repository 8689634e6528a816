"""`make bench`: the benchmarks, one module per measured part, each writing one fragment.

Each module ``bioloop.sim.benches.<name>`` has ``main(out=DOCS_BENCH, smoke=False)``:
it measures, writes ``<out>/<name>.md`` (and any figure it links) and
returns that path. ``smoke=True`` runs the same code at a tiny size (seconds),
which is what ``tests/sim/test_benches.py`` does; the figures it writes then
mean nothing. :func:`assemble` joins the fragments into ``docs/benchmarks.md``.

Command line: ``python -m bioloop.sim.benches [--smoke] [--out DIR] [name ...]``
(``scripts/bench.py`` and ``make bench`` call it).
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path

from bioloop.sim.measure import DOCS_BENCH

__all__ = ["BENCHES", "DOCS_BENCH", "run", "assemble", "main"]

#: Every bench, in the order of docs/benchmarks.md.
BENCHES = ["aer_path", "stim", "core", "model", "verilator", "board", "area_timing", "board_host", "loop", "slow_loop",
           "burst_control",
           "driver", "observation", "bioware", "culture", "culture_bursts", "codec", "sweep", "formal"]


def run(names=None, out: Path = DOCS_BENCH, smoke: bool = False) -> list[Path]:
    """Run the named benches (all by default); return the fragments written."""
    names = list(names or BENCHES)
    unknown = sorted(set(names) - set(BENCHES))
    if unknown:
        raise ValueError(f"unknown bench {', '.join(unknown)}; known: {', '.join(BENCHES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        print(f"== bench {name}{' (smoke)' if smoke else ''}", flush=True)
        written.append(importlib.import_module(f"{__name__}.{name}").main(out=out, smoke=smoke))
    return written


def assemble(fragments: Path = DOCS_BENCH, page: Path | None = None) -> Path:
    """Join the fragments of ``fragments`` into ``docs/benchmarks.md`` (or ``page``)."""
    page = page or fragments.parent / "benchmarks.md"
    frags = {p.stem: p for p in fragments.glob("*.md")}
    names = [n for n in BENCHES if n in frags] + sorted(set(frags) - set(BENCHES))
    parts = ["# bioloop benchmarks\n",
             "Measured by `make bench` (`python -m bioloop.sim.benches` runs every bench module of "
             "`bioloop.sim.benches`, each writing its section to `docs/bench/`). Cycle counts are deterministic "
             "and also asserted in `make test`; wall-clock figures depend on the machine named in each section.\n"]
    # Fragments link their images relative to docs/bench/; the assembled page lives in docs/.
    parts += [re.sub(r"\]\((?!https?:|/)([^)]+\.png)\)", r"](bench/\1)", frags[n].read_text().strip()) + "\n"
              for n in names]
    page.write_text("\n".join(parts))
    return page


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bioloop.sim.benches", description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"benches to run (default: all): {' '.join(BENCHES)}")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, to check that the benches run")
    ap.add_argument("--out", type=Path, default=DOCS_BENCH, help="folder for the fragments")
    args = ap.parse_args(argv)
    try:
        run(args.names, args.out, args.smoke)
    except ValueError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    if not args.smoke and args.out == DOCS_BENCH:
        assemble(args.out)
    return 0
