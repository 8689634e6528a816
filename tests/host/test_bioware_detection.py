"""SpikeDetector against the gateware Detector model, the MAD formula and the published example."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from bioloop.host.bioware.examples import published_frame
from bioloop.host.layouts import Polarity
from bioloop.host.bioware import MEAConfig, MEALayout, SpikeDetector
from bioloop.host.models.detector import Detector





def test_layouts_have_canonical_counts_and_pitches():
    expect = {MEALayout.MEA_60: (60, 200.0), MEALayout.MEA_120: (120, 100.0),
              MEALayout.MEA_256: (256, 100.0), MEALayout.MEA_4096: (4096, 17.5)}
    for lay, (n, pitch) in expect.items():
        c = MEAConfig.from_layout(lay)
        assert (c.num_channels, c.electrode_pitch_um, c.layout) == (n, pitch, lay)
    assert MEAConfig(num_channels=10).layout is MEALayout.CUSTOM
    with pytest.raises(ValueError, match="num_channels"):
        MEAConfig.from_layout(MEALayout.CUSTOM)
    with pytest.raises(ValueError, match="sample_rate_hz"):
        MEAConfig(sample_rate_hz=float("nan"))


def test_published_example_detects_exactly_the_injected_spikes():
    cfg = MEAConfig(num_channels=10, sample_rate_hz=20_000.0, spike_threshold_sigma=5.0)
    spikes = SpikeDetector(cfg, refractory_samples=30).detect(published_frame())
    got = sorted((s.channel, s.sample_index) for s in spikes)
    want = sorted([(0, t) for t in range(0, 2000, 200)] + [(3, t) for t in range(100, 2000, 200)])
    assert got == want
    for s in spikes:
        assert s.timestamp_s == pytest.approx(s.sample_index / 20_000.0)
        assert s.amplitude_uv == (-80.0 if s.channel == 0 else -60.0)
        assert s.waveform.shape == (40,)  # ±1 ms at 20 kHz


def test_noise_is_median_abs_over_0_6745():
    v = published_frame()
    cfg = MEAConfig(num_channels=10)
    got = SpikeDetector(cfg).estimate_noise(v)
    np.testing.assert_allclose(got, np.median(np.abs(v), axis=0) / 0.6745, rtol=0, atol=0)


def test_reported_time_is_first_sample_beyond():
    # ramp down through the threshold: -10, -20, -30, -40 with θ = 25 -> first beyond is index 3
    cfg = MEAConfig(num_channels=2)
    d = SpikeDetector(cfg, noise_policy="calibrated")
    d.calibrate(np.full((10, 2), 5 * 0.6745))   # σ = 5 -> θ = 25
    x = np.zeros((8, 2))
    x[1:5, 0] = [-10, -20, -30, -40]
    s = d.detect(x)
    assert [(p.channel, p.sample_index) for p in s] == [(0, 3)]


def quantized_stream(rng, n, T, burst=True):
    x = rng.normal(0, 40, size=(T, n))
    if burst:
        idx = rng.integers(0, T, size=T // 20)
        ch = rng.integers(0, n, size=idx.size)
        x[idx, ch] -= rng.uniform(100, 600, size=idx.size)
        x[idx[: idx.size // 2], ch[: idx.size // 2]] += 900
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("polarity", ["negative", "positive", "both"])
@pytest.mark.parametrize("refractory", [0, 1, 5, 30])
@pytest.mark.parametrize("T", [1500, pytest.param(20_000, marks=pytest.mark.long)])
def test_equals_gateware_detector_model_on_int16(polarity, refractory, T):
    rng = np.random.default_rng(refractory * 7 + len(polarity))
    n = 8
    x = quantized_stream(rng, n, T)
    cfg = MEAConfig(num_channels=n)
    host = SpikeDetector(cfg, refractory_samples=refractory, polarity=polarity, noise_policy="calibrated")
    host.calibrate(x[:500])
    thr = host.export_thresholds_int16()
    assert thr.dtype == np.int16
    hw = Detector(n, thresholds=thr, polarity=host.polarity_codes, refractory=refractory)
    assert (host.polarity_codes == Polarity[polarity.upper()].value).all()
    # frames cut at uneven places; state must carry
    cuts = [0, 1, 377, 378, 1000, T]
    got, want = [], []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        bt = host.detect_arrays(x[a:b])
        got += list(zip(bt.sample_index.tolist(), bt.channel.tolist(), strict=True))
        want += [tuple(r) for r in hw.process(x[a:b]).tolist()]
    assert got == want
    assert len(got) > 10


@pytest.mark.parametrize("examples", [15, pytest.param(60, marks=pytest.mark.long)])
def test_equals_gateware_model_hypothesis(examples):
    @settings(max_examples=examples)
    @given(seed=st.integers(0, 2**32 - 1), refractory=st.integers(0, 40),
           n=st.sampled_from([2, 4, 6]), per_frame=st.booleans())
    def check(seed, refractory, n, per_frame):
        # per-frame σ: thresholds move every frame, as a CSR write would between frames
        rng = np.random.default_rng(seed)
        cfg = MEAConfig(num_channels=n)
        host = SpikeDetector(cfg, refractory_samples=refractory, polarity="both",
                             noise_policy="per_frame" if per_frame else "running", noise_tau_s=0.01)
        hw = Detector(n, polarity=host.polarity_codes, refractory=refractory)
        for _ in range(3):
            x = quantized_stream(rng, n, int(rng.integers(1, 300)))
            bt = host.detect_arrays(x)
            hw.thresholds[:] = host.export_thresholds_int16()
            assert list(zip(bt.sample_index.tolist(), bt.channel.tolist(), strict=True)) == \
                [tuple(r) for r in hw.process(x).tolist()]

    check()


def test_stream_cut_into_frames_equals_whole_stream():
    rng = np.random.default_rng(5)
    x = rng.normal(0, 5, size=(3000, 4))
    x[rng.integers(0, 3000, 60), rng.integers(0, 4, 60)] = -70
    cfg = MEAConfig(num_channels=4)
    whole = SpikeDetector(cfg, noise_policy="calibrated")
    whole.calibrate(x)
    parts = SpikeDetector(cfg, noise_policy="calibrated")
    parts.calibrate(x)
    a = whole.detect_arrays(x)
    got = [parts.detect_arrays(x[i:i + 250]) for i in range(0, 3000, 250)]
    assert np.array_equal(a.sample_index, np.concatenate([g.sample_index for g in got]))
    assert np.array_equal(a.channel, np.concatenate([g.channel for g in got]))
    # timestamps continue across frames without t_start_s
    np.testing.assert_allclose(np.concatenate([g.timestamp_s for g in got]), a.sample_index / 20000.0)


def test_noise_policies():
    cfg = MEAConfig(num_channels=2, sample_rate_hz=1000.0)
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 2, (1000, 2)), rng.normal(0, 8, (500, 2))
    sa, sb = (np.median(np.abs(z), axis=0) / 0.6745 for z in (a, b))
    cal = SpikeDetector(cfg, noise_policy="calibrated")
    with pytest.raises(RuntimeError, match="calibrate"):
        cal.detect(a)
    cal.calibrate(a)
    cal.detect(b)
    np.testing.assert_array_equal(cal.noise_sigma, sa)          # fixed, not the latest frame
    per = SpikeDetector(cfg)
    per.detect(a)
    per.detect(b)
    np.testing.assert_array_equal(per.noise_sigma, sb)          # not cached from the first frame
    run = SpikeDetector(cfg, noise_policy="running", noise_tau_s=2.0)
    run.detect(a)
    run.detect(b)
    beta = 1 - math.exp(-0.5 / 2.0)                              # 500 samples at 1 kHz, τ = 2 s
    np.testing.assert_allclose(run.noise_sigma, (1 - beta) * sa + beta * sb, rtol=1e-12)


def test_bad_input_is_named_and_state_is_kept():
    cfg = MEAConfig(num_channels=3)
    d = SpikeDetector(cfg)
    x = np.zeros((100, 3))
    x[57, 2] = np.nan
    with pytest.raises(ValueError, match="channel 2, sample 57"):
        d.detect(x)
    with pytest.raises(ValueError, match="3"):
        d.detect(np.zeros((10, 4)))
    with pytest.raises(ValueError, match="2-D"):
        d.detect(np.zeros(10))
    with pytest.raises(TypeError, match="dtype"):
        d.detect(np.zeros((10, 3), complex))
    assert d.frames_seen == 0
    assert d.detect(np.zeros((0, 3))) == []
    assert d.frames_seen == 0
    with pytest.raises(ValueError, match="polarity"):
        SpikeDetector(cfg, polarity="up")
    with pytest.raises(ValueError, match="refractory"):
        SpikeDetector(cfg, refractory_samples=-1)


def test_dead_channel_cannot_flood():
    cfg = MEAConfig(num_channels=2)
    x = np.zeros((200, 2), np.int16)
    x[:, 1] = np.random.default_rng(0).integers(-50, 50, 200)
    d = SpikeDetector(cfg, polarity="both")
    bt = d.detect_arrays(x)
    assert not (bt.channel == 0).any()
    assert d.export_thresholds_int16()[0] == 32767


def test_many_detections_grow_the_buffer():
    # every other sample crosses on every channel: far more than the first buffer holds
    cfg = MEAConfig(num_channels=64)
    d = SpikeDetector(cfg, refractory_samples=0, noise_policy="calibrated")
    d.calibrate(np.full((4, 64), 0.6745))      # σ = 1, θ = 5
    x = np.zeros((400, 64))
    x[::2] = -10
    bt = d.detect_arrays(x)
    assert bt.channel.size == 200 * 64
    assert np.array_equal(bt.local_index, np.repeat(np.arange(0, 400, 2), 64))


@pytest.mark.parametrize("T", [1, 2, 3, 256, 257, 1000, 1001])
def test_int16_noise_estimate_equals_numpy_median(T):
    rng = np.random.default_rng(T)
    for x in (rng.integers(-32768, 32768, (T, 40)).astype(np.int16),
              np.rint(rng.normal(0, 30, (T, 40))).astype(np.int16),
              rng.integers(0, 32768, (T, 40)).astype(np.uint16)):   # int16 codes in any integer dtype
        got = SpikeDetector(MEAConfig(num_channels=40)).estimate_noise(x)
        want = np.median(np.abs(x.astype(np.float64)), axis=0) / 0.6745
        assert np.array_equal(got, want)


@pytest.mark.parametrize("examples", [10, pytest.param(40, marks=pytest.mark.long)])
def test_float_noise_estimate_is_exact_frame_after_frame(examples):
    @settings(max_examples=examples)
    @given(seed=st.integers(0, 2**32 - 1), scales=st.lists(st.floats(0.5, 20), min_size=2, max_size=5),
           T=st.integers(1, 600))
    def check(seed, scales, T):
        # the previous frame's σ brackets the median search; a jump in σ must still give the exact median
        rng = np.random.default_rng(seed)
        d = SpikeDetector(MEAConfig(num_channels=3))
        for s in scales:
            x = rng.normal(0, s, (T, 3))
            x[:, 2] = np.round(x[:, 2])           # ties
            d.detect_arrays(x)
            assert np.array_equal(d.noise_sigma, np.median(np.abs(x), axis=0) / 0.6745)

    check()


@pytest.mark.parametrize("polarity", ["negative", "positive", "both"])
@pytest.mark.parametrize("kind", ["f", "i"])
def test_fast_bounds_equal_the_reference_bounds(polarity, kind):
    d = SpikeDetector(MEAConfig(num_channels=5), polarity=polarity)
    sigma = np.array([0.0, 1.0, 2.5, 1e-9, 7.3])
    lo, hi = d._fast_bounds(sigma.copy(), kind)
    rlo, rhi = d._bounds(d._thresholds_for(sigma, kind), kind)
    assert np.array_equal(lo, rlo) and np.array_equal(hi, rhi)
