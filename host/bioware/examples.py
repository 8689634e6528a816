"""The published bioware example frame, shared by the tests and the benchmark."""

from __future__ import annotations

import numpy as np

__all__ = ["published_frame"]


def published_frame(seed: int = 42) -> np.ndarray:
    """10 channels x 2000 samples (0.1 s at 20 kHz) of N(0, 5 µV) noise with injected spikes.

    Channel 0 gets -80 µV every 200 samples from sample 0, channel 3 gets
    -60 µV every 200 samples from sample 100: 10 spikes each, the published
    example's ground truth.
    """
    rng = np.random.default_rng(seed)
    v = rng.normal(0, 5, size=(2000, 10))
    v[::200, 0] = -80.0
    v[100::200, 3] = -60.0
    return v
