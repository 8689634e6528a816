"""Detected spikes to address events, and address events to 64-bit AER words.

A spike at time t_s (seconds) becomes an event with integer tick
τ = ⌊t_s · f_hw⌋ and neuron id ``channel_map[channel]`` (the channel itself
without a map). With ``hw_clock_hz`` equal to the sample rate the tick is
the frame index, which is what the gateware writes into its AER words
(DESIGN.md §2), so host and hardware streams compare word for word.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from bioloop.host import aer

from .detection import DetectedSpike

__all__ = ["AEREvent", "MEAToAERTranscoder", "events_to_words", "words_to_events"]

_ADDR_MAX = aer.FIELD_MAX["address"]
_TS_MAX = aer.FIELD_MAX["timestamp"]


@dataclass(slots=True)
class AEREvent:
    """One address event.

    Parameters
    ----------
    neuron_id : int
        Address (0..2**20-1, the AER word's address field).
    timestamp : int
        Tick of the transcoder's hardware clock (0..2**32-1).
    valid : bool
        False marks an event to be ignored downstream.
    weight : int
        Synaptic weight, signed Q8.8 (256 = 1.0).
    """
    neuron_id: int
    timestamp: int
    valid: bool = True
    weight: int = 256


def _check_ids(ids: np.ndarray, what: str) -> None:
    if ids.size and (ids.min() < 0 or ids.max() > _ADDR_MAX):
        bad = ids[(ids < 0) | (ids > _ADDR_MAX)][0]
        raise ValueError(f"{what} {int(bad)} is outside the AER address range 0..{_ADDR_MAX}")


def _check_ticks(ticks: np.ndarray) -> None:
    if ticks.size and (ticks.min() < 0 or ticks.max() > _TS_MAX):
        bad = ticks[(ticks < 0) | (ticks > _TS_MAX)][0]
        raise OverflowError(f"AER timestamp {int(bad)} does not fit 32 bits (0..{_TS_MAX}); "
                            f"start a new epoch or lower hw_clock_hz")


class MEAToAERTranscoder:
    """Turns detected spikes into :class:`AEREvent` lists and AER words.

    Parameters
    ----------
    hw_clock_hz : float
        Tick rate of the AER timestamps. Set it to the sample rate to get
        frame-index timestamps, as the gateware does.
    channel_map : mapping of int to int, optional
        Channel -> neuron id. Channels missing from a given map are an
        error, not silently dropped.
    source : int
        The AER word's source field (well or chip id, 0..255).
    """

    def __init__(self, hw_clock_hz: float = 1e6, channel_map: Mapping[int, int] | None = None,
                 source: int = 0):
        if isinstance(hw_clock_hz, bool) or not isinstance(hw_clock_hz, (int, float)) \
                or not math.isfinite(hw_clock_hz) or hw_clock_hz <= 0:
            raise ValueError(f"hw_clock_hz must be finite and > 0, not {hw_clock_hz!r}")
        if not isinstance(source, (int, np.integer)) or not 0 <= source <= aer.FIELD_MAX["source"]:
            raise ValueError(f"source must be in 0..{aer.FIELD_MAX['source']}, not {source!r}")
        self.hw_clock_hz = float(hw_clock_hz)
        self.source = int(source)
        self.channel_map = None if channel_map is None else dict(channel_map)
        self._lut = None
        if self.channel_map:
            keys = np.fromiter(self.channel_map.keys(), np.int64)
            vals = np.fromiter(self.channel_map.values(), np.int64)
            if keys.min() < 0:
                raise ValueError(f"channel_map has a negative channel {int(keys.min())}")
            _check_ids(vals, "channel_map neuron id")
            self._lut = np.full(int(keys.max()) + 1, -1, np.int64)
            self._lut[keys] = vals

    # -- arrays --------------------------------------------------------
    def neuron_ids(self, channels) -> np.ndarray:
        """Neuron id of each channel (int64), through ``channel_map`` if given."""
        ch = np.asarray(channels, dtype=np.int64)
        if self._lut is None:
            _check_ids(ch, "channel")
            return ch
        inside = (ch >= 0) & (ch < self._lut.size)
        ids = np.where(inside, self._lut[np.where(inside, ch, 0)], -1)
        if ids.size and ids.min() < 0:
            bad = ch[ids < 0][0]
            raise KeyError(f"channel {int(bad)} is not in channel_map")
        return ids

    def ticks(self, timestamps_s) -> np.ndarray:
        """τ = ⌊t·f_hw⌋ as int64.

        The product is rounded to 1e-6 tick before the floor, so a time that
        is an exact multiple of the tick in decimal (t = i/fs) is not pushed
        one tick down by binary rounding.
        """
        t = np.asarray(timestamps_s, dtype=np.float64)
        if t.size and not np.isfinite(t).all():
            raise ValueError("spike timestamps must be finite")
        if t.size and t.min() < 0:
            raise ValueError(f"spike timestamp {float(t.min())} s is negative")
        return np.floor(np.round(t * self.hw_clock_hz, 6)).astype(np.int64)

    def transcode_arrays(self, channels, timestamps_s) -> tuple[np.ndarray, np.ndarray]:
        """(neuron ids, ticks) sorted by tick then neuron id."""
        ids = self.neuron_ids(channels)
        tk = self.ticks(timestamps_s)
        if ids.shape != tk.shape:
            raise ValueError(f"{ids.size} channels but {tk.size} timestamps")
        _check_ticks(tk)
        order = np.lexsort((ids, tk))
        return ids[order], tk[order]

    def _transcode_detected(self, channels: np.ndarray, timestamps_s: np.ndarray):
        """:meth:`transcode_arrays` for detector output: channels in range, times finite and >= 0.

        The session checks the frame's last tick against the 32-bit limit
        before detecting, so only the channel map is checked here.
        """
        if self._lut is None:
            ids = channels
        else:
            ids = self.neuron_ids(channels)
        tk = np.floor(np.round(timestamps_s * self.hw_clock_hz, 6)).astype(np.int64)
        order = np.lexsort((ids, tk))
        return ids[order], tk[order]

    # -- objects -------------------------------------------------------
    def transcode(self, spikes: list[DetectedSpike], t_start_s: float = 0.0) -> list[AEREvent]:
        """Events for ``spikes``, sorted by tick then neuron id.

        Parameters
        ----------
        spikes : list of DetectedSpike
        t_start_s : float
            Epoch origin subtracted from every spike time before ticking
            (0 keeps absolute time, continuous across frames).
        """
        if not isinstance(t_start_s, (int, float)) or not math.isfinite(t_start_s):
            raise ValueError(f"t_start_s must be finite, not {t_start_s!r}")
        ch = np.fromiter((s.channel for s in spikes), np.int64, len(spikes))
        ts = np.fromiter((s.timestamp_s for s in spikes), np.float64, len(spikes)) - t_start_s
        ids, tk = self.transcode_arrays(ch, ts)
        return [AEREvent(i, t) for i, t in zip(ids.tolist(), tk.tolist(), strict=True)]

    def to_words(self, events: list[AEREvent]) -> np.ndarray:
        """SPIKE words (uint64) of the valid events, in order."""
        return events_to_words(events, self.source)


def events_to_words(events: list[AEREvent], source: int = 0) -> np.ndarray:
    """Pack the valid events as SPIKE words (DESIGN.md §3), uint64, in order."""
    ev = [e for e in events if e.valid]
    ids = np.fromiter((e.neuron_id for e in ev), np.int64, len(ev))
    tk = np.fromiter((e.timestamp for e in ev), np.int64, len(ev))
    _check_ids(ids, "neuron_id")
    _check_ticks(tk)
    return aer.pack(ids, source, aer.AERType.SPIKE.value, tk)


def words_to_events(words) -> list[AEREvent]:
    """The SPIKE words of a uint64 array as events (weight 1.0); other types are skipped."""
    f = aer.unpack(np.asarray(words))
    keep = f.type == aer.AERType.SPIKE.value
    return [AEREvent(int(a), int(t)) for a, t in zip(f.address[keep].tolist(),
                                                     f.timestamp[keep].tolist(), strict=True)]
