"""Figures of a closed-loop run (PNG through matplotlib's Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bioloop.gateware.layouts import AERType, FCLK_HZ
from bioloop.host import aer

__all__ = ["raster", "control", "latency", "write_all"]


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def raster(result, path: Path, seconds: float = 2.0) -> Path:
    """Spike raster (SPIKE words) with stimulation marks (STIM words) over the last ``seconds``."""
    plt = _plt()
    f = aer.unpack(result.words)
    t = f.timestamp.astype(np.float64) / result.sample_rate_hz
    t_end = t.max() if t.size else 0.0
    keep = t >= t_end - seconds
    spike = keep & (f.type == AERType.SPIKE.value)
    stim = keep & (f.type == AERType.STIM.value)
    fig, ax = plt.subplots(figsize=(10, 5))
    ax.scatter(t[spike], f.address[spike], s=1.5, c="k", marker="|", linewidths=0.6, label="spike (detected)")
    ax.scatter(t[stim], f.address[stim] + 0.4, s=6, c="tab:red", marker="|", linewidths=0.8,
               label="stimulation (STIM word, lane)")
    ax.set_xlabel("time (s, frames / sample rate)")
    ax.set_ylabel("channel / lane")
    ax.set_title(f"AER log, last {seconds:g} s")
    ax.legend(loc="upper right", markerscale=4)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def control(result, path: Path, reference=None) -> Path:
    """Controlled-channel rate against the target, and θ over time (optionally with a reference run)."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    c = result.controlled
    window = max(1, min(len(result.t_s), int(round(0.25 * result.sample_rate_hz / result.block_frames))))
    kernel = np.ones(window) / window

    def smooth(x):
        return np.convolve(x, kernel, mode="same")

    for res, label, color in ((result, "homeostasis on", "tab:blue"),
                              (reference, "homeostasis off", "tab:gray")):
        if res is None:
            continue
        r = res.rate_hz[:, res.controlled]
        ax1.plot(res.t_s, smooth(r.mean(axis=1)), color=color, label=f"{label}: mean of {len(c)} channels")
        lo, hi = np.percentile(r, [25, 75], axis=1)
        ax1.fill_between(res.t_s, smooth(lo), smooth(hi), color=color, alpha=0.15)
        ax2.plot(res.t_s, res.theta[:, res.controlled].mean(axis=1) / 256, color=color, label=label)
    ax1.axhline(result.settings.target_rate_hz, color="tab:red", ls="--", label="target")
    ax1.set_ylabel("detections per channel (Hz)")
    ax1.legend(loc="upper right")
    ax1.set_title("Closed-loop rate control (0.25 s moving average, band: quartiles across channels)")
    ax2.set_ylabel("mean θ (Q8.8 / 256)")
    ax2.set_xlabel("culture time (s)")
    ax2.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def latency(result, path: Path) -> Path:
    """Histogram of the hardware latency probe (cycles, and ns at FCLK)."""
    plt = _plt()
    lat = result.latency_cycles
    fig, ax = plt.subplots(figsize=(7, 4))
    if lat.size:
        bins = np.arange(lat.min() - 0.5, lat.max() + 1.5)
        ax.hist(lat, bins=bins, color="tab:green")
    ax.set_xlabel("loop latency (cycles): SPIKE that caused a STIM -> first LED cycle")
    ax.set_ylabel("probe readings")
    ns = 1e9 / FCLK_HZ
    sec = ax.secondary_xaxis("top", functions=(lambda x: x * ns, lambda x: x / ns))
    sec.set_xlabel("ns at 100 MHz")
    ax.set_title(f"hardware latency probe, {lat.size} readings")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_all(result, outdir: Path, reference=None) -> list[Path]:
    outdir = Path(outdir)
    return [raster(result, outdir / "raster.png"), control(result, outdir / "control.png", reference),
            latency(result, outdir / "latency.png")]
