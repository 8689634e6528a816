"""Fitness of a frame's activity for evolutionary search (the published hook).

accuracy = clip(1 - |r̄ - r*| / r*, 0.1, 0.99) with r̄ the mean per-channel
rate over the channels that spiked (k_c / duration_s; without a duration,
the mean count, the legacy count domain); energy_mw = 0.5 · N_spikes (a
dimensionless proxy kept for compatibility, not a measured power);
latency_ms = the measured latency when given, else first spike after the
stimulus minus the stimulus time, else the first spike's time.
"""

from __future__ import annotations

import math

import numpy as np

from .detection import DetectedSpike

__all__ = ["mea_fitness_hook"]

_FLOOR = {"accuracy": 0.1, "energy_mw": 0.0, "latency_ms": 0.0}


def _finite(name, v, positive=False, nonneg=False):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
            or (positive and v <= 0) or (nonneg and v < 0):
        cond = " and > 0" if positive else " and >= 0" if nonneg else ""
        raise ValueError(f"{name} must be finite{cond}, not {v!r}")
    return float(v)


def mea_fitness_hook(detected_spikes: list[DetectedSpike], target_rate: float = 10.0, *,
                     duration_s: float | None = None, stimulus_time_s: float | None = None,
                     measured_latency_ms: float | None = None) -> dict[str, float]:
    """``{"accuracy", "energy_mw", "latency_ms"}`` of a frame (see module notes).

    Empty input gives the floor {0.1, 0.0, 0.0}; so does ``target_rate == 0``
    for the accuracy.
    """
    target = _finite("target_rate", target_rate, nonneg=True)
    if duration_s is not None:
        duration_s = _finite("duration_s", duration_s, positive=True)
    if stimulus_time_s is not None:
        stimulus_time_s = _finite("stimulus_time_s", stimulus_time_s)
    if measured_latency_ms is not None:
        measured_latency_ms = _finite("measured_latency_ms", measured_latency_ms, nonneg=True)
    if not detected_spikes:
        out = dict(_FLOOR)
        if measured_latency_ms is not None:
            out["latency_ms"] = measured_latency_ms
        return out
    ch = np.fromiter((s.channel for s in detected_spikes), np.int64, len(detected_spikes))
    t = np.fromiter((s.timestamp_s for s in detected_spikes), np.float64, len(detected_spikes))
    _, k = np.unique(ch, return_counts=True)
    r = k / duration_s if duration_s is not None else k.astype(np.float64)
    if target == 0:
        acc = 0.1
    else:
        acc = float(np.clip(1.0 - abs(float(r.mean()) - target) / target, 0.1, 0.99))
    if measured_latency_ms is not None:
        lat = measured_latency_ms
    elif stimulus_time_s is not None:
        after = t[t >= stimulus_time_s]
        lat = float((after.min() - stimulus_time_s) * 1e3) if after.size else 0.0
    else:
        lat = float(t.min() * 1e3)
    return {"accuracy": acc, "energy_mw": 0.5 * len(detected_spikes), "latency_ms": lat}
