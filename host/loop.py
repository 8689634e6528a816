"""The closed loop: culture -> int16 samples -> core -> AER words and LEDs -> culture, and the slow loop on top.

One function, :func:`run_loop`, drives any backend through the synchronous
:class:`~bioloop.host.driver.Driver`: the Python model of ``Core``, the
Verilated RTL (inside the simulator, see :mod:`bioloop.sim.hil`), or the
board. The light the in-silico culture feels comes from the driver's LED
read-back (:meth:`~bioloop.host.driver.Driver.leds`, an optional capability
of the bus that the simulated backends have) or from a ``light`` function
given by the caller (the board reconstructs it from STIM words).

Two loops (DESIGN.md §1):

- **Fast loop, per block** (``block_ms``, 5 ms): the culture produces int16
  codes, ``driver.send_samples`` streams them to the core, the AER words
  come back, the LED duty of the block drives the culture from the next
  block on (causality: the light is never felt before it was computed; in
  the gateware the LED follows a spike within nanoseconds, L_loop).
- **Slow loop, per control period** (``control_period_ms``, 50 ms of
  recording time), :class:`SlowLoop`: the period's AER words go into a
  bounded :class:`~bioloop.host.observation.SpikeBuffer`, an
  :class:`~bioloop.host.observation.AERControlObservation` decodes them,
  the bioware session (:meth:`~bioloop.host.bioware.session.BioHybridSession.process_events`)
  computes per-channel rates and culture health and applies its plasticity
  rules, a trailing window is searched for network bursts, θ is read back,
  and every active policy (:mod:`bioloop.host.policy`) is asked for
  register writes. The writes are checked against the register map, applied
  through the driver, and recorded with their reason and the observation in
  the hash-chained audit log (:class:`~bioloop.host.bioware.audit.BioAuditLog`).
  A policy that fails is stopped (its batch is never written) and the run
  goes on; a period whose host work took longer than the period is an
  overrun, counted.

The recording itself can be written as a codec stream block by block
(``recorder``, :class:`CodecRecorder`).

Homeostasis (Turrigiano 2012) in gateware moves θ_k of lane k from the spike
count of channel ``homeo_src[k] = k`` per window; the target rate, τ and
window become the integer constants c*, g, s of DESIGN.md §4 through
:func:`bioloop.host.models.homeostasis.homeostasis_constants`.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction

import numpy as np

from bioloop.host.layouts import AERType, FCLK_HZ
from bioloop.host import aer
from bioloop.host.bioware.audit import BioAuditLog
from bioloop.host.bioware.bursts import NetworkBurst, network_bursts
from bioloop.host.bioware.detection import SpikeDetector
from bioloop.host.bioware.mea import MEAConfig
from bioloop.host.bus import BusTimeout
from bioloop.host.models.homeostasis import homeostasis_constants
from bioloop.host.observation import AERControlObservation, SpikeBuffer
from bioloop.host.policy import Homeostasis, LoopState, Observation, PolicyError, check_write

__all__ = ["LoopSettings", "LoopResult", "PolicyReport", "RecordingReport", "PeriodLog", "SlowLoop",
           "CodecRecorder", "program_core", "run_loop", "route_plan", "clock_plan"]


@dataclass(frozen=True)
class LoopSettings:
    """What the closed loop does, in culture time (``duration_s`` in seconds, the rest in ms).

    Parameters
    ----------
    duration_s : float
        Culture time after calibration.
    block_ms : float
        Frames per exchange with the core (also the light's delay).
    calibration_ms : float
        Dark recording used to fix the detector thresholds (MAD noise,
        Donoho & Johnstone 1994).
    threshold_sigma : float
        θ_det = α·σ per channel.
    refractory_ms : float
        Detector refractory period.
    target_rate_hz : float
        Homeostatic set point of every controlled channel.
    homeostasis : bool
        Let the gateware move θ (off: θ stays at ``theta0_q88``).
    window_ms, tau_homeo_ms : float
        Homeostasis window W and time constant τ.
    theta0_q88, weight_q88 : int
        Initial StimUnit threshold and the route weight channel k -> lane k.
    theta_min_q88, theta_max_q88 : int
        Homeostasis clamps; a wide range gives the controller authority
        (with weight 0.25, θ from 0.25 to 32 means 1 to 128 spikes per pulse).
    lane_code : int
        Density code of every lane (0xFFFF: light on for the whole pulse).
    pulse_ms : float
        Light pulse per StimUnit fire.
    leak_shift : int
        StimUnit leak per frame (acc -= acc >> leak_shift; 0 = none).
    max_duty : float
        Safety: lit fraction of each safety window at most.
    control_period_ms : float
        The slow loop's period (recording time): every period the host
        drains the AER words, observes, runs the session and the policies,
        writes registers and reads θ back (two CSR accesses per lane).
        A whole number of blocks.
    neighbours : int
        Besides its own lane, each controlled channel also routes to the
        lanes of its ``neighbours`` nearest other electrodes (distributed
        stimulation; plasticity's synapses c -> k).
    burst_window_s : float
        Trailing window of the network-burst analysis.
    sort_units : int
        Sorting in the slow loop (0: off): every control period the host
        cuts the period's detections out of the samples it streamed and sorts
        them per electrode into this many units
        (:class:`~bioloop.host.bioware.sorting.ChannelSorter`, PCA + k-means;
        a channel is fitted once on its first ``sort_fit_spikes``
        detections). The per-unit rates go into the observation
        (``Observation.unit_rates_hz``), the audit log (one ``units`` entry
        per period) and ``LoopResult.unit_rates_hz``.
    sort_fit_spikes : int
        Detections a channel collects before its sorter is fitted.
    clock_hz : float
        Stimulation clock (0: off). The core's spare channels (those beyond
        the culture's electrodes) carry a synthetic negative spike at this
        rate, one channel per group of F lanes, staggered; each is routed to
        its lanes with a weight of θ_max, so every clock spike fires a
        pulse on each of them whatever the tissue does: tonic light whose
        intensity the lane density codes set. Needs ceil(lanes / F) spare
        channels.
    """

    duration_s: float = 10.0
    block_ms: float = 5.0
    calibration_ms: float = 200.0
    threshold_sigma: float = 5.0
    refractory_ms: float = 1.0
    target_rate_hz: float = 60.0
    homeostasis: bool = True
    window_ms: float = 100.0
    tau_homeo_ms: float = 3000.0
    theta0_q88: int = 2048
    theta_min_q88: int = 64
    theta_max_q88: int = 8192
    weight_q88: int = 64
    lane_code: int = 0x2000
    pulse_ms: float = 2.0
    leak_shift: int = 0
    max_duty: float = 0.5
    control_period_ms: float = 50.0
    neighbours: int = 0
    burst_window_s: float = 2.0
    clock_hz: float = 0.0
    sort_units: int = 0
    sort_fit_spikes: int = 150

    def __post_init__(self):
        for name in ("duration_s", "block_ms", "calibration_ms", "threshold_sigma", "target_rate_hz",
                     "window_ms", "tau_homeo_ms", "pulse_ms", "control_period_ms", "burst_window_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a finite number > 0, not {v!r}")
        if not 0 <= self.refractory_ms < 1000:
            raise ValueError(f"refractory_ms must be in [0, 1000), not {self.refractory_ms!r}")
        if not 0 < self.max_duty <= 1:
            raise ValueError(f"max_duty must be in (0, 1], not {self.max_duty!r}")
        for name, lo, hi in (("theta0_q88", 0, 0xFFFF), ("theta_min_q88", 0, 0xFFFF),
                             ("theta_max_q88", 0, 0xFFFF), ("weight_q88", -32768, 32767),
                             ("lane_code", 0, 0xFFFF), ("leak_shift", 0, 15)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer in {lo}..{hi}, not {v!r}")
        ratio = self.control_period_ms / self.block_ms
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ValueError(f"control_period_ms = {self.control_period_ms:g} must be a whole number of "
                             f"blocks of block_ms = {self.block_ms:g}")
        if isinstance(self.neighbours, bool) or not isinstance(self.neighbours, int) or not 0 <= self.neighbours <= 15:
            raise ValueError(f"neighbours must be an integer in 0..15, not {self.neighbours!r}")
        if isinstance(self.clock_hz, bool) or not isinstance(self.clock_hz, (int, float)) \
                or not math.isfinite(self.clock_hz) or not 0 <= self.clock_hz <= 1000:
            raise ValueError(f"clock_hz must be a number in 0..1000, not {self.clock_hz!r}")
        for name, lo, hi in (("sort_units", 0, 8), ("sort_fit_spikes", 2, 100_000)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer in {lo}..{hi}, not {v!r}")
        if self.sort_units and self.sort_fit_spikes < self.sort_units:
            raise ValueError(f"sort_fit_spikes = {self.sort_fit_spikes} is below sort_units = {self.sort_units}")
        if self.theta_min_q88 > self.theta_max_q88:
            raise ValueError(f"theta_min_q88 = {self.theta_min_q88} is above theta_max_q88 = {self.theta_max_q88}")

    def check_registers(self, frame_rate_hz: float) -> None:
        """Check that the register values derived from these settings fit the core, before any run.

        :func:`program_core` derives the homeostasis window, c*, gain and shift
        from the rates and times; a target rate or window too large for the
        registers would otherwise fail only after calibration.

        Raises
        ------
        ValueError
            Naming the setting and the limit it exceeds.
        """
        window = _frames(self.window_ms, frame_rate_hz)
        try:
            homeostasis_constants(self.target_rate_hz, self.tau_homeo_ms, window, frame_rate_hz)
        except ValueError as exc:
            raise ValueError(f"target_rate_hz = {self.target_rate_hz:g} with window_ms = {self.window_ms:g}: "
                             f"{exc}") from None


@dataclass(frozen=True)
class PolicyReport:
    """What one policy did in a run: writes applied, and why it was stopped (None if it ran to the end)."""
    name: str
    writes: int
    stopped: str | None = None
    stopped_at_s: float | None = None


@dataclass(frozen=True)
class RecordingReport:
    """The session's recording as a codec stream (:class:`CodecRecorder`).

    Members
    -------
    path : str or None
    sha256 : str
        Of the whole stream as written.
    n_bytes, n_samples, n_channels, n_events : int
    ratio : float
        Raw int16 bytes / stream bytes.
    encode_s : float
        Wall time spent encoding (every ``push`` and ``finish``).
    """
    path: str | None
    sha256: str
    n_bytes: int
    n_samples: int
    n_channels: int
    n_events: int
    ratio: float
    encode_s: float


@dataclass(frozen=True)
class PeriodLog:
    """Per control period: end time, population rate, mean θ, writes, burst flag, host step and bus time.

    ``step_s`` is the host's own work (drain, observation, session, bursts,
    sorting, policies, checks); ``bus_s`` the bus transactions of the period
    (θ read-back, writes), which on the simulated backends simulate the core;
    ``sort_s`` the part of ``step_s`` spent sorting (0 without sorting).
    """
    t_s: np.ndarray
    population_rate_hz: np.ndarray
    theta_mean_q88: np.ndarray
    writes: np.ndarray
    bursting: np.ndarray
    step_s: np.ndarray
    bus_s: np.ndarray
    sort_s: np.ndarray | None = None


class CodecRecorder:
    """Writes the recording as a codec stream, block by block, and hashes it as it goes.

    Parameters
    ----------
    out : binary file object
        Where the stream goes (the loop writes each block's bytes at once).
    n_channels : int
    sample_rate_hz, uv_per_code : float
    params : CodecParams, optional
        The codec's operating point (its defaults, docs/codec.md).
    positions_um : array_like, optional
        Electrode positions (for the codec's spatial rule).
    """

    def __init__(self, out, n_channels: int, sample_rate_hz: float, uv_per_code: float,
                 params=None, positions_um=None, path=None):
        from bioloop.host.codec import Encoder
        self._out = out
        self.path = None if path is None else str(path)
        self._enc = Encoder(n_channels, sample_rate_hz, params, uv_per_code=uv_per_code,
                            positions_um=positions_um)
        self._hash = hashlib.sha256()
        self.encode_s = 0.0
        self.n_channels = int(n_channels)

    def _write(self, data: bytes) -> None:
        if data:
            self._out.write(data)
            self._hash.update(data)

    def push(self, codes: np.ndarray) -> None:
        """Encode one block of int16 codes (frames, channels)."""
        t0 = time.perf_counter()
        data = self._enc.push(codes)
        self.encode_s += time.perf_counter() - t0
        self._write(data)

    def finish(self) -> RecordingReport:
        """End the stream; returns what was written."""
        t0 = time.perf_counter()
        data = self._enc.finish()
        self.encode_s += time.perf_counter() - t0
        self._write(data)
        st = self._enc.stats
        raw = st.n_samples * self.n_channels * 2
        return RecordingReport(self.path, self._hash.hexdigest(), st.n_bytes, st.n_samples, self.n_channels,
                               st.n_events, raw / st.n_bytes if st.n_bytes else float("nan"), self.encode_s)


@dataclass
class LoopResult:
    """What one closed-loop run measured.

    Members
    -------
    settings : LoopSettings
    sample_rate_hz : float
    block_frames : int
    t_s : ndarray (B,)
        Start of every block in culture seconds (after calibration).
    rate_hz : ndarray (B, N)
        Detections per second of every channel in every block (SPIKE words).
    stims : ndarray (B, K)
        STIM words per lane per block.
    theta : ndarray (B, K)
        θ of every lane (Q8.8) as read back at the end of the control period
        the block belongs to.
    led_duty : ndarray (B, K)
        Mean LED duty per lane per block.
    latency_cycles : ndarray
        The hardware latency probe read after every block that fired a lane.
    words : ndarray uint64
        The whole AER log.
    truth_rate_hz : ndarray (B,)
        Ground-truth spikes per second per controlled electrode, per block.
    counters : dict
        The core's counters at the end.
    controlled : ndarray int
        Channels (= lanes) under closed-loop control.
    routes : dict
        ``{channel: [lane, ...]}`` as programmed.
    periods : PeriodLog
        The slow loop, period by period.
    policies : tuple of PolicyReport
    overruns : int
        Control periods whose host step took longer than the period.
    audit : BioAuditLog
        Every write with its reason and observation, hash-chained.
    writes : list
        ``(period, policy, register, index, value)`` of every applied write.
    recording : RecordingReport or None
    buffer_report : dict
        The SpikeBuffer's admission report.
    n_neurons : int
        Neurons of the culture (0 for a recording): the scale of
        :meth:`truth_bursts_per_minute`.
    unit_rates_hz : ndarray (P, n_electrodes, units) or None
        With ``settings.sort_units``: the sorted units' rates, period by period.
    """

    settings: LoopSettings
    sample_rate_hz: float
    block_frames: int
    t_s: np.ndarray
    rate_hz: np.ndarray
    stims: np.ndarray
    theta: np.ndarray
    led_duty: np.ndarray
    latency_cycles: np.ndarray
    words: np.ndarray
    truth_rate_hz: np.ndarray
    counters: dict
    controlled: np.ndarray
    routes: dict = field(default_factory=dict)
    periods: PeriodLog | None = None
    policies: tuple = ()
    overruns: int = 0
    audit: BioAuditLog | None = None
    writes: list = field(default_factory=list)
    recording: RecordingReport | None = None
    buffer_report: dict = field(default_factory=dict)
    n_neurons: int = 0
    unit_rates_hz: np.ndarray | None = None

    @property
    def condition(self) -> str:
        """The run's condition in words (for figures and tables)."""
        names = [p.name for p in self.policies]
        if names == ["homeostasis"]:
            return "homeostasis on" if self.settings.homeostasis else "homeostasis off"
        return ", ".join(names) if names else "no policy"

    def controlled_rate(self, tail: float = 1 / 3) -> float:
        """Mean detection rate (Hz per channel) of the controlled channels over the last ``tail``."""
        b0 = int(len(self.t_s) * (1 - tail))
        return float(self.rate_hz[b0:, self.controlled].mean())

    def window_rates(self, window_s: float = 1.0) -> np.ndarray:
        """Mean rate of the controlled channels in consecutive ``window_s`` windows (whole windows only)."""
        per = max(1, int(round(window_s * self.sample_rate_hz / self.block_frames)))
        r = self.rate_hz[:, self.controlled].mean(axis=1)
        n = len(r) // per
        return r[:n * per].reshape(n, per).mean(axis=1)

    def hold(self, settle_s: float, tolerance: float = 0.15, window_s: float = 1.0) -> dict:
        """How well the rate was held after ``settle_s``: every window within ±tolerance, θ drift in the last third.

        Returns a JSON-safe dict: the windows' rates, the share within the
        band, the worst relative error, and θ's drift over the last third
        (a straight-line fit of the mean θ of the controlled lanes, change
        over the last third relative to its mean).
        """
        target = self.settings.target_rate_hz
        w = self.window_rates(window_s)
        first = int(math.ceil(settle_s / window_s))
        after = w[first:]
        err = np.abs(after / target - 1) if after.size else np.zeros(0)
        b0 = int(len(self.t_s) * 2 / 3)
        th = self.theta[b0:, self.controlled].mean(axis=1)
        t = self.t_s[b0:]
        p0 = int(len(self.periods.t_s) * 2 / 3) if self.periods is not None else 0
        codes = self.lane_code_trajectory()[p0:]
        return {"target_rate_hz": target, "settle_s": settle_s, "window_s": window_s, "tolerance": tolerance,
                "window_rates_hz": [round(float(x), 2) for x in after],
                "within": float(np.mean(err <= tolerance)) if err.size else None,
                "worst_error": float(err.max()) if err.size else None,
                "theta_drift_last_third": _drift(t, th),
                "density_drift_last_third": _drift(self.periods.t_s[p0:], codes) if codes.size else 0.0}

    def lane_code_trajectory(self) -> np.ndarray:
        """Density code of the first controlled lane at the end of every control period (as written)."""
        if self.periods is None:
            return np.zeros(0)
        lane = int(self.controlled[0]) if self.controlled.size else 0
        out = np.full(len(self.periods.t_s), float(self.settings.lane_code))
        for period, policy, reg, idx, value in self.writes:
            if reg == "lane_codes" and idx == lane:
                out[period:] = value
        return out

    def bursts_per_minute(self, skip_s: float = 0.0) -> float:
        """Network bursts per minute in the SPIKE words of the run (the loop's own burst analysis, :func:`_bursts`).

        ``skip_s``: culture seconds left out at the start (the culture's start-up).
        """
        f = aer.unpack(self.words)
        spike = (f.type == AERType.SPIKE.value) & np.isin(f.address, self.controlled)
        t = f.timestamp[spike].astype(np.float64) / self.sample_rate_hz
        dur = len(self.t_s) * self.block_frames / self.sample_rate_hz
        keep = t >= skip_s
        if dur <= skip_s:
            return float("nan")
        b = _bursts(t[keep], f.address[spike][keep].astype(np.int64), dur - skip_s, skip_s, len(self.controlled))
        return len(b) / (dur - skip_s) * 60.0

    def truth_bursts_per_minute(self, skip_s: float = 0.0) -> float:
        """Network bursts per minute in the culture's ground truth, by the culture's own detector.

        The population count of all neurons in 10 ms bins (from the
        ground-truth spikes of every block, ``truth_rate_hz``), active at 5 %
        of the neurons, merged across 100 ms: the detector and settings of
        :meth:`bioloop.host.culture.Culture.summary` and of the culture bench,
        so the figure compares with the unstimulated culture's
        (docs/culture.md). NaN when the culture's size is unknown (a
        recording) or the run is shorter than ``skip_s`` plus one bin.
        """
        from bioloop.host.culture.culture import BURST_MERGE_MS
        if not self.n_neurons:
            return float("nan")
        per_block = np.rint(self.truth_rate_hz * max(1, len(self.controlled)) * self.block_frames
                            / self.sample_rate_hz)
        k = max(1, int(round(0.010 * self.sample_rate_hz / self.block_frames)))    # blocks per 10 ms bin
        x = per_block[int(round(skip_s * self.sample_rate_hz / self.block_frames)):]
        x = x[:len(x) // k * k].reshape(-1, k).sum(axis=1)
        if not len(x):
            return float("nan")
        b = network_bursts(x, self.n_neurons, max_gap_bins=int(round(BURST_MERGE_MS / (k * self.block_frames
                                                                                     / self.sample_rate_hz * 1e3))))
        return len(b) / (len(x) * k * self.block_frames / self.sample_rate_hz) * 60.0

    def timing(self) -> dict:
        """Wall-clock figures of the slow loop (they differ between runs; :meth:`summary` holds none).

        ``step_ms_*``: the host's work per period (without bus transactions),
        ``bus_ms_p50``: the bus transactions, ``overruns``: periods whose host
        work took longer than the period.
        """
        p = self.periods
        step = p.step_s if p is not None else np.zeros(0)
        sort = p.sort_s if p is not None and p.sort_s is not None and self.settings.sort_units else np.zeros(0)
        return {"step_ms_p50": float(np.percentile(step, 50) * 1e3) if step.size else None,
                "sort_ms_p50": float(np.percentile(sort, 50) * 1e3) if sort.size else None,
                "sort_ms_p99": float(np.percentile(sort, 99) * 1e3) if sort.size else None,
                "step_ms_p99": float(np.percentile(step, 99) * 1e3) if step.size else None,
                "bus_ms_p50": float(np.percentile(p.bus_s, 50) * 1e3) if step.size else None,
                "overruns": int(self.overruns), "control_period_ms": self.settings.control_period_ms}

    def summary(self) -> dict:
        """JSON-safe figures of the run; deterministic (same seed and settings, same summary)."""
        s = self.settings
        lat = self.latency_cycles
        third = max(1, len(self.t_s) // 3)
        p = self.periods
        step = p.step_s if p is not None else np.zeros(0)
        return {
            "condition": self.condition,
            "settings": asdict(s),
            "sample_rate_hz": self.sample_rate_hz,
            "blocks": int(len(self.t_s)),
            "controlled_channels": int(len(self.controlled)),
            "target_rate_hz": s.target_rate_hz,
            "rate_first_third_hz": float(self.rate_hz[:third, self.controlled].mean()),
            "rate_last_third_hz": self.controlled_rate(),
            "abs_error_last_third_hz": abs(self.controlled_rate() - s.target_rate_hz),
            "theta_mean_last_q88": float(self.theta[-1, self.controlled].mean()),
            "stims_total": int(self.stims.sum()),
            "led_duty_mean": float(self.led_duty[:, self.controlled].mean()),
            "truth_rate_last_third_hz": float(self.truth_rate_hz[-third:].mean()),
            "aer_words": int(self.words.size),
            "bursts_per_minute": self.bursts_per_minute(),
            "truth_bursts_per_minute": _json_float(self.truth_bursts_per_minute()),
            "latency_probe_cycles": {
                "n": int(lat.size),
                "p50": float(np.percentile(lat, 50)) if lat.size else None,
                "p99": float(np.percentile(lat, 99)) if lat.size else None,
                "max": int(lat.max()) if lat.size else None,
                "ns_per_cycle": 1e9 / FCLK_HZ,
            },
            "slow_loop": {
                "control_period_ms": s.control_period_ms,
                "periods": int(step.size),
                "writes": len(self.writes),
                "policies": [asdict(r) for r in self.policies],
                "audit_entries": len(self.audit) if self.audit is not None else 0,
                "audit_head": self.audit.head if self.audit is not None else None,
            },
            "recording": asdict(self.recording) if self.recording is not None else None,
            "counters": self.counters,
            "spike_buffer": self.buffer_report,
        }


#: The stimulation clock's synthetic spike on a spare channel, and that channel's Detector threshold (codes).
CLOCK_SPIKE, CLOCK_THRESHOLD = -1000, 100


def _json_float(x: float):
    """None for NaN (JSON has no NaN)."""
    return None if not math.isfinite(x) else float(x)


def _drift(t, x) -> float:
    """Change of ``x`` over ``t`` by a straight-line fit, relative to its mean (0 when undefined)."""
    t, x = np.asarray(t, np.float64), np.asarray(x, np.float64)
    if len(t) < 3 or not x.mean():
        return 0.0
    return float(np.polyfit(t, x, 1)[0] * (t[-1] - t[0]) / x.mean())


def _frames(ms: float, fs: float) -> int:
    return max(1, int(round(ms * fs / 1000.0)))


#: The loop's network-burst floor: detections per second per channel in a 25 ms bin (see :func:`_bursts`).
BURST_FLOOR_HZ = 160.0


def _bursts(times_s, channels, duration_s, t_start_s, n_channels: int = 60):
    """The loop's network-burst analysis on SPIKE trains: the population-rate method of the bioware.

    Spikes of all channels are counted in 25 ms bins; a bin is active when
    its count reaches ``max(BURST_FLOOR_HZ · n_channels · 25 ms, mean +
    4 sqrt(mean), 3)`` (:func:`bioloop.host.bioware.bursts.network_bursts`);
    runs closer than 75 ms are one burst. The floor, 160 detections per
    second per channel (240 spikes per bin over 60 channels), is the
    culture detector's criterion (5 % of the neurons in 10 ms, 5 Hz per
    neuron, docs/culture.md) seen through the electrodes: the default
    culture gives about 2.2 detections per spike (about 30 Hz per channel
    at 0.8 Hz per neuron). It sits above the culture's own background and
    above the response to one light pulse (at most about 200 spikes per bin
    over 60 channels under the burst-control stimulation), and far below a
    network burst (peaks of 600-900 per bin). The earlier floor (half a
    spike per channel per bin, 20 Hz) was below the culture's background
    rate, so the threshold rested on mean + 4 sqrt(mean) alone, and single
    evoked responses crossed it.
    """
    bin_s = 0.025
    t = np.asarray(times_s, np.float64)
    c = np.asarray(channels, np.int64)
    nb = max(1, int(math.ceil(duration_s / bin_s - 1e-9)))
    idx = np.clip(((t - t_start_s) / bin_s).astype(np.int64), 0, nb - 1)
    counts = np.bincount(idx, minlength=nb)
    out = []
    for lo, hi in network_bursts(counts, n_channels, min_fraction=BURST_FLOOR_HZ * bin_s, max_gap_bins=3):
        sel = (idx >= lo) & (idx < hi)
        out.append(NetworkBurst(t_start_s + lo * bin_s, t_start_s + hi * bin_s, int(sel.sum()),
                                int(np.unique(c[sel]).size)))
    return out


def route_plan(controlled: np.ndarray, positions_um: np.ndarray, neighbours: int) -> dict:
    """Routes of the loop: channel c -> its own lane c and the lanes of its ``neighbours`` nearest electrodes."""
    plan = {}
    for c in controlled.tolist():
        d = np.hypot(*(positions_um[controlled] - positions_um[c]).T)
        order = [int(controlled[i]) for i in np.argsort(d, kind="stable") if controlled[i] != c]
        plan[int(c)] = [int(c)] + order[:neighbours]
    return plan


def clock_plan(n_electrodes: int, n_channels: int, lanes: np.ndarray, fanout: int) -> dict:
    """Spare channel -> the lanes its clock spikes fire (groups of ``fanout`` lanes).

    Raises
    ------
    ValueError
        If the core has too few spare channels for the lanes.
    """
    groups = [lanes[i:i + fanout].tolist() for i in range(0, len(lanes), fanout)]
    spare = list(range(n_electrodes, n_channels))
    if len(groups) > len(spare):
        raise ValueError(f"the stimulation clock needs {len(groups)} spare channels for {len(lanes)} lanes "
                         f"(fanout {fanout}); the core has {len(spare)} beyond the {n_electrodes} electrodes")
    return {spare[i]: g for i, g in enumerate(groups)}


def clock_samples(t0: int, frames: int, plan: dict, clock_hz: float, fs: float) -> dict:
    """Frames (relative to the block) at which each clock channel carries its synthetic spike."""
    period = fs / clock_hz
    out = {}
    for j, ch in enumerate(sorted(plan)):
        phase = j * period / len(plan)
        first = math.ceil((t0 - phase) / period)
        ticks = np.floor(np.arange(first, first + frames / period + 2) * period + phase).astype(np.int64)
        out[ch] = ticks[(ticks >= t0) & (ticks < t0 + frames)] - t0
    return out


def program_core(driver, thresholds: np.ndarray, controlled: np.ndarray, s: LoopSettings, fs: float,
                 routes: dict | None = None, clock: dict | None = None) -> None:
    """Write the loop's configuration: thresholds, routes, θ, homeostasis, lanes, safety.

    ``routes`` maps a channel to its lanes (default: channel k -> lane k),
    each with weight ``s.weight_q88``.
    """
    N, K = driver.N, driver.K
    routes = routes if routes is not None else {int(c): [int(c)] for c in controlled}
    driver.disable()
    driver.thresholds[:] = thresholds.astype(int).tolist()
    driver.polarity[:] = "negative"
    driver.refractory = _frames(s.refractory_ms, fs) if s.refractory_ms > 0 else 0
    clock = clock or {}
    for c in range(N):
        if c in clock:      # a clock spike fires each of its lanes: weight θ_max >= θ
            driver.routes.set(c, [("stim", int(k), min(s.theta_max_q88, 32767)) for k in clock[c]])
        else:
            driver.routes.set(c, [("stim", int(k), s.weight_q88) for k in routes.get(c, [])])
    window = _frames(s.window_ms, fs)
    k = homeostasis_constants(s.target_rate_hz, s.tau_homeo_ms, window, fs)
    driver.homeo_window = window
    driver.homeo_gain = k.gain
    driver.homeo_shift = k.shift
    driver.homeo_target[:] = k.c_star
    driver.homeo_src[:] = [min(lane, N - 1) for lane in range(K)]
    driver.homeo_enable = bool(s.homeostasis)
    driver.set_theta_limits(s.theta_min_q88, s.theta_max_q88)
    driver.theta[:] = s.theta0_q88
    driver.lane_codes[:] = s.lane_code
    pulse = _frames(s.pulse_ms, fs)
    driver.pulse_lengths[:] = pulse
    driver.leak_shift = s.leak_shift
    # Safety counts clock cycles (the build fixes its window); the loop only tightens the duty
    # fraction. The simulated backends compress time (one beat per cycle), so pulse caps in
    # cycles are left at the build limit there rather than derived from pulse_ms.
    duty_window = driver.safety_duty_window
    driver.safety_max_duty = max(1, int(s.max_duty * duty_window))
    driver.safety_max_lanes = K
    driver.clear_counters()
    driver.clear_status()
    driver.enable()


def _receive_all(driver, timeout_s: float) -> np.ndarray:
    parts = []
    while True:
        try:
            w = driver.receive_words(timeout_s=timeout_s)
        except BusTimeout:
            break
        if w.size == 0:
            break
        parts.append(w)
    return np.concatenate(parts) if parts else np.zeros(0, np.uint64)


class SlowLoop:
    """The host's control loop, one :meth:`step` per control period (DESIGN.md §1, slow loop).

    Parameters
    ----------
    driver : Driver
    state : LoopState
        The session state policies read (``state.session`` is the bioware session).
    policies : list
        Objects with ``name`` and ``step(obs, state) -> list[Write]`` (:mod:`bioloop.host.policy`).
    audit : BioAuditLog
    frame_period_ns : Fraction
        Length of one frame.
    sorter : ChannelSorter, optional
        Sorting in the loop (``LoopSettings.sort_units``): :meth:`step` then
        needs the period's samples.
    """

    #: Observations kept in ``state.history``.
    HISTORY = 200

    def __init__(self, driver, state: LoopState, policies, audit: BioAuditLog, frame_period_ns: Fraction,
                 sorter=None):
        self.driver = driver
        self.state = state
        self.policies = list(policies)
        self.audit = audit
        self.frame_period_ns = frame_period_ns
        self.buffer = SpikeBuffer(capacity=1 << 20)
        self.reports = {p.name: PolicyReport(p.name, 0) for p in self.policies}
        self.active = list(self.policies)
        self.writes: list = []
        self.overruns = 0
        self._recent_t = np.zeros(0)
        self._recent_c = np.zeros(0, np.int64)
        self._period = 0
        self._bus_s = 0.0
        self._theta = np.zeros(driver.K, np.int64)
        self.sorter = sorter
        self.last_sort_s = 0.0

    def start(self, t_s: float) -> None:
        """Let the policies with a ``start(state)`` make their first writes."""
        for p in list(self.active):
            start = getattr(p, "start", None)
            if callable(start):
                self._run_policy(p, lambda p=p: start(self.state), None, t_s)

    def read_theta(self) -> np.ndarray:
        """θ of every lane: read back (two CSR accesses per lane) while the gateware's Homeostasis
        may move it, else what the driver last wrote (nothing else changes θ then)."""
        t0 = time.perf_counter()
        enabled = self.state.written.get(("homeo_enable", None), self.state.settings.homeostasis)
        if enabled:
            self._theta = np.array([self.driver.theta_now(k) for k in range(self.driver.K)], np.int64)
        else:
            self._theta = np.array(self.driver.theta[:], np.int64)
        self._bus_s += time.perf_counter() - t0
        return self._theta

    def step(self, words: np.ndarray, f0: int, f1: int, stims: np.ndarray, codes: np.ndarray | None = None) -> Observation:
        """One control period covering frames ``[f0, f1)``: observe, analyse, ask the policies, write.

        ``words`` are the AER words received during the period, ``stims``
        the STIM words per lane already counted by the fast loop, ``codes``
        the samples streamed in the period (frames ``f0 .. f1 - 1``, needed
        only for sorting).
        """
        t_begin = time.perf_counter()
        self._bus_s = 0.0
        st, fpn = self.state, self.frame_period_ns
        N, fs = st.n_channels, st.sample_rate_hz
        t0_s, t1_s = f0 / fs, f1 / fs
        period_s = t1_s - t0_s
        self.buffer.ingest_aer(words, fpn)
        now_ns = int(f1 * fpn) - 1
        window_ns = now_ns - int(f0 * fpn) + 1
        aer_obs = AERControlObservation(timestamp_ns=now_ns, spike_stream=self.buffer, decode_window_ns=window_ns,
                                        decode_strategy="rate", n_features=N)
        features = aer_obs.to_features()
        ev = aer_obs.window_events
        ch = ev.neuron_id.astype(np.int64)
        keep = ch < N                                  # relays to host-side neurons are not recording channels
        ch = ch[keep]
        t_s = np.clip(ev.timestamp_ns[keep].astype(np.float64) * 1e-9, t0_s, t1_s) if ch.size else np.zeros(0)
        res = st.session.process_events(ch, t_s, t0_s, period_s)
        ctl = st.controlled
        # Network bursts over a trailing window (the bioware detector on the SPIKE trains).
        w0 = max(0.0, t1_s - st.settings.burst_window_s)
        old = self._recent_t >= w0
        mine = np.isin(ch, ctl)                        # recording channels only, no stimulation clock
        self._recent_t = np.concatenate([self._recent_t[old], t_s[mine]])
        self._recent_c = np.concatenate([self._recent_c[old], ch[mine]])
        bursts = tuple(_bursts(self._recent_t, self._recent_c, t1_s - w0, w0, max(1, ctl.size)))
        bursting = bool(bursts) and bursts[-1].end_s >= t1_s - 0.05
        unit_rates = None
        t_sort = time.perf_counter()
        if self.sorter is not None:
            if codes is None:
                raise ValueError("sorting in the loop needs the period's samples (codes)")
            fw = aer.unpack(words)
            det = (fw.type == AERType.SPIKE.value) & (fw.address < self.sorter.n_channels)
            sc, su = self.sorter.push(np.asarray(codes), f0, fw.timestamp[det].astype(np.int64),
                                      fw.address[det].astype(np.int64))
            unit_rates = self.sorter.unit_rates(sc, su, period_s)
            self.audit.append("units", t_s=t1_s, period=self._period,
                              rates_hz=np.round(unit_rates, 1).tolist())
        self.last_sort_s = time.perf_counter() - t_sort
        theta = self.read_theta()
        obs = Observation(self._period, t1_s, period_s, res.rates_hz, features, t_s, ch, stims.copy(), theta.copy(),
                          float(res.rates_hz[ctl].mean()) if ctl.size else 0.0, res.health,
                          tuple(b for b in bursts if b.end_s >= t0_s), bursting, unit_rates)
        n_writes = 0
        for p in list(self.active):
            n_writes += self._run_policy(p, lambda p=p: p.step(obs, st), obs, t1_s)
        st.history.append(obs)
        del st.history[:-self.HISTORY]
        self._period += 1
        # Host work of the period, without the bus transactions: on the simulated backends those
        # simulate the core's CSR cycles, on the board they are MMIO accesses (about 1 µs each).
        took = time.perf_counter() - t_begin - self._bus_s
        if took > period_s:
            self.overruns += 1
        self.last_step_s = took
        self.last_bus_s = self._bus_s
        self.last_writes = n_writes
        return obs

    def _stop(self, p, why: str, t_s: float) -> None:
        self.active.remove(p)
        r = self.reports[p.name]
        self.reports[p.name] = replace(r, stopped=why, stopped_at_s=t_s)
        self.audit.append("policy_stopped", t_s=t_s, policy=p.name, reason=why)

    def _run_policy(self, p, ask, obs, t_s: float) -> int:
        """Ask one policy, check its whole batch, then write it; a failing policy is stopped, nothing written."""
        try:
            batch = ask()
            batch = [] if batch is None else list(batch)
        except Exception as exc:                       # a user's policy may raise anything: stop it, go on
            self._stop(p, f"raised {type(exc).__name__}: {exc}", t_s)
            return 0
        try:
            checked = [(w, check_write(self.driver, w, p.name)) for w in batch]
        except PolicyError as exc:
            self._stop(p, f"asked for a bad write, nothing of its batch was written: {exc}", t_s)
            return 0
        obs_summary = obs.summary() if obs is not None else {"period": None, "t_s": t_s}
        for w, (reg, idx, value) in checked:
            t_bus = time.perf_counter()
            if reg == "routes":
                self.driver.routes.set(idx, value)
                value = [list(e) for e in value]
            elif idx is None:
                setattr(self.driver, reg, value)
            else:
                getattr(self.driver, reg)[idx] = value
            self._bus_s += time.perf_counter() - t_bus
            key = (reg, idx)
            self.state.written[key] = tuple(tuple(e) for e in value) if reg == "routes" else value
            self.writes.append((self._period, p.name, reg, idx, value))
            self.audit.append("write", t_s=t_s, policy=p.name, register=reg, index=idx, value=value,
                              reason=w.reason, observation=obs_summary)
        r = self.reports[p.name]
        self.reports[p.name] = replace(r, writes=r.writes + len(checked))
        return len(checked)


def _no_clock() -> float:
    """The loop stamps every audit entry with recording time; an entry without one would get 0."""
    return 0.0


def _session(n_channels: int, fs: float, with_weights: np.ndarray | None):
    from bioloop.host.bioware import (AERToSCConverter, BioHybridSession, MEAToAERTranscoder, SCToOptoEncoder)
    mea = MEAConfig(num_channels=n_channels, sample_rate_hz=fs)
    return BioHybridSession(mea_config=mea, detector=SpikeDetector(mea), transcoder=MEAToAERTranscoder(),
                            sc_converter=AERToSCConverter(), opto_encoder=SCToOptoEncoder(),
                            weights_q88=with_weights)


def run_loop(driver, culture, settings: LoopSettings = LoopSettings(), policies=None, progress=None,
             receive_timeout_s: float = 0.05, light=None, recorder: CodecRecorder | None = None,
             audit: BioAuditLog | None = None) -> LoopResult:
    """Run the closed loop for ``settings.duration_s`` of culture time.

    Parameters
    ----------
    driver : Driver
    culture : bioloop.host.culture.Culture
        (The earlier form ``run_loop(driver, bus, culture, settings)`` is
        still accepted; the bus is not needed beside the driver.)
    settings : LoopSettings
    policies : list, optional
        The slow loop's policies (default ``[Homeostasis()]``, which writes
        nothing: the gateware's homeostasis does the work).
    progress : callable(done_blocks, total_blocks), optional
    light : callable(driver, frames) -> ndarray (frames, K), optional
        The LED duty of the block just sent; default ``driver.leds()``.
    recorder : CodecRecorder, optional
        Gets every block's codes (the recording as a codec stream).
    audit : BioAuditLog, optional
        Where writes are recorded (a new one by default, in ``result.audit``).

    Raises
    ------
    ValueError
        If the core has fewer channels or lanes than the culture has
        electrodes, or there is no light source (no LED read-back and no
        ``light``).
    """
    if callable(getattr(culture, "read32", None)):
        # The earlier form run_loop(driver, bus, culture, settings): the bus is the driver's own.
        culture, settings, policies = settings, (policies if isinstance(policies, LoopSettings) else LoopSettings()), None
    if light is None and not driver.has_leds:
        raise ValueError(f"the bus {type(driver.bus).__name__} cannot report the LED vector and no light "
                         "function was given; the in-silico loop needs the model or verilator backend, "
                         "or light=... reconstructing it from STIM words")
    light = light or (lambda drv, frames: drv.leds())
    policies = [Homeostasis()] if policies is None else list(policies)
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise ValueError(f"policy names must be unique, got {names}")
    fs = float(culture.config.sample_rate_hz)
    n_el = culture.electrode_positions_um.shape[0]
    n_lanes_culture = culture.n_lanes
    N, K = driver.N, driver.K
    if N < n_el or K < n_lanes_culture:
        raise ValueError(f"the core has N = {N} channels and K = {K} lanes; the culture needs "
                         f"{n_el} channels and {n_lanes_culture} lanes")
    controlled = np.arange(min(n_el, n_lanes_culture))
    routes = route_plan(controlled, culture.electrode_positions_um, settings.neighbours)
    clock = clock_plan(n_el, N, np.arange(n_lanes_culture), driver.F) if settings.clock_hz > 0 else {}

    def padded(codes):
        out = np.zeros((codes.shape[0], N), np.int16)
        out[:, :n_el] = codes
        return out

    calib = culture.step(_frames(settings.calibration_ms, fs))
    mea = MEAConfig(num_channels=N, sample_rate_hz=fs, spike_threshold_sigma=settings.threshold_sigma)
    det = SpikeDetector(mea, noise_policy="calibrated")
    det.calibrate(padded(calib.codes))
    thresholds = det.export_thresholds_int16()
    for c in clock:
        thresholds[c] = CLOCK_THRESHOLD
    program_core(driver, thresholds, controlled, settings, fs, routes, clock)

    weights = None
    if any(getattr(p, "needs_weights", False) for p in policies):
        # The session's (N, N) weights follow its STDP rule; the routed entries are the route weights.
        weights = np.zeros((N, N), np.int64)
        for c, lanes in routes.items():
            weights[c, lanes] = settings.weight_q88
    for p in policies:
        if getattr(p, "routes", False) is None:         # a plasticity policy adopts the loop's routes
            p.routes = routes
    session = _session(N, fs, weights)
    if weights is not None:
        session.stdp_pairs = np.array([(c, k) for c, lanes in routes.items() for k in lanes if k != c],
                                      np.int64).reshape(-1, 2)
    for p in policies:
        if callable(getattr(p, "configure_session", None)):
            p.configure_session(session)
    state = LoopState(N, K, controlled, fs, settings, session, clock=dict(clock))
    # A recording replayed on the board has no seed or config digest; a Culture has both.
    seed = getattr(culture.config, "seed", None)
    digest = culture.config.digest() if callable(getattr(culture.config, "digest", None)) else None
    audit = audit if audit is not None else BioAuditLog(
        experiment_id=f"loop-seed{seed}" if seed is not None else "loop", clock=_no_clock)
    audit.append("start", t_s=0.0, policies=names, settings=asdict(settings), routes={str(c): v for c, v in routes.items()},
                 culture_config_hash=digest)
    frame_period_ns = Fraction(10**9) / Fraction(fs).limit_denominator(10**6)
    sorter = None
    if settings.sort_units:
        from bioloop.host.bioware.sorting import ChannelSorter
        sorter = ChannelSorter(n_el, settings.sort_units, fit_spikes=settings.sort_fit_spikes, max_fits_per_call=1)
    slow = SlowLoop(driver, state, policies, audit, frame_period_ns, sorter=sorter)
    slow.start(0.0)

    B = _frames(settings.block_ms, fs)
    n_blocks = max(1, int(round(settings.duration_s * fs / B)))
    per_period = int(round(settings.control_period_ms / settings.block_ms))
    rate = np.zeros((n_blocks, N))
    stims = np.zeros((n_blocks, K), np.int64)
    theta = np.zeros((n_blocks, K), np.int64)
    duty = np.zeros((n_blocks, K))
    truth = np.zeros(n_blocks)
    latencies, logs, pending, pending_codes = [], [], [], []
    plog = {k: [] for k in ("t_s", "rate", "theta", "writes", "bursting", "step", "bus", "sort", "units")}
    current_theta = np.full(K, settings.theta0_q88, np.int64)
    period_start, led_next = 0, None
    for b in range(n_blocks):
        block = culture.step(B, led=led_next)
        codes = padded(block.codes)
        if clock:
            for ch, at in clock_samples(b * B, B, clock, settings.clock_hz, fs).items():
                codes[at, ch] = CLOCK_SPIKE
        driver.send_samples(codes)
        if recorder is not None:
            recorder.push(block.codes)
        words = _receive_all(driver, receive_timeout_s)
        leds = np.asarray(light(driver, B), dtype=np.float32)
        if leds.shape != (B, K):
            raise ValueError(f"the light source reported LEDs of shape {leds.shape}, expected {(B, K)}")
        led_next = leds[:, :n_lanes_culture]
        logs.append(words)
        pending.append(words)
        if sorter is not None:
            pending_codes.append(block.codes)
        f = aer.unpack(words)
        spike = (f.type == AERType.SPIKE.value) & (f.address < N)   # relays to host-side neurons excluded
        np.add.at(rate[b], f.address[spike].astype(np.int64), 1)
        st = f.type == AERType.STIM.value
        np.add.at(stims[b], f.address[st].astype(np.int64), 1)
        duty[b] = leds.mean(axis=0)
        truth[b] = len(block.spikes) / max(1, len(controlled))
        if st.any():
            latencies.append(driver.latency_probe.last)
        if (b + 1) % per_period == 0 or b == n_blocks - 1:
            obs = slow.step(np.concatenate(pending), period_start * B, (b + 1) * B,
                            stims[period_start:b + 1].sum(axis=0),
                            np.concatenate(pending_codes) if sorter is not None else None)
            current_theta = obs.theta_q88
            theta[period_start:b + 1] = current_theta
            plog["t_s"].append(obs.t_s)
            plog["rate"].append(obs.population_rate_hz)
            plog["theta"].append(float(current_theta[controlled].mean()))
            plog["writes"].append(slow.last_writes)
            plog["bursting"].append(obs.bursting)
            plog["step"].append(slow.last_step_s)
            plog["bus"].append(slow.last_bus_s)
            plog["sort"].append(slow.last_sort_s)
            if obs.unit_rates_hz is not None:
                plog["units"].append(obs.unit_rates_hz)
            pending, pending_codes, period_start = [], [], b + 1
        if progress is not None:
            progress(b + 1, n_blocks)
    rate *= fs / B
    truth *= fs / B
    recording = recorder.finish() if recorder is not None else None
    periods = PeriodLog(np.array(plog["t_s"]), np.array(plog["rate"]), np.array(plog["theta"]),
                        np.array(plog["writes"], np.int64), np.array(plog["bursting"], bool), np.array(plog["step"]),
                        np.array(plog["bus"]), np.array(plog["sort"]))
    reports = tuple(slow.reports[n] for n in names)
    # No wall-clock figure goes into the audit log: same seed and settings, same chain (overruns are in timing()).
    audit.append("end", t_s=n_blocks * B / fs, periods=len(plog["t_s"]),
                 writes=len(slow.writes), stopped={r.name: r.stopped for r in reports if r.stopped},
                 recording_sha256=recording.sha256 if recording is not None else None)
    return LoopResult(settings, fs, B, np.arange(n_blocks) * B / fs, rate, stims, theta, duty,
                      np.array(latencies, np.int64), np.concatenate(logs) if logs else np.zeros(0, np.uint64),
                      truth, dict(driver.counters), controlled, routes, periods, reports, slow.overruns, audit,
                      slow.writes, recording, slow.buffer.admission_report(), int(getattr(culture, "n_neurons", 0)),
                      np.array(plog["units"]) if plog["units"] else None)
