"""Sorting in the slow loop: per-electrode PCA + k-means on snippets cut at the detections, against ground truth."""

import numpy as np
import pytest

from bioloop.host.backends import ModelBus
from bioloop.host.bioware.sorting import ChannelSorter, SpikeSorter
from bioloop.host.culture import Culture, CultureConfig
from bioloop.host.driver import Driver
from bioloop.host.loop import LoopSettings, run_loop


@pytest.fixture(scope="module")
def recording():
    """6 s of the default culture in the dark and its threshold crossings (5 MAD-sigma, negative)."""
    culture = Culture(CultureConfig(seed=1))
    block = culture.step(6 * 20000)
    codes = block.codes
    sigma = np.median(np.abs(codes.astype(np.float64)), axis=0) / 0.6745
    below = codes <= -5 * sigma
    f, ch = np.nonzero(below[1:] & ~below[:-1])
    order = np.argsort(f + 1, kind="stable")
    return culture, block, (f + 1)[order], ch[order]


def _truth(culture, block, frames, channels):
    """Ground-truth neuron of every detection: the spike whose trough is within 0.2 ms before to 0.8 ms after
    the crossing with the largest amplitude on the detection's electrode (-1: none)."""
    gain = culture.gain_matrix()
    gs, gn = block.spikes["sample"], block.spikes["neuron"]
    out = np.full(frames.size, -1)
    for i, (f, c) in enumerate(zip(frames.tolist(), channels.tolist(), strict=True)):
        lo, hi = np.searchsorted(gs, f - 4), np.searchsorted(gs, f + 16)
        if hi > lo:
            cand = gn[lo:hi]
            if gain[cand, c].max() > 0:
                out[i] = cand[np.argmax(gain[cand, c])]
    return out


def _auc(x, y):
    """P(a value of x exceeds a value of y), ties counting half (the Mann-Whitney AUC)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    return float(((x[:, None] > y[None, :]).sum() + 0.5 * (x[:, None] == y[None, :]).sum()) / (x.size * y.size))


def test_sorted_units_separate_ground_truth_neurons_by_their_amplitude(recording):
    """The unit with the deeper mean snippet holds the detections of the neurons that are larger on that
    electrode in the culture's ground truth (their gain, which the sorter never sees): Mann-Whitney AUC of
    the true amplitudes between the two units, chance 0.5."""
    culture, block, frames, channels = recording
    sorter = ChannelSorter(60, 2, fit_spikes=100)
    units = sorter.sort(block.codes, 0, frames, channels)
    assert sorter.fitted.sum() >= 55
    truth = _truth(culture, block, frames, channels)
    assert np.mean(truth >= 0) > 0.95
    gain = culture.gain_matrix()
    w, ok = sorter.snippets(block.codes, 0, frames, channels)
    depth = np.zeros(frames.size)
    depth[ok] = -w.min(axis=1)
    aucs = []
    for c in range(60):
        m = (channels == c) & (truth >= 0)
        a, b = m & (units == 1), m & (units == 2)
        if a.sum() < 10 or b.sum() < 10:
            continue
        big, small = (a, b) if depth[a].mean() > depth[b].mean() else (b, a)
        aucs.append(_auc(gain[truth[big], c], gain[truth[small], c]))
    print(f"{len(aucs)} channels, AUC median {np.median(aucs):.3f}, mean {np.mean(aucs):.3f}, min {np.min(aucs):.3f}")
    assert len(aucs) >= 15 and np.median(aucs) >= 0.9, (len(aucs), np.median(aucs))


def test_streaming_push_sorts_every_detection_once_whatever_the_chunking(recording):
    _, block, frames, channels = recording
    one = ChannelSorter(60, 2, fit_spikes=60)
    c1, u1 = one.push(block.codes, 0, frames, channels)
    chunked = ChannelSorter(60, 2, fit_spikes=60)
    cs, us = [], []
    for f0 in range(0, block.codes.shape[0], 1000):          # 50 ms periods
        sel = (frames >= f0) & (frames < f0 + 1000)
        c, u = chunked.push(block.codes[f0:f0 + 1000], f0, frames[sel], channels[sel])
        cs.append(c)
        us.append(u)
    assert np.array_equal(np.concatenate(cs), c1[:sum(map(len, cs))])
    assert np.array_equal(np.concatenate(us), u1[:sum(map(len, us))])
    assert chunked.n_sorted + chunked.n_unsorted + chunked.waiting == frames.size
    with pytest.raises(ValueError, match="contiguous"):
        chunked.push(block.codes[:10], 5, [], [])


def test_numpy_engine_finds_two_clear_clusters():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1, (100, 20)) + np.linspace(0, 8, 20)
    b = rng.normal(0, 1, (100, 20)) - np.linspace(0, 8, 20)
    s = SpikeSorter(2, 3, engine="numpy")
    assert s.fit_waveforms(np.vstack([a, b]))
    ua, ub = s.predict_waveforms(a), s.predict_waveforms(b)
    assert len(set(ua)) == 1 and len(set(ub)) == 1 and ua[0] != ub[0]
    with pytest.raises(ValueError, match="engine"):
        SpikeSorter(engine="torch")


def test_sorting_in_the_loop_puts_unit_rates_in_the_observation_and_the_audit():
    s = LoopSettings(duration_s=0.5, calibration_ms=100.0, homeostasis=False, weight_q88=0, sort_units=2,
                     sort_fit_spikes=5)
    seen = []

    class Watch:
        name = "watch"

        def step(self, obs, state):
            seen.append(obs.unit_rates_hz)
            return []

    r = run_loop(Driver(ModelBus(64, 64, 16)), Culture(CultureConfig(seed=3)), s, policies=[Watch()])
    P = len(r.periods.t_s)
    assert r.unit_rates_hz.shape == (P, 60, 2) and all(x.shape == (60, 2) for x in seen)
    units = [e for e in r.audit.entries if e["kind"] == "units"]
    assert len(units) == P and np.allclose(np.array(units[-1]["data"]["rates_hz"]), np.round(seen[-1], 1))
    # a unit's spikes are SPIKE words of its channel: per channel, at most the channel's detections
    per_channel_sorted = (r.unit_rates_hz.sum(axis=2) * s.control_period_ms / 1000).sum(axis=0)
    detections = r.rate_hz[:, :60].sum(axis=0) * r.block_frames / r.sample_rate_hz
    assert r.unit_rates_hz.sum() > 0 and np.all(per_channel_sorted <= detections + 1e-9)
    t = r.timing()
    assert t["sort_ms_p50"] is not None and r.periods.sort_s.shape == (P,)
    with pytest.raises(ValueError, match="sort_units"):
        LoopSettings(sort_units=9)


def test_the_loop_fits_at_most_one_electrode_per_period(recording):
    """Fits cost milliseconds each: the loop's sorter spreads them, one electrode per call."""
    _, block, frames, channels = recording
    sorter = ChannelSorter(60, 2, fit_spikes=20, max_fits_per_call=1)
    done = []
    for f0 in range(0, 20 * 1000, 1000):
        sel = (frames >= f0) & (frames < f0 + 1000)
        sorter.push(block.codes[f0:f0 + 1000], f0, frames[sel], channels[sel])
        done.append(int(sorter.fitted.sum()))
    assert all(b - a <= 1 for a, b in zip([0] + done, done, strict=False)) and done[-1] >= 10
