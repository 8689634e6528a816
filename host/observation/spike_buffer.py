"""Bounded spike buffer of the AER control-observation contract.

The published scpn_control AER contract (``SpikeEvent``, ``SpikeBuffer``,
``drain_window``, ``admission_report``) is re-implemented here from its
documented behaviour, on numpy ring arrays so that a DMA buffer of 64-bit AER
words (DESIGN.md §3) is admitted at well over 10 M words per second.

Semantics (see ``docs/observation.md``):

- The buffer holds at most ``capacity`` events. When full, the oldest events
  are dropped, the ``overflowed`` latch is set and every drop is counted.
- An event is *out of order* when its timestamp is earlier than the latest
  timestamp admitted before it. Such events are kept (forensic replay), the
  ``monotonic_input`` latch clears and ``out_of_order_event_count`` grows.
- ``drain_window(window_ns, now_ns)`` returns the events with timestamps in
  the closed interval ``[now_ns - window_ns, now_ns]`` in arrival order,
  discards (and counts) older ones and keeps future ones.
- Every admitted event ends in exactly one place, so
  ``ingested = retained + dropped + drained + discarded`` always holds.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, NamedTuple

import numpy as np

from bioloop.host.aer import FIELD_MAX, AERType, unpack

from .checks import checked_index_array, checked_int

__all__ = [
    "NEURON_ID_MAX", "TIMESTAMP_NS_MAX", "SpikeEvent", "EventArrays", "AERIngestCounts",
    "ReservedAERTypeError", "SpikeBuffer", "MAX_CAPACITY",
]

#: Largest neuron id: the 20-bit address field of an AER word.
NEURON_ID_MAX = FIELD_MAX["address"]
#: Largest timestamp: timestamps are stored as int64 nanoseconds.
TIMESTAMP_NS_MAX = int(np.iinfo(np.int64).max)

#: Internal marker for words filtered out by source (types are 4 bits, so 255 is free).
_OTHER_SOURCE = 255
_ID_DTYPE = np.uint32
_TS_DTYPE = np.int64


@dataclass(frozen=True, slots=True)
class SpikeEvent:
    """One address event.

    Parameters
    ----------
    neuron_id : int
        Address of the spiking unit (recording channel for bioloop's SPIKE
        words), ``0..NEURON_ID_MAX``.
    timestamp_ns : int
        Event time in integer nanoseconds, ``0..TIMESTAMP_NS_MAX``.
    """

    neuron_id: int
    timestamp_ns: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "neuron_id",
                           checked_int("neuron_id", self.neuron_id, minimum=0, maximum=NEURON_ID_MAX))
        object.__setattr__(self, "timestamp_ns",
                           checked_int("timestamp_ns", self.timestamp_ns, minimum=0,
                                    maximum=TIMESTAMP_NS_MAX))


class EventArrays(NamedTuple):
    """A batch of events as parallel arrays (the vectorised form of ``SpikeEvent``).

    Attributes
    ----------
    neuron_id : numpy.ndarray
        uint32 neuron ids.
    timestamp_ns : numpy.ndarray
        int64 timestamps in nanoseconds.
    """

    neuron_id: np.ndarray
    timestamp_ns: np.ndarray

    def to_events(self) -> list[SpikeEvent]:
        """Return the batch as a list of :class:`SpikeEvent`."""
        return [SpikeEvent(int(n), int(t))
                for n, t in zip(self.neuron_id.tolist(), self.timestamp_ns.tolist(), strict=True)]

    @classmethod
    def from_events(cls, events: Iterable[SpikeEvent]) -> "EventArrays":
        """Pack :class:`SpikeEvent` objects into arrays, checking every item's type."""
        events = list(events)
        for i, e in enumerate(events):
            if not isinstance(e, SpikeEvent):
                raise TypeError(f"events[{i}] must be a SpikeEvent, got {type(e).__name__}")
        ids = np.fromiter((e.neuron_id for e in events), dtype=_ID_DTYPE, count=len(events))
        ts = np.fromiter((e.timestamp_ns for e in events), dtype=_TS_DTYPE, count=len(events))
        return cls(ids, ts)


class AERIngestCounts(NamedTuple):
    """What one :meth:`SpikeBuffer.ingest_aer` call found, by AER word type."""

    spikes: int
    stim_words: int
    tick_words: int
    overflow_words: int
    lost_upstream_events: int
    reserved_words: int
    other_source_words: int


class ReservedAERTypeError(ValueError):
    """An AER word carries a reserved type (4..15, DESIGN.md §3)."""


def _frame_period(value) -> Fraction:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, Fraction)):
        raise TypeError(f"frame_period_ns must be an int or fractions.Fraction of nanoseconds, "
                        f"got {value!r} ({type(value).__name__}); for 30 kHz use "
                        f"Fraction(10**9, 30000)")
    period = Fraction(value)
    if period <= 0:
        raise ValueError(f"frame_period_ns must be positive, got {value}")
    return period


def _as_words(words) -> np.ndarray:
    """View a DMA buffer as 1-D uint64 AER words without copying where possible."""
    if isinstance(words, (bytes, bytearray, memoryview)):
        if len(memoryview(words).cast("B")) % 8:
            raise ValueError(f"AER byte buffer length {len(memoryview(words).cast('B'))} "
                             f"is not a multiple of 8")
        # astype(copy=False) is free on little-endian hosts and byte-swaps elsewhere.
        return np.frombuffer(words, dtype="<u8").astype(np.uint64, copy=False)
    w = np.asarray(words)
    if w.ndim != 1:
        raise ValueError(f"AER words must be a 1-D array, got shape {w.shape}")
    if w.dtype == np.uint8:
        if w.size % 8:
            raise ValueError(f"AER byte buffer length {w.size} is not a multiple of 8")
        # A contiguous byte buffer views as words for free; a strided one must be copied.
        return np.ascontiguousarray(w).view("<u8").astype(np.uint64, copy=False)
    if w.dtype != np.uint64:
        raise TypeError(f"AER words must be uint64 (or uint8 bytes), got {w.dtype}")
    return w


#: Largest capacity: 2**28 events, 3 GiB of ring arrays (hours of a 64-channel array at 100 Hz).
MAX_CAPACITY = 1 << 28


class SpikeBuffer:
    """Bounded FIFO of spike events on numpy ring arrays.

    Parameters
    ----------
    capacity : int
        Maximum number of retained events, 1..:data:`MAX_CAPACITY` (the
        arrays are allocated up front, 12 bytes per event).

    Notes
    -----
    Events live in two ring arrays (uint32 ids, int64 nanosecond timestamps);
    the object API (:class:`SpikeEvent`) is a view on top. Every operation
    validates its whole input before changing any state, so a rejected call
    loses nothing already accepted.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = checked_int("capacity", capacity, minimum=1)
        if self._capacity > MAX_CAPACITY:
            per = np.dtype(_ID_DTYPE).itemsize + np.dtype(_TS_DTYPE).itemsize
            raise ValueError(f"capacity {self._capacity} would allocate {self._capacity * per / 2**30:.3g} GiB "
                             f"({per} bytes per event); it must be in 1..{MAX_CAPACITY} (2**28)")
        self._ids = np.zeros(self._capacity, dtype=_ID_DTYPE)
        self._ts = np.zeros(self._capacity, dtype=_TS_DTYPE)
        self._reset()

    def _reset(self) -> None:
        self._head = 0  # ring index of the oldest retained event
        self._size = 0
        self._latest_ns: int | None = None  # latest timestamp admitted so far
        self._overflowed = False
        self._out_of_order = 0
        self._ingested = 0
        self._dropped = 0
        self._drained = 0
        self._discarded = 0
        self._lost_upstream = 0
        self._stim_words = 0
        self._tick_words = 0
        self._reserved_words = 0
        self._other_source_words = 0

    # -- state -------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """Maximum number of retained events."""
        return self._capacity

    @property
    def overflowed(self) -> bool:
        """Latched: True once any event was dropped because the buffer was full."""
        return self._overflowed

    @property
    def monotonic_input(self) -> bool:
        """Latched: True while every admitted timestamp was >= all earlier ones."""
        return self._out_of_order == 0

    @property
    def out_of_order_event_count(self) -> int:
        """Events admitted with a timestamp earlier than the latest one seen before them."""
        return self._out_of_order

    def __len__(self) -> int:
        return self._size

    def admission_report(self) -> dict[str, int | bool]:
        """Return the admission evidence of this buffer.

        Returns
        -------
        dict
            The published keys ``capacity``, ``retained_events``,
            ``overflowed``, ``out_of_order_event_count``, ``monotonic_input``,
            then bioloop's counters: ``ingested_events``, ``dropped_events``
            (drop-oldest on overflow), ``drained_events``,
            ``discarded_events`` (older than a drain window),
            ``lost_upstream_events`` (sum of OVERFLOW word addresses),
            ``stim_words``, ``tick_words``, ``reserved_words``,
            ``other_source_words`` (skipped by a ``source`` filter).
        """
        return {
            "capacity": self._capacity,
            "retained_events": self._size,
            "overflowed": self._overflowed,
            "out_of_order_event_count": self._out_of_order,
            "monotonic_input": self.monotonic_input,
            "ingested_events": self._ingested,
            "dropped_events": self._dropped,
            "drained_events": self._drained,
            "discarded_events": self._discarded,
            "lost_upstream_events": self._lost_upstream,
            "stim_words": self._stim_words,
            "tick_words": self._tick_words,
            "reserved_words": self._reserved_words,
            "other_source_words": self._other_source_words,
        }

    # -- admission ---------------------------------------------------------

    def push(self, event: SpikeEvent) -> None:
        """Admit one event, dropping the oldest when full."""
        if not isinstance(event, SpikeEvent):
            raise TypeError(f"event must be a SpikeEvent, got {type(event).__name__}")
        # Scalar path: building one-element arrays would cost more than the work.
        t = event.timestamp_ns
        if self._latest_ns is None or t > self._latest_ns:
            self._latest_ns = t
        elif t < self._latest_ns:
            self._out_of_order += 1
        self._ingested += 1
        cap = self._capacity
        if self._size == cap:
            self._dropped += 1
            self._overflowed = True
            self._head = (self._head + 1) % cap
            self._size -= 1
        tail = (self._head + self._size) % cap
        self._ids[tail] = event.neuron_id
        self._ts[tail] = t
        self._size += 1

    def extend(self, events: Iterable[SpikeEvent]) -> None:
        """Admit events in order; all are type-checked before any is admitted."""
        ids, ts = EventArrays.from_events(events)
        self._admit(ids, ts)

    def push_arrays(self, neuron_id, timestamp_ns) -> None:
        """Admit a batch given as parallel arrays, in array order.

        Parameters
        ----------
        neuron_id : array_like of int
            Ids in ``0..NEURON_ID_MAX``.
        timestamp_ns : array_like of int
            Timestamps in ``0..TIMESTAMP_NS_MAX`` nanoseconds.
        """
        ids = checked_index_array("neuron_id", neuron_id, maximum=NEURON_ID_MAX)
        ts = checked_index_array("timestamp_ns", timestamp_ns, maximum=TIMESTAMP_NS_MAX)
        if ids.shape != ts.shape:
            raise ValueError(f"neuron_id and timestamp_ns differ in length: "
                             f"{ids.size} != {ts.size}")
        self._admit(ids.astype(_ID_DTYPE, copy=False), ts.astype(_TS_DTYPE, copy=False))

    def ingest_aer(self, words, frame_period_ns, *, frame_offset: int = 0,
                   source: int | None = None, on_reserved: str = "raise") -> AERIngestCounts:
        """Admit the SPIKE words of a buffer of 64-bit AER words (DESIGN.md §3).

        Parameters
        ----------
        words : numpy.ndarray or bytes-like
            1-D uint64 words as read from a DMA buffer, or their little-endian
            bytes (uint8 array, ``bytes``, ``memoryview``), viewed without a
            copy where the memory allows.
        frame_period_ns : int or fractions.Fraction
            Nanoseconds per frame, e.g. ``50_000`` at 20 kHz or
            ``Fraction(10**9, 30_000)`` at 30 kHz. A SPIKE word with frame
            timestamp ``f`` becomes an event at
            ``floor((frame_offset + f) * frame_period_ns)`` ns, in exact
            integer arithmetic.
        frame_offset : int, optional
            Frames added to every word's timestamp, e.g. ``k * 2**32`` after
            ``k`` timestamp wraps.
        source : int, optional
            Admit only words whose source field (well or chip id) equals
            this; words of other sources are skipped and counted in
            ``other_source_words``. Default: every source.
        on_reserved : {"raise", "count"}
            Reserved word types (4..15) raise :class:`ReservedAERTypeError`
            before anything in ``words`` is admitted, or are counted in
            ``reserved_words`` and skipped.

        Returns
        -------
        AERIngestCounts
            SPIKE events admitted, STIM/TICK/OVERFLOW/reserved words seen and
            the events lost upstream (sum of OVERFLOW addresses), all for the
            selected source, plus the words of other sources skipped.

        Notes
        -----
        SPIKE words become events with ``neuron_id = address``; the source
        field is not part of the event. STIM words (the gateware's own
        stimulation, not tissue spikes) and TICK words (wrap or heartbeat)
        are counted, not admitted. OVERFLOW words carry the number of events
        the AEREncoder lost, which is added to ``lost_upstream_events``.
        """
        if on_reserved not in ("raise", "count"):
            raise ValueError(f"on_reserved must be 'raise' or 'count', got {on_reserved!r}")
        period = _frame_period(frame_period_ns)
        offset = checked_int("frame_offset", frame_offset, minimum=0)
        if source is not None:
            source = checked_int("source", source, minimum=0, maximum=FIELD_MAX["source"])
        w = _as_words(words)
        f = unpack(w)
        kind = f.type
        n_other = 0
        if source is not None:
            other = f.source != source
            n_other = int(np.count_nonzero(other))
            if n_other:
                # Give other sources a type no branch below selects.
                kind = np.where(other, np.uint8(_OTHER_SOURCE), kind)
        # One histogram pass counts every type (other sources sit in bin 255).
        per_type = np.bincount(kind, minlength=256)
        n_reserved = int(per_type[AERType.OVERFLOW.value + 1:_OTHER_SOURCE].sum())
        # Reserved types are checked first so a bad buffer changes nothing.
        if n_reserved and on_reserved == "raise":
            reserved = (kind > np.uint8(AERType.OVERFLOW.value)) & (kind != np.uint8(_OTHER_SOURCE))
            i = int(np.argmax(reserved))
            raise ReservedAERTypeError(
                f"AER word {i} (0x{int(w[i]):016x}) has reserved type {int(kind[i])}; "
                f"pass on_reserved='count' to skip reserved words")
        spike = kind == np.uint8(AERType.SPIKE.value)
        ids = f.address[spike]
        frames = f.timestamp[spike]
        n = ids.size
        ts = np.empty(0, dtype=_TS_DTYPE)
        if n:
            last = offset + int(frames.max())
            if last * period.numerator > TIMESTAMP_NS_MAX:
                raise OverflowError(
                    f"frame {last} x {period} ns does not fit in int64 nanoseconds; "
                    f"lower frame_offset or frame_period_ns")
            ts = frames.astype(_TS_DTYPE)
            if offset:
                ts += offset
            ts *= period.numerator
            if period.denominator != 1:
                ts //= period.denominator
        n_overflow = int(per_type[AERType.OVERFLOW.value])
        lost = 0
        if n_overflow:
            overflow = kind == np.uint8(AERType.OVERFLOW.value)
            lost = int(f.address[overflow].sum(dtype=np.uint64))
        counts = AERIngestCounts(
            spikes=n,
            stim_words=int(per_type[AERType.STIM.value]),
            tick_words=int(per_type[AERType.TICK.value]),
            overflow_words=n_overflow,
            lost_upstream_events=lost,
            reserved_words=n_reserved,
            other_source_words=n_other,
        )
        self._admit(ids, ts)
        self._stim_words += counts.stim_words
        self._tick_words += counts.tick_words
        self._lost_upstream += counts.lost_upstream_events
        self._reserved_words += counts.reserved_words
        self._other_source_words += n_other
        return counts

    def _admit(self, ids: np.ndarray, ts: np.ndarray) -> None:
        """Append validated arrays in order, dropping the oldest on overflow."""
        n = ids.size
        if n == 0:
            return
        # Out-of-order: earlier than the running maximum of everything before it.
        # Hardware streams are normally sorted, and a sorted batch that starts
        # at or after the latest time seen has none: one comparison pass.
        latest = self._latest_ns
        if (latest is None or ts[0] >= latest) and bool(np.all(ts[1:] >= ts[:-1])):
            batch_max = int(ts[-1])
        else:
            running = np.maximum.accumulate(ts)
            prev_max = np.empty_like(ts)
            prev_max[0] = ts[0] if latest is None else latest
            prev_max[1:] = running[:-1]
            if latest is not None:
                np.maximum(prev_max, latest, out=prev_max)
            self._out_of_order += int(np.count_nonzero(ts < prev_max))
            batch_max = int(running[-1])
        self._latest_ns = batch_max if latest is None else max(latest, batch_max)
        self._ingested += n

        cap = self._capacity
        if n >= cap:
            self._dropped += self._size + n - cap
            self._overflowed = self._overflowed or (self._size + n > cap)
            self._ids[:] = ids[n - cap:]
            self._ts[:] = ts[n - cap:]
            self._head, self._size = 0, cap
            return
        excess = self._size + n - cap
        if excess > 0:
            self._dropped += excess
            self._overflowed = True
            self._head = (self._head + excess) % cap
            self._size -= excess
        tail = (self._head + self._size) % cap
        first = min(n, cap - tail)
        self._ids[tail:tail + first] = ids[:first]
        self._ts[tail:tail + first] = ts[:first]
        if first < n:
            self._ids[:n - first] = ids[first:]
            self._ts[:n - first] = ts[first:]
        self._size += n

    # -- read-out ----------------------------------------------------------

    def snapshot_arrays(self) -> EventArrays:
        """Copy of the retained events, oldest first."""
        idx = (self._head + np.arange(self._size)) % self._capacity
        return EventArrays(self._ids[idx], self._ts[idx])

    def snapshot(self) -> list[SpikeEvent]:
        """Retained events as :class:`SpikeEvent` objects, oldest first."""
        return self.snapshot_arrays().to_events()

    def drain_window_arrays(self, window_ns: int, now_ns: int) -> EventArrays:
        """Remove and return the events in ``[now_ns - window_ns, now_ns]``.

        Events older than the window are discarded (and counted in
        ``discarded_events``); events after ``now_ns`` stay in the buffer in
        their arrival order.

        Parameters
        ----------
        window_ns : int
            Window length in ns, >= 0 (0 drains events at exactly ``now_ns``).
        now_ns : int
            End of the window in ns, >= 0.
        """
        window = checked_int("window_ns", window_ns, minimum=0, maximum=TIMESTAMP_NS_MAX)
        now = checked_int("now_ns", now_ns, minimum=0, maximum=TIMESTAMP_NS_MAX)
        ids, ts = self.snapshot_arrays()
        future = ts > now
        inside = ~future & (ts >= now - window)
        drained = EventArrays(ids[inside], ts[inside])
        n_in = drained.neuron_id.size
        n_future = int(np.count_nonzero(future))
        self._drained += n_in
        self._discarded += self._size - n_in - n_future
        self._ids[:n_future] = ids[future]
        self._ts[:n_future] = ts[future]
        self._head, self._size = 0, n_future
        return drained

    def drain_window(self, window_ns: int, now_ns: int) -> list[SpikeEvent]:
        """Object form of :meth:`drain_window_arrays`."""
        return self.drain_window_arrays(window_ns, now_ns).to_events()

    def clear(self) -> None:
        """Forget every event, latch and counter."""
        self._reset()
