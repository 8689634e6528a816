"""Cycle-exact model of the gateware AERPath: the block models wired as in the RTL."""

from __future__ import annotations

from typing import NamedTuple

from .detector import Detector
from .aer_encoder import AEREncoder
from .aer_router import AERRouter, RoutedEntry

__all__ = ["AERPath", "DETECTOR_LATENCY"]

#: Edges from a beat's handshake to its detections at the encoder input.
DETECTOR_LATENCY = 2


class PathStep(NamedTuple):
    accepted: bool
    host: int | None
    stim: RoutedEntry | None


class AERPath:
    """Model of :class:`bioloop.gateware.aer_path.AERPath`; one :meth:`step` per clock edge.

    Starts in the state the RTL reaches after its reset sweep.
    """

    def __init__(self, n_channels: int, fanout: int = 16, thresholds=None, polarity=None,
                 refractory: int = 0, source: int = 0, ts_bits: int = 16):
        self.detector = Detector(n_channels, thresholds, polarity, refractory)
        self.encoder = AEREncoder(n_channels, ts_bits, source)
        self.router = AERRouter(n_channels, fanout)
        self._stage1 = (0, 0)
        self._stage2 = (0, 0)
        self._frame = 0

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
            hits, frame = self.detector.beat(beat & 0xFFFFFFFF, bool(beat >> 32))
            self._stage1 = (sum(1 << c for c in hits), frame)
        else:
            self._stage1 = (0, self._stage1[1])
        self._frame = self.detector.frame
        return PathStep(beat is not None, out.host, out.stim)
