"""SpikeSorter against scikit-learn's own predict, and its optional-dependency error."""

import builtins

import numpy as np
import pytest

from bioloop.host.bioware import DetectedSpike, SpikeSorter


def two_units(rng, m=60, d=40):
    t = np.arange(d)
    a = -80 * np.exp(-((t - 20) / 3) ** 2)
    b = 50 * np.exp(-((t - 15) / 6) ** 2) - 30 * np.exp(-((t - 25) / 2) ** 2)
    lab = rng.integers(0, 2, m)
    w = np.where(lab[:, None] == 0, a, b) + rng.normal(0, 2, (m, d))
    return w, lab


def test_predict_equals_sklearn_and_separates_units():
    rng = np.random.default_rng(0)
    w, lab = two_units(rng)
    s = SpikeSorter(num_units=2)
    assert s.fit_waveforms(w)
    got = s.predict_waveforms(w)
    want = s.kmeans_.predict(s.pca_.transform(w)) + 1
    assert np.array_equal(got, want)
    # the two shapes end up in two different units, each pure
    for u in (1, 2):
        assert len(set(lab[got == u].tolist())) == 1
    fresh = rng.normal(0, 50, (30, 40))
    assert np.array_equal(s.predict_waveforms(fresh), s.kmeans_.predict(s.pca_.transform(fresh)) + 1)


def test_same_seed_same_units_and_assign():
    rng = np.random.default_rng(1)
    w, _ = two_units(rng)
    spikes = [DetectedSpike(0, i * 1e-3, -50.0, 0, w[i]) for i in range(len(w))]
    a, b = SpikeSorter(num_units=3), SpikeSorter(num_units=3)
    a.fit(spikes)
    b.fit(spikes)
    ua = [s.unit_id for s in a.assign([DetectedSpike(**{f: getattr(x, f) for f in x.__slots__}) for x in spikes])]
    ub = [s.unit_id for s in b.assign(spikes)]
    assert ua == ub and set(ua) <= {1, 2, 3}


def test_no_op_below_num_units_and_without_waveforms():
    s = SpikeSorter(num_units=4)
    spikes = [DetectedSpike(0, 0.0, -50.0, 0, np.zeros(40)) for _ in range(3)]
    assert s.fit(spikes) is False and not s.fitted
    assert s.fit([DetectedSpike(0, 0.0, -50.0) for _ in range(10)]) is False
    assert [x.unit_id for x in s.assign(spikes)] == [0, 0, 0]
    with pytest.raises(ValueError, match="one length"):
        s.fit([DetectedSpike(0, 0.0, -1.0, 0, np.zeros(40 + i)) for i in range(5)])


def test_missing_sklearn_names_the_extra(monkeypatch):
    real = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    s = SpikeSorter(num_units=2)
    # below num_units: no import needed, no error
    assert s.fit_waveforms(np.zeros((1, 10))) is False
    with pytest.raises(ImportError, match=r"bioloop\[sort\]"):
        s.fit_waveforms(np.random.default_rng(0).normal(size=(10, 10)))
