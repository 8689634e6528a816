#!/usr/bin/env python3
"""Sweeps on Dask: a 16-run sweep on 1 and 2 workers -> docs/bench/sweep.md."""
from pathlib import Path

from bioloop.host.sweep.bench import bench_sweep, fragment
from bioloop.sim.measure import machine

ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    (ROOT / "docs" / "bench" / "sweep.md").write_text(fragment(bench_sweep(), f"Machine: {machine()}"))
