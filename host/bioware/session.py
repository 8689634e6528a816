"""The closed-loop bioware session: one call per frame of MEA samples.

:meth:`BioHybridSession.process_frame` runs, in order: validation,
artifact blanking, detection (host detector, or the gateware Detector
model on int16 codes), sorting, pharmacology, AER transcoding, stochastic
conversion, opto encoding, culture health, and then, unlike the
reference, the homeostatic threshold update and the plasticity updates
when they are configured. Work is done on arrays; the per-spike and
per-event object lists and the packed AER words of the result are built
only when asked for.

Time: the session keeps a sample clock. A frame without ``t_start_s``
starts where the previous one ended, so timestamps and AER ticks are
continuous across frames; a given ``t_start_s`` is honoured as the time of
the frame's first sample (and the clock continues from there). The
detector's state (previous-sample flags, refractory clocks) assumes the
frames are consecutive pieces of one stream.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bioloop.host import aer

from .audit import BioAuditLog
from .detection import DetectedSpike, SpikeDetector, _snippets, check_frame
from .health import CultureHealth
from .latency import LatencyBudget
from .mea import MEAConfig
from .opto import SCToOptoEncoder
from .pharmacology import PharmModel
from .plasticity import BCMPlasticity, BiologicalSTDP
from .sorting import SpikeSorter
from .stochastic import AERToSCConverter
from .transcoding import AEREvent, MEAToAERTranscoder
from .artifacts import ArtifactRejector

__all__ = ["BioHybridSession", "BioHybridFrameResult", "BioHybridEventResult"]

_KEYS = ("round", "num_spikes", "num_aer_events", "num_bitstreams", "num_opto_pulses",
         "latency_us", "health", "spikes", "aer_events", "bitstreams", "opto_pulses",
         "t_start_s", "duration_s", "aer_words", "spike_counts", "thresholds_q88",
         "weights_q88", "skipped_opto_channels", "clipped_samples", "blanked_samples")


@dataclass(eq=False)
class BioHybridFrameResult:
    """What one frame produced. Attribute access and a read-only mapping view.

    ``result.round == result["round"]``; ``"latency_us" in result``;
    ``result.keys()``. Assigning through the mapping view raises TypeError.
    ``spikes``, ``aer_events`` and ``aer_words`` are built from the arrays on
    first access.
    """
    round: int
    num_spikes: int
    num_aer_events: int
    num_bitstreams: int
    num_opto_pulses: int
    latency_us: float
    health: dict
    bitstreams: dict
    opto_pulses: list
    t_start_s: float
    duration_s: float
    spike_counts: np.ndarray
    thresholds_q88: np.ndarray | None
    weights_q88: np.ndarray | None
    skipped_opto_channels: tuple
    clipped_samples: int
    blanked_samples: int
    # arrays behind the lazy lists
    spike_channel: np.ndarray = field(repr=False)
    spike_time_s: np.ndarray = field(repr=False)
    spike_sample_index: np.ndarray = field(repr=False)
    spike_amplitude_uv: np.ndarray = field(repr=False)
    spike_unit: np.ndarray = field(repr=False)
    spike_waveforms: np.ndarray = field(repr=False)
    aer_neuron_id: np.ndarray = field(repr=False)
    aer_timestamp: np.ndarray = field(repr=False)
    aer_source: int = 0
    _spikes: list | None = field(default=None, repr=False)
    _words: np.ndarray | None = field(default=None, repr=False)
    _events: list | None = field(default=None, repr=False)

    @property
    def spikes(self) -> list[DetectedSpike]:
        """Detected (and sorted, modulated) spikes, by time then channel."""
        if self._spikes is None:
            ch, ts = self.spike_channel.tolist(), self.spike_time_s.tolist()
            amp, un = self.spike_amplitude_uv.tolist(), self.spike_unit.tolist()
            si, w = self.spike_sample_index.tolist(), self.spike_waveforms
            self._spikes = [DetectedSpike(ch[i], ts[i], amp[i], un[i], w[i], si[i])
                            for i in range(len(ch))]
        return self._spikes

    @property
    def aer_words(self) -> np.ndarray:
        """SPIKE words (uint64, DESIGN.md §3) of the events, packed by
        :func:`bioloop.host.aer.pack` on first access."""
        if self._words is None:
            self._words = aer.pack(self.aer_neuron_id, self.aer_source, aer.AERType.SPIKE.value,
                                   self.aer_timestamp)
        return self._words

    @property
    def aer_events(self) -> list[AEREvent]:
        """AER events, by tick then neuron id."""
        if self._events is None:
            self._events = [AEREvent(n, t) for n, t in zip(self.aer_neuron_id.tolist(),
                                                           self.aer_timestamp.tolist(), strict=True)]
        return self._events

    # -- read-only mapping view ---------------------------------------
    def keys(self) -> list[str]:
        return list(_KEYS)

    def __getitem__(self, key: str) -> Any:
        if key not in _KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in _KEYS

    def __iter__(self):
        return iter(_KEYS)

    def __len__(self) -> int:
        return len(_KEYS)

    def items(self):
        return [(k, self[k]) for k in _KEYS]

    def __setitem__(self, key, value):
        raise TypeError("the mapping view of BioHybridFrameResult is read-only; "
                        "set the attribute instead")

    def fingerprint(self) -> str:
        """SHA-256 over everything deterministic in the result (not latency_us)."""
        h = hashlib.sha256()
        for a in (self.spike_channel, self.spike_sample_index, self.spike_time_s,
                  self.spike_amplitude_uv, self.spike_unit, self.spike_waveforms,
                  self.aer_words, self.spike_counts):
            h.update(np.ascontiguousarray(a).tobytes())
        for k in sorted(self.bitstreams):
            h.update(int(k).to_bytes(4, "little"))
            h.update(self.bitstreams[k].tobytes())
        for p in self.opto_pulses:
            h.update(repr((p.channel_id, p.wavelength_nm, p.intensity_mw_mm2, p.duration_ms,
                           p.onset_ms)).encode())
        for a in (self.thresholds_q88, self.weights_q88):
            if a is not None:
                h.update(a.tobytes())
        h.update(repr(sorted(self.health.items())).encode())
        return h.hexdigest()


@dataclass(frozen=True, eq=False)
class BioHybridEventResult:
    """What :meth:`BioHybridSession.process_events` made of one period of detected spikes.

    Members
    -------
    round : int
    t_start_s, duration_s : float
    spike_counts : ndarray (N,)
        Spikes per channel in the period.
    rates_hz : ndarray (N,)
        ``spike_counts / duration_s``.
    health : dict
        :meth:`CultureHealth.assess_counts` of the period.
    weights_q88 : ndarray or None
        The (N, N) weights after this period's STDP/BCM updates (a copy).
    """
    round: int
    t_start_s: float
    duration_s: float
    spike_counts: np.ndarray
    rates_hz: np.ndarray
    health: dict
    weights_q88: np.ndarray | None


def _detector_model():
    from bioloop.host.models.detector import Detector
    return Detector


@dataclass(eq=False)
class BioHybridSession:
    """Closed-loop session over an MEA.

    Parameters
    ----------
    mea_config, detector, transcoder, sc_converter, opto_encoder
        The pipeline stages.
    stdp : BiologicalSTDP
        Pair rule applied to ``weights_q88`` (when weights are given).
    health_monitor : CultureHealth
    artifact_rejector : ArtifactRejector, optional
        Blanks around ``stim_times_s``.
    pharm_model : PharmModel, optional
    latency_budget : LatencyBudget, optional
        Records every frame's wall-clock latency.
    homeostatic : HomeostaticPlasticity, optional
        Updates ``thresholds_q88`` (one Q8.8 stim threshold per channel,
        what the host writes to the gateware θ registers) from each frame's
        rates.
    sorter : SpikeSorter, optional
        Assigns units; fitted on the first frame with enough waveforms when
        ``sorter_auto_fit`` (the default), else call ``sorter.fit`` yourself.
    bcm : BCMPlasticity, optional
        Rate rule applied to ``weights_q88`` (when weights are given).
    weights_q88 : numpy.ndarray, optional
        (N, N) int16 signed Q8.8 channel-to-channel weights w[pre, post] the
        plasticity rules update.
    thresholds_q88 : numpy.ndarray, optional
        Initial stim thresholds (default 256 = 1.0 per channel).
    use_gateware_model : bool
        Detect with the gateware Detector's integer model on int16 codes
        (float input is quantized with ``adc_uv_per_code``; clipped samples
        are counted) with the host detector's thresholds exported as codes,
        so the host and hardware paths give identical events.
    audit_log : BioAuditLog, optional
        Gets one entry per frame, stamped with the frame's time.
    stdp_pairs : numpy.ndarray, optional
        (P, 2) ``(pre, post)`` entries of ``weights_q88`` that
        :meth:`process_events` updates by STDP (all when None): the closed
        loop's routed synapses.
    """
    mea_config: MEAConfig
    detector: SpikeDetector
    transcoder: MEAToAERTranscoder
    sc_converter: AERToSCConverter
    opto_encoder: SCToOptoEncoder
    stdp: BiologicalSTDP = field(default_factory=BiologicalSTDP)
    health_monitor: CultureHealth = field(default_factory=CultureHealth)
    artifact_rejector: ArtifactRejector | None = None
    pharm_model: PharmModel | None = None
    latency_budget: LatencyBudget | None = None
    homeostatic: Any = None
    sorter: SpikeSorter | None = None
    round_count: int = 0
    bcm: BCMPlasticity | None = None
    weights_q88: np.ndarray | None = None
    thresholds_q88: np.ndarray | None = None
    use_gateware_model: bool = False
    sorter_auto_fit: bool = True
    audit_log: BioAuditLog | None = None
    stdp_pairs: np.ndarray | None = None

    def __post_init__(self):
        cfg = self.mea_config
        if not isinstance(cfg, MEAConfig):
            raise TypeError(f"mea_config must be an MEAConfig, not {type(cfg).__name__}")
        if self.detector.config.num_channels != cfg.num_channels:
            raise ValueError(f"detector has {self.detector.config.num_channels} channels, "
                             f"mea_config {cfg.num_channels}")
        n = cfg.num_channels
        if self.weights_q88 is not None:
            w = np.asarray(self.weights_q88)
            if w.shape != (n, n) or w.dtype.kind not in "iu" or (w.size and (w.min() < -32768 or w.max() > 32767)):
                raise ValueError(f"weights_q88 must be an int16-range ({n}, {n}) integer matrix, "
                                 f"not {w.dtype} {w.shape}")
            self.weights_q88 = w.astype(np.int16)
        if self.homeostatic is not None and self.thresholds_q88 is None:
            self.thresholds_q88 = np.full(n, 256, np.int64)
        if self.thresholds_q88 is not None:
            th = np.asarray(self.thresholds_q88)
            if th.shape != (n,) or th.dtype.kind not in "iu":
                raise ValueError(f"thresholds_q88 must be ({n},) integers, not {th.dtype} {th.shape}")
            self.thresholds_q88 = th.astype(np.int64)
        cmap = self.transcoder.channel_map
        if cmap and set(range(n)) - set(cmap):
            missing = min(set(range(n)) - set(cmap))
            raise ValueError(f"transcoder.channel_map has no entry for channel {missing}; "
                             f"every recorded channel needs a neuron id")
        nmax = self.sc_converter.num_neurons
        if nmax is not None:
            cmap = self.transcoder.channel_map
            top = max(cmap.values()) if cmap else n - 1
            if top >= nmax:
                raise ValueError(f"neuron id {top} can occur but the SC converter has num_neurons={nmax}")
        self._next_t_s = 0.0
        self._hw = None
        if self.use_gateware_model:
            # Built now so that an unsupported channel count (the gateware needs an
            # even count, 2..4096) fails here, not half-way through a frame.
            self._hw = _detector_model()(n, polarity=self.detector.polarity_codes,
                                         refractory=self.detector.refractory_samples)
        self._hw_frames = 0
        self._stdp_tail_t = np.empty(0)
        self._stdp_tail_c = np.empty(0, np.int64)

    def reset(self) -> None:
        """Start a new recording: clock at 0, detector and gateware model state cleared.

        What was learned is kept: sorter, thresholds, weights, BCM averages,
        the round count and the audit log.
        """
        self.detector.reset()
        self._next_t_s = 0.0
        if self._hw is not None:
            self._hw.reset()
        self._hw_frames = 0
        self._stdp_tail_t = np.empty(0)
        self._stdp_tail_c = np.empty(0, np.int64)

    # -- detection paths -----------------------------------------------
    def _quantize(self, v):
        if v.dtype.kind in "iu":
            if v.size and (v.min() < -32768 or v.max() > 32767):
                raise ValueError("integer samples must be int16 ADC codes (-32768..32767)")
            return v.astype(np.int16, copy=False), 0
        q = np.rint(v / self.mea_config.adc_uv_per_code)
        clipped = int(np.count_nonzero((q < -32768) | (q > 32767)))
        return np.clip(q, -32768, 32767).astype(np.int16), clipped

    def _detect_gateware(self, v, t_start_s):
        det = self.detector
        codes, clipped = self._quantize(v)
        T, fs = codes.shape[0], self.mea_config.sample_rate_hz
        half = max(1, int(round(det.snippet_ms * 1e-3 * fs / 2)))
        if T == 0:
            e = np.empty(0, np.int64)
            return e, e, np.empty(0), np.empty(0), np.empty((0, 2 * half)), clipped
        det._update_sigma(codes)
        thr = det.export_thresholds_int16()
        self._hw.thresholds[:] = thr   # the CSR write of the new thresholds
        d = np.asarray(self._hw.process(codes), dtype=np.int64).reshape(-1, 2)
        local = d[:, 0] - self._hw_frames
        self._hw_frames += T
        ch = d[:, 1].copy()
        w, amp = _snippets(codes, local, ch, half, det._pol_arr, self.mea_config.adc_uv_per_code)
        return ch, d[:, 0], t_start_s + local / fs, amp, w, clipped

    # -- detected spikes (the slow loop's path: the gateware detected them) --
    def process_events(self, channels, times_s, t_start_s: float, duration_s: float) -> BioHybridEventResult:
        """Run the analyses and plasticity of a frame on spikes detected elsewhere (AER SPIKE words).

        The closed loop's detector is the gateware Detector, so the slow loop
        hands the session spike trains, not voltages: per-channel rates and
        culture health of the period, then the STDP rule (pairs across
        period boundaries counted once, as in :meth:`process_frame`) and BCM
        on ``weights_q88`` when configured. The audit log, if any, gets one
        ``events`` entry.

        Parameters
        ----------
        channels : array_like of int
            Channel of every spike, 0..N-1.
        times_s : array_like of float
            Spike times in seconds, non-decreasing, within
            ``[t_start_s, t_start_s + duration_s]``.
        t_start_s, duration_s : float
            The period (``duration_s`` > 0).

        Raises
        ------
        ValueError
            On mismatched lengths, a channel outside 0..N-1, a time outside
            the period, or a period that starts before the previous one ended.
        """
        n = self.mea_config.num_channels
        ch = np.asarray(channels, dtype=np.int64).reshape(-1)
        ts = np.asarray(times_s, dtype=np.float64).reshape(-1)
        if ch.shape != ts.shape:
            raise ValueError(f"{ch.size} channels but {ts.size} times")
        if not (isinstance(duration_s, (int, float)) and math.isfinite(duration_s) and duration_s > 0):
            raise ValueError(f"duration_s must be finite and > 0, not {duration_s!r}")
        if not (isinstance(t_start_s, (int, float)) and math.isfinite(t_start_s) and t_start_s >= 0):
            raise ValueError(f"t_start_s must be finite and >= 0, not {t_start_s!r}")
        if t_start_s < self._next_t_s - 1e-9:
            raise ValueError(f"t_start_s {t_start_s!r} is before the end of the previous period "
                             f"({self._next_t_s!r} s)")
        if ch.size and (ch.min() < 0 or ch.max() >= n):
            raise ValueError(f"channel {int(ch.min() if ch.min() < 0 else ch.max())} is outside 0..{n - 1}")
        t_end = t_start_s + duration_s
        if ts.size and (not np.isfinite(ts).all() or ts.min() < t_start_s - 1e-9 or ts.max() > t_end + 1e-9):
            raise ValueError(f"spike times must lie in [{t_start_s}, {t_end}] s")
        counts = np.bincount(ch, minlength=n)
        health = self.health_monitor._assess(counts, float(duration_s))
        if self.weights_q88 is not None:
            if self.stdp is not None:
                t_ms = np.concatenate([self._stdp_tail_t, ts * 1e3])
                c_all = np.concatenate([self._stdp_tail_c, ch])
                if self.stdp_pairs is None:
                    self.weights_q88 = self.stdp.update_weights_q88(
                        self.weights_q88, t_ms, c_all, new_from=self._stdp_tail_t.size)
                else:
                    self.weights_q88 = self.stdp.update_pairs_q88(
                        self.weights_q88, t_ms, c_all, self.stdp_pairs, new_from=self._stdp_tail_t.size)
                recent = t_ms >= t_end * 1e3 - self.stdp.window_ms
                self._stdp_tail_t, self._stdp_tail_c = t_ms[recent], c_all[recent]
            if self.bcm is not None:
                rates = counts / duration_s
                self.weights_q88 = self.bcm.update(self.weights_q88, rates, rates, duration_s * 1e3)
        self.round_count += 1
        self._next_t_s = t_end
        if self.audit_log is not None:
            self.audit_log.append("events", t_s=t_start_s, round=self.round_count, spikes=int(ch.size))
        return BioHybridEventResult(self.round_count, float(t_start_s), float(duration_s), counts,
                                    counts / duration_s, health,
                                    None if self.weights_q88 is None else self.weights_q88.copy())

    # -- the frame -----------------------------------------------------
    def process_frame(self, voltage_data, t_start_s: float | None = None,
                      stim_times_s=None) -> BioHybridFrameResult:
        """Run the closed loop on one (samples, channels) frame.

        Parameters
        ----------
        voltage_data : array_like, shape (samples, channels)
            Float µV or int16 ADC codes. An empty frame is processed (no
            spikes, health "empty") and advances nothing but the round.
        t_start_s : float, optional
            Time of the first sample; default, where the last frame ended.
        stim_times_s : sequence of float, optional
            Stimulus times (s) for artifact blanking; checked always, used
            when an ``artifact_rejector`` is configured.

        Raises
        ------
        TypeError, ValueError
            Bad input (named in the message), or a ``t_start_s`` before the
            end of the previous frame (timestamps may not go backwards).
        OverflowError
            The frame's AER ticks would not fit 32 bits.

        All of these are raised before any state changes.
        """
        t_begin = time.perf_counter_ns()
        cfg = self.mea_config
        n, fs = cfg.num_channels, cfg.sample_rate_hz
        v = check_frame(voltage_data, n)
        if t_start_s is None:
            t0 = self._next_t_s
        else:
            if isinstance(t_start_s, bool) or not isinstance(t_start_s, (int, float)) \
                    or not math.isfinite(t_start_s) or t_start_s < 0:
                raise ValueError(f"t_start_s must be finite and >= 0, not {t_start_s!r}")
            t0 = float(t_start_s)
        T = v.shape[0]
        duration = T / fs
        if t0 < self._next_t_s - 0.5 / fs:
            raise ValueError(f"t_start_s {t0!r} is before the end of the previous frame "
                             f"({self._next_t_s!r} s): timestamps would go backwards; call reset() "
                             f"to start a new recording")
        last_tick = math.floor(round((t0 + duration) * self.transcoder.hw_clock_hz, 6))
        if last_tick > aer.FIELD_MAX["timestamp"]:
            raise OverflowError(f"this frame ends at AER tick {last_tick}, beyond the 32-bit "
                                f"timestamp; call reset() to start a new epoch or lower hw_clock_hz")

        if stim_times_s is not None:
            st = np.asarray(stim_times_s, dtype=np.float64).reshape(-1)
            if st.size and not np.isfinite(st).all():
                raise ValueError("stim_times_s must be finite")
        blanked = 0
        if self.artifact_rejector is not None and stim_times_s is not None:
            v = self.artifact_rejector.blank(v, stim_times_s, fs, t0)
            blanked = self.artifact_rejector.blanked_samples

        # detection
        if self.use_gateware_model:
            ch, sidx, ts, amp, wf, clipped = self._detect_gateware(v, t0)
        else:
            b = self.detector._detect(v, None, t0)
            ch, sidx, ts, amp, wf, clipped = (b.channel, b.sample_index, b.timestamp_s,
                                              b.amplitude_uv, b.waveforms, 0)

        # sorting
        units = np.zeros(ch.size, np.int64)
        if self.sorter is not None and ch.size:
            if not self.sorter.fitted and self.sorter_auto_fit:
                self.sorter.fit_waveforms(wf)
            if self.sorter.fitted:
                units = self.sorter.predict_waveforms(wf)

        # pharmacology
        if self.pharm_model is not None and ch.size:
            g = self.pharm_model.effective_gain(t0)
            if g != 1.0:
                keep, tmpl, new_t = PharmModel.plan(ts, ch, g)
                sel = np.concatenate([keep, tmpl])
                ts = np.concatenate([ts[keep], new_t])
                sidx = np.concatenate([sidx[keep], np.full(tmpl.size, -1, np.int64)])
                ch, amp, wf, units = ch[sel], amp[sel], wf[sel], units[sel]
                order = np.lexsort((ch, ts))
                ch, ts, sidx, amp, wf, units = (ch[order], ts[order], sidx[order], amp[order],
                                                wf[order], units[order])

        # AER
        ids, ticks = self.transcoder._transcode_detected(ch, ts)

        # stochastic conversion and opto encoding
        if ids.size and ids.max() < 65536:
            per_id = np.bincount(ids)
            uniq = np.flatnonzero(per_id)
            counts = per_id[uniq]
        else:
            uniq, counts = np.unique(ids, return_counts=True)
        streams = self.sc_converter._streams(uniq, counts / (counts + self.sc_converter.smoothing_constant))
        L = self.sc_converter.bitstream_length
        dens = [np.count_nonzero(streams[k]) / L for k in uniq.tolist()]
        pulses = self.opto_encoder.encode_densities(uniq, dens, t0 * 1e3)

        # health
        spike_counts = np.bincount(ch, minlength=n)
        health = self.health_monitor._assess(spike_counts, duration)

        # homeostasis and plasticity (applied, not just stored)
        if self.homeostatic is not None and T:
            rates = (spike_counts / duration).tolist()
            upd = self.homeostatic.update_threshold
            dt_ms = duration * 1e3
            self.thresholds_q88 = np.array(
                [upd(int(th), r, dt_ms) for th, r in zip(self.thresholds_q88.tolist(), rates, strict=True)],
                np.int64)
        if self.weights_q88 is not None and T:
            if self.stdp is not None:
                t_ms = np.concatenate([self._stdp_tail_t, ts * 1e3])
                c_all = np.concatenate([self._stdp_tail_c, ch])
                self.weights_q88 = self.stdp.update_weights_q88(
                    self.weights_q88, t_ms, c_all, new_from=self._stdp_tail_t.size)
                recent = t_ms >= (t0 + duration) * 1e3 - self.stdp.window_ms
                self._stdp_tail_t, self._stdp_tail_c = t_ms[recent], c_all[recent]
            if self.bcm is not None:
                rates = spike_counts / duration
                self.weights_q88 = self.bcm.update(self.weights_q88, rates, rates, duration * 1e3)

        self.round_count += 1
        self._next_t_s = t0 + duration
        if self.audit_log is not None:
            self.audit_log.append("frame", t_s=t0, round=self.round_count, samples=T,
                                  spikes=int(ch.size), aer_words=int(ids.size),
                                  opto_pulses=len(pulses),
                                  skipped_opto=list(self.opto_encoder.last_skipped))
        latency_us = (time.perf_counter_ns() - t_begin) / 1e3
        if self.latency_budget is not None:
            self.latency_budget.record(latency_us)
        return BioHybridFrameResult(
            round=self.round_count, num_spikes=int(ch.size), num_aer_events=int(ids.size),
            num_bitstreams=len(streams), num_opto_pulses=len(pulses), latency_us=latency_us,
            health=health, bitstreams=streams, opto_pulses=pulses, t_start_s=t0,
            duration_s=duration, spike_counts=spike_counts,
            thresholds_q88=None if self.thresholds_q88 is None else self.thresholds_q88.copy(),
            weights_q88=None if self.weights_q88 is None else self.weights_q88.copy(),
            skipped_opto_channels=self.opto_encoder.last_skipped, clipped_samples=clipped,
            blanked_samples=blanked, spike_channel=ch, spike_time_s=ts, spike_sample_index=sidx,
            spike_amplitude_uv=amp, spike_unit=units, spike_waveforms=wf,
            aer_neuron_id=ids, aer_timestamp=ticks, aer_source=self.transcoder.source)
