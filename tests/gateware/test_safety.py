"""Safety on Verilator against bioloop.host.models.safety.Safety, under adversarial settings.

Both cadences: ``"sweep"`` (one lane visited per cycle, the default) and ``"cycle"``
(every lane decided every cycle, the original block).

Hypothesis draws the cases on the pytest side (cap register values anywhere
in their field, far above the hard limits too, and envelope/bit statistics
from idle to every lane on for hundreds of cycles), and one simulation runs
them all, with a reset between cases. For every case the LED vector and the
clamp strobes must equal the model at every edge, and independently of the
model the RTL output must respect the caps in force: no lane lit beyond
``min(max_pulse, limit_pulse)`` cycles of an envelope, no more than
``min(max_duty, limit_duty)`` on-cycles per lane per window (in the sweep cadence a
lane's windows start at its visits), no more than
``min(max_lanes, limit_lanes)`` lanes at once.
"""

from __future__ import annotations

import gc
import json
import os
import random
import warnings

import cocotb
import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable
from cocotb.triggers import RisingEdge
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bioloop.gateware.safety import Safety as SafetyRTL
from bioloop.host.models.safety import Safety
from bioloop.sim import bench, runner

DESIGN = {"n_lanes": 8, "pulse_bits": 8, "duty_window": 24, "limit_pulse": 12, "limit_duty": 10,
          "limit_lanes": 5}
#: The sweep cadence counts in units of S = 8 cycles: the same caps, a few units each.
SWEEP = {"duty_window": 48, "limit_pulse": 40, "limit_duty": 24}
CASES_ENV = "BIOLOOP_SAFETY_CASES"
EDGES = 1200


def _lanes(value: int, K: int) -> np.ndarray:
    return np.array([(value >> k) & 1 for k in range(K)], dtype=bool)


@cocotb.test()
async def safety_adversarial(dut):
    p = runner.params()
    K = p["n_lanes"]
    cases = json.loads(os.environ[CASES_ENV])
    tb = bench.TB(dut)
    totals = np.zeros(3, dtype=np.int64)
    for i, case in enumerate(cases):
        rng = random.Random(case["seed"])
        dut.pulse.value = 0
        dut.bits.value = 0
        dut.max_pulse.value = case["max_pulse"]
        dut.max_duty.value = case["max_duty"]
        dut.max_lanes.value = case["max_lanes"]
        await tb.reset()
        # Envelopes: a two-state Markov chain per lane; bits: Bernoulli(density).
        on = [False] * K
        pulses, bits, fires = [], [], []
        for _ in range(EDGES):
            nxt = [(rng.random() >= case["p_off"]) if o else (rng.random() < case["p_on"]) for o in on]
            # Most envelopes start with a fire (as from the StimUnit, one per cycle); some do not.
            starts = [k for k in range(K) if nxt[k] and not on[k]]
            fire = starts[0] if starts and rng.random() < 0.8 else -1
            on = nxt
            pulses.append(on)
            bits.append([rng.random() < case["density"] for _ in range(K)])
            fires.append(fire)
        pulses = np.array(pulses, dtype=bool)
        bits = np.array(bits, dtype=bool)
        as_int = lambda row: sum(int(b) << k for k, b in enumerate(row))   # noqa: E731

        led = []
        strobes = []
        def drive(e):
            dut.pulse.value = as_int(pulses[e])
            dut.bits.value = as_int(bits[e])
            dut.fire.value = int(fires[e] >= 0)
            dut.fire_lane.value = max(fires[e], 0)
        drive(0)
        for e in range(EDGES):
            await RisingEdge(dut.clk)
            led.append(int(dut.led.value))
            strobes.append((int(dut.clamp_pulse.value), int(dut.clamp_duty.value), int(dut.clamp_lanes.value)))
            if e + 1 < EDGES:
                drive(e + 1)
        got = np.array([_lanes(v, K) for v in led])

        model = Safety(K, p["duty_window"], p["limit_pulse"], p["limit_duty"], p["limit_lanes"],
                       case["max_pulse"], case["max_duty"], case["max_lanes"], pulse_bits=p["pulse_bits"],
                       cadence=p["cadence"])
        want, want_strobes = [], []
        for e in range(EDGES):
            final, s = model.step(pulses[e], bits[e], None if fires[e] < 0 else fires[e])
            want.append(final)
            want_strobes.append(tuple(map(int, s)))
        # RTL reads at edge e+1 what the model decided at edge e.
        want = np.array(want)
        bad = np.argwhere(got[1:] != want[:-1])
        assert bad.size == 0, f"case {i} {case}: LED differs from the model first at edge {bad[0][0]}"
        assert strobes[1:] == want_strobes[:-1], f"case {i}: clamp strobes differ from the model"

        # The caps, checked on the RTL output alone (led[e+1] is the decision at edge e).
        cap_pulse, cap_duty, cap_lanes = model.caps
        out = got[1:]
        assert not (out & ~(pulses[:-1] & bits[:-1])).any(), f"case {i}: an LED lit unasked"
        assert out.sum(axis=1).max() <= cap_lanes, f"case {i}: more than {cap_lanes} lanes lit"
        W = p["duty_window"]
        if p["cadence"] == "cycle":
            for w0 in range(0, EDGES - 1, W):
                assert out[w0:w0 + W].sum(axis=0).max() <= cap_duty, f"case {i}: duty cap exceeded"
        else:
            # Lane k's windows start at its visits at edges n with (n - 1) mod S == k, every W / S
            # sweeps (S = model.period); out[n] is the LED registered at edge n.
            for k in range(K):
                starts = list(range(k + 1, EDGES - 1, W))
                for a, b in zip(starts, starts[1:] + [EDGES - 1], strict=True):
                    assert out[a + 1:b + 1, k].sum() <= cap_duty, f"case {i}: duty cap exceeded on lane {k}"
        run = np.zeros(K, dtype=int)
        for e in range(EDGES - 1):
            run = np.where(pulses[e], run + 1, 0)
            assert not (out[e] & (run > cap_pulse)).any(), f"case {i}: pulse cap exceeded at {e}"
        totals += np.array(want_strobes[:-1]).sum(axis=0)
    runner.report(cases=len(cases), clamp_cycles=totals.tolist())


case_strategy = st.fixed_dictionaries({
    "max_pulse": st.integers(0, 255),
    "max_duty": st.integers(0, 31),
    "max_lanes": st.integers(0, 15),
    "p_on": st.sampled_from([0.0, 0.05, 0.3, 1.0]),
    "p_off": st.sampled_from([0.0, 0.01, 0.2]),
    "density": st.sampled_from([0.0, 0.5, 0.9, 1.0]),
    "seed": st.integers(0, 2**31),
})

#: Always run: every register at its maximum with all lanes on all the time.
WORST = {"max_pulse": 255, "max_duty": 31, "max_lanes": 15, "p_on": 1.0, "p_off": 0.0, "density": 1.0,
         "seed": 1}


def _bench(params, cases, design):
    """Run ``safety_adversarial`` on ``cases`` against a Safety built with ``params``."""
    os.environ[CASES_ENV] = json.dumps(cases)
    try:
        return runner.run(lambda **kw: SafetyRTL(**kw), design=design, test_module="test_safety",
                          bench_params=params)
    finally:
        os.environ.pop(CASES_ENV, None)


@settings(max_examples=1, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases=st.lists(case_strategy, min_size=5, max_size=5))
@pytest.mark.parametrize("cadence", ["sweep", "cycle"])
def test_safety_bench(cadence, cases):
    params = dict(DESIGN, cadence=cadence, **(SWEEP if cadence == "sweep" else {}))
    result = _bench(params, [WORST, *cases], f"safety_{cadence}")
    assert result["cases"] == 6
    assert all(c > 0 for c in result["clamp_cycles"]), "every cap should have clamped at least once"


@pytest.mark.parametrize("kwargs,exc,word", [
    ({"n_lanes": 0}, ValueError, "n_lanes"),
    ({"pulse_bits": 1}, ValueError, "pulse_bits"),
    ({"pulse_bits": 8, "limit_pulse": 255}, ValueError, "limit_pulse"),
    ({"duty_window": 0}, ValueError, "duty_window"),
    ({"duty_window": 10, "limit_duty": 11}, ValueError, "limit_duty"),
    ({"n_lanes": 4, "limit_lanes": 5}, ValueError, "limit_lanes"),
    ({"limit_lanes": 2.0}, TypeError, "limit_lanes"),
    ({"cadence": "often"}, ValueError, "cadence"),
    ({"n_lanes": 8, "duty_window": 64, "limit_pulse": 7, "cadence": "sweep"}, ValueError,
     r"limit_pulse \(7\).*S = 8 cycles"),
    ({"n_lanes": 8, "duty_window": 64, "limit_duty": 4, "cadence": "sweep"}, ValueError, r"limit_duty \(4\)"),
])
def test_safety_validation(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        SafetyRTL(**kwargs)


def test_safety_sweep_rounds_the_window_up_to_whole_sweeps():
    # The blocks are built, not elaborated: collect them here, so their UnusedElaboratable
    # warning is not raised later inside another test that counts such warnings.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        windows = [SafetyRTL(64, duty_window=1000, cadence="sweep").duty_window,
                   SafetyRTL(128, cadence="sweep").duty_window,
                   SafetyRTL(64, duty_window=1000, cadence="cycle").duty_window]
        gc.collect()
    assert windows == [1024, 1_000_064, 1000]


@settings(max_examples=1, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases=st.lists(case_strategy, min_size=5, max_size=5))
@pytest.mark.parametrize("K", [1, 5])
def test_safety_bench_small_sweeps(K, cases):
    """The sweep cadence at K = 1 (S = 1: the lane is read and written in the same cycle, the
    write data forwarded to the read) and K = 5 (S = 8 > K: three visits of each sweep have no
    lane; the visited lane's one-hot is decoded, not rotated); the scoreboard is the same."""
    params = dict(DESIGN, n_lanes=K, limit_lanes=min(K, 5), cadence="sweep", **SWEEP)
    mask = (1 << K.bit_length()) - 1                     # max_lanes is K.bit_length() bits wide
    cases = [dict(c, max_lanes=c["max_lanes"] & mask) for c in [WORST, *cases]]
    assert _bench(params, cases, f"safety_sweep_k{K}")["cases"] == 6
