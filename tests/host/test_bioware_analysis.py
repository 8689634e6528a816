"""Health, LFP, bursts, latency, pharmacology, fitness, artifacts, plates and the audit chain."""

import json
import math

import numpy as np
import pytest

from bioloop.host.bioware import (ArtifactRejector, AuditError, BioAuditLog, CultureHealth,
                                  DetectedSpike, LatencyBudget, MultiWellPlate, PharmModel,
                                  detect_network_bursts, extract_lfp_power, mea_fitness_hook)


def test_health_counts():
    h = CultureHealth(min_rate_hz=0.5, max_rate_hz=20.0, min_active_fraction=0.25)
    r = h.assess_counts([0, 1, 10, 100], duration_s=2.0)       # 0, .5, 5, 50 Hz
    assert (r["active_channels"], r["hyperactive_channels"]) == (3, 1)
    assert r["score"] == pytest.approx(2 / 4)
    assert r["mean_rate_hz"] == pytest.approx(55.5 / 4)
    assert r["status"] == "healthy"
    assert h.assess_counts([0, 0, 0, 1], 10.0)["status"] == "silent"
    assert h.assess_counts([100, 100, 0, 0], 1.0)["status"] == "hyperactive"
    assert h.assess_counts([1, 2], 0.0)["status"] == "empty"
    with pytest.raises(ValueError, match="duration_s"):
        h.assess_counts([1], -1.0)


def test_lfp_band_power_of_a_sine_is_a_squared_over_two():
    fs, A = 1000.0, 30.0
    t = np.arange(int(20 * fs)) / fs
    v = np.stack([A * np.sin(2 * np.pi * 10.0 * t), A * np.sin(2 * np.pi * 40.0 * t)], axis=1)
    p = extract_lfp_power(v, fs)
    assert p["alpha"][0] == pytest.approx(A * A / 2, rel=0.02)
    assert p["gamma"][1] == pytest.approx(A * A / 2, rel=0.02)
    assert p["delta"][0] < 1e-3 * A * A and p["alpha"][1] < 1e-3 * A * A
    # white noise: band power = σ² · bandwidth / Nyquist
    rng = np.random.default_rng(0)
    n = rng.normal(0, 4.0, (200_000, 1))
    q = extract_lfp_power(n, fs, bands={"b": (100.0, 300.0)})
    assert q["b"][0] == pytest.approx(16.0 * 200 / 500, rel=0.05)
    with pytest.raises(ValueError, match="band"):
        extract_lfp_power(v, fs, bands={"x": (10, 900)})


def test_network_bursts():
    rng = np.random.default_rng(2)
    t, c = [], []
    for start in (1.0, 3.0):                     # two bursts, 8 channels within 50 ms
        for ch in range(8):
            t += list(start + rng.uniform(0, 0.05, 3))
            c += [ch] * 3
    t += [0.2, 2.0, 4.5]                          # isolated spikes
    c += [0, 1, 2]
    b = detect_network_bursts(t, c, duration_s=5.0, bin_ms=25.0, min_channels=4)
    assert len(b) == 2
    assert b[0].start_s <= 1.0 and b[0].end_s >= 1.05 and b[0].end_s <= 1.1
    assert (b[0].num_spikes, b[0].num_channels) == (24, 8)
    assert b[1].start_s <= 3.0 < b[1].end_s
    assert detect_network_bursts([], [], 5.0) == []
    with pytest.raises(ValueError, match="inside"):
        detect_network_bursts([6.0], [0], 5.0)


def test_latency_budget():
    lb = LatencyBudget(budget_us=100.0)
    vals = [10.0, 50.0, 99.0, 100.0, 101.0, 500.0]
    for v in vals:
        lb.record(v)
    assert lb.violations == 2 and lb.count == 6
    assert lb.compliance == pytest.approx(4 / 6)
    assert lb.p50 == pytest.approx(np.percentile(vals, 50))
    assert lb.p99 == pytest.approx(np.percentile(vals, 99))
    with pytest.raises(ValueError, match="latency_us"):
        lb.record(float("nan"))
    assert LatencyBudget().compliance == 1.0 and math.isnan(LatencyBudget().p50)


def test_pharmacology_time_course():
    pm = PharmModel(gain=0.5, onset_delay_s=10.0, wash_time_s=60.0)
    assert pm.effective_gain(5.0) == 1.0           # not applied yet
    pm.apply(100.0)
    assert pm.effect_fraction(99.0) == 0.0
    assert pm.effect_fraction(105.0) == pytest.approx(0.5)
    assert pm.effective_gain(105.0) == pytest.approx(0.75)
    assert pm.effective_gain(130.0) == pytest.approx(0.5)
    assert pm.effect_fraction(165.0) == pytest.approx(0.5)   # wash-out half way
    assert pm.effective_gain(171.0) == 1.0                   # washed out
    assert pm.modulate_spikes([10, 3], 130.0).tolist() == [5, 2]
    with pytest.raises(ValueError, match="wash_time_s"):
        PharmModel(onset_delay_s=10.0, wash_time_s=5.0)


def test_thinning_is_spread_and_excitation_inside_support():
    spikes = [DetectedSpike(0, i * 0.01, -50.0) for i in range(100)] + [DetectedSpike(1, 0.5, -40.0)]
    pm = PharmModel(gain=0.25, onset_delay_s=0.0, wash_time_s=100.0)
    pm.apply(0.0)
    out = pm.modulate_spike_events(spikes, 1.0)
    ch0 = [s.timestamp_s for s in out if s.channel == 0]
    assert len(ch0) == 25
    assert min(ch0) < 0.05 and max(ch0) > 0.9        # spread over the span, not the first 25
    assert np.allclose(np.diff(ch0), 0.04)
    pm2 = PharmModel(gain=1.5, onset_delay_s=0.0, wash_time_s=100.0)
    pm2.apply(0.0)
    out2 = pm2.modulate_spike_events(spikes, 1.0)
    ch0 = [s.timestamp_s for s in out2 if s.channel == 0]
    assert len(ch0) == 150 and 0.0 <= min(ch0) and max(ch0) <= 0.99
    assert len([s for s in out2 if s.channel == 1]) == 1   # no support to add into
    assert [s.timestamp_s for s in out2] == sorted(s.timestamp_s for s in out2)


def test_fitness_hook():
    sp = [DetectedSpike(0, 0.010, -1.0), DetectedSpike(0, 0.5, -1.0), DetectedSpike(1, 0.2, -1.0)]
    f = mea_fitness_hook(sp, target_rate=2.0, duration_s=1.0)
    assert f["accuracy"] == pytest.approx(np.clip(1 - abs(1.5 - 2.0) / 2.0, 0.1, 0.99))
    assert f["energy_mw"] == 1.5
    assert f["latency_ms"] == pytest.approx(10.0)
    assert mea_fitness_hook(sp, stimulus_time_s=0.1)["latency_ms"] == pytest.approx(100.0)
    assert mea_fitness_hook(sp, measured_latency_ms=3.0)["latency_ms"] == 3.0
    assert mea_fitness_hook([]) == {"accuracy": 0.1, "energy_mw": 0.0, "latency_ms": 0.0}
    assert mea_fitness_hook(sp, target_rate=0.0)["accuracy"] == 0.1
    assert mea_fitness_hook(sp * 10, target_rate=15.0)["accuracy"] == 0.99   # count domain, clipped
    with pytest.raises(ValueError, match="duration_s"):
        mea_fitness_hook(sp, duration_s=0.0)


def test_artifact_blanking_window():
    ar = ArtifactRejector(blank_before_ms=0.1, blank_after_ms=0.5)
    v = np.ones((100, 2))
    out = ar.blank(v, [0.001], sample_rate_hz=10_000.0, t_start_s=0.0)
    z = np.nonzero(out[:, 0] == 0)[0]
    assert z.tolist() == list(range(9, 16))                    # 10 - 1 .. 10 + 5
    assert ar.blanked_samples == 7 and v.sum() == 200          # input untouched
    assert ar.blank(v, [], 10_000.0) is v


def test_plate():
    for n, (r, c) in {6: (2, 3), 24: (4, 6), 48: (6, 8), 96: (8, 12)}.items():
        p = MultiWellPlate(n)
        assert p.label(0) == "A1" and p.label(n - 1) == f"{chr(ord('A') + r - 1)}{c}"
        assert all(p.index(p.label(i)) == i for i in range(n))
    with pytest.raises(ValueError, match="num_wells"):
        MultiWellPlate(12)
    with pytest.raises(ValueError, match="not on a 6-well"):
        MultiWellPlate(6).index("C1")


def make_log(key=None):
    log = BioAuditLog("exp-1", key=key)
    for i in range(5):
        log.append("frame", t_s=float(i), round=i + 1, spikes=[i, i * 2])
    return log


def test_audit_chain_round_trip():
    log = make_log()
    assert log.verify() and len(log) == 5
    again = BioAuditLog.from_json(log.to_json())
    assert again.head == log.head and again.to_json() == log.to_json()
    assert make_log().to_json() == log.to_json()          # deterministic bytes
    with pytest.raises(TypeError):
        log.entries[0]["kind"] = "x"                         # read-only views


@pytest.mark.parametrize("attack", ["edit", "delete_middle", "delete_last", "swap", "insert", "count"])
def test_audit_detects_tampering(attack):
    doc = json.loads(make_log().to_json())
    e = doc["entries"]
    if attack == "edit":
        e[2]["data"]["spikes"] = [9]
    elif attack == "delete_middle":
        del e[2]
    elif attack == "delete_last":
        del e[-1]
    elif attack == "swap":
        e[1], e[2] = e[2], e[1]
    elif attack == "insert":
        e.insert(1, dict(e[1]))
    elif attack == "count":
        del e[-1]
        doc["count"] = 4
    with pytest.raises(AuditError):
        BioAuditLog.from_json(json.dumps(doc))


def test_audit_hmac_resists_recomputation():
    key = b"secret"
    log = make_log(key)
    doc = json.loads(log.to_json())
    forged = BioAuditLog("exp-1")                          # attacker without the key rebuilds a chain
    for ent in doc["entries"]:
        forged.append(ent["kind"], t_s=ent["t_s"], **ent["data"])
    BioAuditLog.from_json(forged.to_json())                # verifies as plain SHA-256...
    with pytest.raises(AuditError, match="modified"):
        BioAuditLog.from_json(forged.to_json(), key=key)   # ...but not under the key
    assert BioAuditLog.from_json(log.to_json(), key=key).verify()
    with pytest.raises(ValueError, match="JSON"):
        log.append("x", t_s=0.0, bad=float("nan"))


def test_burst_bins_merges_runs_across_at_most_max_gap_quiet_bins():
    from bioloop.host.bioware.bursts import burst_bins
    from bioloop.host.culture import network_bursts
    a = np.array([0, 5, 5, 0, 0, 5, 0, 0, 0, 5, 1, 5])
    # runs [1,3), [5,6), [9,10), [11,12); gaps of 2, 3 and 1 quiet bins
    assert burst_bins(a, 5, 0).tolist() == [[1, 3], [5, 6], [9, 10], [11, 12]]
    assert burst_bins(a, 5, 1).tolist() == [[1, 3], [5, 6], [9, 12]]
    assert burst_bins(a, 5, 2).tolist() == [[1, 6], [9, 12]]
    assert burst_bins(a, 5, 3).tolist() == [[1, 12]]
    assert burst_bins(a, 6, 3).shape == (0, 2)
    with pytest.raises(ValueError, match="max_gap_bins"):
        burst_bins(a, 5, -1)
    # the culture's population-rate front end is the same rule with its threshold
    counts = np.zeros(100)
    counts[[10, 11, 14, 60]] = 40
    assert network_bursts(counts, 200).tolist() == burst_bins(counts, 10.0, 2).tolist() \
        == [[10, 15], [60, 61]]
