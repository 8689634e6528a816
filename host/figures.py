"""Figures of a closed-loop run (PNG through matplotlib's Agg backend).

Each figure has a ``*_figure`` function that builds it (for tests and
notebooks) and a function that writes it through
:mod:`bioloop.host.output_files` (written aside, renamed into place).
θ is shown as the value of its Q8.8 code (code / 256), in figures and in the
demo's table alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bioloop.host.layouts import AERType, FCLK_HZ
from bioloop.host import aer

__all__ = ["raster", "control", "latency", "write_all", "raster_figure", "control_figure", "latency_figure",
           "bursts", "bursts_figure", "weights", "weights_figure",
           "smoothing_window", "Q88"]

#: θ is plotted and printed as code / Q88 (the value the Q8.8 code stands for).
Q88 = 256

#: Target length of the rate panel's moving average, seconds.
SMOOTH_S = 0.25


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _condition(result) -> str:
    cond = getattr(result, "condition", None)       # LoopResult names its policies
    if cond is not None:
        return cond
    return "homeostasis on" if result.settings.homeostasis else "homeostasis off"


def _save(fig, path) -> Path:
    from bioloop.host.output_files import replacing
    plt = _plt()
    path = Path(path)
    try:
        with replacing(path, overwrite=True, what="figure") as tmp:
            fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".") or "png")
    finally:
        plt.close(fig)
    return path


def raster_figure(result, seconds: float = 2.0):
    """Spike raster (SPIKE words) with stimulation marks (STIM words) over the last ``seconds``."""
    plt = _plt()
    f = aer.unpack(result.words)
    t = f.timestamp.astype(np.float64) / result.sample_rate_hz
    t_end = t.max() if t.size else 0.0
    keep = t >= t_end - seconds
    shown = min(seconds, t_end - t.min()) if t.size else 0.0
    spike = keep & (f.type == AERType.SPIKE.value)
    stim = keep & (f.type == AERType.STIM.value)
    fig, ax = plt.subplots(figsize=(10, 5), layout="constrained")
    ax.scatter(t[spike], f.address[spike], s=1.5, c="k", marker="|", linewidths=0.6, label="spike (detected)")
    ax.scatter(t[stim], f.address[stim] + 0.4, s=6, c="tab:red", marker="|", linewidths=0.8,
               label="stimulation (STIM word, lane)")
    ax.set_xlabel("time (s, frames / sample rate)")
    ax.set_ylabel("channel / lane")
    ax.set_title(f"AER log, {_condition(result)}: last {shown:.3g} s of the run")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, markerscale=4)
    return fig


def raster(result, path: Path, seconds: float = 2.0) -> Path:
    """Write :func:`raster_figure` to ``path``."""
    return _save(raster_figure(result, seconds), path)


def smoothing_window(result) -> tuple[int, float]:
    """The moving average of the rate panel: (blocks, seconds) actually used for ``result``."""
    block_s = result.block_frames / result.sample_rate_hz
    # At most a quarter of the run, so a short run still shows a curve rather than one point.
    window = max(1, min(int(round(SMOOTH_S / block_s)), len(result.t_s) // 4))
    return window, window * block_s


def control_figure(result, reference=None):
    """Controlled-channel rate against the target, and θ over time (optionally with a reference run)."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 7), sharex=True, layout="constrained")
    c = result.controlled
    window, window_s = smoothing_window(result)
    kernel = np.ones(window) / window

    def smooth(x):
        # "valid": only where the whole window has data, so no edge is averaged with zeros
        return np.convolve(x, kernel, mode="valid")

    def t_mid(res):
        return np.convolve(res.t_s, kernel, mode="valid")

    for res, color in ((result, "tab:blue"), (reference, "tab:gray")):
        if res is None:
            continue
        label = _condition(res)
        r = res.rate_hz[:, res.controlled]
        ax1.plot(t_mid(res), smooth(r.mean(axis=1)), color=color, label=f"{label}: mean of {len(c)} channels")
        lo, hi = np.percentile(r, [25, 75], axis=1)
        ax1.fill_between(t_mid(res), smooth(lo), smooth(hi), color=color, alpha=0.15)
        ax2.plot(res.t_s, res.theta[:, res.controlled].mean(axis=1) / Q88, color=color, label=label)
    ax1.axhline(result.settings.target_rate_hz, color="tab:red", ls="--", label="target")
    ax1.set_ylabel("detections per channel (Hz)")
    ax1.set_title(f"Closed-loop rate control ({window_s:.3g} s moving average, "
                  "band: quartiles across channels)")
    ax2.set_ylabel("mean θ (Q8.8 value = code / 256)")
    ax2.set_xlabel("culture time (s)")
    for ax in (ax1, ax2):        # beside the plot, never over the data
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return fig


def control(result, path: Path, reference=None) -> Path:
    """Write :func:`control_figure` to ``path``."""
    return _save(control_figure(result, reference), path)


def latency_figure(result):
    """Histogram of the hardware latency probe (cycles, and ns at FCLK), p50 and p99 marked."""
    plt = _plt()
    lat = result.latency_cycles
    fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    ax.set_xlabel("loop latency (cycles): SPIKE that caused a STIM -> first LED cycle")
    ax.set_ylabel("probe readings")
    ns = 1e9 / FCLK_HZ
    if lat.size:
        bins = np.arange(lat.min() - 0.5, lat.max() + 1.5)
        ax.hist(lat, bins=bins, color="tab:green")
        for q, style in ((50, "-"), (99, "--")):
            v = float(np.percentile(lat, q))
            ax.axvline(v, color="k", ls=style, label=f"p{q} = {v:.0f} cycles ({v * ns:.0f} ns)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        ax.set_title(f"hardware latency probe, {lat.size} readings ({_condition(result)})")
    else:
        stims = int(np.asarray(result.stims).sum())
        why = ("no stimulation pulse fired in this run, so the probe never read a SPIKE -> LED latency"
               if stims == 0 else f"{stims} pulses fired but the probe reported no reading")
        ax.text(0.5, 0.5, f"no latency readings:\n{why}", ha="center", va="center", transform=ax.transAxes,
                wrap=True)
        ax.set_title(f"hardware latency probe: empty ({_condition(result)})")
        ax.set_xticks([])
        ax.set_yticks([])
        return fig
    sec = ax.secondary_xaxis("top", functions=(lambda x: x * ns, lambda x: x / ns))
    sec.set_xlabel(f"ns at {FCLK_HZ / 1e6:g} MHz")
    return fig


def latency(result, path: Path) -> Path:
    """Write :func:`latency_figure` to ``path``."""
    return _save(latency_figure(result), path)


def write_all(result, outdir: Path, reference=None) -> list[Path]:
    """raster.png, control.png and latency.png of ``result`` in ``outdir``."""
    outdir = Path(outdir)
    return [raster(result, outdir / "raster.png"), control(result, outdir / "control.png", reference),
            latency(result, outdir / "latency.png")]


def controlled_spikes(result):
    """The SPIKE words of the controlled channels: (times in s, addresses), and the run's duration in s."""
    f = aer.unpack(result.words)
    spike = (f.type == AERType.SPIKE.value) & np.isin(f.address, result.controlled)
    t = f.timestamp[spike].astype(np.float64) / result.sample_rate_hz
    return t, f.address[spike].astype(np.int64), len(result.t_s) * result.block_frames / result.sample_rate_hz


def bursts_figure(result, reference=None):
    """Population rate of the controlled channels (50 ms bins) with the detected network bursts, on vs reference."""
    from bioloop.host.loop import _bursts
    plt = _plt()
    runs = [r for r in (result, reference) if r is not None]
    fig, axes = plt.subplots(len(runs), 1, figsize=(11, 3.2 * len(runs)), sharex=True, squeeze=False,
                             layout="constrained")
    for ax, res in zip(axes[:, 0], runs, strict=False):
        t, addresses, dur = controlled_spikes(res)
        edges = np.arange(0.0, dur + 0.05, 0.05)
        counts, _ = np.histogram(t, edges)
        ax.plot(edges[:-1], counts / 0.05 / len(res.controlled), color="k", lw=0.7)
        found = _bursts(t, addresses, dur, 0.0, len(res.controlled))
        for b in found:
            ax.axvspan(b.start_s, b.end_s, color="tab:orange", alpha=0.3, lw=0)
        ax.set_ylabel("Hz per channel")
        ax.set_title(f"{_condition(res)}: {len(found)} network bursts, {len(found) / dur * 60:.1f} per minute")
    axes[-1, 0].set_xlabel("culture time (s)")
    return fig


def bursts(result, path: Path, reference=None) -> Path:
    """Write :func:`bursts_figure` to ``path``."""
    return _save(bursts_figure(result, reference), path)


def weights_figure(result):
    """Route weights c -> k (Q8.8 value) as the plasticity policy wrote them, period by period."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(11, 5), layout="constrained")
    period_s = result.settings.control_period_ms / 1000.0
    initial = result.settings.weight_q88
    traj = {}
    for period, policy, reg, idx, value in result.writes:
        if reg != "routes":
            continue
        for _, k, w in value:
            if k != idx:
                traj.setdefault((idx, k), [(0.0, initial)]).append(((period + 1) * period_s, w))
    for (c, k), pts in sorted(traj.items()):
        t, w = zip(*pts, strict=False)
        ax.step(t, np.array(w) / Q88, where="post", lw=0.6, alpha=0.6)
    ax.set_xlabel("culture time (s)")
    ax.set_ylabel("route weight (Q8.8 value = code / 256)")
    ax.set_title(f"STDP on the route weights: {len(traj)} synapses channel c -> lane k (k != c)")
    return fig


def weights(result, path: Path) -> Path:
    """Write :func:`weights_figure` to ``path``."""
    return _save(weights_figure(result), path)
