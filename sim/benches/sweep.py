"""Sweeps on Dask: a 16-run sweep on 1 and 2 workers -> docs/bench/sweep.md (logic: bioloop.host.sweep.bench)."""

from __future__ import annotations

from pathlib import Path

from bioloop.sim.measure import DOCS_BENCH, machine

#: smoke: 2 runs of 0.1 s on one worker
SWEEP_SMOKE = """
[sweep]
name = "bench smoke"
backend = "model"
seeds = [1, 2]

[fixed.loop]
duration_s = 0.1
"""


def main(out: Path = DOCS_BENCH, smoke: bool = False) -> Path:
    from bioloop.host.sweep.bench import bench_sweep, fragment
    rows = bench_sweep(workers=(1,), text=SWEEP_SMOKE) if smoke else bench_sweep()
    path = Path(out) / "sweep.md"
    path.write_text(fragment(rows, f"Machine: {machine()}"))
    return path
