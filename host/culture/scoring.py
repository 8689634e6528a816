"""Score spike detections against ground truth.

A threshold detector reports (sample, channel) events, several per spike
when the spike is large on neighbouring electrodes, and without a unit.
Matching therefore works per event, in time and space:

- a ground-truth spike of unit u at sample s is *found* when some detection
  lies within ``window_ms`` of s (0.4 ms, the ``delta_time`` of
  SpikeInterface's ground-truth comparison) on a channel within
  ``radius_um`` of u's reference channel (any channel if no geometry is
  given);
- a detection is *true* when it is within the window and radius of some
  ground-truth spike.

Recall = found spikes / ground-truth spikes; precision = true detections /
detections (duplicates of one spike on neighbouring electrodes are not
counted as false). Per-unit recall is reported with each unit's SNR and
summarised in SNR bins, because a detector can only be asked to find spikes
that stand out of the noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bioloop.host.noise import mad_sigma

__all__ = ["DetectionScore", "score_detections", "unit_snr", "MATCH_WINDOW_MS"]

#: SpikeInterface's default delta_time for ground-truth comparison, ms.
MATCH_WINDOW_MS = 0.4

#: Default SNR bin edges for the recall-by-SNR summary.
SNR_BINS = (0.0, 3.0, 5.0, 8.0, 12.0, np.inf)


@dataclass(frozen=True)
class DetectionScore:
    """Result of :func:`score_detections`.

    Members
    -------
    n_ground_truth, n_detections, n_found, n_true_detections : int
    recall, precision : float
        NaN when the denominator is zero.
    unit_recall : numpy.ndarray
        float64 per unit (NaN for units without spikes).
    unit_spikes : numpy.ndarray
        int64 ground-truth spikes per unit.
    unit_snr : numpy.ndarray or None
    recall_by_snr : list of dict
        One entry per SNR bin: ``lo``, ``hi``, ``units`` (with spikes),
        ``spikes``, ``recall`` (pooled over the bin's spikes).
    """

    n_ground_truth: int
    n_detections: int
    n_found: int
    n_true_detections: int
    recall: float
    precision: float
    unit_recall: np.ndarray
    unit_spikes: np.ndarray
    unit_snr: np.ndarray | None
    recall_by_snr: list

    def as_dict(self) -> dict:
        """JSON-safe summary (without the per-unit arrays)."""
        return {"n_ground_truth": self.n_ground_truth, "n_detections": self.n_detections,
                "recall": self.recall, "precision": self.precision,
                "recall_by_snr": self.recall_by_snr}


def _as_int(name, x):
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{name} must hold integers (samples / indices), got {a.dtype}")
    return a.astype(np.int64)


def score_detections(det_samples, det_channels, gt_samples, gt_units, sample_rate_hz: float,
                     *, n_units: int | None = None, unit_channel=None,
                     channel_positions_um=None, radius_um: float = 100.0,
                     window_ms: float = MATCH_WINDOW_MS, unit_snr=None,
                     snr_bins=SNR_BINS) -> DetectionScore:
    """Match detections to ground-truth spikes (see the module docstring).

    Parameters
    ----------
    det_samples, det_channels : array_like of int
        Detection sample indices and channels.
    gt_samples, gt_units : array_like of int
        Ground-truth spike samples and unit indices (0..n_units-1).
    sample_rate_hz : float
    n_units : int, optional
        Number of units (default ``max(gt_units) + 1``).
    unit_channel : array_like of int, optional
        Reference channel of each unit (nearest or largest). With
        ``channel_positions_um`` it restricts matches to channels within
        ``radius_um`` of it.
    channel_positions_um : array_like, optional
        (n_channels, 2) electrode positions.
    radius_um : float
        Spatial match radius.
    window_ms : float
        Time match window (inclusive), default 0.4 ms.
    unit_snr : array_like, optional
        SNR of each unit, for the per-SNR summary.
    snr_bins : sequence of float
        SNR bin edges.

    Returns
    -------
    DetectionScore
    """
    ds = _as_int("det_samples", det_samples)
    dc = _as_int("det_channels", det_channels)
    gs = _as_int("gt_samples", gt_samples)
    gu = _as_int("gt_units", gt_units)
    if len(ds) != len(dc):
        raise ValueError(f"det_samples ({len(ds)}) and det_channels ({len(dc)}) differ in length")
    if len(gs) != len(gu):
        raise ValueError(f"gt_samples ({len(gs)}) and gt_units ({len(gu)}) differ in length")
    if not sample_rate_hz > 0:
        raise ValueError(f"sample_rate_hz must be > 0, got {sample_rate_hz!r}")
    if n_units is None:
        n_units = int(gu.max()) + 1 if len(gu) else 0
    if len(gu) and (gu.min() < 0 or gu.max() >= n_units):
        raise ValueError(f"gt_units must lie in 0..{n_units - 1}")
    w = int(np.floor(window_ms * sample_rate_hz / 1000.0 + 1e-9))

    spatial = unit_channel is not None and channel_positions_um is not None
    if spatial:
        pos = np.asarray(channel_positions_um, float)
        uc = _as_int("unit_channel", unit_channel)
        if len(uc) != n_units:
            raise ValueError(f"unit_channel has {len(uc)} entries for {n_units} units")
        # near[u, c]: channel c is within the radius of unit u's channel.
        d = np.hypot(*(pos[uc][:, None, :] - pos[None, :, :]).transpose(2, 0, 1))
        near = d <= radius_um

    order = np.argsort(ds, kind="stable")
    ds_sorted, dc_sorted = ds[order], dc[order]
    lo = np.searchsorted(ds_sorted, gs - w, side="left")
    hi = np.searchsorted(ds_sorted, gs + w, side="right")
    found = np.zeros(len(gs), bool)
    true_det = np.zeros(len(ds), bool)
    for i in range(len(gs)):
        if hi[i] == lo[i]:
            continue
        idx = np.arange(lo[i], hi[i])
        if spatial:
            idx = idx[near[gu[i], dc_sorted[idx]]]
        if idx.size:
            found[i] = True
            true_det[order[idx]] = True

    unit_spikes = np.bincount(gu, minlength=n_units).astype(np.int64)
    unit_found = np.bincount(gu, weights=found, minlength=n_units)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit_recall = unit_found / unit_spikes
    snr = None if unit_snr is None else np.asarray(unit_snr, float)
    by_snr = []
    if snr is not None:
        if len(snr) != n_units:
            raise ValueError(f"unit_snr has {len(snr)} entries for {n_units} units")
        edges = list(snr_bins)
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            units = (snr >= a) & (snr < b) & (unit_spikes > 0)
            n_sp = int(unit_spikes[units].sum())
            rec = float(unit_found[units].sum() / n_sp) if n_sp else float("nan")
            by_snr.append({"lo": float(a), "hi": float(b), "units": int(units.sum()),
                           "spikes": n_sp, "recall": rec})
    n_found, n_true = int(found.sum()), int(true_det.sum())
    return DetectionScore(
        n_ground_truth=len(gs), n_detections=len(ds), n_found=n_found,
        n_true_detections=n_true,
        recall=n_found / len(gs) if len(gs) else float("nan"),
        precision=n_true / len(ds) if len(ds) else float("nan"),
        unit_recall=unit_recall, unit_spikes=unit_spikes, unit_snr=snr, recall_by_snr=by_snr)


def unit_snr(traces_uv, gt_samples, gt_units, n_units: int, noise_uv=None,
             ms_before: float = 1.0, ms_after: float = 1.5, sample_rate_hz: float = 20_000.0,
             max_spikes: int = 500):
    """Peak SNR and best channel of each unit, from its mean waveform.

    SNR = max over channels of |mean waveform| / noise σ of that channel
    (σ = median |x| / 0.6745, Donoho & Johnstone 1994, unless ``noise_uv``
    is given). Uses at most ``max_spikes`` spikes per unit (the first ones).

    Returns
    -------
    snr : numpy.ndarray
        float64 per unit (NaN for units without a usable spike).
    best_channel : numpy.ndarray
        int64 channel of the SNR peak (-1 where unknown).
    """
    x = np.asarray(traces_uv, np.float32)
    gs, gu = _as_int("gt_samples", gt_samples), _as_int("gt_units", gt_units)
    nb = int(round(ms_before * sample_rate_hz / 1000.0))
    na = int(round(ms_after * sample_rate_hz / 1000.0))
    sigma = (mad_sigma(x) if noise_uv is None
             else np.broadcast_to(np.asarray(noise_uv, float), (x.shape[1],)))
    snr = np.full(n_units, np.nan)
    best = np.full(n_units, -1, np.int64)
    for u in range(n_units):
        s = gs[(gu == u) & (gs >= nb) & (gs + na < len(x))][:max_spikes]
        if not len(s):
            continue
        mean_wf = np.mean([x[t - nb:t + na] for t in s], axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.max(np.abs(mean_wf), axis=0) / sigma
        ratio = np.where(np.isfinite(ratio), ratio, 0.0)
        best[u] = int(np.argmax(ratio))
        snr[u] = float(ratio[best[u]])
    return snr, best
