"""Pure-Python tests of the stim path models: lanes, homeostasis, StimUnit, Safety."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bioloop.host.aer import AERType, unpack_one
from bioloop.host.models.homeostasis import (
    Homeostasis, HomeostasisConstants, HomeostaticPlasticity, homeostasis_constants,
    homeostasis_update,
)
from bioloop.host.models.stochastic_lanes import (
    LFSR_PERIOD, LFSR_TAPS, StochasticLanes, lane_seed, lfsr_states, lfsr_step, scc,
    shared_permutation,
)
from bioloop.host.models.safety import KERNELS, Safety, sweep_period
from bioloop.host.models.stim_unit import StimUnit, integrate, leak

# --- StochasticLanes ----------------------------------------------------------------------


def test_lfsr_reference_states():
    assert [hex(s) for s in lfsr_states(0xACE1, 5)] == ["0xace1", "0x59c3", "0xb387", "0x670f", "0xce1e"]
    s = 0xACE1
    for want in lfsr_states(0xACE1, 20)[1:]:
        s = lfsr_step(s)
        assert s == want
    assert LFSR_TAPS == (15, 13, 12, 10)


def test_lfsr_period_is_65535():
    states = lfsr_states(0xACE1, LFSR_PERIOD + 1)
    assert len(set(states[:LFSR_PERIOD].tolist())) == LFSR_PERIOD
    assert 0 not in states
    assert states[LFSR_PERIOD] == 0xACE1


def test_lane_seed():
    assert lane_seed(0xACE1, 0) == 0xACE1
    assert lane_seed(0xACE1, 3) == (0xACE1 + 3 * 7919) % 65536
    assert lane_seed(0, 0) == 1                       # 0 would lock the LFSR
    assert lane_seed(65536 - 7919, 1) == 1
    with pytest.raises(ValueError, match="seed"):
        lfsr_states(0, 3)


@pytest.mark.parametrize("mode", ["independent", "shared"])
def test_density_exact_over_a_period(mode):
    codes = np.array([0, 1, 2, 0x8000, 0xFFFF, 12345, 54321, 3], dtype=np.int64)
    lanes = StochasticLanes(len(codes), mode=mode)
    bits = lanes.run(codes, LFSR_PERIOD)
    ones = bits.sum(axis=0)
    assert ones.tolist() == [max(c - 1, 0) for c in codes.tolist()]
    for c, n in zip(codes.tolist(), ones.tolist(), strict=True):
        assert n / LFSR_PERIOD == StochasticLanes.density(c)


def test_run_continues_state_and_lane0_matches_seed():
    a = StochasticLanes(5, mode="independent")
    b = StochasticLanes(5, mode="independent")
    whole = a.run(0x7000, 1000)
    parts = np.concatenate([b.run(0x7000, 300), b.run(0x7000, 700)])
    assert np.array_equal(whole, parts)
    for k in range(5):
        assert np.array_equal(StochasticLanes(5).states(50)[:, k], lfsr_states(lane_seed(0xACE1, k), 50))
    shared = StochasticLanes(5, mode="shared").states(50)
    assert np.array_equal(shared[:, 0], lfsr_states(0xACE1, 50))     # lane 0: identity permutation


def test_shared_permutations_are_bijections():
    perms = {shared_permutation(k) for k in range(128)}
    assert len(perms) == 128
    for p in perms:
        assert sorted(p) == list(range(16))


def test_scc_reference_values():
    x = np.array([1, 1, 0, 0, 1, 0, 1, 0], dtype=bool)
    assert scc(x, x) == pytest.approx(1.0)
    assert scc(x, ~x) == pytest.approx(-1.0)
    y = np.array([1, 0, 1, 0, 0, 1, 1, 0], dtype=bool)    # p=0.5 each, overlap 0.25
    assert scc(x, y) == pytest.approx(0.0)


def test_lanes_validation():
    with pytest.raises(ValueError, match="mode"):
        StochasticLanes(4, mode="other")
    with pytest.raises(ValueError, match="n_lanes"):
        StochasticLanes(0)
    with pytest.raises(ValueError, match="codes"):
        StochasticLanes(2).run([0, 70000], 3)


# --- Homeostasis ---------------------------------------------------------------------------


def test_float_api_published_behaviour():
    h = HomeostaticPlasticity()
    assert h.update_threshold(256, 10.0, 100.0) == 256            # at target: no change
    assert h.update_threshold(256, 20.0, 100.0) == 256 + 25       # ⌊0.01·10·256⌋ = 25
    assert h.update_threshold(256, 5.0, 100.0) == 256 - 13        # ⌊-12.8⌋ = -13 (floor)
    assert h.update_threshold(256, 1e6, 100.0) == 512             # huge error saturates high
    theta = 256
    for _ in range(100):
        theta = h.update_threshold(theta, 0.0, 1000.0)
    assert theta == 64                                            # silence saturates low


@settings(max_examples=400, deadline=None)
@given(
    target_rate=st.floats(0.0, 200.0),
    tau_ms=st.floats(1000.0, 1e6),
    window=st.integers(1, 20000),
    frame_rate=st.floats(1000.0, 40000.0),
    count=st.integers(0, 5000),
    theta=st.integers(0, 4096),
    bounds=st.tuples(st.integers(0, 2048), st.integers(0, 4096)).map(sorted),
)
def test_float_and_integer_forms_agree_within_one_lsb(target_rate, tau_ms, window, frame_rate, count,
                                                       theta, bounds):
    lo, hi = bounds
    try:
        k = homeostasis_constants(target_rate, tau_ms, window, frame_rate)
    except ValueError:
        return                                   # c* does not fit: rejected, not mis-computed
    fl = HomeostaticPlasticity(target_rate, tau_ms, max_threshold_q88=hi, min_threshold_q88=lo)
    rate = count * frame_rate / window
    dt_ms = 1000.0 * window / frame_rate
    want = fl.update_threshold(theta, rate, dt_ms)
    got = homeostasis_update(theta, count, k.c_star, k.gain, k.shift, lo, hi)
    assert abs(got - want) <= 1, (k, want, got)


def test_constants_are_in_range_and_validated():
    k = homeostasis_constants(10.0, 10000.0, 1000, 20000.0)
    assert k.c_star == 128                       # 0.5 spikes per window, UQ.8
    assert 1 << 16 <= k.gain < 1 << 17 and 0 <= k.shift < 64
    assert k.gain / 2 ** k.shift == pytest.approx(0.1, rel=1e-5)
    with pytest.raises(ValueError, match="tau_homeo_ms"):
        homeostasis_constants(10.0, 500.0, 1000, 20000.0)
    with pytest.raises(ValueError, match="window_frames"):
        homeostasis_constants(10.0, 10000.0, 0, 20000.0)
    with pytest.raises(ValueError, match="UQ16.8"):
        homeostasis_constants(1e6, 10000.0, 60000, 100.0)


def test_integer_update_direction_and_clamp():
    k = homeostasis_constants(10.0, 10000.0, 1000, 20000.0)
    assert homeostasis_update(256, 0, k.c_star, k.gain, k.shift) < 256        # too quiet: falls
    assert homeostasis_update(256, 5, k.c_star, k.gain, k.shift) > 256        # too active: rises
    assert homeostasis_update(256, 65535, k.c_star, k.gain, k.shift) == 512   # clamps exactly
    assert homeostasis_update(70, 0, 1 << 23, k.gain, k.shift) == 64
    assert homeostasis_update(100, 0, 0, 0, 0, theta_min=300, theta_max=200) == 200   # hi wins
    # floor semantics of the arithmetic shift: -1 >> 4 is -1, not 0
    assert homeostasis_update(256, 0, 1, 1, 4, 0, 1000) == 255


def test_homeostasis_sweep_timing():
    # The sweep cadence: per-channel counts; lane i written at close + 6 + i, then the read bank
    # is cleared in N edges: busy through close + K + max(5, N).
    h = Homeostasis(3, constants=HomeostasisConstants(256, 1, 0), window_frames=2, theta_min=0,
                    theta_max=60000, src=[1, 1, 5], n_channels=4, cadence="sweep")
    assert h.busy()                                    # clearing the count banks after reset
    for _ in range(4):
        h.step(spike_address=1)                       # N = 4 edges: not counted
    assert not h.busy()
    h.edge = 0
    h.step(spike_address=1)                           # edge 0
    h.step(tick=True)                                 # edge 1
    closed, _ = h.step(spike_address=1, tick=True)    # edge 2 closes; this spike still counts
    assert closed
    for _ in range(5):
        h.step(spike_address=1)                       # edges 3..7 count in the next window
    assert h.theta.tolist() == [256, 256, 256] and h.busy()
    h.step()                                          # edge 8 = close + 6: lane 0 (channel 1: 2)
    assert h.theta.tolist() == [512, 256, 256]
    h.step()                                          # edge 9: lane 1 watches channel 1 too
    assert h.theta.tolist() == [512, 512, 256]
    h.step()                                          # edge 10: lane 2 watches channel 5 >= N: 0
    assert h.theta.tolist() == [512, 512, 0]
    assert not h.busy()
    assert h.bank_counts[h.bank][1] == 5 and not h.bank_counts[1 - h.bank].any()


def test_homeostasis_cycle_timing():
    # c* = 1 spike per window, g/2^s = 1: Δθ = (c - 1)·256.
    h = Homeostasis(3, constants=HomeostasisConstants(256, 1, 0), window_frames=2, theta_min=0,
                    theta_max=60000, cadence="cycle")
    h.step(spike_address=1)                           # edge 0
    h.step(tick=True)                                 # edge 1
    closed, _ = h.step(spike_address=1, tick=True)    # edge 2 closes; this spike still counts
    assert closed and h.theta.tolist() == [256, 256, 256]
    for _ in range(3):
        h.step()                                      # edges 3..5
    assert h.theta.tolist() == [256, 256, 256]
    assert h.busy()
    h.step()                                          # edge 6 = close + 4: lane 0
    assert h.theta.tolist() == [0, 256, 256]
    h.step()                                          # edge 7: lane 1 (two spikes)
    assert h.theta.tolist() == [0, 512, 256]
    h.step()                                          # edge 8 = close + K + 3: lane 2, last
    assert h.theta.tolist() == [0, 512, 0]
    assert not h.busy()


# --- StimUnit ------------------------------------------------------------------------------


def test_integrate_saturates_fires_and_subtracts():
    assert integrate(0, 100, 256) == (100, False)
    assert integrate(200, 100, 256) == (44, True)
    assert integrate(32000, 32767, 256) == (32767 - 256, True)       # saturates before the compare
    assert integrate(-32000, -32768, 256) == (-32768, False)
    assert integrate(0, 600, 256) == (344, True)                     # one fire per entry


def test_leak_is_floor():
    assert leak(100, 0) == 100
    assert leak(100, 2) == 75
    assert leak(1, 4) == 1
    assert leak(-1, 4) == 0                    # -1 >> 4 == -1
    assert leak(-100, 2) == -75


def test_stim_unit_sweep_model():
    """Sweep cadence: a tick sampled at edge m leaks and counts down lane i at m + 2 + i, one edge
    later for every entry taken meanwhile; a pulse of L frames ends at the L-th sweep visit."""
    u = StimUnit(3, pulse_lengths=[2, 2, 2], leak_shift=1)
    theta = [100, 100, 100]
    u.step(entry=(2, 150), theta=theta)                          # edge 0: registered
    u.step(theta=theta)                                          # edge 1: lane 2 fires, acc 50
    assert u.pulse.tolist() == [False, False, True] and u.acc[2] == 50
    u.step(tick=True, theta=theta)                               # edge 2: the tick (m = 2)
    assert u.busy
    u.step(entry=(2, 10), theta=theta)                           # edge 3: entry taken: sweep holds
    u.step(theta=theta)                                          # edge 4: lane 2 integrates (60); lane 0 read
    assert u.acc[2] == 60 and u.remaining[2] == 2
    u.step(theta=theta)                                          # edge 5: lane 0 written; lane 1 read
    u.step(theta=theta)                                          # edge 6: lane 1 written; lane 2 read
    assert u.remaining[2] == 2 and u.busy is False
    u.step(theta=theta)                                          # edge 7: lane 2 leaked, counted down
    assert u.acc[2] == 30 and u.remaining[2] == 1 and u.pulse[2]
    u.step(tick=True, theta=theta)                               # edge 8: the next tick
    for _ in range(4):
        u.step(theta=theta)                                      # edges 9..12: lane 2 at 8 + 2 + 2
    assert u.acc[2] == 15 and not u.pulse.any()


def test_stim_unit_cycle_model():
    u = StimUnit(2, pulse_lengths=[3, 0], source=5, cadence="cycle")
    theta = [256, 256]
    assert u.step(entry=(0, 300), frame=7, theta=theta) is None     # edge 0: registered
    assert not u.pulse.any()
    word = u.step(theta=theta)                                      # edge 1: fires
    assert unpack_one(word) == (0, 5, AERType.STIM, 7)
    assert u.pulse.tolist() == [True, False] and u.remaining[0] == 3
    for _ in range(10):
        u.step(theta=theta)                                         # no frames: the pulse holds
    assert u.remaining[0] == 3
    for _ in range(3):
        u.step(tick=True, theta=theta)                              # three frame ticks ...
    assert u.remaining[0] == 1                                       # ... two acted on so far
    u.step(theta=theta)
    assert not u.pulse.any()                                         # ended at the 3rd tick
    u.step(entry=(1, 1000), theta=theta)
    assert unpack_one(u.step(theta=theta))[0] == 1 and not u.pulse.any()   # length 0: no pulse
    u.step(entry=(9, 1000), theta=theta)
    u.step(theta=theta)
    assert u.bad_lane == 1


# --- Safety --------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    K=st.integers(1, 8),
    window=st.integers(1, 64),
    limits=st.tuples(st.integers(0, 40), st.integers(0, 64), st.integers(0, 8)),
    regs=st.tuples(st.integers(0, 1 << 19), st.integers(0, 1 << 10), st.integers(0, 15)),
    seed=st.integers(0, 2**32 - 1),
    density=st.floats(0.0, 1.0),
    cadence=st.sampled_from(["sweep", "cycle"]),
)
def test_safety_caps_hold_for_any_register_values(K, window, limits, regs, seed, density, cadence):
    lp, ld, ll = limits
    S = sweep_period(K) if cadence == "sweep" else 1
    window = S * -(-window // S)                                     # a multiple of S
    lp, ld, ll = max(lp, S), max(min(ld, window), S), min(ll, K)
    s = Safety(K, window, lp, ld, ll, *regs, cadence=cadence)
    cap_pulse, cap_duty, cap_lanes = s.caps
    assert cap_pulse <= lp and cap_duty <= ld and cap_lanes <= ll
    rng = np.random.default_rng(seed)
    n = 400
    pulse = np.repeat(rng.random((n // 20, K)) < 0.7, 20, axis=0)     # long envelopes
    bits = rng.random((n, K)) < density
    starts = pulse & ~np.vstack([np.zeros((1, K), dtype=bool), pulse[:-1]])
    fires = np.where(starts.any(axis=1), starts.argmax(axis=1), -1)  # one fire per cycle at most
    led = s.run_trace(pulse, bits, fires)
    assert not (led & ~(pulse & bits)).any()                         # never on unless asked
    assert led.sum(axis=1).max(initial=0) <= cap_lanes
    for k in range(K):
        # cycle: windows from reset; sweep: lane k's windows start at its visits (edges
        # n with (n - 1) mod S == k, every window / S sweeps).
        first = 0 if cadence == "cycle" else k + 1
        for w0 in range(first, n, window):
            assert led[w0 + (cadence == "sweep"):w0 + window + (cadence == "sweep"), k].sum() <= cap_duty
    run = np.zeros(K, dtype=int)
    for t in range(n):
        run = np.where(pulse[t], run + 1, 0)
        assert not (led[t] & (run > cap_pulse)).any()


def test_safety_run_edges_and_idle_equal_step():
    """Safety.run_edges (numba and numpy kernels) and idle equal step, in both cadences."""
    rng = np.random.default_rng(1)
    for trial in range(200):
        K = int(rng.integers(1, 10))
        cadence = ("sweep", "cycle")[trial % 2]
        S = sweep_period(K) if cadence == "sweep" else 1
        W = S * int(rng.integers(1, 5))
        lp, ld, ll = int(rng.integers(S, 4 * S + 3)), int(rng.integers(S, W + 1)), int(rng.integers(0, K + 1))
        regs = (int(rng.integers(0, 2 * lp)), int(rng.integers(0, 2 * ld)), int(rng.integers(0, K + 1)))
        a, b, c = (Safety(K, W, lp, ld, ll, *regs, pulse_bits=10, cadence=cadence) for _ in range(3))
        n = int(rng.integers(1, 200))
        env = np.repeat(rng.random((n // 7 + 1, K)) < 0.5, 7, axis=0)[:n]
        states = rng.integers(1, 65536, (n, K)).astype(np.uint16)
        codes = rng.integers(0, 65536, K)
        fires = np.where(rng.random(n) < 0.3, rng.integers(0, K + 1, n), -1)
        leds = np.array([a.step(env[i], states[i] < codes, None if fires[i] < 0 else int(fires[i]))[0]
                         for i in range(n)])
        for i in range(n):
            c.step(env[i], states[i] < codes, None if fires[i] < 0 else int(fires[i]))
        for kernel in KERNELS:
            d = copy.deepcopy(b)
            out, _ = d.run_edges(env, states, codes, kernel, fires)
            assert (out == leds).all() and (a.clamps == d.clamps).all() and a.used == d.used, kernel
            for name in ("mem", "allow", "gap", "seen", "budget", "run", "duty"):
                assert (getattr(a, name) == getattr(d, name)).all(), (kernel, name)
        m = int(rng.integers(1, 60))
        dark = np.zeros(K, dtype=bool)
        for _ in range(m):
            a.step(dark, dark)
        c.idle(m)
        for name in ("mem", "allow", "gap", "seen", "budget", "led", "run", "duty", "clamps"):
            assert (getattr(a, name) == getattr(c, name)).all(), name
        assert (a.used, a.edge, a.win) == (c.used, c.edge, c.win)


def test_safety_counts_each_cap():
    s = Safety(3, duty_window=10, limit_pulse=4, limit_duty=6, limit_lanes=1, cadence="cycle")
    on = np.ones(3, dtype=bool)
    for _ in range(8):
        s.step(on, on)
    assert s.clamps.tolist()[0] == 4            # cycles 5..8 cut by the pulse cap
    assert s.clamps[2] == 4                     # cycles 1..4: lanes 1 and 2 cut by the lit cap
