#!/usr/bin/env python3
"""make bench: run every scripts/bench_*.py, then assemble docs/benchmarks.md from docs/bench/*.md."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["aer_path", "stim", "core", "verilator", "board", "loop", "driver", "observation", "bioware", "culture", "codec",
         "sweep"]


def main(argv):
    only = set(argv)
    for script in sorted((ROOT / "scripts").glob("bench_*.py")):
        if only and script.stem.removeprefix("bench_") not in only:
            continue
        print(f"== {script.name}", flush=True)
        subprocess.run([sys.executable, str(script)], check=True, cwd=ROOT)
    assemble()


def assemble():
    frags = {p.stem: p for p in (ROOT / "docs" / "bench").glob("*.md")}
    names = [n for n in ORDER if n in frags] + sorted(set(frags) - set(ORDER))
    parts = ["# bioloop benchmarks\n",
             "Measured by `make bench` (`scripts/bench.py` runs every `scripts/bench_*.py`, each writing its "
             "section to `docs/bench/`). Cycle counts are deterministic and also asserted in `make test`; "
             "wall-clock figures depend on the machine named in each section.\n"]
    # Fragments link their images relative to docs/bench/; the assembled page lives in docs/.
    parts += [re.sub(r"\]\((?!https?:|/)([^)]+\.png)\)", r"](bench/\1)", frags[n].read_text().strip()) + "\n"
              for n in names]
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(parts))


if __name__ == "__main__":
    main(sys.argv[1:])
