"""Cycle-exact model of the gateware AERPath: the block models wired as in the RTL."""

from __future__ import annotations

from typing import NamedTuple

from bioloop.host.parameters import check_encoder_cadence

from .detector import Detector
from .aer_encoder import AEREncoder
from .aer_router import AERRouter, Routed

__all__ = ["AERPath", "DETECTOR_LATENCY"]

#: Edges from a beat's handshake to its detections at the encoder input.
DETECTOR_LATENCY = 2


class PathStep(NamedTuple):
    accepted: bool
    host: int | None
    stim: Routed | None


class AERPath:
    """Model of :class:`bioloop.gateware.aer_path.AERPath`; one :meth:`step` per clock edge.

    Starts in the state the RTL reaches after its reset sweep.
    """

    def __init__(self, n_channels: int, fanout: int = 16, thresholds=None, polarity=None,
                 refractory: int = 0, source: int = 0, ts_bits: int = 16, encoder_cadence: str = "queue",
                 queue_depth: int | None = None):
        check_encoder_cadence(encoder_cadence, "encoder_cadence")
        self.detector = Detector(n_channels, thresholds, polarity, refractory)
        self.encoder = AEREncoder(n_channels, ts_bits, source, cadence=encoder_cadence, queue_depth=queue_depth)
        self.router = AERRouter(n_channels, fanout)
        self.reset()

    def reset(self) -> None:
        """Every block and the pipeline back to their reset state (``soft_reset``)."""
        self.detector.reset()
        self.encoder.reset()
        self.router.reset()
        self._stage1 = (0, 0)
        self._stage2 = (0, 0)
        self._frame = 0

    @property
    def frame(self) -> int:
        """The frame counter as the encoder sees it before the coming edge."""
        return self._frame

    @property
    def detected(self) -> int:
        """Detections (one bit per channel) at the encoder's input before the coming edge."""
        return self._stage2[0]

    @property
    def quiet(self) -> bool:
        """Nothing in flight: no detection in the pipeline, the encoder and router idle."""
        return not (self._stage1[0] or self._stage2[0]) and self.encoder.idle and self.router.idle

    def step_quiet(self, n: int, samples=None, start: int = 0) -> bool:
        """``n`` edges while :attr:`quiet`, the outputs ready: with ``samples`` (int16, N), beats
        ``start .. start+n-1`` of that frame, none holding a detection
        (:meth:`Detector.first_crossing`); without, no beats. The same as ``n`` steps; returns
        whether the frame ended."""
        f0 = self._frame
        if samples is not None:
            ended = self.detector.step_quiet(samples, start, n)
            self._stage1 = self._stage2 = (0, f0)
            self._frame = self.detector.frame
        else:
            ended = False
            self._stage1 = self._stage2 = (0, self._stage1[1])
        self.encoder.follow(f0)
        return ended

    def step_quiet_frames(self, frames) -> int:
        """Whole frames (int16, (m, N)) from a frame boundary while :attr:`quiet`, up to the first
        frame with a detection; returns how many were taken (N/2 edges each)."""
        m = self.detector.step_quiet_frames(frames)
        if m:
            f_last = self._frame + m - 1       # the frame visible before the last edge
            self._stage1 = self._stage2 = (0, f_last)
            self._frame = self.detector.frame
            self.encoder.follow(f_last)
        return m

    def step(self, beat: int | None, host_ready: bool = True, stim_ready: bool = True) -> PathStep:
        """``beat`` is a SampleBeat payload (data bits 0-31, TLAST bit 32) or None."""
        spikes, ts = self._stage2
        now = self._frame
        enc = self.encoder
        offered = enc.word if enc.valid else None
        ready = self.router.ready(host_ready, stim_ready)
        out = self.router.step(offered, host_ready, stim_ready)
        enc.step(spikes, ts, now, ready)
        self._stage2 = self._stage1
        if beat is not None:
            hits, frame = self.detector.step(beat)
            self._stage1 = (sum(1 << c for c in hits), frame)
        else:
            self._stage1 = (0, self._stage1[1])
        self._frame = self.detector.frame
        return PathStep(beat is not None, out.host, out.stim)
