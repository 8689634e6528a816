"""SpikeBuffer: the published scpn_control behaviour, strictness, and AER ingest.

Known vectors come from the published contract's documentation and examples
(docs/scpn/aer_observation.md of scpn_control); AER words are built here bit
by bit from DESIGN.md §3, independently of :mod:`bioloop.host.aer`.
"""

from fractions import Fraction

import numpy as np
import pytest

from bioloop.host.observation import (
    NEURON_ID_MAX, TIMESTAMP_NS_MAX, ReservedAERTypeError, SpikeBuffer, SpikeEvent,
)

PUBLISHED_KEYS = ("capacity", "retained_events", "overflowed", "out_of_order_event_count",
                  "monotonic_input")


def word(address, type_, frame, source=0):
    """One AER word from DESIGN.md §3: address 0-19, source 20-27, type 28-31, ts 32-63."""
    return address | (source << 20) | (type_ << 28) | (frame << 32)


def words(*ws):
    return np.array(ws, dtype=np.uint64)


SPIKE, STIM, TICK, OVERFLOW = 0, 1, 2, 3


# -- published behaviour -----------------------------------------------------

def test_drops_oldest_and_latches_overflow():
    b = SpikeBuffer(capacity=2)
    for e in (SpikeEvent(1, 10), SpikeEvent(2, 20), SpikeEvent(3, 30)):
        b.push(e)
    assert b.snapshot() == [SpikeEvent(2, 20), SpikeEvent(3, 30)]
    assert b.overflowed is True
    assert len(b) == 2
    assert b.admission_report()["dropped_events"] == 1
    b.drain_window(window_ns=100, now_ns=100)
    assert b.overflowed is True, "overflow is a latch: draining must not clear it"


def test_out_of_order_counts_against_latest_seen_timestamp():
    b = SpikeBuffer(capacity=4)
    for t in (100, 90, 95, 110):
        b.push(SpikeEvent(1, t))
    report = b.admission_report()
    assert {k: report[k] for k in PUBLISHED_KEYS} == {
        "capacity": 4, "retained_events": 4, "overflowed": False,
        "out_of_order_event_count": 2, "monotonic_input": False,
    }
    # Out-of-order events are kept, in arrival order.
    assert [e.timestamp_ns for e in b.snapshot()] == [100, 90, 95, 110]


def test_equal_timestamps_are_monotonic():
    b = SpikeBuffer(capacity=4)
    b.extend([SpikeEvent(0, 5), SpikeEvent(1, 5), SpikeEvent(2, 5)])
    assert b.monotonic_input is True


def test_clear_resets_latches_and_counters():
    b = SpikeBuffer(capacity=1)
    b.extend([SpikeEvent(1, 100), SpikeEvent(1, 90)])
    assert b.overflowed and not b.monotonic_input
    b.clear()
    assert b.out_of_order_event_count == 0 and b.monotonic_input and not b.overflowed
    assert b.snapshot() == []
    assert b.admission_report()["ingested_events"] == 0
    b.push(SpikeEvent(0, 1))  # a fresh start: an earlier time than before clear is fine
    assert b.monotonic_input


def test_drain_window_discards_old_and_keeps_future():
    b = SpikeBuffer(capacity=4)
    b.extend([SpikeEvent(0, 10), SpikeEvent(1, 20), SpikeEvent(2, 40)])
    assert b.drain_window(window_ns=15, now_ns=25) == [SpikeEvent(0, 10), SpikeEvent(1, 20)]
    assert b.snapshot() == [SpikeEvent(2, 40)]


def test_drain_window_boundaries_are_closed():
    b = SpikeBuffer(capacity=8)
    b.extend([SpikeEvent(0, 49), SpikeEvent(1, 50), SpikeEvent(2, 100), SpikeEvent(3, 101),
              SpikeEvent(4, 75)])
    got = b.drain_window(window_ns=50, now_ns=100)
    assert got == [SpikeEvent(1, 50), SpikeEvent(2, 100), SpikeEvent(4, 75)]
    assert b.snapshot() == [SpikeEvent(3, 101)]
    r = b.admission_report()
    assert (r["drained_events"], r["discarded_events"], r["retained_events"]) == (3, 1, 1)
    assert b.drain_window(window_ns=0, now_ns=101) == [SpikeEvent(3, 101)]


def test_drain_window_before_zero_and_on_empty_buffer():
    b = SpikeBuffer(capacity=3)
    assert b.drain_window(10, 0) == []
    b.extend([SpikeEvent(0, 0), SpikeEvent(0, 3)])
    assert b.drain_window(window_ns=10, now_ns=2) == [SpikeEvent(0, 0)]


def test_ring_wraps_many_times_in_order():
    b = SpikeBuffer(capacity=3)
    for t in range(10):
        b.push(SpikeEvent(t, t))
        if t == 4:
            b.drain_window(window_ns=0, now_ns=3)  # takes one event out of the middle
    assert b.snapshot() == [SpikeEvent(7, 7), SpikeEvent(8, 8), SpikeEvent(9, 9)]
    r = b.admission_report()
    assert r["ingested_events"] == 10
    assert r["ingested_events"] == (r["retained_events"] + r["dropped_events"]
                                    + r["drained_events"] + r["discarded_events"])


# -- strictness --------------------------------------------------------------

@pytest.mark.parametrize("capacity, error", [
    (0, ValueError), (-3, ValueError), (1.5, TypeError), (True, TypeError),
    (float("nan"), TypeError), ("8", TypeError),
])
def test_capacity_is_validated(capacity, error):
    with pytest.raises(error, match="capacity"):
        SpikeBuffer(capacity)


@pytest.mark.parametrize("neuron_id, timestamp_ns, error, match", [
    (1, -1, ValueError, "timestamp_ns must be >= 0, got -1"),
    (-1, 0, ValueError, "neuron_id must be >= 0, got -1"),
    (NEURON_ID_MAX + 1, 0, OverflowError, "neuron_id must be <= 1048575"),
    (0, TIMESTAMP_NS_MAX + 1, OverflowError, "timestamp_ns"),
    (0, float("nan"), TypeError, "timestamp_ns must be an integer, got nan"),
    (0, float("inf"), TypeError, "timestamp_ns must be an integer, got inf"),
    (1.0, 0, TypeError, "neuron_id"),
    (True, 0, TypeError, "neuron_id"),
])
def test_spike_event_is_validated(neuron_id, timestamp_ns, error, match):
    with pytest.raises(error, match=match):
        SpikeEvent(neuron_id, timestamp_ns)


def test_spike_event_accepts_numpy_integers():
    e = SpikeEvent(np.uint32(3), np.int64(7))
    assert e == SpikeEvent(3, 7) and type(e.timestamp_ns) is int


def test_bad_items_are_rejected_before_anything_is_admitted():
    b = SpikeBuffer(capacity=4)
    b.push(SpikeEvent(0, 1))
    with pytest.raises(TypeError, match=r"events\[2\] must be a SpikeEvent, got tuple"):
        b.extend([SpikeEvent(1, 2), SpikeEvent(2, 3), (3, 4)])
    with pytest.raises(TypeError, match="event must be a SpikeEvent"):
        b.push((1, 2))
    assert b.snapshot() == [SpikeEvent(0, 1)]
    assert b.admission_report()["ingested_events"] == 1


@pytest.mark.parametrize("ids, ts, error, match", [
    ([0, 1], [1.0, 2.0], TypeError, "timestamp_ns must have an integer dtype, got float64"),
    ([0, 1, 2, 3], [1, 2, 3, np.nan], ValueError, "timestamp_ns contains nan at index 3"),
    ([0, 1], [1, np.inf], ValueError, "timestamp_ns contains inf at index 1"),
    ([0, -5], [1, 2], ValueError, "neuron_id must be non-negative, got -5 at index 1"),
    ([0, 1 << 20], [1, 2], OverflowError, "neuron_id must be <= 1048575, got 1048576 at index 1"),
    ([0], np.array([1 << 63], dtype=np.uint64), OverflowError, "timestamp_ns"),
    ([0, 1], [1, 2, 3], ValueError, "differ in length: 2 != 3"),
    ([[0, 1]], [[1, 2]], ValueError, r"1-D array, got shape \(1, 2\)"),
    ([True], [1], TypeError, "neuron_id must have an integer dtype, got bool"),
])
def test_push_arrays_is_strict_and_atomic(ids, ts, error, match):
    b = SpikeBuffer(capacity=4)
    b.push_arrays([7], [0])
    with pytest.raises(error, match=match):
        b.push_arrays(ids, ts)
    assert b.snapshot() == [SpikeEvent(7, 0)]


@pytest.mark.parametrize("window, now, error", [
    (-1, 10, ValueError), (10, -1, ValueError), (float("nan"), 10, TypeError),
    (10, float("inf"), TypeError), (1.5, 10, TypeError),
])
def test_drain_window_arguments_are_validated(window, now, error):
    b = SpikeBuffer(capacity=2)
    b.push(SpikeEvent(0, 5))
    with pytest.raises(error, match="window_ns|now_ns"):
        b.drain_window(window, now)
    assert b.snapshot() == [SpikeEvent(0, 5)]


# -- AER ingest ----------------------------------------------------------------

def test_ingest_aer_maps_spikes_and_counts_other_types():
    w = words(word(5, SPIKE, 10), word(3, STIM, 11), word(6, SPIKE, 12, source=9),
              word(0, TICK, 13), word(4, OVERFLOW, 13), word(2, OVERFLOW, 14),
              word(NEURON_ID_MAX, SPIKE, 2**32 - 1))
    b = SpikeBuffer(capacity=16)
    counts = b.ingest_aer(w, frame_period_ns=50_000)
    assert counts._asdict() == {"spikes": 3, "stim_words": 1, "tick_words": 1,
                                "overflow_words": 2, "lost_upstream_events": 6,
                                "reserved_words": 0, "other_source_words": 0}
    assert b.snapshot() == [SpikeEvent(5, 500_000), SpikeEvent(6, 600_000),
                            SpikeEvent(NEURON_ID_MAX, (2**32 - 1) * 50_000)]
    r = b.admission_report()
    assert (r["lost_upstream_events"], r["stim_words"], r["tick_words"]) == (6, 1, 1)
    b.ingest_aer(words(word(1, OVERFLOW, 20)), frame_period_ns=50_000)
    assert b.admission_report()["lost_upstream_events"] == 7


def test_ingest_aer_source_filter_selects_one_well():
    w = words(word(1, SPIKE, 1, source=2), word(2, SPIKE, 2, source=3),
              word(9, OVERFLOW, 2, source=3), word(7, 9, 3, source=3),
              word(3, SPIKE, 4, source=2), word(5, OVERFLOW, 4, source=2))
    b = SpikeBuffer(capacity=8)
    counts = b.ingest_aer(w, 1, source=2)
    assert (counts.spikes, counts.lost_upstream_events, counts.other_source_words) == (2, 5, 3)
    assert b.snapshot() == [SpikeEvent(1, 1), SpikeEvent(3, 4)]
    with pytest.raises(ReservedAERTypeError, match="AER word 3"):
        SpikeBuffer(8).ingest_aer(w, 1, source=3)
    with pytest.raises(OverflowError, match="source must be <= 255"):
        b.ingest_aer(w, 1, source=256)


def test_ingest_aer_fractional_frame_period_is_exact_floor():
    frames = [0, 1, 2, 3, 29_999, 30_000, 2**32 - 1]
    b = SpikeBuffer(capacity=16)
    b.ingest_aer(words(*(word(1, SPIKE, f) for f in frames)), Fraction(10**9, 30_000))
    assert [e.timestamp_ns for e in b.snapshot()] == [f * 10**9 // 30_000 for f in frames]


def test_ingest_aer_frame_offset_extends_past_a_wrap():
    b = SpikeBuffer(capacity=4)
    b.ingest_aer(words(word(1, SPIKE, 5)), 1000, frame_offset=2**32)
    assert b.snapshot() == [SpikeEvent(1, (2**32 + 5) * 1000)]


def test_ingest_aer_counts_out_of_order_words():
    b = SpikeBuffer(capacity=8)
    b.ingest_aer(words(word(1, SPIKE, 10), word(2, SPIKE, 8), word(3, SPIKE, 9),
                       word(4, SPIKE, 11)), 1)
    assert b.out_of_order_event_count == 2 and b.monotonic_input is False
    b.ingest_aer(words(word(1, SPIKE, 10)), 1)  # earlier than 11 from the previous call
    assert b.out_of_order_event_count == 3


def test_reserved_type_raises_and_admits_nothing():
    b = SpikeBuffer(capacity=8)
    b.push(SpikeEvent(0, 1))
    w = words(word(1, SPIKE, 2), word(1, OVERFLOW, 2), word(7, 5, 3), word(1, SPIKE, 4))
    with pytest.raises(ReservedAERTypeError, match=r"AER word 2 \(0x0000000350000007\) has "
                                                   r"reserved type 5"):
        b.ingest_aer(w, 1)
    assert b.snapshot() == [SpikeEvent(0, 1)]
    assert b.admission_report()["lost_upstream_events"] == 0
    counts = b.ingest_aer(w, 1, on_reserved="count")
    assert counts.reserved_words == 1 and counts.spikes == 2
    assert b.admission_report()["reserved_words"] == 1
    assert isinstance(ReservedAERTypeError("x"), ValueError)


def test_ingest_aer_accepts_dma_bytes_without_copy():
    w = words(word(1, SPIKE, 3), word(2, SPIKE, 4))
    raw = w.view(np.uint8)
    from bioloop.host.observation.spike_buffer import _as_words
    assert np.shares_memory(_as_words(raw), w)
    assert np.shares_memory(_as_words(w), w)
    for form in (raw, w.tobytes(), memoryview(w.tobytes())):
        b = SpikeBuffer(capacity=4)
        b.ingest_aer(form, 10)
        assert b.snapshot() == [SpikeEvent(1, 30), SpikeEvent(2, 40)]


@pytest.mark.parametrize("bad, error, match", [
    (np.array([1, 2], dtype=np.uint32), TypeError, "uint64"),
    (np.array([1.0]), TypeError, "uint64"),
    (np.zeros((2, 2), dtype=np.uint64), ValueError, "1-D"),
    (np.zeros(7, dtype=np.uint8), ValueError, "multiple of 8"),
    (b"\x00" * 9, ValueError, "multiple of 8"),
])
def test_ingest_aer_rejects_malformed_buffers(bad, error, match):
    b = SpikeBuffer(capacity=4)
    with pytest.raises(error, match=match):
        b.ingest_aer(bad, 1)
    assert b.admission_report()["ingested_events"] == 0


@pytest.mark.parametrize("period, error", [
    (0, ValueError), (-50, ValueError), (50_000.0, TypeError), (float("nan"), TypeError),
    (True, TypeError), (Fraction(-1, 3), ValueError),
])
def test_frame_period_is_validated(period, error):
    with pytest.raises(error, match="frame_period_ns"):
        SpikeBuffer(4).ingest_aer(words(word(1, SPIKE, 1)), period)


def test_timestamp_overflow_is_an_error_not_a_wrap():
    b = SpikeBuffer(capacity=4)
    with pytest.raises(OverflowError, match="does not fit in int64"):
        b.ingest_aer(words(word(1, SPIKE, 2**32 - 1)), 2**32)
    with pytest.raises(ValueError, match="frame_offset"):
        b.ingest_aer(words(word(1, SPIKE, 1)), 1, frame_offset=-1)
    with pytest.raises(ValueError, match="on_reserved"):
        b.ingest_aer(words(word(1, SPIKE, 1)), 1, on_reserved="ignore")
    assert len(b) == 0


def test_empty_dma_buffer_is_a_no_op():
    b = SpikeBuffer(capacity=4)
    counts = b.ingest_aer(np.zeros(0, dtype=np.uint64), 1)
    assert counts.spikes == 0 and len(b) == 0 and b.monotonic_input
