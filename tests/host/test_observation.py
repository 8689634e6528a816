"""AER decoders and AERControlObservation against the published contract.

Known vectors are those of the published scpn_control AER observation
contract (its documented equations evaluated by hand in the comments).
"""

import math

import numpy as np
import pytest
from scipy import stats

from bioloop.host.observation import (
    AERControlObservation, EventArrays, NonMonotonicInputError, SpikeBuffer, SpikeEvent,
    decode_isi, decode_rate, decode_temporal, normalise_features,
)


def published_events():
    return [SpikeEvent(0, 10), SpikeEvent(0, 30), SpikeEvent(1, 70), SpikeEvent(3, 80),
            SpikeEvent(99, 90)]


def buffer_of(pairs, capacity=16):
    b = SpikeBuffer(capacity)
    b.extend([SpikeEvent(n, t) for n, t in pairs])
    return b


# -- decoders ----------------------------------------------------------------

def test_decode_rate_event_fractions():
    # 5 events, neuron 99 is outside the 4 features but counts in N: 2/5, 1/5, 0, 1/5.
    x = decode_rate(published_events(), window_ns=100, n_features=4)
    assert x.dtype == np.float64 and x.shape == (4,)
    assert x.tolist() == pytest.approx([0.4, 0.2, 0.0, 0.2])


def test_decode_temporal_first_spike_times():
    # window [0, 100]: 1 - 10/100, 1 - 70/100, no spike, 1 - 80/100.
    x = decode_temporal(published_events(), window_ns=100, n_features=4, now_ns=100)
    assert x.tolist() == pytest.approx([0.9, 0.3, 0.0, 0.2])


def test_decode_temporal_ignores_events_outside_the_window():
    ev = [SpikeEvent(0, 5), SpikeEvent(0, 60), SpikeEvent(1, 150), SpikeEvent(2, 50)]
    # window [50, 100]: neuron 0 first at 60 -> 1 - 10/50; neuron 1 is in the future;
    # neuron 2 on the lower edge -> 1.
    x = decode_temporal(ev, window_ns=50, n_features=3, now_ns=100)
    assert x.tolist() == pytest.approx([0.8, 0.0, 1.0])


def test_decode_temporal_defaults_now_to_latest_event():
    ev = [SpikeEvent(0, 120), SpikeEvent(1, 200)]
    # now = 200, window [100, 200]: 1 - (120 - 100)/100.
    assert decode_temporal(ev, 100, 2).tolist() == pytest.approx([0.8, 0.0])
    assert decode_temporal([], 100, 2).tolist() == [0.0, 0.0]


def test_decode_isi_mean_interval():
    # neuron 0: one interval of 20 -> 1 - 20/100; the others spike at most once.
    x = decode_isi(published_events(), window_ns=100, n_features=4)
    assert x.tolist() == pytest.approx([0.8, 0.0, 0.0, 0.0])
    # three spikes 10 apart -> 1 - 10/100; arrival order does not matter.
    ev = [SpikeEvent(0, 30), SpikeEvent(0, 10), SpikeEvent(0, 20)]
    assert decode_isi(ev, 100, 2).tolist() == pytest.approx([0.9, 0.0])
    # intervals longer than the window clip to 0.
    assert decode_isi([SpikeEvent(0, 0), SpikeEvent(0, 500)], 100, 1).tolist() == [0.0]


def test_decoders_accept_arrays_and_agree_with_objects():
    ev = published_events()
    arr = EventArrays(np.array([e.neuron_id for e in ev]), np.array([e.timestamp_ns for e in ev]))
    for decode, kw in ((decode_rate, {}), (decode_isi, {}), (decode_temporal, {"now_ns": 100})):
        assert decode(arr, 100, 4, **kw).tobytes() == decode(ev, 100, 4, **kw).tobytes()


@pytest.mark.parametrize("decode", [decode_rate, decode_temporal, decode_isi])
@pytest.mark.parametrize("window, n, error, match", [
    (0, 4, ValueError, "window_ns must be >= 1, got 0"),
    (-5, 4, ValueError, "window_ns"),
    (float("nan"), 4, TypeError, "window_ns must be an integer, got nan"),
    (100, 0, ValueError, "n_features must be >= 1, got 0"),
    (100, 2**20 + 1, OverflowError, "n_features"),
])
def test_decoders_validate_shape_arguments(decode, window, n, error, match):
    with pytest.raises(error, match=match):
        decode(published_events(), window, n)


def test_decoders_validate_events():
    with pytest.raises(TypeError, match=r"events\[1\] must be a SpikeEvent"):
        decode_rate([SpikeEvent(0, 1), (1, 2)], 10, 2)
    with pytest.raises(TypeError, match="events must be a sequence"):
        decode_rate(42, 10, 2)
    with pytest.raises(ValueError, match="timestamp_ns contains nan at index 1"):
        decode_isi(EventArrays(np.array([0, 1]), np.array([1.0, np.nan])), 10, 2)
    with pytest.raises(ValueError, match="now_ns must be >= 0, got -1"):
        decode_temporal(published_events(), 10, 2, now_ns=-1)


# -- normalisation -------------------------------------------------------------

def test_max_normalisation_scales_peak_to_one():
    assert normalise_features([0.2, 0.4, 0.8], "max").tolist() == pytest.approx([0.25, 0.5, 1.0])
    assert normalise_features(np.zeros(3), "max").tolist() == [0.0, 0.0, 0.0]


def test_zscore_normalisation_is_the_logistic_of_scipy_zscore():
    x = np.array([0.1, 0.5, 0.9, 0.3])
    expect = [1.0 / (1.0 + math.exp(-z)) for z in stats.zscore(x)]
    assert normalise_features(x, "zscore").tolist() == pytest.approx(expect, rel=1e-12)
    assert normalise_features(np.full(4, 0.5), "zscore").tolist() == [0.0] * 4
    assert normalise_features(np.zeros(0), "zscore").size == 0


def test_unit_normalisation_clips():
    assert normalise_features([-0.5, 0.5, 1.5], "unit").tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("x, mode, match", [
    (np.zeros((2, 2)), "unit", "one-dimensional"),
    ([0.0, np.nan], "unit", "finite, got nan at index 1"),
    ([np.inf], "max", "finite, got inf at index 0"),
    ([0.5], "bogus", "feature_normalisation must be one of: unit, max, zscore"),
])
def test_normalisation_is_strict(x, mode, match):
    with pytest.raises(ValueError, match=match):
        normalise_features(x, mode)


# -- AERControlObservation -----------------------------------------------------

def test_observation_drains_the_active_window():
    b = buffer_of([(0, 10), (0, 30), (1, 70), (3, 80)])
    obs = AERControlObservation(timestamp_ns=100, spike_stream=b, decode_window_ns=100,
                                decode_strategy="rate", n_features=4)
    x = obs.to_features()
    assert x.dtype == np.float64 and x.shape == (4,)
    assert x.tolist() == pytest.approx([0.5, 0.25, 0.0, 0.25])
    assert len(b) == 0
    # The observation is a snapshot: the mapping and a second call agree with the first.
    assert obs.to_feature_mapping() == {f"aer_{i}": v for i, v in enumerate(x.tolist())}
    assert obs.to_features().tobytes() == x.tobytes()
    assert obs.window_events.neuron_id.tolist() == [0, 0, 1, 3]


def test_observation_keeps_future_events_for_the_next_observation():
    b = buffer_of([(0, 10), (1, 150), (2, 20)])
    AERControlObservation(100, b, 100, n_features=4).to_features()
    assert b.snapshot() == [SpikeEvent(1, 150)]
    x = AERControlObservation(200, b, 100, n_features=4).to_features()
    assert x.tolist() == [0.0, 1.0, 0.0, 0.0]


def test_observation_temporal_and_isi_strategies():
    temporal = AERControlObservation(100, buffer_of([(0, 90), (1, 50)]), 100,
                                     decode_strategy="temporal", n_features=4)
    assert temporal.to_features().tolist() == pytest.approx([0.1, 0.5, 0.0, 0.0])
    isi = AERControlObservation(100, buffer_of([(0, 10), (0, 20), (0, 30)]), 100,
                                decode_strategy="isi", n_features=4)
    assert isi.to_features().tolist() == pytest.approx([0.9, 0.0, 0.0, 0.0])


def test_observation_normalisations():
    pairs = [(0, 10), (0, 30), (1, 70), (3, 80)]
    mx = AERControlObservation(100, buffer_of(pairs), 100, n_features=4,
                               feature_normalisation="max")
    assert mx.to_features().tolist() == pytest.approx([1.0, 0.5, 0.0, 0.5])
    z = AERControlObservation(100, buffer_of(pairs), 100, n_features=4,
                              feature_normalisation="zscore")
    expect = [1.0 / (1.0 + math.exp(-v)) for v in stats.zscore([0.5, 0.25, 0.0, 0.25])]
    assert z.to_features().tolist() == pytest.approx(expect, rel=1e-12)


def test_strict_mode_fails_closed_and_keeps_the_events():
    b = buffer_of([(1, 100), (1, 90)])
    obs = AERControlObservation(timestamp_ns=120, spike_stream=b, decode_window_ns=50,
                                n_features=4, require_monotonic=True)
    with pytest.raises(NonMonotonicInputError, match="1 event.*monotonic timestamp"):
        obs.to_features()
    with pytest.raises(ValueError, match="monotonic timestamp"):
        obs.to_feature_mapping()
    assert b.snapshot() == [SpikeEvent(1, 100), SpikeEvent(1, 90)]
    # The lenient default decodes the same buffer.
    lenient = AERControlObservation(120, b, 50, n_features=4)
    assert lenient.to_features().tolist() == [0.0, 1.0, 0.0, 0.0]


def test_strict_mode_accepts_monotonic_input():
    b = buffer_of([(0, 10), (2, 10), (2, 40)])
    obs = AERControlObservation(50, b, 50, n_features=3, require_monotonic=True)
    assert obs.to_features().tolist() == pytest.approx([1 / 3, 0.0, 2 / 3])
    assert obs.admission_report()["monotonic_input"] is True


def test_admission_report_is_the_buffers():
    b = buffer_of([(0, 1), (0, 500)], capacity=1)
    obs = AERControlObservation(120, b, 50, n_features=2)
    assert obs.admission_report() == b.admission_report()
    assert obs.admission_report()["overflowed"] is True


def test_feature_mapping_prefix():
    obs = AERControlObservation(40, buffer_of([(2, 20), (2, 30)]), 40, n_features=4)
    mapping = obs.to_feature_mapping(prefix="neu_")
    assert set(mapping) == {"neu_0", "neu_1", "neu_2", "neu_3"}
    assert mapping["neu_2"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="prefix must not be empty"):
        obs.to_feature_mapping(prefix="")
    with pytest.raises(TypeError, match="prefix must be a str"):
        obs.to_feature_mapping(prefix=3)


def test_defaults_follow_the_published_contract():
    obs = AERControlObservation(10, SpikeBuffer(4), 100)
    assert (obs.decode_strategy, obs.n_features, obs.feature_normalisation,
            obs.require_monotonic) == ("rate", 64, "unit", False)
    assert obs.to_features().tolist() == [0.0] * 64


@pytest.mark.parametrize("kwargs, error, match", [
    ({"decode_strategy": "bogus"}, ValueError, "decode_strategy must be one of: rate, temporal"),
    ({"feature_normalisation": "l2"}, ValueError, "feature_normalisation must be one of"),
    ({"require_monotonic": "yes"}, TypeError, "require_monotonic must be a boolean"),
    ({"timestamp_ns": float("nan")}, TypeError, "timestamp_ns must be an integer, got nan"),
    ({"timestamp_ns": -1}, ValueError, "timestamp_ns must be >= 0"),
    ({"decode_window_ns": 0}, ValueError, "decode_window_ns must be >= 1, got 0"),
    ({"decode_window_ns": float("inf")}, TypeError, "decode_window_ns"),
    ({"n_features": 0}, ValueError, "n_features"),
    ({"spike_stream": [SpikeEvent(0, 1)]}, TypeError, "spike_stream must be a SpikeBuffer"),
])
def test_observation_arguments_are_validated(kwargs, error, match):
    args = {"timestamp_ns": 10, "spike_stream": SpikeBuffer(2), "decode_window_ns": 100}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        AERControlObservation(**args)


def test_dma_words_to_features_end_to_end():
    # Channels 0..3 at 20 kHz (50 us frames); window = last 10 frames ending at frame 20.
    rng = np.random.default_rng(7)
    frames = np.sort(rng.integers(0, 21, 200))
    chans = rng.integers(0, 4, 200)
    w = (chans.astype(np.uint64) | (frames.astype(np.uint64) << np.uint64(32)))
    b = SpikeBuffer(1024)
    b.ingest_aer(w, 50_000)
    obs = AERControlObservation(20 * 50_000, b, 10 * 50_000, n_features=4)
    inside = frames >= 10
    expect = np.bincount(chans[inside], minlength=4) / inside.sum()
    assert obs.to_features().tolist() == pytest.approx(expect.tolist(), rel=1e-15)
    assert b.admission_report()["discarded_events"] == int((~inside).sum())


def test_docs_quickstart_example():
    # docs/observation.md: 3 events, neuron 0 twice and neuron 7 once, all in [0, 100].
    buffer = SpikeBuffer(capacity=128)
    buffer.push(SpikeEvent(neuron_id=0, timestamp_ns=10))
    buffer.push(SpikeEvent(neuron_id=0, timestamp_ns=30))
    buffer.push(SpikeEvent(neuron_id=7, timestamp_ns=80))
    obs = AERControlObservation(timestamp_ns=100, spike_stream=buffer, decode_window_ns=100,
                                decode_strategy="rate", n_features=8, require_monotonic=True)
    assert obs.to_features().tolist() == pytest.approx([2 / 3] + [0.0] * 6 + [1 / 3])
    assert obs.to_feature_mapping(prefix="aer_")["aer_7"] == pytest.approx(1 / 3)
    assert obs.admission_report()["drained_events"] == 3
