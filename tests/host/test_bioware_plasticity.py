"""STDP (Bi & Poo 1998), BCM (Bienenstock, Cooper & Munro 1982) and the shared homeostasis rule."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from bioloop.host.bioware import BCMPlasticity, BiologicalSTDP
from bioloop.host.bioware import HomeostaticPlasticity as HP_bioware
from bioloop.host.bioware.plasticity import apply_dw_q88
from bioloop.host.models.homeostasis import HomeostaticPlasticity


def test_homeostasis_is_the_shared_model():
    assert HP_bioware is HomeostaticPlasticity


def test_stdp_kernel_values():
    s = BiologicalSTDP()
    assert (s.A_plus, s.A_minus, s.tau_plus_ms, s.tau_minus_ms) == (0.005, 0.00525, 20.0, 20.0)
    assert s.compute_dw(20.0) == pytest.approx(0.005 * math.exp(-1))
    assert s.compute_dw(-20.0) == pytest.approx(-0.00525 * math.exp(-1))
    assert s.compute_dw(0.0) == 0.0
    np.testing.assert_allclose(s.compute_dw(np.array([5.0, -5.0])),
                               [0.005 * math.exp(-0.25), -0.00525 * math.exp(-0.25)])


@settings(max_examples=50, deadline=None)
@given(dt=st.floats(0.01, 200))
def test_stdp_sign_asymmetry_and_decay(dt):
    s = BiologicalSTDP()
    assert s.compute_dw(dt) > 0 > s.compute_dw(-dt)
    assert abs(s.compute_dw(-dt)) == pytest.approx(1.05 * s.compute_dw(dt))   # A-/A+ = 1.05
    assert s.compute_dw(dt + 1) < s.compute_dw(dt)


def test_q88_update_uses_floor_and_clamps():
    assert apply_dw_q88(256, 0.005).item() == 257                   # floor(1.28) = 1
    assert apply_dw_q88(256, 0.001).item() == 256                   # floor(0.256) = 0
    assert apply_dw_q88(256, -0.001).item() == 255                  # floor(-0.256) = -1
    assert apply_dw_q88(32767, 1.0).item() == 32767
    assert apply_dw_q88(-32768, -1.0).item() == -32768


def test_weight_matrix_update_equals_brute_force_pairs():
    rng = np.random.default_rng(3)
    n = 4
    t = np.sort(rng.uniform(0, 200, 25))
    c = rng.integers(0, n, 25)
    w0 = rng.integers(-300, 300, (n, n)).astype(np.int16)
    s = BiologicalSTDP()
    got = s.update_weights_q88(w0, t, c)
    dw = np.zeros((n, n))
    for a in range(t.size):
        for b in range(t.size):
            if c[a] != c[b] and abs(t[b] - t[a]) <= 100.0:
                d = t[b] - t[a]
                dw[c[a], c[b]] += (0.005 * math.exp(-d / 20) if d > 0 else
                                   -0.00525 * math.exp(d / 20) if d < 0 else 0.0)
    want = np.clip(w0 + np.floor(dw * 256), -32768, 32767).astype(np.int16)
    assert np.array_equal(got, want)
    # history-only pairs are not counted again
    split = 10
    w_tail = s.update_weights_q88(w0, t, c, new_from=split)
    dw2 = np.zeros((n, n))
    for a in range(t.size):
        for b in range(t.size):
            if c[a] != c[b] and abs(t[b] - t[a]) <= 100.0 and (a >= split or b >= split):
                d = t[b] - t[a]
                dw2[c[a], c[b]] += 0.005 * math.exp(-d / 20) if d > 0 else -0.00525 * math.exp(d / 20) if d < 0 else 0
    assert np.array_equal(w_tail, np.clip(w0 + np.floor(dw2 * 256), -32768, 32767).astype(np.int16))


def test_bcm_rule_and_sliding_threshold():
    b = BCMPlasticity(learning_rate=0.01, kappa=1.0, rate_scale_hz=10.0)
    x, y, th = np.array([10.0]), np.array([20.0]), np.array([1.0])
    # Δw = η x y (y - θ) with x = 1, y = 2 (scaled)
    assert b.compute_dw(x, y, th)[0, 0] == pytest.approx(0.01 * 1 * 2 * (2 - 1))
    # below θ_m depresses, above potentiates
    assert b.compute_dw(x, [5.0], [1.0])[0, 0] < 0 < b.compute_dw(x, [15.0], [1.0])[0, 0]
    # θ_m = κ ȳ² and ȳ relaxes toward y with exp(-dt/τ)
    w = np.zeros((1, 1), np.int16)
    b.update(w, x, y, dt_ms=100.0)
    assert b.theta_m[0] == pytest.approx(4.0)
    b.update(w, x, [0.0], dt_ms=1000.0)
    ybar = 2.0 * math.exp(-1.0)
    assert b.y_bar[0] == pytest.approx(ybar)
    assert b.theta_m[0] == pytest.approx(ybar ** 2)
    with pytest.raises(ValueError, match="finite"):
        b.compute_dw([float("nan")], [1.0])


def test_bcm_stabilises_activity_dependence():
    # sustained high activity raises θ_m until potentiation stops (the BCM stability property)
    b = BCMPlasticity(learning_rate=1.0, kappa=1.0, tau_avg_ms=100.0, rate_scale_hz=1.0)
    w = np.zeros((1, 1), np.int16)
    b.update(w, [1.0], [0.5], dt_ms=1.0)
    first = b.compute_dw([1.0], [2.0], b.theta_m)[0, 0]
    for _ in range(200):
        b.update(w, [1.0], [2.0], dt_ms=10.0)
    later = b.compute_dw([1.0], [2.0], b.theta_m)[0, 0]
    assert first > 0 and later < first
