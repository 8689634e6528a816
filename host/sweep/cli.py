"""``bioloop sweep plan | run | report``: closed-loop studies on Dask."""

from __future__ import annotations

from pathlib import Path

import click

from bioloop.host.exit_codes import RuntimeFailure, UsageFailure

__all__ = ["sweep_cli"]


def _load(path):
    from .plan import SweepError, load_sweep
    try:
        return load_sweep(path)
    except SweepError as exc:
        raise UsageFailure(str(exc)) from None


@click.group("sweep")
def sweep_cli():
    """Run many closed-loop runs (a grid of settings and seeds) on Dask.

    A sweep file (TOML, see docs/sweep.md) names the fixed settings, the varied
    ones and the seeds; every run writes its own directory named by a hash of
    its settings, and a rerun skips the runs already complete.
    """


@sweep_cli.command("plan")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def plan_cmd(file):
    """Print the runs FILE expands to (index, run id, varied settings)."""
    sweep = _load(file)
    keys = sweep.table_columns()
    click.echo(f"{sweep.name}: {len(sweep.runs)} runs on the {sweep.runs[0].backend} backend, "
               f"experiment {sweep.runs[0].experiment}")
    click.echo("\t".join(["index", "run_id", *keys]))
    for run in sweep.runs:
        click.echo("\t".join([str(run.index), run.run_id, *(repr(run.varied.get(k)) for k in keys)]))


@sweep_cli.command("run")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Sweep directory: runs/<run_id>/, failed/, results.parquet, results.csv, timing.csv.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Submit to an existing Dask scheduler (tcp://host:8786) instead of a local cluster.")
@click.option("--workers", type=click.IntRange(min=1, max=512), default=None,
              help="Worker processes of the embedded LocalCluster (default: one per CPU).")
def run_cmd(file, out, scheduler, workers):
    """Run every run of FILE not already complete under --out, then write the tables."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .execute import run_sweep
    from .table import write_tables
    sweep = _load(file)
    if scheduler and workers:
        raise UsageFailure("--workers sizes the embedded cluster; it cannot be used with --scheduler")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageFailure(f"cannot write to --out {out}: {exc.strerror or exc}") from None
    copy = out / "sweep.toml"
    source = file.read_bytes()
    if copy.exists() and copy.read_bytes() != source:
        raise UsageFailure(f"{out} holds another sweep ({copy} differs from {file}); "
                               "choose another --out")
    if not copy.exists():
        from bioloop.host.output_files import replacing
        with replacing(copy) as tmp:
            tmp.write_bytes(source)
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]sweep"), BarColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task("starting", total=len(sweep.runs))

        def progress(done, running, failed, total, eta):
            eta_s = "?" if eta is None else f"{eta:.0f} s"
            bar.update(task, completed=done + failed,
                       description=f"{done}/{total} done, {running} running, {failed} failed, "
                                   f"about {eta_s} left")
        try:
            outcome = run_sweep(sweep, out, scheduler=scheduler, workers=workers, progress=progress)
        except OSError as exc:
            raise RuntimeFailure(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None
    paths = write_tables(sweep, out)
    click.echo(f"{len(outcome.done)} run, {len(outcome.skipped)} already complete, "
               f"{len(outcome.failed)} failed, in {outcome.wall_s:.1f} s")
    for run_id, err in outcome.failed.items():
        click.echo(f"failed {run_id}: {err}")
    click.echo(f"tables: {paths['parquet']}, {paths['csv']}, {paths['timing']}")
    if outcome.failed:
        raise SystemExit(1)


@sweep_cli.command("report")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The sweep file (default: the copy in DIRECTORY/sweep.toml).")
@click.option("--metric", default="abs_rate_error_hz", show_default=True,
              help="Results column shown in the heatmap and the per-seed plot.")
def report_cmd(directory, file, metric):
    """Draw the standard figures of a finished sweep into DIRECTORY/figures."""
    from .table import RESULTS, report, write_tables
    sweep = _load(file or directory / "sweep.toml")
    write_tables(sweep, directory)
    import pandas as pd
    cols = pd.read_parquet(directory / f"{RESULTS}.parquet").columns
    if metric not in cols:
        raise UsageFailure(f"--metric {metric!r} is not a results column; columns: "
                               f"{', '.join(c for c in cols if not c.startswith(('loop.', 'culture.')))}")
    try:
        paths = report(sweep, directory, metric=metric)
    except ValueError as exc:
        raise RuntimeFailure(str(exc)) from None
    click.echo("figures: " + ", ".join(str(p) for p in paths))
