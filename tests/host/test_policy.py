"""The slow loop: policies in, register writes out, audited; faulty policies stopped; STDP on the routes."""

import math

import numpy as np
import pytest

from bioloop.gateware.layouts import AERType
from bioloop.host import aer
from bioloop.host.backends import ModelBus
from bioloop.host.bioware.audit import BioAuditLog
from bioloop.host.bioware.plasticity import BiologicalSTDP
from bioloop.host.culture import Culture, CultureConfig
from bioloop.host.driver import Driver, DriverError
from bioloop.host.loop import CodecRecorder, LoopSettings, run_loop
from bioloop.host.policy import Plasticity, PolicyError, Write, check_write

SHORT = LoopSettings(duration_s=0.3, calibration_ms=100.0, theta0_q88=256, homeostasis=False)


class RecordingModelBus(ModelBus):
    """The model backend, remembering every CSR write (address, value)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.written = []

    def write32(self, addr, value):
        self.written.append((addr, value))
        return super().write32(addr, value)


def _run(settings=SHORT, policies=None, seed=3, bus_cls=ModelBus, **kw):
    bus = bus_cls(64, 64, 16)
    drv = Driver(bus)
    return run_loop(drv, Culture(CultureConfig(seed=seed)), settings, policies=policies, **kw), drv, bus


class Raises:
    name = "raises"

    def __init__(self, at=2):
        self.at = at

    def step(self, obs, state):
        if obs.period == self.at:
            raise RuntimeError("boom")
        return []


class Emits:
    """Writes what it is given at period ``at`` (and a harmless write before)."""

    def __init__(self, name, write, at=2):
        self.name, self.write, self.at = name, write, at

    def step(self, obs, state):
        if obs.period == self.at:
            return [Write("lane_codes", 0x1111, index=5, reason="fine"), self.write]
        return []


class Dims:
    name = "dims"

    def step(self, obs, state):
        return [Write("lane_codes", 0x0800 + obs.period, index=0, reason=f"period {obs.period}")]


def _theta_offset(drv, lane):
    t = drv.regmap.table("theta")
    return t.offset + lane * t.stride


@pytest.mark.parametrize("bad,match", [
    (Raises(), "raised RuntimeError: boom"),
    (Emits("range", Write("theta", 70000, index=3, reason="too big")), r"theta\[3\] .*70000|70000.*range"),
    (Emits("unknown", Write("safety_max_duty", 1, reason="loosen safety")), "not a register a policy may write"),
])
def test_a_faulty_policy_is_stopped_the_bad_value_never_written_and_recording_goes_on(bad, match):
    good = Dims()
    result, drv, bus = _run(policies=[bad, good], bus_cls=RecordingModelBus)
    report = {r.name: r for r in result.policies}
    stopped = report[bad.name]
    assert stopped.stopped is not None and stopped.stopped_at_s == pytest.approx(0.15)
    assert __import__("re").search(match, stopped.stopped), stopped.stopped
    assert report["dims"].stopped is None and report["dims"].writes == len(result.periods.t_s)
    # The recording went on to the end.
    assert len(result.t_s) == 60 and result.periods.t_s[-1] == pytest.approx(0.3)
    # The stop is in the audit log and the summary, with the policy's name and the reason.
    entries = [e for e in result.audit.entries if e["kind"] == "policy_stopped"]
    assert len(entries) == 1 and entries[0]["data"]["policy"] == bad.name
    assert result.summary()["slow_loop"]["policies"][0]["stopped"] == stopped.stopped
    assert result.timing()["overruns"] == result.overruns
    # Nothing of the bad batch reached the bus (not even its good first write).
    assert not any(w[1] == bad.name for w in result.writes)
    lane5 = drv.regmap.table("lane_codes")
    assert (lane5.offset + 5 * lane5.stride, 0x1111) not in bus.written
    assert (_theta_offset(drv, 3), 70000) not in bus.written


def test_every_write_is_audited_with_reason_and_observation():
    result, drv, _ = _run(policies=[Dims()])
    writes = [e for e in result.audit.entries if e["kind"] == "write"]
    assert len(writes) == len(result.writes) == len(result.periods.t_s)
    for e, (period, policy, reg, idx, value) in zip(writes, result.writes, strict=False):
        d = e["data"]
        assert (d["policy"], d["register"], d["index"], d["value"]) == (policy, reg, idx, value)
        assert d["reason"] == f"period {period}" and d["observation"]["period"] == period
        assert e["t_s"] == pytest.approx(d["observation"]["t_s"])
    assert drv.lane_codes[0] == 0x0800 + len(result.periods.t_s) - 1
    # The chain verifies after a round trip, and its head is what the summary names.
    again = BioAuditLog.from_json(result.audit.to_json())
    assert again.head == result.audit.head == result.summary()["slow_loop"]["audit_head"]
    assert [e["kind"] for e in result.audit.entries][0] == "start"
    assert [e["kind"] for e in result.audit.entries][-1] == "end"


def test_observation_matches_the_aer_log():
    seen = []

    class Watch:
        name = "watch"

        def step(self, obs, state):
            seen.append(obs)
            return []

    result, drv, _ = _run(policies=[Watch()])
    f = aer.unpack(result.words)
    spike = f.type == AERType.SPIKE.value
    fs = result.sample_rate_hz
    for obs in seen:
        f0 = round((obs.t_s - obs.period_s) * fs)
        f1 = round(obs.t_s * fs)
        inside = spike & (f.timestamp >= f0) & (f.timestamp < f1)
        counts = np.bincount(f.address[inside].astype(int), minlength=64)
        assert np.allclose(obs.rates_hz * obs.period_s, counts)
        assert obs.spike_channels.size == inside.sum()
        assert obs.population_rate_hz == pytest.approx(obs.rates_hz[:60].mean())
        assert obs.theta_q88.shape == (64,) and (obs.theta_q88 == SHORT.theta0_q88).all()


def test_check_write_refuses_without_touching_the_bus():
    bus = RecordingModelBus(64, 64, 16)
    drv = Driver(bus)
    before = len(bus.written)
    assert check_write(drv, Write("theta", 300, index=2)) == ("theta", 2, 300)
    assert check_write(drv, Write("homeo_gain", 3)) == ("homeo_gain", None, 3)
    for w, match in ((Write("theta", -1, index=2), "theta"), (Write("theta", 1.5, index=2), "not an integer"),
                     (Write("homeo_gain", 1, index=0), "scalar"), (Write("theta", 5), "index"),
                     (Write("thetas", 1, index=0), "not a register a policy may write"),
                     (Write("theta", 100, index=64), r"theta\[64\]"),
                     (Write("routes", (("stim", 99, 64),), index=1), "stim lane"),
                     (Write("routes", (("stim", 3, 40000),), index=1), "weight"),
                     ("not a write", "not a Write")):
        with pytest.raises(PolicyError, match=match):
            check_write(drv, w, "p")
    assert len(bus.written) == before


def test_leds_are_an_optional_capability_reached_through_the_driver():
    class NoLeds(ModelBus):
        leds = None

    bus = NoLeds(64, 64, 16)
    drv = Driver(bus)
    assert not drv.has_leds
    with pytest.raises(DriverError, match="LED"):
        drv.leds()
    with pytest.raises(ValueError, match="LED"):
        run_loop(drv, Culture(CultureConfig(seed=1)), SHORT)
    # A light function (the board reconstructs light from STIM words) replaces the read-back.
    def dark(d, frames):
        return np.zeros((frames, d.K), np.float32)
    result = run_loop(drv, Culture(CultureConfig(seed=1)), SHORT, light=dark)
    assert result.led_duty.sum() == 0 and len(result.t_s) == 60


def _independent_stdp(words, fs, period_frames, n_periods, routes, w0, rule):
    """The route weights the STDP rule predicts, evaluated without the session: cumulative pair sums."""
    f = aer.unpack(words)
    spike = f.type == AERType.SPIKE.value
    t_ms = f.timestamp[spike].astype(np.float64) * 1e3 / fs
    ch = f.address[spike].astype(np.int64)
    w = {(c, k): w0 for c, lanes in routes.items() for k in lanes if k != c}
    traj = []
    for p in range(n_periods):
        start, end = p * period_frames * 1e3 / fs, (p + 1) * period_frames * 1e3 / fs
        for (c, k) in w:
            pre_end, post_end = t_ms[(ch == c) & (t_ms < end)], t_ms[(ch == k) & (t_ms < end)]
            pre_start, post_start = pre_end[pre_end < start], post_end[post_end < start]
            # pairs with at least one spike in this period = all pairs so far - all pairs before it
            dw = rule.pair_dw(pre_end, post_end) - rule.pair_dw(pre_start, post_start)
            w[(c, k)] = int(np.clip(w[(c, k)] + math.floor(256 * dw), -32768, 32767))
        traj.append(dict(w))
    return traj


def test_plasticity_follows_the_stdp_rule_on_the_same_spike_trains():
    s = LoopSettings(duration_s=0.5, calibration_ms=100.0, theta0_q88=256, homeostasis=False, neighbours=2)
    result, drv, _ = _run(s, policies=[Plasticity()], seed=4)
    period_frames = result.block_frames * int(s.control_period_ms / s.block_ms)
    traj = _independent_stdp(result.words, result.sample_rate_hz, period_frames, len(result.periods.t_s),
                             result.routes, s.weight_q88, BiologicalSTDP())
    final = traj[-1]
    moved = [key for key, v in final.items() if v != s.weight_q88]
    assert len(moved) >= 10, "too few synapses moved to test the rule"
    errors = []
    for (c, k), want in final.items():
        got = {t: w for _, t, w in drv.routes.get(c)}[k]
        errors.append(abs(got - want))
    assert max(errors) <= 1, f"max error {max(errors)} LSB"
    # The written trajectory follows the rule period by period.
    written = {}
    for period, policy, reg, idx, value in result.writes:
        for _, k, w in value:
            if k != idx:
                written[(period, idx, k)] = w
    for (period, c, k), w in written.items():
        assert abs(w - traj[period][(c, k)]) <= 1


def test_codec_records_the_session_block_by_block_and_spikeinterface_reads_it_back(tmp_path):
    import hashlib

    from click.testing import CliRunner

    from bioloop.host.cli import main
    from bioloop.host.codec import CodecParams, decode
    path = tmp_path / "rec.blsc"
    culture = Culture(CultureConfig(seed=2))
    chunks = []

    class Spy:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            chunks.append(len(data))
            return self.f.write(data)

    with open(path, "wb") as f:
        rec = CodecRecorder(Spy(f), culture.n_channels, culture.sample_rate_hz, culture.config.uv_per_code,
                            params=CodecParams(block_size=2000), positions_um=culture.electrode_positions_um,
                            path=path)
        s = LoopSettings(duration_s=0.6, calibration_ms=100.0, homeostasis=False)
        result = run_loop(Driver(ModelBus(64, 64, 16)), culture, s, recorder=rec)
    data = path.read_bytes()
    assert len(chunks) >= 4, "the stream was not written block by block"
    assert result.recording.sha256 == hashlib.sha256(data).hexdigest() and result.recording.n_bytes == len(data)
    d = decode(data)
    n = len(result.t_s) * result.block_frames
    assert d.samples_uv.shape == (n, 60) and result.recording.ratio > 20
    # bioloop codec decode -> NWB, read by SpikeInterface
    se = pytest.importorskip("spikeinterface.extractors", reason="needs spikeinterface (the [sort] extra)")
    pytest.importorskip("pynwb", reason="needs pynwb")
    out = tmp_path / "rec.nwb"
    res = CliRunner().invoke(main, ["codec", "decode", str(path), str(out)])
    assert res.exit_code == 0, res.output
    recording = se.read_nwb(str(out))
    assert recording.get_num_channels() == 60 and recording.get_num_samples() == n
    assert recording.get_sampling_frequency() == culture.sample_rate_hz
    traces = recording.get_traces(return_in_uV=True)
    assert np.allclose(traces, d.samples_uv, atol=1e-3)


def _obs(period, rate, theta=2048):
    from bioloop.host.policy import Observation
    z = np.zeros(0)
    return Observation(period, (period + 1) * 0.05, 0.05, np.full(64, rate), np.zeros(64), z, z.astype(int),
                       np.zeros(64, int), np.full(64, theta), float(rate), {"status": "healthy"}, (), False)


@pytest.mark.parametrize("cls,target", [("RateHomeostasis", 300.0)])
def test_rate_controller_settles_a_log_plant_without_overshooting_far(cls, target):
    """Against an independent plant (rate = 300 Hz at density 1/4, growing as the density^1.3, 1 s lag)."""
    from bioloop.host import policy as P
    from bioloop.host.policy import LoopState
    s = LoopSettings(target_rate_hz=target, lane_code=0x2000)
    state = LoopState(64, 64, np.arange(60), 20000.0, s, None)
    ctl = getattr(P, cls)()
    code, rates, pending = s.lane_code, [], []
    for period in range(400):
        rate = 300.0 * (code / 0x4000) ** 1.3
        pending.append(rate)
        seen = pending.pop(0) if len(pending) > 20 else pending[0]      # the culture answers 1 s later
        obs = _obs(period, seen)
        for w in ctl.step(obs, state):
            assert w.register == "lane_codes" and 64 <= w.value <= 0xFFFF
            state.written[(w.register, w.index)] = w.value
            code = w.value
        state.history.append(obs)
        rates.append(rate)
    tail = np.array(rates[-100:])
    assert np.all(np.abs(tail / target - 1) < 0.05), (tail.min(), tail.max())
    assert max(rates) < 1.6 * target


def test_pair_update_equals_the_full_stdp_update_on_its_entries():
    rule = BiologicalSTDP()
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 150, 800))
    c = rng.integers(0, 16, 800)
    w = rng.integers(-300, 300, (16, 16)).astype(np.int16)
    pairs = np.array([(i, j) for i in range(16) for j in range(16) if i != j and abs(i - j) < 3])
    for new_from in (0, 300):
        full = rule.update_weights_q88(w, t, c, new_from=new_from)
        part = rule.update_pairs_q88(w, t, c, pairs, new_from=new_from)
        m = np.zeros((16, 16), bool)
        m[pairs[:, 0], pairs[:, 1]] = True
        assert np.array_equal(full[m], part[m]) and np.array_equal(part[~m], w[~m])
        assert (full[m] != w[m]).sum() > 20


def test_same_seed_same_audit_chain_and_summary():
    a = _run(policies=[Dims()])[0]
    b = _run(policies=[Dims()])[0]
    assert a.audit.head == b.audit.head and a.summary() == b.summary()


def _burst_state(**kw):
    from dataclasses import replace

    from bioloop.host.experiments import DISTRIBUTED
    from bioloop.host.policy import LoopState
    s = replace(LoopSettings(), **{**DISTRIBUTED, **kw})
    clock = {60: list(range(0, 16)), 61: list(range(16, 32)), 62: list(range(32, 48)), 63: list(range(48, 60))}
    return LoopState(64, 64, np.arange(60), 20000.0, s, None, clock=clock)


def _apply(state, writes):
    for w in writes:
        state.written[(w.register, w.index)] = w.value


def test_burst_control_spreads_50_single_lane_stimuli_per_second_over_every_lane():
    """Wagenaar et al. 2005: one electrode per stimulus, cycling over all of them, at the aggregate rate."""
    from bioloop.host.policy import BurstControl
    state = _burst_state()
    bc = BurstControl()
    _apply(state, bc.start(state))
    stimulated = []
    for period in range(240):                                  # 12 s
        routes = {ch: state.written[("routes", ch)] for ch in state.clock}
        lanes = [e[1] for entries in routes.values() for e in entries]
        assert all(len(entries) <= 1 for entries in routes.values())      # one lane per slot
        assert len(set(lanes)) == len(lanes)                              # no lane twice in a period
        assert all(e[2] == 2048 for entries in routes.values() for e in entries)  # weight = θ: one fire
        stimulated += lanes
        obs = _obs(period, 30.0)                                          # at the target: intensity kept
        _apply(state, bc.step(obs, state))
        state.history.append(obs)
    assert len(stimulated) == 50 * 12                                     # 50 stimuli per second
    counts = np.bincount(stimulated, minlength=60)
    assert counts.min() == counts.max() == 10                             # every lane in turn
    assert len(set(stimulated[:60])) == 60


def test_burst_control_strengthens_the_stimuli_when_the_culture_falls_quiet_and_weakens_them_when_busy():
    from bioloop.host.policy import BurstControl
    for tonic, direction in ((10.0, +1), (90.0, -1)):
        state = _burst_state(lane_code=0x8000)
        bc = BurstControl()
        _apply(state, bc.start(state))
        codes = []
        for period in range(200):
            obs = _obs(period, tonic)
            for w in bc.step(obs, state):
                _apply(state, [w])
                if w.register == "lane_codes":
                    assert bc.code_min <= w.value <= bc.code_max
                    codes.append(w.value)
            state.history.append(obs)
        assert codes and np.sign(codes[-1] - 0x8000) == direction
        assert codes[-1] == (bc.code_max if direction > 0 else bc.code_min)    # clamped, not wound up beyond


def test_burst_control_median_ignores_a_burst_surge():
    """The tonic rate is the median over 1 s: a 250 ms burst does not make the controller dim the light."""
    from bioloop.host.policy import BurstControl
    state = _burst_state(lane_code=0x8000)
    bc = BurstControl()
    _apply(state, bc.start(state))
    codes = []
    for period in range(100):
        rate = 400.0 if period % 40 < 5 else 30.0               # a burst every 2 s, at the target otherwise
        obs = _obs(period, rate)
        writes = bc.step(obs, state)
        _apply(state, writes)
        codes += [w.value for w in writes if w.register == "lane_codes" and w.value != 0x8000]
        state.history.append(obs)
    assert not codes                                             # nothing to correct


def test_burst_control_without_enough_clock_slots_is_stopped_before_any_write():
    from bioloop.host.policy import BurstControl
    state = _burst_state()
    state.clock = {}
    with pytest.raises(ValueError, match="stimulation slots"):
        BurstControl().start(state)
    state = _burst_state(clock_hz=10.0)                        # 4 x 10 Hz x 50 ms = 2 slots < 3 needed
    with pytest.raises(ValueError, match="stimulation slots"):
        BurstControl().start(state)


def test_loop_burst_detector_counts_network_bursts_not_evoked_responses():
    """Synthetic trains: tonic 30 Hz per channel, a local response of 80 spikes in 10 ms on 5 electrodes
    50 times a second, and three network bursts (all 60 channels at 300 Hz for 200 ms)."""
    from bioloop.host.loop import _bursts
    rng = np.random.default_rng(0)
    dur = 20.0
    t = [rng.uniform(0, dur, int(30 * 60 * dur))]
    c = [rng.integers(0, 60, t[0].size)]
    for k, t0 in enumerate(np.arange(0.01, dur, 0.02)):
        t.append(t0 + rng.uniform(0, 0.01, 80))
        c.append(rng.choice(np.roll(np.arange(60), -5 * (k % 12))[:5], 80))
    tonic_t, tonic_c = np.concatenate(t), np.concatenate(c)
    assert _bursts(tonic_t, tonic_c, dur, 0.0, 60) == []
    starts = (3.0, 9.5, 15.2)
    for b0 in starts:
        t.append(b0 + rng.uniform(0, 0.2, 60 * 60))
        c.append(rng.integers(0, 60, 60 * 60))
    found = _bursts(np.concatenate(t), np.concatenate(c), dur, 0.0, 60)
    assert [round(b.start_s, 1) for b in found] == [3.0, 9.5, 15.2]
    assert all(0.15 <= b.end_s - b.start_s <= 0.3 for b in found)


def test_plasticity_with_bcm_follows_the_bcm_rule_on_the_period_rates():
    """BCM as the option: the route weights against the rule run on the per-period rates of the AER log."""
    from bioloop.host.bioware.plasticity import BCMPlasticity
    s = LoopSettings(duration_s=0.5, calibration_ms=100.0, theta0_q88=256, homeostasis=False, neighbours=2)
    result, drv, _ = _run(s, policies=[Plasticity(rule="bcm")], seed=4)
    f = aer.unpack(result.words)
    spike = (f.type == AERType.SPIKE.value) & (f.address < 64)
    period_frames = result.block_frames * int(s.control_period_ms / s.block_ms)
    rule = BCMPlasticity()
    w = np.zeros((64, 64), np.int64)
    for c, lanes in result.routes.items():
        w[c, lanes] = s.weight_q88
    for p in range(len(result.periods.t_s)):
        sel = spike & (f.timestamp // period_frames == p)
        rates = np.bincount(f.address[sel].astype(int), minlength=64) / (s.control_period_ms / 1000)
        w = rule.update(w, rates, rates, s.control_period_ms)
    moved = [(c, k) for c, lanes in result.routes.items() for k in lanes if w[c, k] != s.weight_q88]
    assert len(moved) >= 10, "too few synapses moved to test the rule"
    for c, lanes in result.routes.items():
        got = {t: wq for _, t, wq in drv.routes.get(c)}
        assert all(got[k] == w[c, k] for k in lanes), c
    with pytest.raises(ValueError, match="rule"):
        Plasticity(rule="hebb")
