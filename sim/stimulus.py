"""Randomized sample stimulus for the benches: Poisson spiking on every channel plus bursts."""

from __future__ import annotations

import numpy as np

__all__ = ["spiking_frames", "beat_payloads"]


def spiking_frames(rng: np.random.Generator, n_frames: int, n_channels: int, thresholds,
                   rate: float = 0.02, burst_prob: float = 0.02, burst_fraction: float = 0.6,
                   width: int = 3) -> np.ndarray:
    """int16 frames (T, N) of sub-threshold noise with threshold excursions.

    Each channel starts an excursion with probability ``rate`` per frame
    (Poisson spiking); with probability ``burst_prob`` a frame starts a
    network burst where ``burst_fraction`` of the channels fire together.
    An excursion lasts 1..``width`` frames at a value drawn from exactly
    ±θ (equality edge) up to deep beyond, on either side.
    """
    th = np.asarray(thresholds, dtype=np.int32)
    noise_span = np.maximum(th - 1, 0)
    x = (rng.uniform(-1, 1, (n_frames, n_channels)) * noise_span).astype(np.int32)
    starts = rng.random((n_frames, n_channels)) < rate
    bursts = rng.random(n_frames) < burst_prob
    starts |= bursts[:, None] & (rng.random((n_frames, n_channels)) < burst_fraction)
    for t, c in zip(*np.nonzero(starts), strict=True):
        w = int(rng.integers(1, width + 1))
        sign = 1 if rng.random() < 0.5 else -1
        depth = th[c] + (0 if rng.random() < 0.2 else int(rng.integers(0, 3000)))
        x[t:t + w, c] = sign * depth
    return np.clip(x, -32768, 32767).astype(np.int16)


def beat_payloads(frames: np.ndarray, last: np.ndarray | None = None) -> list[int]:
    """SampleBeat payload integers (data in bits 0-31, TLAST in bit 32) for frames or beats."""
    from bioloop.host.models.detector import beats_from_frames
    beats, tlast = beats_from_frames(frames) if last is None else (frames, last)
    return [int(b) | (int(last) << 32) for b, last in zip(beats, tlast, strict=True)]
