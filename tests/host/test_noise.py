"""The one MAD noise estimate (bioloop.host.noise): exact, and the same bits on both paths."""

import numpy as np
import pytest

from bioloop.host import noise
from bioloop.host.noise import MAD_TO_SIGMA, mad_sigma, median_abs

needs_numba = pytest.mark.skipif(not noise.HAVE_NUMBA, reason="numba is not installed")


def truth(x):
    """Independent truth: numpy's median of |x| in float64, channel by channel."""
    return np.array([np.median(np.abs(x[:, c].astype(np.float64))) for c in range(x.shape[1])])


def recordings(seed):
    rng = np.random.default_rng(seed)
    for T in (1, 2, 3, 64, 501, 2000, 8192, 9001):   # the int16 kernel switches paths at 8192
        n = int(rng.integers(1, 40))
        codes = np.clip(np.rint(rng.normal(0, rng.uniform(1, 3000), (T, n))), -32768, 32767).astype(np.int16)
        if T > 3:
            codes[rng.integers(0, T), 0] = -32768        # |x| needs 17 bits
            codes[:, -1] = 0                             # a dead channel
            codes[:, 0] = rng.integers(-32768, 32767, T)  # median far above the histogram
        yield codes
        yield codes.astype(np.float32) * np.float32(0.195)
        yield rng.standard_t(3, (T, n)) * 12.5           # heavy tails, float64
        yield codes.astype(np.int32)


@pytest.mark.parametrize("seed", range(4))
def test_median_abs_is_the_exact_median_on_every_path(seed):
    for x in recordings(seed):
        want = truth(x)
        assert np.array_equal(median_abs(x, use_numba=False), want)
        if noise.HAVE_NUMBA:
            assert np.array_equal(median_abs(x, use_numba=True), want)


@needs_numba
def test_hint_never_changes_the_result():
    rng = np.random.default_rng(7)
    x = rng.normal(0, 5.0, (3001, 6))
    want = median_abs(x, use_numba=False)
    # a good guess, a bad guess, zeros, inf: the bracket is only a speed-up
    for hint in (want, want * 3, np.zeros(6), np.full(6, np.inf), want * 0.95):
        assert np.array_equal(median_abs(x, hint, use_numba=True), want)


def test_mad_sigma_is_median_over_0_6745():
    # Donoho & Johnstone 1994: for Gaussian noise median|x| / Φ^-1(0.75) is σ
    rng = np.random.default_rng(1)
    x = rng.normal(0, 7.0, (200_000, 2))
    s = mad_sigma(x)
    assert np.array_equal(s, truth(x) / MAD_TO_SIGMA)
    assert np.allclose(s, 7.0, rtol=0.01)


@pytest.mark.parametrize("bad, error", [
    (np.zeros(5), ValueError), (np.zeros((0, 3)), ValueError), (np.zeros((4, 2), bool), TypeError),
])
def test_rejects_what_it_cannot_estimate(bad, error):
    with pytest.raises(error):
        median_abs(bad)


def test_every_consumer_uses_this_module():
    from bioloop.host.bioware.detection import MEAConfig, SpikeDetector
    from bioloop.host.codec.events import mad_sigma as codec_sigma
    from bioloop.host.codec.events import mad_sigma_codes
    from bioloop.host.culture.scoring import unit_snr

    rng = np.random.default_rng(3)
    codes = rng.integers(-400, 400, (1000, 4)).astype(np.int16)
    uv = codes * 0.195
    assert np.array_equal(SpikeDetector(MEAConfig(num_channels=4)).estimate_noise(codes), mad_sigma(codes))
    assert np.array_equal(codec_sigma(uv), (median_abs(uv) / MAD_TO_SIGMA).astype(np.float32))
    assert np.array_equal(mad_sigma_codes(codes, 0.195),
                          (median_abs(codes) * 0.195 / MAD_TO_SIGMA).astype(np.float32))
    # unit_snr's σ: a unit whose mean waveform peaks at 10 σ on channel 2
    x = rng.normal(0, 4.0, (20_000, 4))
    t = np.arange(100, 19_000, 200)
    x[t + 20, 2] -= 40.0 * 4
    snr, best = unit_snr(x, t, np.zeros(t.size, np.int64), 1)
    sigma = mad_sigma(x)[2]
    assert best[0] == 2
    assert snr[0] == pytest.approx(np.max(np.abs(np.mean([x[s - 20:s + 30, 2] for s in t], axis=0))) / sigma)
