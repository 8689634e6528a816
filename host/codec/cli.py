"""Command line: ``bioloop codec encode|decode|eval`` (also ``python -m bioloop.host.codec``)."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from bioloop.host.exit_codes import OneLineGroup, RuntimeFailure, UsageFailure
from bioloop.host.output_files import OutputError, check_destination, replacing

from .format import CodecParams

__all__ = ["codec_cli", "main"]

_DEFAULTS = CodecParams()
SEED_MAX = 2**63 - 1


def _finite(ctx, param, value):
    """click.FloatRange lets NaN through (every comparison with NaN is false)."""
    if value is not None and value != value:
        raise click.BadParameter("must be a number, not nan", ctx, param)
    return value


def _check_output(output: Path, force: bool, inputs) -> None:
    """Refuse OUTPUT before any work: an input (also through a link), an existing file without --force,
    a missing or unwritable folder. Usage errors: exit 2."""
    try:
        check_destination(output, overwrite=force, inputs=inputs, what="OUTPUT")
    except OutputError as exc:
        raise UsageFailure(str(exc)) from None


def _params(**kw) -> CodecParams:
    try:
        return CodecParams(**kw)
    except ValueError as e:
        raise UsageFailure(str(e)) from None


def _param_options(f):
    d = _DEFAULTS
    for opt in reversed([
        click.option("--threshold-k", type=float, default=d.threshold_k, show_default=True,
                     help="Detection threshold in noise sigmas (MAD)."),
        click.option("--pre-ms", type=float, default=d.pre_ms, show_default=True, callback=_finite,
                     help="Snippet span before the event, ms."),
        click.option("--post-ms", type=float, default=d.post_ms, show_default=True, callback=_finite,
                     help="Snippet span from the event on, ms."),
        click.option("--bits", type=int, default=d.bits, show_default=True, help="Bits per snippet sample (2..8)."),
        click.option("--refractory-ms", type=float, default=d.refractory_ms, show_default=True, callback=_finite,
                     help="Time between detections on a channel, ms."),
        click.option("--polarity", type=click.Choice(["neg", "pos", "both"]), default=d.polarity, show_default=True),
        click.option("--block-ms", type=float, default=d.block_ms, show_default=True, callback=_finite,
                     help="Time per block, ms."),
        click.option("--spatial-radius-um", type=float, default=d.spatial_radius_um, show_default=True,
                     help="Keep one event per spike within this radius (needs channel positions: --positions, "
                          "or the probe of a SpikeInterface folder or NWB file); 0 keeps all."),
        click.option("--spatial-window-ms", type=float, default=d.spatial_window_ms, show_default=True,
                     callback=_finite, help="Time half-width of the spatial rule, ms."),
    ]):
        f = opt(f)
    return f


def _progress():
    """A transient progress bar on stderr, only on a terminal: piped output starts with the result."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
    console = Console(stderr=True)
    return Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), transient=True, console=console, disable=not console.is_terminal)


def _open_source(path: Path, rate, uv_per_code, series):
    """The encoder's source for INPUT; ValueError saying what INPUT is and what was expected."""
    from . import sources
    if path.suffix == ".npy" and not path.is_dir():
        if rate is None:
            raise UsageFailure("a .npy input needs --rate (samples per second)")
        x = sources.load_npy(path, "INPUT")
        if x.size == 0:
            raise ValueError(f"INPUT {path} holds no samples (shape {x.shape}); expected at least one sample "
                             "of at least one channel")
        return sources.numpy_source(x, rate, uv_per_code if x.dtype == np.int16 else 1.0)
    if path.suffix == ".nwb" and not path.is_dir():
        try:
            return sources.nwb_source(path, series)
        except OSError as exc:       # h5py: not an HDF5 file, truncated, unreadable
            raise ValueError(f"INPUT {path} is not a readable NWB (HDF5) file ({exc}); expected an NWB file "
                             "with an ElectricalSeries") from None
    if path.is_dir():
        if not (path / "si_folder.json").is_file():
            raise ValueError(f"INPUT {path} is a folder but not a saved SpikeInterface recording (no si_folder.json); "
                             "expected a folder written by recording.save(folder=...)")
        import spikeinterface.core as sc
        try:
            rec = sc.load(path)
        except Exception as exc:     # SpikeInterface raises many kinds; say which folder and why
            raise ValueError(f"INPUT {path}: SpikeInterface could not load this folder "
                             f"({type(exc).__name__}: {exc})") from None
        if not hasattr(rec, "get_traces"):
            raise ValueError(f"INPUT {path} is a saved SpikeInterface {type(rec).__name__}, not a recording")
        return sources.recording_source(rec)
    raise UsageFailure(f"unknown input {path}: use .npy, .nwb or a saved SpikeInterface folder")


@click.group("codec", cls=OneLineGroup)
def codec_cli():
    """Lossy spike-event codec: encode, decode and evaluate."""


@codec_cli.command()
@click.argument("input", type=click.Path(exists=True, path_type=Path))
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--rate", type=click.FloatRange(0, 1e9, min_open=True), callback=_finite,
              help="Sample rate in Hz (.npy input).")
@click.option("--uv-per-code", type=click.FloatRange(0, 1e6, min_open=True), default=0.195, show_default=True,
              callback=_finite, help="µV per code of int16 .npy input (Intan RHD 0.195).")
@click.option("--series", help="Name of the NWB ElectricalSeries.")
@click.option("--positions", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Channel positions in µm for the spatial rule: a .npy (n_channels, 2) array or a "
                   "probeinterface .json file (overrides the input's own probe).")
@click.option("--aer", type=click.Path(exists=True, path_type=Path),
              help="uint64 .npy of gateware AER words; their SPIKE words replace the codec's detector.")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@_param_options
def encode(input, output, rate, uv_per_code, series, positions, aer, force, **kw):
    """Encode INPUT (.npy, .nwb or a SpikeInterface folder) into OUTPUT."""
    from .format import CodecError
    from .sources import aer_detections, encode_source, load_npy, load_positions
    _check_output(output, force, [input, aer, positions])
    params = _params(**kw)                 # every option checked before anything is written
    try:
        src = _open_source(input, rate, uv_per_code, series)
        if positions is not None:
            src.positions_um = load_positions(positions, src.n_channels)
        det = aer_detections(load_npy(aer, "--aer", "(n_words,) uint64 AER", ndim=1, kinds="u")) if aer else None
        # Written beside OUTPUT and renamed at the end: a failed encode leaves no partial file.
        with replacing(output, overwrite=force, inputs=[input, aer, positions], what="OUTPUT") as tmp:
            with _progress() as prog, open(tmp, "wb") as f:
                task = prog.add_task("encoding", total=src.n_samples)
                _, enc = encode_source(src, params, out=f, progress=lambda n: prog.advance(task, n),
                                       detections=det)
    except OutputError as exc:
        raise UsageFailure(str(exc)) from None
    except (ValueError, TypeError, CodecError) as exc:
        raise RuntimeFailure(str(exc)) from None
    if src.positions_um is None and params.spatial_radius_um > 0:
        # after the work, so that a failure still prints one line
        click.echo(f"Warning: no channel positions for {input}, so the spatial rule "
                   f"(--spatial-radius-um {params.spatial_radius_um:g}) was off: every channel that sees a "
                   "spike kept its own event and the stream is several times larger. Give --positions "
                   "(.npy or probeinterface .json) or use --spatial-radius-um 0 to silence this.", err=True)
    s = enc.stats
    click.echo(f"{s.n_samples} samples x {src.n_channels} channels, {s.n_events} events, {s.n_bytes} bytes, "
               f"event ratio {s.n_samples * src.n_channels * 2 / s.n_bytes:.0f}x"
               + (f", {s.n_clipped} snippets clipped" if s.n_clipped else ""))


@codec_cli.command()
@click.argument("input", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--fill", type=click.Choice(["zeros", "noise"]), default="zeros", show_default=True,
              help="What samples outside events hold.")
@click.option("--seed", type=click.IntRange(0, SEED_MAX), default=0, show_default=True,
              help="Seed of --fill noise (0..2^63-1); the same seed gives the same noise.")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
def decode(input, output, fill, seed, force):
    """Decode INPUT into OUTPUT (.npy float32 µV, or .nwb with events as spike times)."""
    from .decoder import Decoder, decode as decode_all, read_events
    from .format import CodecError
    if output.suffix not in (".npy", ".nwb"):
        raise UsageFailure(f"OUTPUT {output}: decode writes .npy or .nwb, not {output.suffix or 'no suffix'!r}")
    _check_output(output, force, [input])   # before reading: nothing is opened for writing yet
    data = input.read_bytes()
    try:
        header, events, n = read_events(data)        # validate before writing anything
        with replacing(output, overwrite=force, inputs=[input], what="OUTPUT") as tmp:
            if output.suffix == ".nwb":
                from .sources import write_nwb
                write_nwb(tmp, decode_all(data, fill=fill, seed=seed))
            else:
                _decode_npy(data, tmp, header, n, Decoder(fill=fill, seed=seed))
    except OutputError as exc:
        raise UsageFailure(str(exc)) from None
    except (CodecError, ValueError) as e:
        raise RuntimeFailure(f"{input}: {e}") from None
    click.echo(f"{n} samples x {header.n_channels} channels, {events.times.size} events -> {output}")


def _decode_npy(data: bytes, path: Path, header, n: int, dec) -> None:
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, header.n_channels))
    with _progress() as prog:
        task = prog.add_task("decoding", total=n)
        step = 1 << 20
        for i in range(0, len(data), step):
            for t0, block, _ in dec.feed(data[i:i + step]):
                out[t0:t0 + block.shape[0]] = block
                prog.advance(task, block.shape[0])
    dec.close()
    out.flush()
    del out


@codec_cli.command("eval")
@click.option("--data", type=click.Choice(["spikeinterface", "culture"]), default="spikeinterface",
              show_default=True, help="Ground truth: SpikeInterface's generator or the in-silico culture.")
@click.option("--duration", type=click.FloatRange(0.1, 600.0), default=10.0, show_default=True, callback=_finite,
              help="Seconds of ground truth (0.1..600; held in memory as float32).")
@click.option("--channels", type=click.IntRange(1, 1024), default=32, show_default=True,
              help="Recording channels of the SpikeInterface ground truth (1..1024; --data spikeinterface).")
@click.option("--units", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="Neurons (units) firing in the SpikeInterface ground truth (1..1000; --data spikeinterface).")
@click.option("--seed", type=click.IntRange(0, SEED_MAX), default=0, show_default=True,
              help="Seed of the ground truth (0..2^63-1); the same seed gives the same recording and scores.")
@_param_options
def eval_(data, duration, channels, units, seed, **kw):
    """Score the codec and baselines on seeded ground truth (no download)."""
    from rich.console import Console
    from rich.table import Table
    from .evaluate import (Scorer, culture_recording, evaluate_codec, ground_truth_recording, lossless_baselines,
                           quantize_baseline)
    p = _params(**kw)
    with _progress() as prog:
        task = prog.add_task("evaluating", total=4)
        gt = (ground_truth_recording(duration, channels, units, seed=seed) if data == "spikeinterface"
              else culture_recording(duration, seed=seed))
        scorer = Scorer(gt, ref_k=5.0, refractory_ms=p.refractory_ms, polarity=p.polarity)
        prog.advance(task)
        rows = [scorer.score("original", gt.samples_uv, gt.samples_uv.size * 2)]
        rows.append(evaluate_codec(scorer, p))
        prog.advance(task)
        qd, qn, _ = quantize_baseline(gt.samples_uv, rows[1].rmse_uv)
        rows.append(scorer.score("quantize+zstd @ matched RMSE", qd, qn))
        prog.advance(task)
        lossless = lossless_baselines(gt.samples_uv)
        prog.advance(task)
    tab = Table(title=f"{gt.name}, {duration:g} s; {gt.spike_times.size} GT spikes")
    for col in ("method", "bytes", "ratio", "RMSE µV", "RMSE spikes µV", "recall", "retained", "precision"):
        tab.add_column(col)
    for r in rows:
        tab.add_row(r.method, str(r.n_bytes), f"{r.event_ratio:.0f}x", f"{r.rmse_uv:.2f}",
                    f"{r.rmse_spike_uv:.2f}", f"{r.recall:.3f}", f"{r.retained:.3f}", f"{r.precision:.3f}")
    for name, n in lossless.items():
        tab.add_row(name + " (lossless)", str(n), f"{gt.samples_uv.size * 2 / n:.1f}x", "≤0.1", "≤0.1",
                    f"{rows[0].recall:.3f}", "1.000", f"{rows[0].precision:.3f}")
    Console().print(tab)


def main():
    codec_cli()
