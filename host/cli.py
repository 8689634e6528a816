"""The ``bioloop`` command: ``bioloop demo`` (the closed loop) and ``bioloop codec``."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import click
import numpy as np

from bioloop.host.exit_codes import OneLineGroup, RuntimeFailure, UsageFailure
from bioloop.host.output_files import OutputError, check_run_folder, run_folder

__all__ = ["main"]

CORE = {"n_channels": 64, "n_lanes": 64, "fanout": 16}
SEED_MAX = 2**63 - 1


def closed_loop(driver, bus, seed: int, settings, progress=None, policies=None, recording=None):
    """One closed-loop run on the default culture; returns (LoopResult, receipt dict).

    ``policies``: the slow loop's policies (default: homeostasis, observing).
    ``recording``: a path; the session's samples are written there as a codec
    stream, block by block (:class:`bioloop.host.loop.CodecRecorder`).
    """
    from bioloop.host.culture import Culture, CultureConfig, RunReceipt
    from bioloop.host.loop import CodecRecorder, run_loop
    culture = Culture(CultureConfig(seed=seed))
    if recording is None:
        result = run_loop(driver, culture, settings, policies=policies, progress=progress)
    else:
        with open(recording, "wb") as f:
            rec = CodecRecorder(f, culture.n_channels, culture.sample_rate_hz, culture.config.uv_per_code,
                                positions_um=culture.electrode_positions_um, path=recording)
            result = run_loop(driver, culture, settings, policies=policies, progress=progress, recorder=rec)
    return result, RunReceipt.from_culture(culture).to_dict()


def _run_model(seed, settings, progress, phase=None, verbose=False, policies=None, recording=None):
    from bioloop.host.backends import ModelBus
    from bioloop.host.driver import Driver
    bus = ModelBus(**CORE)
    return closed_loop(Driver(bus), bus, seed, settings, progress, policies, recording)


def _run_verilator(seed, settings, progress, phase=None, verbose=False, policies=None, recording=None):
    """The loop in this process on the compiled RTL; ``phase`` sees "build" (only when the
    library is not cached yet) and "simulate"."""
    from bioloop.host.driver import Driver
    from bioloop.sim.verilated_core import BuildError, build_core_library
    from bioloop.sim.verilator_bus import VerilatorBus
    try:
        lib = build_core_library(**CORE, on_build=(lambda: phase("build")) if phase is not None else None)
    except BuildError as exc:
        raise RuntimeFailure(str(exc)) from None
    if phase is not None:
        phase("simulate")
    bus = VerilatorBus(**CORE, library=lib)
    return closed_loop(Driver(bus), bus, seed, settings, progress, policies, recording)


def _sha256(path) -> str:
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _run_cocotb(seed, settings, progress, phase=None, verbose=False, policies=None, recording=None):
    """The loop inside the simulator; its logs go to files in sim_build/ unless ``verbose``.

    ``progress`` cannot cross into the simulator process; ``phase`` sees "build" and "simulate".
    """
    import warnings

    with warnings.catch_warnings():
        if not verbose:                    # dependencies' DeprecationWarnings are not the user's business
            warnings.simplefilter("ignore", DeprecationWarning)
        from bioloop.sim.hil import HILError, run_with_cocotb     # importing cocotb warns too
        from bioloop.sim.runner import BuildError
        try:
            return run_with_cocotb(closed_loop, seed, settings, None, policies, recording, quiet=not verbose,
                                   on_phase=phase, **CORE)
        except (HILError, BuildError, AssertionError) as exc:   # the simulator failed, not the loop
            raise RuntimeFailure(f"the cocotb simulation failed: {str(exc).splitlines()[0]}") from None


RUNNERS = {"model": _run_model, "verilator": _run_verilator, "cocotb": _run_cocotb}


@click.group(cls=OneLineGroup)
@click.version_option(package_name="bioloop")
def main():
    """bioloop: closed-loop neuroscience on an FPGA, verified against bit-exact models."""


@main.command()
@click.option("--experiment", type=click.Choice(["homeostasis", "burst-control", "plasticity"]),
              default="homeostasis", show_default=True,
              help="homeostasis: the rate held at --target-rate; burst-control: distributed stimulation "
                   "against network bursts; plasticity: route weights under STDP. docs/loop.md.")
@click.option("--backend", type=click.Choice(list(RUNNERS)), default="model", show_default=True,
              help="model: the Python transaction model of Core; verilator: the RTL compiled in-process "
                   "(built once, cached); cocotb: the RTL under cocotb (slow).")
@click.option("--duration", type=click.FloatRange(min=0.05), default=10.0, show_default=True,
              help="Culture seconds of closed loop (after 0.2 s of calibration).")
@click.option("--seed", type=click.IntRange(0, SEED_MAX), default=1, show_default=True,
              help="Seed of the in-silico culture (0..2^63-1); the same seed gives the same run.")
@click.option("--target-rate", type=click.FloatRange(min=0.1), default=300.0, show_default=True,
              help="Homeostatic set point, detections per second per channel.")
@click.option("--compare/--no-compare", default=True, show_default=True,
              help="Also run the experiment's reference (controller off, no stimulation, fixed weights).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory (default runs/demo-<backend>-seed<seed>).")
@click.option("--force", is_flag=True, help="Replace an earlier run directory as a whole.")
@click.option("-v", "--verbose", is_flag=True,
              help="Show the simulator's build and run logs (cocotb backend); by default they go to "
                   "files in sim_build/ and only a progress display is shown.")
def demo(experiment, backend, duration, seed, target_rate, compare, out, force, verbose):
    """Close the loop on the in-silico culture and write a run directory."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)
    from rich.table import Table

    from bioloop.host import figures
    from bioloop.host.experiments import experiment as get_experiment
    from bioloop.host.loop import LoopSettings

    console = Console()
    from bioloop.host.culture import CultureConfig
    try:                                   # checked before anything is written or simulated
        exp = get_experiment(experiment)
        settings = exp.settings(LoopSettings(duration_s=duration, target_rate_hz=target_rate))
        settings.check_registers(CultureConfig(seed=seed).sample_rate_hz)
    except ValueError as exc:
        msg = str(exc).replace("target_rate_hz", "--target-rate").replace("duration_s", "--duration")
        raise UsageFailure(msg) from None
    if out is None:                        # the default place: runs/ is created, a given --out's folder is not
        out = Path("runs") / (f"demo-{backend}-seed{seed}" if experiment == "homeostasis"
                              else f"demo-{experiment}-{backend}-seed{seed}")
        out.parent.mkdir(exist_ok=True)
    try:                                   # a run directory is new, or replaced as a whole with --force
        check_run_folder(out, overwrite=force)
    except OutputError as exc:
        raise UsageFailure(str(exc)) from None
    runs = [("on", settings, exp.policies())] + ([("off", exp.reference(settings), [])] if compare else [])
    labels = {"on": exp.on_label, "off": exp.off_label}
    run_fn = RUNNERS[backend]
    results = {}
    import tempfile
    scratch = Path(tempfile.mkdtemp(prefix="bioloop-demo-", dir=out.parent if out.parent.exists() else None))
    recording = scratch / "recording.blsc"
    phases = {"build": "building Core with Verilator (cached after the first run)", "simulate": "simulating"}
    try:                                   # the scratch folder goes, whatever happens
        status = Console(stderr=True)          # progress on stderr, only on a terminal: stdout holds the results
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("blocks"), TimeElapsedColumn(), TimeRemainingColumn(), console=status,
                      disable=not status.is_terminal) as bar:
            for name, s, policies in runs:
                label = f"{labels[name]} ({backend})"
                task = bar.add_task(label, total=None)
                t0 = time.perf_counter()
                result, receipt = run_fn(seed, s, lambda d, n, t=task: bar.update(t, completed=d, total=n),
                                         phase=lambda p, t=task: bar.update(t, description=f"{label}: {phases[p]}"),
                                         verbose=verbose, policies=policies,
                                         recording=str(recording) if name == "on" else None)
                bar.update(task, description=label)
                bar.update(task, completed=len(result.t_s), total=len(result.t_s))
                results[name] = (result, receipt, time.perf_counter() - t0)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise

    on, receipt, wall_on = results["on"]
    off = results.get("off", (None, None, None))[0]
    summary = {"experiment": experiment, "backend": backend, "seed": seed, "duration_s": duration,
               "culture_s_per_wall_s": {k: v[0].t_s[-1] / v[2] if v[2] else None for k, v in results.items()},
               "homeostasis_on": on.summary()}
    if off is not None:
        summary["homeostasis_off"] = off.summary()
        summary["comparison"] = {
            "target_rate_hz": settings.target_rate_hz,
            "error_on_hz": abs(on.controlled_rate() - settings.target_rate_hz),
            "error_off_hz": abs(off.controlled_rate() - settings.target_rate_hz),
            "bursts_per_minute_on": on.bursts_per_minute(),
            "bursts_per_minute_off": off.bursts_per_minute(),
        }
    summary["timing"] = {k: v[0].timing() for k, v in results.items()}
    if experiment == "homeostasis":
        summary["hold"] = on.hold(settle_s=duration / 3)
    from bioloop.host.culture import RunReceipt
    try:
        # Everything is written into a staging folder beside --out that replaces it only when complete.
        with run_folder(out, overwrite=force) as stage:
            np.save(stage / "aer.npy", on.words)
            if off is not None:
                np.save(stage / "aer_homeostasis_off.npy", off.words)
            (stage / "audit.json").write_text(on.audit.to_json() + "\n")
            os.replace(recording, stage / "recording.blsc")
            artifacts = {"audit_head": on.audit.head, "audit_entries": len(on.audit),
                         "recording_sha256": on.recording.sha256, "aer_sha256": _sha256(stage / "aer.npy"),
                         "experiment": experiment, "policies": [p.name for p in on.policies]}
            RunReceipt(**{k: receipt[k] for k in ("config", "config_hash", "seed", "version", "summary")},
                       artifacts=artifacts).save(stage / "receipt.json")
            (stage / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True, default=float) + "\n")
            figures.write_all(on, stage, reference=off)
            if experiment == "burst-control":
                figures.bursts(on, stage / "bursts.png", reference=off)
            if experiment == "plasticity":
                figures.weights(on, stage / "weights.png")
            written = sorted(p.name for p in stage.iterdir())
    except OutputError as exc:
        raise UsageFailure(str(exc)) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    table = Table(title=f"bioloop demo: {backend} backend, --experiment {experiment}, seed {seed}, "
                        f"{duration:g} s culture time")
    table.add_column("measured")
    table.add_column(exp.on_label, justify="right")
    if off is not None:
        table.add_column(exp.off_label, justify="right")
    s_on, s_off = on.summary(), off.summary() if off is not None else None

    summaries = [s_on] + ([s_off] if s_off is not None else [])

    def row(label, cell):
        table.add_row(label, *[cell(s) for s in summaries])

    def latency_cell(s):
        lat = s["latency_probe_cycles"]
        if not lat["n"]:
            return "none (no pulse)" if s["stims_total"] == 0 else "none"
        return f'{lat["p50"]:.0f} / {lat["p99"]:.0f} / {lat["max"]}'

    # The experiment's own target (burst-control holds its tonic rate, not --target-rate).
    row("target rate (Hz per channel)", lambda s: f'{s["target_rate_hz"]:.2f}')
    row("rate, first third (Hz)", lambda s: f'{s["rate_first_third_hz"]:.2f}')
    row("rate, last third (Hz)", lambda s: f'{s["rate_last_third_hz"]:.2f}')
    row("|rate - target|, last third (Hz)", lambda s: f'{s["abs_error_last_third_hz"]:.2f}')
    # θ in the unit control.png plots it in: the value of the Q8.8 code (code / 256)
    row("mean θ at the end (Q8.8 value, code / 256)", lambda s: f'{s["theta_mean_last_q88"] / figures.Q88:.2f}')
    row("stimulation pulses", lambda s: f'{s["stims_total"]:d}')
    row("mean LED duty", lambda s: f'{s["led_duty_mean"]:.3f}')
    row("AER words", lambda s: f'{s["aer_words"]:d}')
    row("loop latency probe p50 / p99 / max (cycles)", latency_cell)
    row("network bursts per minute", lambda s: f'{s["bursts_per_minute"]:.1f}')
    timings = [on.timing()] + ([off.timing()] if off is not None else [])
    table.add_row("slow loop: host step p50 / p99 (ms)",
                  *[f'{t["step_ms_p50"]:.2f} / {t["step_ms_p99"]:.2f}' for t in timings])
    table.add_row("slow loop: overruns / writes",
                  *[f'{t["overruns"]} / {s["slow_loop"]["writes"]}' for t, s in zip(timings, summaries, strict=False)])
    console.print(table)
    for r in on.policies:
        if r.stopped:
            console.print(f"[red]policy {r.name} stopped at {r.stopped_at_s:.2f} s: {r.stopped}[/red]")
    if "hold" in summary:
        h = summary["hold"]
        console.print(f"rate held: {100 * h['within']:.0f} % of the 1 s windows after {h['settle_s']:.1f} s within "
                      f"±{100 * h['tolerance']:.0f} % of {h['target_rate_hz']:g} Hz (worst {100 * h['worst_error']:.0f} %), "
                      f"light intensity drift over the last third {100 * h['density_drift_last_third']:+.1f} %, "
                      f"θ drift {100 * h['theta_drift_last_third']:+.1f} %"
                      if h["within"] is not None else "rate held: run too short for a 1 s window after settling")
    rec = on.recording
    console.print(f"recording: recording.blsc, {rec.n_bytes} bytes for {rec.n_samples} x {rec.n_channels} samples "
                  f"({rec.ratio:.0f}x), sha256 {rec.sha256[:16]}..., encoding {rec.encode_s:.2f} s; "
                  f"audit head {on.audit.head[:16]}...")
    for k, v in summary["culture_s_per_wall_s"].items():
        console.print(f"simulation speed, {labels[k]}: {v:.3g} culture s per wall s")
    console.print(f"run directory: {out}")
    console.print("files: " + ", ".join(written))


def _mount_codec():
    try:
        from bioloop.host.codec.cli import codec_cli
    except ImportError:  # pragma: no cover - the codec ships with the package
        return
    main.add_command(codec_cli, "codec")


def _mount_build():
    from bioloop.boards.cli import board_cli, build_cli
    main.add_command(build_cli, "build")
    main.add_command(board_cli, "board")


_mount_codec()
_mount_build()


def _mount_sweep():
    try:
        from bioloop.host.sweep.cli import sweep_cli
    except ImportError:  # pragma: no cover - click itself is missing
        return
    main.add_command(sweep_cli, "sweep")


_mount_sweep()

if __name__ == "__main__":
    main()
