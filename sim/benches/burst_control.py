#!/usr/bin/env python3
"""Burst control on vs off, 3 seeds -> docs/bench/burst_control.md (``bioloop.sim.benches.burst_control``).

``--experiment burst-control`` (:class:`bioloop.host.policy.BurstControl`,
after Wagenaar, Madhavan, Pine & Potter, J. Neurosci. 2005): 50 single-lane
light pulses per second cycling over the 60 lanes, their strength fed back
from the tonic population rate, against the same culture without
stimulation. Network bursts per minute by two detectors: the culture's own
on the ground truth (the detector and settings of the culture bench, so the
"off" figure compares with docs/culture.md) and the loop's on the SPIKE words
(:func:`bioloop.host.loop._bursts`).

The runs are long (60 s of culture each, for burst statistics), so they go
through the compiled RTL (``--backend verilator``, bit-exact with the model
backend) unless ``BENCH_BACKEND=model``; one process per run, ``BENCH_JOBS``
at a time (default 3).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from bioloop.sim.measure import DOCS_BENCH

SEEDS = (1, 2, 3)
SKIP_S = 1.0            # the culture's start-up, left out of both conditions


def _bus(backend: str):
    if backend == "verilator":
        from bioloop.sim.verilator_bus import VerilatorBus
        return VerilatorBus(64, 64, 16)
    from bioloop.host.backends import ModelBus
    return ModelBus(64, 64, 16)


def _run(args):
    seed, on, duration, backend = args
    from bioloop.host.culture import Culture, CultureConfig
    from bioloop.host.driver import Driver
    from bioloop.host.experiments import experiment
    from bioloop.host.loop import LoopSettings, run_loop
    exp = experiment("burst-control")
    s = exp.settings(LoopSettings(duration_s=duration))
    policies = exp.policies()
    if not on:
        s, policies = exp.reference(s), []
    t0, c0 = time.perf_counter(), time.process_time()
    r = run_loop(Driver(_bus(backend)), Culture(CultureConfig(seed=seed)), s, policies=policies)
    r.wall_s, r.cpu_s = time.perf_counter() - t0, time.process_time() - c0
    return r


def _codes(r) -> np.ndarray:
    return np.array([v for (_, _, reg, _, v) in r.writes if reg == "lane_codes"], np.float64)


def main(out: Path = DOCS_BENCH, smoke: bool = False) -> Path:
    from concurrent.futures import ProcessPoolExecutor

    from bioloop.host import figures
    from bioloop.sim.measure import machine, markdown_table
    out = Path(out)
    load = os.getloadavg()
    seeds = SEEDS[:1] if smoke else SEEDS
    duration = 1.5 if smoke else float(os.environ.get("BENCH_SECONDS", 60.0))
    backend = "model" if smoke else os.environ.get("BENCH_BACKEND", "verilator")
    jobs = [(seed, on, duration, backend) for seed in seeds for on in (True, False)]
    if smoke:
        results = [_run(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=int(os.environ.get("BENCH_JOBS", 3))) as pool:
            results = list(pool.map(_run, jobs))
    rows, gt_on, gt_off, lp_on, lp_off = [], [], [], [], []
    for i, seed in enumerate(seeds):
        on, off = results[2 * i], results[2 * i + 1]
        g1, g0 = on.truth_bursts_per_minute(SKIP_S), off.truth_bursts_per_minute(SKIP_S)
        l1, l0 = on.bursts_per_minute(SKIP_S), off.bursts_per_minute(SKIP_S)
        gt_on.append(g1), gt_off.append(g0), lp_on.append(l1), lp_off.append(l0)
        codes = _codes(on)
        stim_rate = on.stims[:, on.controlled].sum() / (len(on.t_s) * on.block_frames / on.sample_rate_hz)
        rows.append([seed, f"**{g1:.1f}**", f"**{g0:.1f}**", f"{l1:.1f}", f"{l0:.1f}", f"{stim_rate:.1f}",
                     f"{np.median(on.periods.population_rate_hz):.1f} / {np.median(off.periods.population_rate_hz):.1f}",
                     f"{codes.min() / 65535:.2f}-{codes.max() / 65535:.2f}" if codes.size else "1.00",
                     f"{on.overruns} / {off.overruns}"])
    if len(seeds) > 1:
        def ms(x):
            return f"{np.mean(x):.1f} ± {np.std(x, ddof=1):.1f}"
        rows.append(["mean ± sd", ms(gt_on), ms(gt_off), ms(lp_on), ms(lp_off), "", "", "", ""])
    on_less = all(a < b for a, b in zip(gt_on, gt_off, strict=True))
    speed = [duration / r.wall_s for r in results]
    text = ["## Burst control on vs off (`bioloop.sim.benches.burst_control`)\n",
            f"Machine: {machine()}, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the start "
            "(a machine shared by several engineers). "
            f"Backend `{backend}`" + (" (the compiled RTL, bit-exact with the model backend)" if backend == "verilator"
                                      else "") + ", default culture, "
            f"{duration:g} s of culture per run after the 0.2 s calibration, the first {SKIP_S:g} s (start-up) "
            f"left out of the counts; one process per run, {speed and f'{min(speed):.3f}-{max(speed):.3f}'} "
            "culture s per wall s at that load.\n",
            "On: `--experiment burst-control`, `BurstControl` (after Wagenaar, Madhavan, Pine & Potter, "
            "J. Neurosci. 2005: background stimulation at 50 stimuli/s spread over many electrodes, its "
            "strength fine-tuned by feedback on the firing rate): 50 pulses per second, one lane each, 2 ms, "
            "cycling over all 60 lanes in a shuffled order; the pulse intensity (lane density) set every 50 ms "
            "by a PI controller holding the median period rate over 1 s at 30 Hz per channel. Off: the same "
            "culture, no stimulation. Bursts per minute by the culture's detector on the ground truth (10 ms "
            "bins of the 1024 neurons, active at 5 % of them, 100 ms merge: the detector of docs/culture.md) "
            "and by the loop's on the SPIKE words (25 ms bins over the 60 channels, active at 160 detections "
            "per second per channel or mean + 4 sqrt(mean), 75 ms merge). Tonic rate: median of the 50 ms "
            "period rates, Hz per channel. Intensity: range of the lane densities the controller wrote.\n",
            markdown_table(["seed", "bursts / min on (ground truth)", "bursts / min off (ground truth)",
                            "on (loop's detector)", "off (loop's detector)", "stimuli / s", "tonic rate on / off Hz",
                            "intensity written", "overruns on / off"], rows),
            ("Bursts per minute are lower with the policy on than off on every seed, by both detectors."
             if on_less else "**Not met:** bursts per minute are not lower with the policy on on every seed "
             "(ground truth).") + "\n",
            "![bursts on vs off, seed 1; bursts per minute per seed](burst_control.png)\n"]
    _figure(results, seeds, gt_on, gt_off, out / "burst_control.png", figures)
    path = out / "burst_control.md"
    path.write_text("\n".join(text))
    return path


def _figure(results, seeds, gt_on, gt_off, path, figures):
    from bioloop.host.figures import _plt, _save, controlled_spikes
    from bioloop.host.loop import _bursts
    plt = _plt()
    fig = plt.figure(figsize=(12, 8), layout="constrained")
    gs = fig.add_gridspec(3, 4)
    for row, (res, label) in enumerate(((results[0], "burst control on"), (results[1], "no stimulation"))):
        ax = fig.add_subplot(gs[row, :])
        t, addresses, dur = controlled_spikes(res)
        edges = np.arange(0.0, dur + 0.025, 0.025)
        counts, _ = np.histogram(t, edges)
        ax.plot(edges[:-1], counts / 0.025 / len(res.controlled), color="k", lw=0.5)
        found = [b for b in _bursts(t, addresses, dur, 0.0, len(res.controlled))
                 if b.start_s >= SKIP_S]
        for b in found:
            ax.axvspan(b.start_s, b.end_s, color="tab:orange", alpha=0.4, lw=0)
        ax.set_ylabel("Hz per channel")
        ax.set_title(f"seed {seeds[0]}, {label}: {len(found)} network bursts after {SKIP_S:g} s "
                     "(loop's detector, orange)")
    axes = fig.axes
    axes[1].sharey(axes[0])
    axes[1].set_xlabel("culture time (s)")
    ax = fig.add_subplot(gs[2, :2])
    x = np.arange(len(seeds))
    ax.bar(x - 0.2, gt_on, 0.4, label="burst control on")
    ax.bar(x + 0.2, gt_off, 0.4, label="no stimulation")
    ax.set_xticks(x, [f"seed {s}" for s in seeds])
    ax.set_ylabel("bursts / min (ground truth)")
    ax.legend()
    ax = fig.add_subplot(gs[2, 2:])
    r = results[0]
    ax.plot(r.periods.t_s, r.lane_code_trajectory() / 65535, lw=1)
    ax.set_ylabel("pulse intensity (lane density)")
    ax.set_xlabel("culture time (s)")
    ax.set_title(f"seed {seeds[0]}: intensity set by the controller")
    _save(fig, path)


if __name__ == "__main__":
    main()
