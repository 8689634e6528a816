"""Hypothesis properties of SpikeBuffer against a plain-Python golden model.

The golden model is the contract written the obvious way: a
``collections.deque(maxlen=capacity)`` (which drops the oldest item by
definition), a running maximum for out-of-order detection, list
comprehensions for the drain window, and the DESIGN.md §3 word types decided
one word at a time (with random sources, reserved types counted).
Examples: the hypothesis profile of tests/conftest.py (more under ``BIOLOOP_LONG=1``).
"""

from collections import deque

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from bioloop.host.observation import SpikeBuffer, SpikeEvent


class GoldenBuffer:
    """The published SpikeBuffer contract, one event at a time."""

    def __init__(self, capacity):
        self.events = deque(maxlen=capacity)
        self.latest = None
        self.overflowed = False
        self.out_of_order = 0
        self.ingested = self.dropped = self.drained = self.discarded = 0
        self.lost = self.stim = self.tick = self.reserved = self.other = 0

    def push(self, nid, t):
        if self.latest is not None and t < self.latest:
            self.out_of_order += 1
        self.latest = t if self.latest is None else max(self.latest, t)
        if len(self.events) == self.events.maxlen:
            self.overflowed = True
            self.dropped += 1
        self.events.append((nid, t))
        self.ingested += 1

    def drain(self, window, now):
        inside = [e for e in self.events if now - window <= e[1] <= now]
        future = [e for e in self.events if e[1] > now]
        self.discarded += len(self.events) - len(inside) - len(future)
        self.drained += len(inside)
        self.events = deque(future, maxlen=self.events.maxlen)
        return inside


def word(address, type_, frame, source):
    return address | (source << 20) | (type_ << 28) | (frame << 32)


ids = st.integers(0, 40)
times = st.integers(0, 300)
batch = st.lists(st.tuples(ids, times), max_size=12)
aer_batch = st.tuples(
    st.lists(st.tuples(st.integers(0, 5), ids, st.integers(0, 60), st.integers(0, 2)),
             max_size=12),
    st.sampled_from([None, 1]))  # source filter
op = st.one_of(
    st.tuples(st.just("push"), st.tuples(ids, times)),
    st.tuples(st.just("extend"), batch),
    st.tuples(st.just("arrays"), batch),
    st.tuples(st.just("aer"), aer_batch),
    st.tuples(st.just("drain"), st.tuples(st.integers(0, 200), st.integers(0, 400))),
)

PERIOD = 5  # ns per frame for the AER operations


def apply(buf, gold, operation):
    kind, arg = operation
    if kind == "push":
        buf.push(SpikeEvent(*arg))
        gold.push(*arg)
    elif kind == "extend":
        buf.extend([SpikeEvent(n, t) for n, t in arg])
        for n, t in arg:
            gold.push(n, t)
    elif kind == "arrays":
        buf.push_arrays(np.array([n for n, _ in arg], dtype=np.int64),
                        np.array([t for _, t in arg], dtype=np.int64))
        for n, t in arg:
            gold.push(n, t)
    elif kind == "aer":
        items, source = arg
        w = np.array([word(a, ty, f, src) for ty, a, f, src in items], dtype=np.uint64)
        buf.ingest_aer(w, PERIOD, source=source, on_reserved="count")
        for ty, a, f, src in items:
            if source is not None and src != source:
                gold.other += 1
            elif ty == 0:
                gold.push(a, f * PERIOD)
            else:
                gold.stim += ty == 1
                gold.tick += ty == 2
                gold.lost += a if ty == 3 else 0
                gold.reserved += ty > 3
    else:
        got = buf.drain_window(*arg)
        assert [(e.neuron_id, e.timestamp_ns) for e in got] == gold.drain(*arg)


@given(capacity=st.integers(1, 9), ops=st.lists(op, max_size=25))
def test_buffer_matches_golden_model(capacity, ops):
    buf, gold = SpikeBuffer(capacity), GoldenBuffer(capacity)
    for operation in ops:
        apply(buf, gold, operation)
        assert len(buf) <= capacity
        assert [(e.neuron_id, e.timestamp_ns) for e in buf.snapshot()] == list(gold.events)
        r = buf.admission_report()
        assert r == {
            "capacity": capacity, "retained_events": len(gold.events),
            "overflowed": gold.overflowed, "out_of_order_event_count": gold.out_of_order,
            "monotonic_input": gold.out_of_order == 0, "ingested_events": gold.ingested,
            "dropped_events": gold.dropped, "drained_events": gold.drained,
            "discarded_events": gold.discarded, "lost_upstream_events": gold.lost,
            "stim_words": gold.stim, "tick_words": gold.tick, "reserved_words": gold.reserved,
            "other_source_words": gold.other,
        }
        assert r["ingested_events"] == (r["retained_events"] + r["dropped_events"]
                                        + r["drained_events"] + r["discarded_events"])


@given(capacity=st.integers(1, 50), events=batch, window=st.integers(0, 300),
       now=st.integers(0, 300))
def test_drain_window_boundaries_are_exact(capacity, events, window, now):
    buf = SpikeBuffer(capacity)
    buf.extend([SpikeEvent(n, t) for n, t in events])
    kept = events[-capacity:]  # drop-oldest: the newest `capacity` events survive
    got = buf.drain_window_arrays(window, now)
    expect = [(n, t) for n, t in kept if now - window <= t <= now]
    assert list(zip(got.neuron_id.tolist(), got.timestamp_ns.tolist(), strict=True)) == expect
    assert [(e.neuron_id, e.timestamp_ns) for e in buf.snapshot()] == [
        (n, t) for n, t in kept if t > now]


@given(capacity=st.integers(1, 9), ops=st.lists(op, max_size=15))
def test_same_operations_same_bytes(capacity, ops):
    a, b = SpikeBuffer(capacity), SpikeBuffer(capacity)
    ga, gb = GoldenBuffer(capacity), GoldenBuffer(capacity)
    for operation in ops:
        apply(a, ga, operation)
        apply(b, gb, operation)
    sa, sb = a.snapshot_arrays(), b.snapshot_arrays()
    assert sa.neuron_id.tobytes() == sb.neuron_id.tobytes()
    assert sa.timestamp_ns.tobytes() == sb.timestamp_ns.tobytes()
    assert a.admission_report() == b.admission_report()
