"""Benchmark SpikeBuffer AER ingest, the object API and AER observation decoding.

Writes ``docs/bench/observation.md``. Target (issue 4): SpikeBuffer ingest of
at least 10 M AER words per second from a uint64 array.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from bioloop.sim.measure import DOCS_BENCH, cpu_model
from bioloop.host.aer import pack
from bioloop.host.observation import (
    AERControlObservation, SpikeBuffer, SpikeEvent, decode_isi, decode_rate, decode_temporal,
)

TARGET_WORDS_PER_S = 10e6
REPEATS = 7
FRAME_NS = 50_000  # 20 kHz




def median_time(fn, repeats=REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def dma_words(n: int, channels: int, seed: int = 1) -> np.ndarray:
    """A DMA-like stream: 98 % SPIKE, 2 % STIM/TICK/OVERFLOW, frames non-decreasing."""
    rng = np.random.default_rng(seed)
    kind = np.where(rng.random(n) < 0.98, 0, rng.integers(1, 4, n))
    address = np.where(kind == 3, rng.integers(1, 4, n), rng.integers(0, channels, n))
    frames = np.sort(rng.integers(0, n // 4, n))
    return pack(address, 0, kind, frames)


def bench_ingest(words: np.ndarray, chunk: int, capacity: int) -> float:
    """Steady-state ingest rate: one long-lived buffer, as a driver would keep."""
    b = SpikeBuffer(capacity)

    def run():
        b.clear()
        for i in range(0, words.size, chunk):
            b.ingest_aer(words[i:i + chunk], FRAME_NS)
    return words.size / median_time(run)


def main(out: Path = DOCS_BENCH, smoke: bool = False) -> Path:
    rows = []
    n = 1 << (14 if smoke else 21)
    words = dma_words(n, channels=4096)
    bench_ingest(words[:1 << 16], 1 << 16, 1 << 16)  # warm-up (imports, page faults)
    ingest_rates = []
    for chunk, capacity in ((n, n), (min(n, 1 << 16), 1 << 20), (1 << 12, 1 << 16)):
        ingest_rates.append(bench_ingest(words, chunk, capacity))
        rows.append((f"`ingest_aer`, {chunk} words per call, capacity {capacity}",
                     f"{ingest_rates[-1] / 1e6:.1f} M words/s"))

    ev = [SpikeEvent(i % 4096, i) for i in range(1000 if smoke else 100_000)]
    b = SpikeBuffer(1 << 17)
    push_rate = len(ev) / median_time(lambda: [b.push(e) for e in ev], 3)
    rows.append(("`push(SpikeEvent)` one at a time", f"{push_rate / 1e6:.2f} M events/s"))
    rows.append(("`extend(list of SpikeEvent)`",
                 f"{len(ev) / median_time(lambda: SpikeBuffer(1 << 17).extend(ev), 3) / 1e6:.2f}"
                 f" M events/s"))

    # One 50 ms observation window out of a buffer holding ~400 ms of 4096-channel traffic.
    obs_words = dma_words(1 << 15, channels=4096, seed=2)

    def loaded_buffer():
        b = SpikeBuffer(1 << 16)
        b.ingest_aer(obs_words, FRAME_NS)
        return b

    now = int(loaded_buffer().snapshot_arrays().timestamp_ns.max())
    rows.append(("`ingest_aer` of 32 Ki words into a fresh buffer",
                 f"{median_time(loaded_buffer) * 1e3:.3f} ms"))
    for strategy in ("rate", "temporal", "isi"):
        buffers = [loaded_buffer() for _ in range(REPEATS)]
        in_window = None
        times = []
        for b in buffers:
            obs = AERControlObservation(now, b, 50_000_000, decode_strategy=strategy,
                                        n_features=4096)
            t0 = time.perf_counter()
            obs.to_features()
            times.append(time.perf_counter() - t0)
            in_window = obs.window_events.neuron_id.size
        rows.append((f"`AERControlObservation({strategy!r}, n_features=4096).to_features()`, "
                     f"50 ms window ({in_window} events) drained from {len(obs_words)} words",
                     f"{statistics.median(times) * 1e3:.3f} ms"))

    b = SpikeBuffer(1 << 20)
    b.ingest_aer(words[: 1 << 20], FRAME_NS)   # all of them in smoke
    arr = b.snapshot_arrays()
    now = int(arr.timestamp_ns.max())
    for name, fn in (("decode_rate", lambda: decode_rate(arr, 10**12, 4096)),
                     ("decode_temporal", lambda: decode_temporal(arr, 10**12, 4096, now_ns=now)),
                     ("decode_isi", lambda: decode_isi(arr, 10**12, 4096))):
        rows.append((f"`{name}` on {arr.neuron_id.size} events, 4096 features",
                     f"{arr.neuron_id.size / median_time(fn) / 1e6:.1f} M events/s"))

    verdict = "met" if min(ingest_rates) >= TARGET_WORDS_PER_S else "NOT met"
    lines = [
        "## AER observation (SpikeBuffer, decoders)",
        "",
        f"Machine: `{platform.machine()}`, {cpu_model()}, Python {platform.python_version()}, "
        f"numpy {np.__version__}, {datetime.date.today().isoformat()}, load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at the end of the run. "
        f"Median of {REPEATS} runs (3 for the object API); `bioloop.sim.benches.observation`.",
        "",
        f"Target: `SpikeBuffer` ingest of at least 10 M AER words/s from a uint64 array — "
        f"**{verdict}** (slowest configuration {min(ingest_rates) / 1e6:.1f} M words/s). "
        f"Stream: {n} words, 98 % SPIKE over 4096 channels, 2 % STIM/TICK/OVERFLOW, "
        f"frames non-decreasing, 50 µs frames.",
        "",
        "| measurement | result |",
        "|---|---|",
        *[f"| {a} | {b} |" for a, b in rows],
        "",
    ]
    path = Path(out) / "observation.md"
    path.write_text("\n".join(lines))
    if verdict != "met" and not smoke:
        raise RuntimeError(f"SpikeBuffer ingest below the 10 M words/s target ({min(ingest_rates) / 1e6:.1f} M); "
                           f"{path} written")
    return path
