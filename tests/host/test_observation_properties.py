"""Hypothesis properties of the AER decoders and the observation.

The golden decoders evaluate the published equations literally, one neuron at
a time, in exact rational arithmetic (``fractions.Fraction``), with
``statistics.mean`` of ``diff`` of the sorted spike train for the ISI code.
Examples: the hypothesis profile of tests/conftest.py (more under ``BIOLOOP_LONG=1``).
"""

from fractions import Fraction
from statistics import mean

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bioloop.host.observation import (
    AERControlObservation, SpikeBuffer, SpikeEvent, decode_isi, decode_rate, decode_temporal,
    normalise_features,
)


events_st = st.lists(st.builds(SpikeEvent, st.integers(0, 12), st.integers(0, 10**6)),
                     max_size=40)
window_st = st.integers(1, 10**6)
n_st = st.integers(1, 10)


def clip(v):
    return min(Fraction(1), max(Fraction(0), v))


def golden_rate(events, n):
    return [clip(Fraction(sum(e.neuron_id == i for e in events), max(1, len(events))))
            for i in range(n)]


def golden_temporal(events, window, n, now):
    out = []
    for i in range(n):
        ts = [e.timestamp_ns for e in events
              if e.neuron_id == i and now - window <= e.timestamp_ns <= now]
        out.append(clip(1 - Fraction(min(ts) - (now - window), window)) if ts else Fraction(0))
    return out


def golden_isi(events, window, n):
    out = []
    for i in range(n):
        ts = sorted(e.timestamp_ns for e in events if e.neuron_id == i)
        if len(ts) < 2:
            out.append(Fraction(0))
            continue
        diffs = [Fraction(b - a) for a, b in zip(ts, ts[1:], strict=False)]
        out.append(clip(1 - mean(diffs) / window))
    return out


def close(got, expect):
    assert got.dtype == np.float64 and got.shape == (len(expect),)
    assert got.tolist() == pytest.approx([float(v) for v in expect], abs=1e-12)
    assert np.all((got >= 0.0) & (got <= 1.0))


@given(events=events_st, window=window_st, n=n_st, now=st.integers(0, 10**6))
def test_decoders_equal_the_published_equations(events, window, n, now):
    close(decode_rate(events, window, n), golden_rate(events, n))
    close(decode_temporal(events, window, n, now_ns=now), golden_temporal(events, window, n, now))
    close(decode_isi(events, window, n), golden_isi(events, window, n))
    assert decode_rate(events, window, n).sum() <= 1.0 + 1e-12


@given(events=events_st, window=window_st, n=n_st, now=st.integers(0, 10**6),
       seed=st.integers(0, 2**32 - 1))
def test_decoders_are_deterministic_and_order_free(events, window, n, now, seed):
    shuffled = [events[i] for i in np.random.default_rng(seed).permutation(len(events))]
    for decode, kw in ((decode_rate, {}), (decode_isi, {}), (decode_temporal, {"now_ns": now})):
        a = decode(events, window, n, **kw).tobytes()
        assert a == decode(list(events), window, n, **kw).tobytes()
        assert a == decode(shuffled, window, n, **kw).tobytes()


@given(x=st.lists(st.floats(-10, 10, allow_nan=False), max_size=30),
       mode=st.sampled_from(["unit", "max", "zscore"]))
def test_normalisation_stays_in_unit_interval(x, mode):
    y = normalise_features(np.array(x, dtype=np.float64), mode)
    assert y.shape == (len(x),) and y.dtype == np.float64
    assert np.all((y >= 0.0) & (y <= 1.0))
    if mode == "max" and any(v > 0 for v in x):
        assert y.max() == 1.0
    if mode in ("unit", "zscore"):
        # Clipping and the logistic are monotonic: the order of features survives.
        xs = np.array(x)
        for i in range(len(x)):
            assert np.all(y[xs > xs[i]] >= y[i])


@given(events=events_st, window=window_st, n=n_st, now=st.integers(0, 10**6),
       strategy=st.sampled_from(["rate", "temporal", "isi"]),
       norm=st.sampled_from(["unit", "max", "zscore"]))
def test_observation_is_the_decoder_on_the_drained_window(events, window, n, now, strategy,
                                                            norm):
    def observe():
        b = SpikeBuffer(64)
        b.extend(events)
        return AERControlObservation(now, b, window, decode_strategy=strategy, n_features=n,
                                     feature_normalisation=norm)

    obs = observe()
    x = obs.to_features()
    inside = [e for e in events if now - window <= e.timestamp_ns <= now]
    raw = {"rate": golden_rate(inside, n), "isi": golden_isi(inside, window, n),
           "temporal": golden_temporal(inside, window, n, now)}[strategy]
    expect = normalise_features(np.array([float(v) for v in raw]), norm)
    assert x.tolist() == pytest.approx(expect.tolist(), abs=1e-9)
    assert np.all((x >= 0.0) & (x <= 1.0))
    assert x.tobytes() == observe().to_features().tobytes()
