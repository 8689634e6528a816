"""Measuring the codec against ground truth and against baselines.

Definitions (``docs/codec.md`` states them with the results):

- event ratio: raw bits (16 per sample per channel, the int16 ADC stream)
  over encoded bits, container overhead included;
- RMSE in µV over the whole window, and over ground-truth spike windows
  (``[t - 1 ms, t + 2 ms)`` around each ground-truth spike, on the unit's
  home channels);
- a unit's home channels: those where its template's peak (of the detected
  polarity) reaches ``ref_k`` times the channel's noise sigma, and always its
  largest channel;
- recall and precision after decoding: the reference threshold detector
  (MAD sigma of the original, ``ref_k``, first crossing, refractory) is run
  on the decoded signal; a ground-truth spike is recalled when a detection
  on one of its unit's home channels lies within 0.4 ms of it, and a
  detection is a true positive when some ground-truth spike of a unit it is
  a home channel of lies within 0.4 ms.
"""

from __future__ import annotations

import gzip
from dataclasses import asdict, dataclass

import numpy as np

from .decoder import decode
from .encoder import encode
from .events import DetectorState, detect, mad_sigma, thresholds
from .format import CodecParams, ms_to_samples

__all__ = ["GroundTruth", "Metrics", "Scorer", "ground_truth_recording", "culture_recording", "match_detail", "home_channels", "detections_of",
           "match", "evaluate_codec", "lossless_baselines", "quantize_baseline", "MATCH_MS"]

#: Matching tolerance between a detection and a ground-truth spike.
MATCH_MS = 0.4


@dataclass
class GroundTruth:
    """Samples in µV and the ground truth they were made from.

    Attributes
    ----------
    samples_uv : numpy.ndarray
        float32 ``(n_samples, n_channels)``.
    sample_rate : float
    spike_times, spike_units : numpy.ndarray
        Ground-truth spikes (sample index, unit index).
    templates_uv : numpy.ndarray or None
        ``(n_units, n_template_samples, n_channels)`` unit templates in µV.
    home : numpy.ndarray or None
        Boolean ``(n_units, n_channels)`` home channels, when the source
        states them instead of templates.
    name : str
        What the data is, for reports.
    positions_um : numpy.ndarray or None
        ``(n_channels, 2)`` electrode positions.
    """
    samples_uv: np.ndarray
    sample_rate: float
    spike_times: np.ndarray
    spike_units: np.ndarray
    templates_uv: np.ndarray | None = None
    home: np.ndarray | None = None
    name: str = ""
    positions_um: np.ndarray | None = None


def ground_truth_recording(duration_s: float = 10.0, n_channels: int = 32, n_units: int = 10,
                           sample_rate: float = 30000.0, firing_rate_hz: float = 10.0,
                           noise_uv: float = 5.0, seed: int = 0) -> GroundTruth:
    """A seeded SpikeInterface ground-truth recording (offline, no download).

    Uses :func:`spikeinterface.core.generate_ground_truth_recording` with a
    probe it builds locally.
    """
    import spikeinterface.core as sc
    rec, sorting = sc.generate_ground_truth_recording(
        durations=[duration_s], sampling_frequency=sample_rate, num_channels=n_channels,
        num_units=n_units, seed=seed,
        generate_sorting_kwargs={"firing_rates": firing_rate_hz, "refractory_period_ms": 4.0},
        noise_kwargs={"noise_levels": noise_uv, "strategy": "on_the_fly"})
    x = rec.get_traces(return_in_uV=True).astype(np.float32)
    sv = sorting.to_spike_vector()
    # The sorting's spike times mark each template's alignment sample (its trough).
    return GroundTruth(x, sample_rate, sv["sample_index"].astype(np.int64),
                       sv["unit_index"].astype(np.int64), np.asarray(rec.templates, np.float32),
                       name=f"SpikeInterface GT, {n_channels} ch, {n_units} units at {firing_rate_hz:g} Hz, "
                            f"noise {noise_uv:g} µV, seed {seed}",
                       positions_um=np.asarray(rec.get_channel_locations(), np.float64)[:, :2])


def culture_recording(duration_s: float = 10.0, seed: int = 0, sample_rate: float = 30000.0,
                      **config) -> GroundTruth:
    """The in-silico culture (:mod:`bioloop.host.culture`) as ground truth.

    Units are neurons; a neuron's home channel is the electrode nearest its
    soma (the culture's ground-truth record), so recall counts a spike
    re-detected on that electrode.
    """
    from bioloop.host.culture import Culture, CultureConfig
    culture = Culture(CultureConfig(seed=seed, sample_rate_hz=sample_rate, **config))
    blocks = [culture.step(min(int(sample_rate), int(duration_s * sample_rate) - i))
              for i in range(0, int(duration_s * sample_rate), int(sample_rate))]
    x = np.concatenate([b.voltages_uv for b in blocks]).astype(np.float32)
    sp = np.concatenate([b.spikes for b in blocks])
    n_units = len(culture.nearest_channel)
    home = np.zeros((n_units, x.shape[1]), bool)
    home[np.arange(n_units), culture.nearest_channel] = True
    return GroundTruth(x, sample_rate, sp["sample"].astype(np.int64), sp["neuron"].astype(np.int64),
                       None, home, name=f"in-silico culture, {x.shape[1]} ch, {n_units} neurons, seed {seed}",
                       positions_um=np.asarray(culture.electrode_positions_um, np.float64))


def home_channels(gt: GroundTruth, noise_uv: np.ndarray, ref_k: float, polarity: str = "neg") -> np.ndarray:
    """Boolean ``(n_units, n_channels)``: where each unit can be detected at ``ref_k`` sigma."""
    t = gt.templates_uv
    peak = {"neg": -t.min(axis=1), "pos": t.max(axis=1), "both": np.abs(t).max(axis=1)}[polarity]
    home = peak >= ref_k * noise_uv[None, :]
    home[np.arange(len(peak)), peak.argmax(axis=1)] = True
    return home


def detections_of(x_uv: np.ndarray, noise_uv: np.ndarray, k: float, refractory: int,
                  polarity: str = "neg") -> tuple[np.ndarray, np.ndarray]:
    """The reference threshold detector over a whole array: (times, channels)."""
    lo, hi = thresholds(noise_uv, k, polarity, np.float32, 1.0)
    return detect(np.ascontiguousarray(x_uv, dtype=np.float32), lo, hi, refractory, 0,
                  DetectorState(x_uv.shape[1], refractory))


def match(gt_times, gt_units, det_times, det_channels, home: np.ndarray, tol: int) -> tuple[float, float]:
    """Recall and precision of detections against ground truth (see module doc).

    Returns
    -------
    recall, precision
    """
    recalled, precision = match_detail(gt_times, gt_units, det_times, det_channels, home, tol)
    return (float(recalled.mean()) if recalled.size else 1.0), precision


def match_detail(gt_times, gt_units, det_times, det_channels, home: np.ndarray, tol: int):
    """Per-spike recalled mask and the precision (see :func:`match`)."""
    order = np.argsort(det_times, kind="stable")
    dt, dc = det_times[order], det_channels[order]
    # recall: any detection on a home channel within tol
    recalled = np.zeros(gt_times.size, bool)
    lo = np.searchsorted(dt, gt_times - tol, "left")
    hi = np.searchsorted(dt, gt_times + tol, "right")
    for i in range(gt_times.size):
        if hi[i] > lo[i]:
            recalled[i] = home[gt_units[i], dc[lo[i]:hi[i]]].any()
    # precision: detection matched by a GT spike whose unit has it as home channel
    go = np.argsort(gt_times, kind="stable")
    gtt, gtu = gt_times[go], gt_units[go]
    lo = np.searchsorted(gtt, dt - tol, "left")
    hi = np.searchsorted(gtt, dt + tol, "right")
    tp = 0
    for i in range(dt.size):
        if hi[i] > lo[i] and home[gtu[lo[i]:hi[i]], dc[i]].any():
            tp += 1
    precision = tp / dt.size if dt.size else 1.0
    return recalled, precision


def _spike_window_mask(gt: GroundTruth, home: np.ndarray) -> np.ndarray:
    n, c = gt.samples_uv.shape
    mask = np.zeros((n, c), bool)
    a, b = int(round(1e-3 * gt.sample_rate)), int(round(2e-3 * gt.sample_rate))
    for t, u in zip(gt.spike_times, gt.spike_units, strict=True):
        mask[max(t - a, 0):min(t + b, n), home[u]] = True
    return mask


@dataclass
class Metrics:
    """One row of a results table."""
    method: str
    n_bytes: int
    event_ratio: float
    rmse_uv: float
    rmse_spike_uv: float
    recall: float
    precision: float
    n_events: int = 0
    retained: float = 1.0

    def as_dict(self) -> dict:
        return asdict(self)


class Scorer:
    """Scores decoded arrays of one ground-truth recording against fixed references.

    Parameters
    ----------
    gt : GroundTruth
    ref_k : float
        Reference detection threshold (sigma units) used for home channels and
        for detection after decoding; sigma is the MAD estimate of the original.
    refractory_ms : float
        Reference detector's refractory period, 1 ms by default at any
        sample rate (in samples: ``refractory``).
    polarity : str

    Attributes
    ----------
    recalled_original : numpy.ndarray
        Which ground-truth spikes the reference detector finds in the original;
        ``Metrics.retained`` is the fraction of these still found after decoding.
    """

    def __init__(self, gt: GroundTruth, ref_k: float = 5.0, refractory_ms: float = 1.0, polarity: str = "neg"):
        self.gt = gt
        self.refractory = max(1, ms_to_samples(refractory_ms, gt.sample_rate))
        self.ref_k, self.polarity = ref_k, polarity
        self.noise = mad_sigma(gt.samples_uv)
        self.home = gt.home if gt.home is not None else home_channels(gt, self.noise, ref_k, polarity)
        self.mask = _spike_window_mask(gt, self.home)
        self.tol = int(round(MATCH_MS * 1e-3 * gt.sample_rate))
        self.recalled_original, _ = self._match(gt.samples_uv)

    def _match(self, x):
        dt, dc = detections_of(x, self.noise, self.ref_k, self.refractory, self.polarity)
        return match_detail(self.gt.spike_times, self.gt.spike_units, dt, dc, self.home, self.tol)

    def score(self, method: str, decoded: np.ndarray, n_bytes: int, n_events: int = 0) -> Metrics:
        """Metrics of one decoded array that took ``n_bytes`` to store."""
        x = self.gt.samples_uv
        err = decoded.astype(np.float64) - x
        recalled, precision = self._match(decoded)
        orig = self.recalled_original
        return Metrics(method, int(n_bytes), x.size * 16 / (8 * n_bytes), float(np.sqrt(np.mean(err ** 2))),
                       float(np.sqrt(np.mean(err[self.mask] ** 2))) if self.mask.any() else 0.0,
                       float(recalled.mean()) if recalled.size else 1.0, precision, n_events,
                       float((recalled & orig).sum() / orig.sum()) if orig.any() else 1.0)


def evaluate_codec(scorer: Scorer, params: CodecParams, method: str = "codec") -> Metrics:
    """Encode, decode and score one operating point."""
    data, stats = encode(scorer.gt.samples_uv, scorer.gt.sample_rate, params,
                         positions_um=scorer.gt.positions_um)
    dec = decode(data)
    return scorer.score(method, dec.samples_uv, len(data), stats.n_events)


def _int16(x_uv: np.ndarray, uv_per_code: float) -> np.ndarray:
    return np.clip(np.rint(x_uv / uv_per_code), -32768, 32767).astype(np.int16)


def lossless_baselines(x_uv: np.ndarray, uv_per_code: float = 0.195, sample_rate: float = 30000.0) -> dict[str, int]:
    """Compressed sizes (bytes) of the int16 stream by gzip -9, zstd -19 and mtscomp if installed.

    The int16 stream is ``rint(x / uv_per_code)`` (Intan RHD scale by default),
    the form the board delivers.
    """
    import zstandard
    raw = _int16(x_uv, uv_per_code)
    out = {"gzip -9": len(gzip.compress(raw.tobytes(), compresslevel=9, mtime=0)),
           "zstd -19": len(zstandard.ZstdCompressor(level=19).compress(raw.tobytes()))}
    try:
        import mtscomp  # noqa: F401
    except ImportError:
        return out
    out["mtscomp"] = _mtscomp_size(raw, sample_rate)
    return out


def _mtscomp_size(raw: np.ndarray, sample_rate: float = 30000.0) -> int:
    import os
    import tempfile

    import mtscomp
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "x.bin")
        raw.tofile(src)
        # one thread: the benchmarks are single-core; no self-check pass, no progress bar
        mtscomp.compress(src, os.path.join(d, "x.cbin"), os.path.join(d, "x.ch"),
                         sample_rate=sample_rate, n_channels=raw.shape[1], dtype=raw.dtype,
                         n_threads=1, check_after_compress=False, quiet=True)
        return os.path.getsize(os.path.join(d, "x.cbin")) + os.path.getsize(os.path.join(d, "x.ch"))


def quantize_baseline(x_uv: np.ndarray, target_rmse_uv: float) -> tuple[np.ndarray, int, float]:
    """Uniform quantization then zstd -19, step chosen by bisection to match an RMSE.

    Returns
    -------
    decoded, n_bytes, step_uv
    """
    import zstandard
    x = np.asarray(x_uv, dtype=np.float32)

    def rmse(step):
        return float(np.sqrt(np.mean((np.rint(x / np.float32(step)) * np.float32(step) - x) ** 2, dtype=np.float64)))

    lo, hi = 1e-3, 4.0 * float(np.abs(x).max()) + 1.0
    for _ in range(34):   # rmse(step) is monotone enough for bisection at this precision
        mid = 0.5 * (lo + hi)
        if rmse(mid) < target_rmse_uv:
            lo = mid
        else:
            hi = mid
    step = lo
    q = np.rint(x / np.float32(step))
    codes = q.astype(np.int8) if np.abs(q).max() < 128 else q.astype(np.int16)
    n = len(zstandard.ZstdCompressor(level=19).compress(codes.tobytes())) + 8  # + the step as float64
    return (q * np.float32(step)).astype(np.float32), n, step
