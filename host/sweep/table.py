"""A sweep's results as one table, and its standard figures.

:func:`gather` reads the run directories (not Dask futures), so the table
can be rebuilt from disk at any time. One row per run of the plan, in plan
order: the run's index, id and status, every setting (``seed``,
``backend``, ``experiment``, ``loop.*``, ``culture.*``, ``policy.*``,
``core.*``) and every measured figure. The table depends only on the sweep
file, never on how many workers ran it or in which order they finished:
wall-clock figures (run time, culture seconds per wall second) go to a
separate ``timing.csv``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from bioloop.host.output_files import replacing

from .plan import Sweep
from .rundir import RunDirError, read_summary, run_dir, verify_run_dir

__all__ = ["gather", "write_tables", "report", "RESULTS"]

RESULTS = "results"


def _settings_columns(run) -> dict:
    row = {"seed": run.seed, "backend": run.backend, "experiment": run.experiment}
    row.update({f"loop.{k}": v for k, v in run.loop.items()})
    row.update({f"culture.{k}": v for k, v in run.culture.items()})
    row.update({f"policy.{k}": v for k, v in run.policy.items()})
    row.update({f"core.{k}": v for k, v in run.core.items()})
    return row


def gather(sweep: Sweep, out):
    """Build the results table (a pandas DataFrame) and the timing table from ``out``."""
    import pandas as pd
    out = Path(out)
    rows, timing = [], []
    figure_keys: list[str] = []
    for run in sweep.runs:
        row = {"index": run.index, "run_id": run.run_id}
        path = run_dir(out, run)
        failed = out / "failed" / f"{run.run_id}.json"
        try:
            verify_run_dir(path, run)
            figures = read_summary(path)["figures"]
            row["status"], row["error"] = "done", ""
            t = json.loads((path / "timing.json").read_text())
            loop_timing = t.pop("slow_loop", None) or {}
            timing.append({"index": run.index, "run_id": run.run_id, **t,
                           **{f"slow_loop.{k}": v for k, v in loop_timing.items()
                              if not isinstance(v, (dict, list))}})
        except RunDirError:
            figures = {}
            if failed.exists():
                row["status"], row["error"] = "failed", json.loads(failed.read_text())["error"]
            else:
                row["status"], row["error"] = "missing", ""
        row.update(_settings_columns(run))
        for k in figures:
            if k not in figure_keys:
                figure_keys.append(k)
        row.update({k: (math.nan if v is None else v) for k, v in figures.items()})
        rows.append(row)
    table = pd.DataFrame(rows)
    for k in figure_keys:                  # runs without figures get NaN in every figure column
        if k not in table:
            table[k] = math.nan
    return table, pd.DataFrame(timing)


def _atomic(path: Path, write) -> None:
    with replacing(path, overwrite=True) as tmp:
        write(tmp)


def write_tables(sweep: Sweep, out) -> dict:
    """Write ``results.parquet``, ``results.csv`` and ``timing.csv``; return their paths."""
    out = Path(out)
    table, timing = gather(sweep, out)
    paths = {"parquet": out / f"{RESULTS}.parquet", "csv": out / f"{RESULTS}.csv",
             "timing": out / "timing.csv"}
    _atomic(paths["parquet"], lambda p: table.to_parquet(p, index=False, engine="pyarrow"))
    _atomic(paths["csv"], lambda p: table.to_csv(p, index=False, float_format="%.10g"))
    _atomic(paths["timing"], lambda p: timing.to_csv(p, index=False, float_format="%.6g"))
    return paths


def _numeric_varied(table, sweep: Sweep) -> list[str]:
    keys = []
    for k in sweep.table_columns():
        col = {"seed": "seed"}.get(k, k)
        if k == "seed" or col not in table:
            continue
        if table[col].nunique() > 1 and np.issubdtype(table[col].dtype, np.number):
            keys.append(col)
    return keys


def report(sweep: Sweep, out, metric: str = "abs_rate_error_hz") -> list[Path]:
    """Draw the standard figures into ``<out>/figures``; return the files written.

    - ``heatmap.png``: ``metric`` averaged over seeds on the first two varied
      settings (with one varied setting, a line over it; with none, skipped);
    - ``seeds.png``: every run's ``metric`` per grid point, one dot per seed,
      with the seed mean and min-max spread;
    - ``theta.png`` and ``bursts.png``: θ at the end and bursts per minute,
      per grid point, with the per-seed spread.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    out = Path(out)
    table = pd.read_parquet(out / f"{RESULTS}.parquet")
    done = table[table["status"] == "done"]
    if done.empty:
        raise ValueError(f"{out}: no completed runs to report on")
    folder = out / "figures"
    folder.mkdir(exist_ok=True)
    written = []
    keys = _numeric_varied(done, sweep)
    if len(keys) >= 2:
        piv = done.groupby([keys[0], keys[1]])[metric].mean().unstack(keys[1])
        fig, ax = plt.subplots(figsize=(6, 4.5))
        im = ax.imshow(piv.values, origin="lower", aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(piv.columns)), [f"{v:g}" for v in piv.columns])
        ax.set_yticks(range(len(piv.index)), [f"{v:g}" for v in piv.index])
        ax.set_xlabel(keys[1])
        ax.set_ylabel(keys[0])
        for (i, j), v in np.ndenumerate(piv.values):
            ax.text(j, i, f"{v:.3g}", ha="center", va="center", color="w", fontsize=8)
        fig.colorbar(im, ax=ax, label=f"{metric} (mean over seeds)")
        ax.set_title(f"{sweep.name}: {metric}")
        written.append(_save(fig, folder / "heatmap.png"))
    elif len(keys) == 1:
        g = done.groupby(keys[0])[metric]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(g.mean().index, g.mean().values, "o-", label="mean over seeds")
        ax.fill_between(g.min().index, g.min().values, g.max().values, alpha=0.25, label="min-max")
        ax.set_xlabel(keys[0])
        ax.set_ylabel(metric)
        ax.legend(loc="best", fontsize=8)
        written.append(_save(fig, folder / "heatmap.png"))
    point = done[keys].astype(str).agg(", ".join, axis=1) if keys else pd.Series("all runs", done.index)
    for name, col, label in (("seeds.png", metric, metric),
                             ("theta.png", "theta_last_q88", "θ at the end (Q8.8)"),
                             ("bursts.png", "bursts_per_min", "network bursts per minute")):
        if col not in done:
            continue
        labels = list(dict.fromkeys(point))
        fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(labels) + 2), 4))
        for i, lab in enumerate(labels):
            v = done.loc[point == lab, col].to_numpy(float)
            ax.plot(np.full(v.size, i), v, "o", color="C0", alpha=0.7)
            if v.size:
                ax.plot([i - 0.25, i + 0.25], [np.nanmean(v)] * 2, "-", color="C3")
                ax.plot([i, i], [np.nanmin(v), np.nanmax(v)], "-", color="C3", alpha=0.5)
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=7)
        ax.set_ylabel(label)
        ax.set_xlabel(", ".join(keys) if keys else "")
        ax.set_title(f"{label}: one dot per seed, bar = mean, line = min-max")
        written.append(_save(fig, folder / name))
    return written


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt
    fig.tight_layout()
    with replacing(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
