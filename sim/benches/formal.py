"""Formal proofs: wall time of every proof of bioloop.sim.proofs.CATALOGUE and of its mutant -> docs/bench/formal.md."""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

from bioloop.sim.measure import DOCS_BENCH, machine, markdown_table

REPEATS = 3


def _fmt(times):
    if len(times) == 1:
        return f"{times[0]:.1f}"
    return f"{statistics.median(times):.1f} ({min(times):.1f}-{max(times):.1f})"


def main(out: Path = DOCS_BENCH, smoke: bool = False) -> Path:
    from bioloop.sim.proofs import CATALOGUE
    from bioloop.sim.formal import tools_available
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "formal.md"
    if tools_available():
        path.write_text("## Formal proofs (bioloop.sim.proofs.CATALOGUE)\n\nNot measured: "
                        f"{', '.join(tools_available())} missing (pip install 'bioloop[formal]').\n\n"
                        "See docs/verification.md.\n")
        return path
    proofs = CATALOGUE[:1 if smoke else None]
    repeats = 1 if smoke else REPEATS
    rows = []
    load_before = os.getloadavg()[0]
    small_cpu = 0.0
    with tempfile.TemporaryDirectory(prefix="bioloop-formal-") as tmp:
        for p in proofs:
            times, cpus, mutant_times, status, mutant_status = [], [], [], set(), set()
            for i in range(repeats if p.size == "small" else 1):      # larger sizes once (minutes)
                r = p.run(tmp, name=f"{p.name}_{i}")
                times.append(r.seconds)
                cpus.append(r.cpu_seconds)
                status.add(r.status)
                if p.size == "small":
                    r = p.run(tmp, mutant=True, name=f"{p.name}_mutant_{i}")
                    mutant_times.append(r.seconds)
                    mutant_status.add(r.status)
                    if i == 0:
                        small_cpu += r.cpu_seconds
            if p.size == "small":
                small_cpu += cpus[0]
            params = ", ".join(f"{k}={v}" for k, v in p.params.items())
            engine = f"k-induction, k = {p.depth}" if p.mode == "prove" else f"BMC, bounded to {p.depth} cycles"
            rows.append([p.block, p.prop, p.size, params, engine, "/".join(sorted(status)), _fmt(times), _fmt(cpus),
                         "/".join(sorted(mutant_status)) or "-", _fmt(mutant_times) if mutant_times else "-"])
    load_after = os.getloadavg()[0]
    text = "\n".join([
        "## Formal proofs (bioloop.sim.proofs.CATALOGUE)",
        "",
        f"Machine: {machine()}. Regenerate with `python -m bioloop.sim.benches formal` (part of `make bench`). "
        "SymbiYosys (yowasp-sby) with smtbmc and Yices 2; wall time in seconds of one proof run "
        f"(export to RTLIL, Yosys prep, base case and induction), median (min-max) of {repeats} runs at the small "
        "sizes, one run at the larger ones (mutants at the small sizes only). 'pass' is "
        "a completed k-induction proof, or for BMC no counterexample up to the bound; the mutant (one cycle "
        "or one count looser) must 'fail'. The machine is shared, so the spread reflects its load. "
        "What the properties say: docs/verification.md. CPU seconds are user + system time of the proof's "
        "processes (SymbiYosys, Yosys, Yices), less sensitive to the load than the wall time. "
        f"Load average (1 min) {load_before:.1f} before the runs, {load_after:.1f} after. "
        f"The small proofs and their mutants (what `make test` runs), one run each: {small_cpu:.0f} CPU seconds. "
        "What the default sizes prove and what they only bound: docs/verification.md.",
        "",
        markdown_table(["block", "property", "size", "parameters", "engine", "result", "seconds", "CPU seconds",
                        "mutant", "mutant seconds"], rows),
    ])
    path.write_text(text)
    return path
