"""Benchmark the bioware session frame and streaming detection.

Writes ``docs/bench/bioware.md``. Targets (issue 4):

- ``BioHybridSession.process_frame`` on the published example (10 channels,
  2000 samples at 20 kHz, spikes on channels 0 and 3, sorter attached):
  median <= 100 µs, measured side by side with a plain-numpy implementation
  of the same steps (reported as a ratio). The reference implementation
  publishes about 3 ms per frame (not re-measured here).
- Streaming detection for a 4096-channel MEA at 20 kHz (81.92 M samples/s)
  at real time or faster on one core.
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from bioloop.host.bioware.examples import published_frame
from bioloop.host.bioware import (AEREvent, AERToSCConverter, BioHybridSession, BiologicalSTDP,
                                  CultureHealth, DetectedSpike, MEAConfig, MEAToAERTranscoder,
                                  SCToOptoEncoder, SpikeDetector, SpikeSorter, density_code)
from bioloop.host.models.homeostasis import HomeostaticPlasticity
from bioloop.host.models.stochastic_lanes import StochasticLanes
from bioloop.sim.measure import DOCS_BENCH, cpu_model

FS = 20_000.0
TARGET_US = 100.0
FRAMES = 400






def make_session(noise_policy: str, frame) -> BioHybridSession:
    cfg = MEAConfig(num_channels=10, sample_rate_hz=FS, spike_threshold_sigma=5.0)
    det = SpikeDetector(config=cfg, refractory_samples=30, noise_policy=noise_policy)
    if noise_policy == "calibrated":
        det.calibrate(frame)
    return BioHybridSession(
        mea_config=cfg, detector=det, transcoder=MEAToAERTranscoder(hw_clock_hz=1e6),
        sc_converter=AERToSCConverter(bitstream_length=1024),
        opto_encoder=SCToOptoEncoder(wavelength_nm=470, max_intensity_mw_mm2=5.0),
        stdp=BiologicalSTDP(), health_monitor=CultureHealth(),
        homeostatic=HomeostaticPlasticity(target_rate_hz=10.0), sorter=SpikeSorter(num_units=3))


class NumpySession:
    """The same steps as BioHybridSession.process_frame, written plainly with numpy.

    np.median for σ, a vectorised onset mask plus a Python refractory loop,
    fancy-indexed snippets, scikit-learn's own predict, DetectedSpike and
    AEREvent objects, the StochasticLanes model per frame, the opto formula
    per stream, np.bincount health, homeostasis per channel.
    """

    def __init__(self, sorter, noise_policy, frame):
        self.sorter = sorter
        self.policy = noise_policy
        self.sigma = np.median(np.abs(frame), axis=0) / 0.6745 if noise_policy == "calibrated" else None
        self.prev = np.zeros(10, bool)
        self.last = np.full(10, -(1 << 40))
        self.t0 = 0
        self.hp = HomeostaticPlasticity(target_rate_hz=10.0)
        self.th = [256] * 10
        self.health = CultureHealth()

    def process_frame(self, v):
        T, N = v.shape
        if self.policy != "calibrated":
            self.sigma = np.median(np.abs(v), axis=0) / 0.6745
        thr = 5.0 * self.sigma
        beyond = v <= -thr
        onset = beyond.copy()
        onset[0] &= ~self.prev
        onset[1:] &= ~beyond[:-1]
        self.prev = beyond[-1].copy()
        ts, cs = np.nonzero(onset)
        keep = []
        for i, (t, c) in enumerate(zip(ts.tolist(), cs.tolist(), strict=True)):
            if self.t0 + t - self.last[c] >= 30:
                keep.append(i)
                self.last[c] = self.t0 + t
        ts, cs = ts[keep], cs[keep]
        idx = np.clip(ts[:, None] + np.arange(-20, 20)[None, :], 0, T - 1)
        wf = v[idx, cs[:, None]]
        amp = wf.min(axis=1)
        units = self.sorter.kmeans_.predict(self.sorter.pca_.transform(wf)) + 1
        spikes = [DetectedSpike(int(c), (self.t0 + t) / FS, float(a), int(u), w, self.t0 + int(t))
                  for t, c, a, u, w in zip(ts, cs, amp, units, wf, strict=True)]
        events = sorted((AEREvent(s.channel, math.floor(round(s.timestamp_s * 1e6, 6))) for s in spikes),
                        key=lambda e: (e.timestamp, e.neuron_id))
        ids, counts = np.unique([e.neuron_id for e in events], return_counts=True)
        lanes = StochasticLanes(N)
        codes = np.zeros(N, np.int64)
        codes[ids] = density_code(counts / (counts + 1.0))
        bits = lanes.run(codes, 1024)
        streams = {int(n): bits[:, n].astype(np.uint8) for n in ids}
        pulses = SCToOptoEncoder(470, 5.0).encode(streams, self.t0 / FS * 1e3)
        sc = np.bincount(cs, minlength=N)
        health = self.health.assess_counts(sc, T / FS)
        self.th = [self.hp.update_threshold(t, r, T / FS * 1e3) for t, r in zip(self.th, (sc / (T / FS)).tolist(), strict=True)]
        self.t0 += T
        return spikes, events, streams, pulses, health


def time_frames(fn, frame, n=FRAMES):
    """Wall-clock and thread-CPU times of n calls, in µs (median, p99, CPU median).

    The CPU time (CLOCK_THREAD_CPUTIME_ID) leaves out the time the thread
    waited for a core, which on a shared machine is most of the spread.
    """
    fn(frame)  # warm (JIT, sorter fit)
    ts, cpu = [], []
    for _ in range(n):
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        fn(frame)
        ts.append((time.perf_counter_ns() - t0) / 1e3)
        cpu.append((time.thread_time_ns() - c0) / 1e3)
    return statistics.median(ts), float(np.percentile(ts, 99)), statistics.median(cpu)


def bench_session(frames=FRAMES):
    frame = published_frame()
    rows = []
    first = make_session("per_frame", frame)
    t0 = time.perf_counter()
    r = first.process_frame(frame)
    first_ms = (time.perf_counter() - t0) * 1e3
    assert r.num_spikes == 20
    for policy in ("calibrated", "running", "per_frame"):
        s = make_session(policy, frame)
        s.process_frame(frame)
        ref = NumpySession(s.sorter, policy, frame)
        # interleave the two so that load from other processes hits both alike
        ours, theirs = [], []
        for _ in range(5):
            ours.append(time_frames(s.process_frame, frame, frames // 5))
            theirs.append(time_frames(ref.process_frame, frame, frames // 5))
        med = statistics.median(o[0] for o in ours)
        p99 = statistics.median(o[1] for o in ours)
        cpu = statistics.median(o[2] for o in ours)
        ref_med = statistics.median(o[0] for o in theirs)
        ref_cpu = statistics.median(o[2] for o in theirs)
        rows.append((policy, med, p99, cpu, ref_med, ref_cpu))
    return rows, first_ms


def bench_streaming(seconds=0.5, chunk=1000):
    n = 4096
    cfg = MEAConfig(num_channels=n, sample_rate_hz=FS)
    rng = np.random.default_rng(0)
    T = int(seconds * FS)
    x = np.clip(np.rint(rng.normal(0, 40, (T, n))), -32768, 32767).astype(np.int16)
    k = T * n // 2000               # about 10 Hz per channel of large events
    x[rng.integers(0, T, k), rng.integers(0, n, k)] = -600
    out = []
    for policy in ("calibrated", "running"):
        d = SpikeDetector(cfg, noise_policy=policy)
        if policy == "calibrated":
            d.calibrate(x[:chunk])
        d.detect_arrays(x[:chunk])   # warm
        d.reset()
        best = math.inf
        found = 0
        for _ in range(3):
            d.reset()
            t0 = time.perf_counter()
            found = 0
            for i in range(0, T, chunk):
                found += d.detect_arrays(x[i:i + chunk]).channel.size
            best = min(best, time.perf_counter() - t0)
        out.append((policy, T * n / best, found, T * n))
    return out, chunk


def main(out: Path = DOCS_BENCH, smoke: bool = False) -> Path:
    load0 = os.getloadavg()[0]
    rows, first_ms = bench_session(10 if smoke else FRAMES)
    stream, chunk = bench_streaming(0.1 if smoke else 0.5)
    load = os.getloadavg()[0]
    lines = [
        "## Bioware session and streaming detection",
        "",
        f"Machine: `{platform.machine()}`, {cpu_model()}, Python {platform.python_version()}, "
        f"numpy {np.__version__}, {datetime.date.today().isoformat()}, load average {load0:.1f} at the "
        f"start and {load:.1f} at the end of the run on {os.cpu_count()} CPUs (other jobs were running: absolute times are "
        f"pessimistic, the side-by-side ratios less affected). `bioloop.sim.benches.bioware`.",
        "",
        "`BioHybridSession.process_frame` on the published example (10 channels, 2000 samples at "
        "20 kHz, spikes on channels 0 and 3, SpikeSorter(3) attached and fitted, homeostasis on). "
        f"Median of {FRAMES} frames, interleaved in 5 blocks with a plain-numpy implementation of "
        "the same steps. The reference publishes about 3000 µs per frame. "
        f"First frame (numba cache load, scikit-learn import and sorter fit): {first_ms:.0f} ms.",
        "",
        "| noise policy | bioloop wall median | wall p99 | CPU median | plain numpy wall / CPU median "
        "| speed-up (wall) | target ≤ 100 µs (wall median) |",
        "|---|---|---|---|---|---|---|",
    ]
    for policy, med, p99, cpu, ref, ref_cpu in rows:
        lines.append(f"| `{policy}` | {med:.0f} µs | {p99:.0f} µs | {cpu:.0f} µs | {ref:.0f} / {ref_cpu:.0f} µs "
                     f"| {ref / med:.1f}x | {'met' if med <= TARGET_US else 'not met'} |")
    lines += [
        "",
        "`per_frame` recomputes the exact median of 20 000 samples every frame (searched first "
        "within ±10 % of the previous frame's); `calibrated` fixes σ after a calibration frame; "
        "`running` averages per-frame estimates with a time constant (and so also pays the median).",
        "",
        f"Streaming detection, 4096 channels of int16 codes at 20 kHz (81.92 M samples/s needed), "
        f"{chunk}-frame chunks (50 ms), one core, best of 3:",
        "",
        "| noise policy | throughput | real-time factor | detections |",
        "|---|---|---|---|",
    ]
    for policy, rate, found, total in stream:
        lines.append(f"| `{policy}` | {rate / 1e6:.0f} M samples/s | {rate / 81.92e6:.1f}x | {found} |")
    path = Path(out) / "bioware.md"
    path.write_text("\n".join(lines) + "\n")
    return path
