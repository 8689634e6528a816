"""The closed loop: culture -> int16 samples -> core -> AER words and LEDs -> culture, block by block.

One function, :func:`run_loop`, drives any backend through the synchronous
:class:`~bioloop.host.driver.Driver`: the Python model of ``Core``, the
Verilated RTL (inside the simulator, see :mod:`bioloop.sim.hil`), or the
board. The simulated backends also report the LED vector per frame
(``bus.leds()``); that is what the in-silico culture feels.

Causality: the LED duty a block of frames produced acts on the culture from
the next block on, so the light is never felt before it was computed; the
loop delay in culture time is one block (``block_ms``). In the gateware the
LED follows a spike within nanoseconds (L_loop, docs/benchmarks.md).

Homeostasis (Turrigiano 2012) in gateware moves θ_k of lane k from the spike
count of channel ``homeo_src[k] = k`` per window: with routes channel k ->
lane k, a busy channel raises θ_k (fewer light pulses, less drive), a quiet
one lowers it. The target rate, τ and window become the integer constants
c*, g, s of DESIGN.md §4 through
:func:`bioloop.host.models.homeostasis.homeostasis_constants`.
"""

from __future__ import annotations

import math
from fractions import Fraction
from dataclasses import asdict, dataclass, field

import numpy as np

from bioloop.host.layouts import AERType, FCLK_HZ
from bioloop.host import aer
from bioloop.host.bioware.detection import SpikeDetector
from bioloop.host.bioware.mea import MEAConfig
from bioloop.host.bus import BusTimeout
from bioloop.host.models.homeostasis import homeostasis_constants
from bioloop.host.observation import SpikeBuffer

__all__ = ["LoopSettings", "LoopResult", "program_core", "run_loop"]


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
    theta_read_ms : float
        How often the host reads θ back (two CSR accesses per lane).
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
    theta_read_ms: float = 25.0

    def __post_init__(self):
        for name in ("duration_s", "block_ms", "calibration_ms", "threshold_sigma", "target_rate_hz",
                     "window_ms", "tau_homeo_ms", "pulse_ms", "theta_read_ms"):
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


@dataclass
class LoopResult:
    """What one closed-loop run measured (block by block).

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
        θ of every lane (Q8.8) read back every ``theta_read_ms`` (held in between)
        and after the last block.
    led_duty : ndarray (B, K)
        Mean LED duty per lane per block.
    latency_cycles : ndarray
        The hardware latency probe read after every block that fired a lane
        (cycles from the SPIKE that caused a STIM to its first LED cycle).
    words : ndarray uint64
        The whole AER log.
    truth_rate_hz : ndarray (B,)
        Ground-truth spikes per second per controlled electrode, per block.
    counters : dict
        The core's counters at the end.
    controlled : ndarray int
        Channels (= lanes) under closed-loop control.
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
    buffer_report: dict = field(default_factory=dict)

    def controlled_rate(self, tail: float = 1 / 3) -> float:
        """Mean detection rate (Hz per channel) of the controlled channels over the last ``tail``."""
        b0 = int(len(self.t_s) * (1 - tail))
        return float(self.rate_hz[b0:, self.controlled].mean())

    def summary(self) -> dict:
        """JSON-safe figures of the run."""
        s = self.settings
        lat = self.latency_cycles
        third = max(1, len(self.t_s) // 3)
        return {
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
            "latency_probe_cycles": {
                "n": int(lat.size),
                "p50": float(np.percentile(lat, 50)) if lat.size else None,
                "p99": float(np.percentile(lat, 99)) if lat.size else None,
                "max": int(lat.max()) if lat.size else None,
                "ns_per_cycle": 1e9 / FCLK_HZ,
            },
            "counters": self.counters,
            "spike_buffer": self.buffer_report,
        }


def _frames(ms: float, fs: float) -> int:
    return max(1, int(round(ms * fs / 1000.0)))


def program_core(driver, thresholds: np.ndarray, controlled: np.ndarray, s: LoopSettings, fs: float) -> None:
    """Write the loop's configuration: thresholds, routes k -> lane k, θ, homeostasis, lanes, safety."""
    N, K = driver.N, driver.K
    driver.disable()
    driver.thresholds[:] = thresholds.astype(int).tolist()
    driver.polarity[:] = "negative"
    driver.refractory = _frames(s.refractory_ms, fs) if s.refractory_ms > 0 else 0
    for c in range(N):
        driver.routes.set(c, [("stim", int(c), s.weight_q88)] if c in set(controlled.tolist()) else [])
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


def run_loop(driver, bus, culture, settings: LoopSettings = LoopSettings(), progress=None,
             receive_timeout_s: float = 0.05) -> LoopResult:
    """Run the closed loop for ``settings.duration_s`` of culture time.

    Parameters
    ----------
    driver : Driver
    bus : the driver's bus; must offer ``leds()`` (the simulated backends do).
    culture : bioloop.host.culture.Culture
    progress : callable(done_blocks, total_blocks), optional

    Raises
    ------
    ValueError
        If the core has fewer channels or lanes than the culture has
        electrodes, or the bus cannot report LEDs.
    """
    if not callable(getattr(bus, "leds", None)):
        raise ValueError(f"the bus {type(bus).__name__} cannot report the LED vector (leds()); "
                         "the in-silico loop needs the model or verilator backend")
    fs = float(culture.config.sample_rate_hz)
    n_el = culture.electrode_positions_um.shape[0]
    n_lanes_culture = culture.n_lanes
    N, K = driver.N, driver.K
    if N < n_el or K < n_lanes_culture:
        raise ValueError(f"the core has N = {N} channels and K = {K} lanes; the culture needs "
                         f"{n_el} channels and {n_lanes_culture} lanes")
    controlled = np.arange(min(n_el, n_lanes_culture))

    def padded(codes):
        out = np.zeros((codes.shape[0], N), np.int16)
        out[:, :n_el] = codes
        return out

    calib = culture.step(_frames(settings.calibration_ms, fs))
    mea = MEAConfig(num_channels=N, sample_rate_hz=fs,
                    spike_threshold_sigma=settings.threshold_sigma)
    det = SpikeDetector(mea, noise_policy="calibrated")
    det.calibrate(padded(calib.codes))
    thresholds = det.export_thresholds_int16()
    program_core(driver, thresholds, controlled, settings, fs)

    B = _frames(settings.block_ms, fs)
    n_blocks = max(1, int(round(settings.duration_s * fs / B)))
    theta_every = max(1, int(round(settings.theta_read_ms / settings.block_ms)))
    rate = np.zeros((n_blocks, N))
    stims = np.zeros((n_blocks, K), np.int64)
    theta = np.zeros((n_blocks, K), np.int64)
    duty = np.zeros((n_blocks, K))
    truth = np.zeros(n_blocks)
    latencies, logs = [], []
    buffer = SpikeBuffer(capacity=1 << 20)
    frame_period_ns = Fraction(10**9) / Fraction(fs).limit_denominator(10**6)
    led_next = None
    for b in range(n_blocks):
        block = culture.step(B, led=led_next)
        driver.send_samples(padded(block.codes))
        words = _receive_all(driver, receive_timeout_s)
        leds = np.asarray(bus.leds(), dtype=np.float32)
        if leds.shape != (B, K):
            raise ValueError(f"the bus reported LEDs of shape {leds.shape}, expected {(B, K)}")
        led_next = leds[:, :n_lanes_culture]
        logs.append(words)
        f = aer.unpack(words)
        spike = (f.type == AERType.SPIKE.value) & (f.address < N)   # relays to host-side neurons excluded
        np.add.at(rate[b], f.address[spike].astype(np.int64), 1)
        st = f.type == AERType.STIM.value
        np.add.at(stims[b], f.address[st].astype(np.int64), 1)
        buffer.ingest_aer(words, frame_period_ns)
        buffer.drain_window_arrays(int(1e9), int((b + 1) * B * frame_period_ns))   # keeps it bounded
        if b % theta_every == 0 or b == n_blocks - 1:
            theta[b] = [driver.theta_now(k) for k in range(K)]
        else:
            theta[b] = theta[b - 1]
        duty[b] = leds.mean(axis=0)
        truth[b] = len(block.spikes) / max(1, len(controlled))
        if st.any():
            latencies.append(driver.latency_probe.last)
        if progress is not None:
            progress(b + 1, n_blocks)
    rate *= fs / B
    truth *= fs / B
    return LoopResult(settings, fs, B, np.arange(n_blocks) * B / fs, rate, stims, theta, duty,
                      np.array(latencies, np.int64), np.concatenate(logs) if logs else np.zeros(0, np.uint64),
                      truth, dict(driver.counters), controlled, buffer.admission_report())
