"""Network bursts of the default culture against the cited ranges, 3 seeds -> docs/bench/culture_bursts.md.

Dissociated cortical cultures burst for roughly 0.1 to 1 s, with burst
rates that vary widely between cultures and days (Wagenaar, Pine & Potter,
BMC Neurosci. 2006). Bursts are found on the ground-truth population count
by the culture's own detector (10 ms bins, active when the count reaches
5 % of the neurons, merged across gaps of up to 100 ms), after a 1 s
start-up. Speed is CPU time of this process (``time.process_time``), so
other engineers' jobs on the shared machine do not count against it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from bioloop.host.culture import Culture, CultureConfig
from bioloop.host.bioware.bursts import BIN_MS, network_bursts
from bioloop.host.culture.culture import BURST_MERGE_MS
from bioloop.sim.measure import DOCS_BENCH, machine, markdown_table

FS = 20_000
BLOCK = 2000


def run(seed: int, seconds: float) -> dict:
    culture = Culture(CultureConfig(seed=seed))
    culture.step(FS)                                   # 1 s start-up (and numba load)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(int(seconds * FS / BLOCK)):
        culture.step(BLOCK)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    counts = culture.population_counts()[int(1000 / BIN_MS):]
    b = network_bursts(counts, culture.n_neurons, max_gap_bins=int(round(BURST_MERGE_MS / BIN_MS)))
    dur = np.diff(b, axis=1).ravel() * BIN_MS
    ibi = np.diff(b[:, 0]) * BIN_MS / 1000.0
    in_burst = np.zeros(counts.size, bool)
    for s, e in b:
        in_burst[s:e] = True
    return {"seed": seed, "bursts": len(b), "per_min": len(b) / seconds * 60.0, "dur": dur, "ibi": ibi,
            "in_burst_share": counts[in_burst].sum() / max(1, counts.sum()),
            "rate": culture.summary()["rate_hz"]["mean"], "rtf_cpu": seconds / cpu, "rtf_wall": seconds / wall}


def pct(x, q, fmt="{:.2f}"):
    return fmt.format(np.percentile(x, q)) if len(x) else "-"


def main(out: Path = DOCS_BENCH, smoke: bool = False, seeds=(1, 2, 3), seconds=60.0) -> Path:
    if smoke:
        seeds, seconds = (1,), 0.4
    load = os.getloadavg()[0]
    rows, runs = [], [run(s, seconds) for s in seeds]
    for r in runs:
        rows.append([r["seed"], r["bursts"], f'{r["per_min"]:.1f}',
                     f'{np.median(r["dur"]):.0f} ({pct(r["dur"], 10, "{:.0f}")}-{pct(r["dur"], 90, "{:.0f}")})',
                     f'{np.median(r["ibi"]):.2f} ({pct(r["ibi"], 10)}-{pct(r["ibi"], 90)})',
                     f'{100 * r["in_burst_share"]:.0f} %', f'{r["rate"]:.2f}',
                     f'{r["rtf_cpu"]:.1f}x', f'{r["rtf_wall"]:.1f}x'])
    dur = np.concatenate([r["dur"] for r in runs])
    per_min = [r["per_min"] for r in runs]
    inside = np.mean((dur >= 100) & (dur <= 1000))
    text = ["## Network bursts of the in-silico culture\n",
            f"Machine: {machine()}, load average {load:.1f} at the start. `bioloop.sim.benches.culture_bursts`: "
            f"the default culture (1024 neurons, 60 electrodes, 20 kHz), {seconds:g} s per seed after a 1 s "
            "start-up, in 100 ms blocks. Bursts on the ground-truth population count (10 ms bins, active at "
            f"5 % of the neurons, merged across gaps up to {BURST_MERGE_MS:g} ms). Durations in ms and "
            "inter-burst intervals in s as median (p10-p90). Real-time factor = simulated time / CPU time of "
            "the process (one core; the wall-clock factor on the shared machine beside it).\n",
            markdown_table(["seed", "bursts", "per minute", "duration ms", "interval s", "spikes in bursts",
                            "mean rate Hz", "real time (CPU)", "real time (wall)"], rows),
            f"Cited range (Wagenaar, Pine & Potter 2006): bursts of about 0.1-1 s; here "
            f"{100 * inside:.0f} % of {dur.size} bursts last 100-1000 ms (median {np.median(dur):.0f} ms). "
            f"Burst rate {min(per_min):.1f}-{max(per_min):.1f} per minute across seeds, inside the wide range "
            "those cultures show.\n"]
    path = Path(out) / "culture_bursts.md"
    path.write_text("\n".join(text))
    return path
