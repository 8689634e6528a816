"""The sweep benchmark: a 16-run sweep (model backend, 2 s of loop each) on 1 and 2 workers.

Writes the fragment ``docs/bench/sweep.md``. Figures: the wall time of the
whole sweep (cluster start included), the sum of the runs' own wall times,
and the scheduling overhead per task, ``(workers x sweep wall - sum of run
walls) / runs``: time a worker slot spent on anything but running bioloop
(cluster start, task shipping, result gathering, idle at the tail).
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path

__all__ = ["SWEEP_16", "bench_sweep"]

#: 2 loop x 2 window x 4 seeds = 16 runs of 2 s of culture time each.
SWEEP_16 = """
[sweep]
name = "bench 16 runs"
backend = "model"
seeds = [1, 2, 3, 4]

[fixed.loop]
duration_s = 2.0

[grid.loop]
tau_homeo_ms = [1000.0, 3000.0]
window_ms = [50.0, 100.0]
"""


def bench_sweep(workers=(1, 2), text: str = SWEEP_16) -> list[dict]:
    """Run the sweep once per worker count in a fresh folder; return one row per count."""
    import pandas as pd

    from .execute import run_sweep
    from .plan import parse_sweep
    from .table import write_tables
    try:
        import tomllib
    except ImportError:                    # pragma: no cover - Python 3.10
        import tomli as tomllib
    sweep = parse_sweep(tomllib.loads(text), "bench")
    rows = []
    for n in workers:
        with tempfile.TemporaryDirectory() as tmp:
            load0 = os.getloadavg()[0]
            cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            outcome = run_sweep(sweep, Path(tmp), workers=n)
            wall = time.perf_counter() - t0
            cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            load1 = os.getloadavg()[0]
            if outcome.failed:
                raise RuntimeError(f"bench sweep failed: {outcome.failed}")
            write_tables(sweep, Path(tmp))
            timing = pd.read_csv(Path(tmp) / "timing.csv")
        run_walls = timing["wall_s"].to_numpy()
        rows.append({
            "workers": n, "runs": len(sweep.runs), "sweep_wall_s": wall,
            "run_wall_sum_s": float(run_walls.sum()),
            "run_wall_p50_s": float(pd.Series(run_walls).median()),
            "run_wall_min_s": float(run_walls.min()), "run_wall_max_s": float(run_walls.max()),
            "overhead_per_task_s": (n * wall - float(run_walls.sum())) / len(sweep.runs),
            "culture_s_per_wall_s": float(timing["culture_s"].sum()) / wall,
            # CPU seconds of the worker processes (reaped when the cluster closes): the cost
            # of the sweep whatever else runs on the machine
            "workers_cpu_s": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
            "load_avg": (load0, load1),
        })
    return rows


def fragment(rows: list[dict], machine: str) -> str:
    """The docs/bench/sweep.md fragment."""
    lines = [
        "## Sweeps (`bioloop sweep`, Dask LocalCluster)",
        "",
        f"{machine}. A 16-run sweep (model backend, 2 s of closed loop each after 0.2 s of",
        "calibration, default culture, 2 x 2 grid x 4 seeds), fresh output folder, embedded",
        "LocalCluster with single-threaded worker processes; the sweep wall time includes",
        "starting the cluster. Overhead per task = (workers x sweep wall - sum of run walls) / runs.",
        "Wall times grow with whatever else runs on the machine: the 1-minute load average at the",
        "start and end of each sweep is given, and the CPU seconds of the worker processes",
        "(user + system, all runs and the workers' start) are the figure that does not depend on it.",
        "",
        "| workers | sweep wall (s) | sum of run walls (s) | run wall p50 [min, max] (s) "
        "| overhead per task (s) | culture s per wall s | workers' CPU (s) | load average |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        load = r.get("load_avg", (float("nan"),) * 2)
        lines.append(f"| {r['workers']} | {r['sweep_wall_s']:.1f} | {r['run_wall_sum_s']:.1f} | "
                     f"{r['run_wall_p50_s']:.2f} [{r['run_wall_min_s']:.2f}, {r['run_wall_max_s']:.2f}] | "
                     f"{r['overhead_per_task_s']:.2f} | {r['culture_s_per_wall_s']:.2f} | "
                     f"{r.get('workers_cpu_s', float('nan')):.1f} | {load[0]:.1f} -> {load[1]:.1f} |")
    lines.append("")
    return "\n".join(lines)
