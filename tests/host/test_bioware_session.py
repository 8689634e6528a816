"""BioHybridSession: the published example, continuity, the gateware path, determinism, strictness."""

import math

import numpy as np
import pytest

from bioloop.host.bioware.examples import published_frame
from bioloop.host import aer
from bioloop.host.bioware import (AERToSCConverter, ArtifactRejector, BCMPlasticity, BioAuditLog,
                                  BioHybridSession, BiologicalSTDP, CultureHealth, LatencyBudget,
                                  MEAConfig, MEAToAERTranscoder, PharmModel, SCToOptoEncoder,
                                  SpikeDetector, SpikeSorter)
from bioloop.host.models.homeostasis import HomeostaticPlasticity

FS = 20_000.0




def make(cfg=None, hw_clock_hz=1e6, **kw):
    cfg = cfg or MEAConfig(num_channels=10, sample_rate_hz=FS, spike_threshold_sigma=5.0)
    args = dict(mea_config=cfg, detector=SpikeDetector(config=cfg, refractory_samples=30),
                transcoder=MEAToAERTranscoder(hw_clock_hz=hw_clock_hz),
                sc_converter=AERToSCConverter(bitstream_length=1024),
                opto_encoder=SCToOptoEncoder(wavelength_nm=470, max_intensity_mw_mm2=5.0),
                stdp=BiologicalSTDP(), health_monitor=CultureHealth(),
                homeostatic=HomeostaticPlasticity(target_rate_hz=10.0), sorter=SpikeSorter(num_units=3))
    args.update(kw)
    return BioHybridSession(**args)


def test_published_example():
    s = make()
    r = s.process_frame(published_frame())
    assert r.round == r["round"] == 1
    assert "latency_us" in r and r.latency_us > 0
    assert r.num_spikes == 20 == r.num_aer_events
    got = sorted((p.channel, round(p.timestamp_s * FS)) for p in r.spikes)
    assert got == sorted([(0, t) for t in range(0, 2000, 200)] + [(3, t) for t in range(100, 2000, 200)])
    assert r.num_bitstreams == 2 and sorted(r.bitstreams) == [0, 3]
    assert r.num_opto_pulses == 2
    # ticks at 1 MHz: sample i at 20 kHz is tick 50 i
    assert [e.timestamp for e in r.aer_events] == [50 * t for t in range(0, 2000, 100)]
    assert r.spike_counts.tolist() == [10, 0, 0, 10] + [0] * 6
    assert {p.unit_id for p in r.spikes} <= {1, 2, 3} and s.sorter.fitted
    with pytest.raises(TypeError, match="read-only"):
        r["round"] = 5
    assert set(r.keys()) >= {"round", "num_spikes", "spikes", "aer_events", "bitstreams", "opto_pulses",
                             "health", "latency_us"}


def test_timestamps_continue_across_frames_and_t_start_is_honoured():
    s = make(hw_clock_hz=FS)
    r1 = s.process_frame(published_frame())
    assert r1.t_start_s == 0.0 and r1.aer_timestamp.tolist() == list(range(0, 2000, 100))
    r2 = s.process_frame(published_frame(43))
    assert r2.t_start_s == pytest.approx(0.1)
    assert r2.aer_timestamp.tolist() == [2000 + t for t in range(0, 2000, 100)]
    assert [p.timestamp_s for p in r2.spikes] == pytest.approx([0.1 + t / FS for t in range(0, 2000, 100)])
    r3 = s.process_frame(published_frame(44), t_start_s=10.0)
    assert r3.aer_timestamp[0] == 200_000 and r3.spikes[0].timestamp_s == pytest.approx(10.0)
    r4 = s.process_frame(published_frame(45))
    assert r4.t_start_s == pytest.approx(10.1)
    f = aer.unpack(r4.aer_words)
    assert f.timestamp.tolist() == r4.aer_timestamp.tolist()


def test_gateware_model_path_gives_identical_events():
    cfg = MEAConfig(num_channels=10, sample_rate_hz=FS, adc_uv_per_code=0.195)
    host = make(cfg, hw_clock_hz=FS)
    hw = make(cfg, hw_clock_hz=FS, use_gateware_model=True)
    for seed in (42, 43, 44):
        codes = np.rint(published_frame(seed) / 0.195).astype(np.int16)
        a, b = host.process_frame(codes), hw.process_frame(codes)
        assert a.num_spikes == 20
        assert a.aer_words.tobytes() == b.aer_words.tobytes()
        assert a.fingerprint() == b.fingerprint()
    # float input on the gateware path is quantized, clipping counted
    v = published_frame()
    v[5, 2] = 1e6
    assert make(cfg, hw_clock_hz=FS, use_gateware_model=True).process_frame(v).clipped_samples == 1


def test_same_inputs_same_bytes():
    frames = [published_frame(s) for s in (1, 2, 3)]

    def run():
        s = make(weights_q88=np.full((10, 10), 256, np.int16), bcm=BCMPlasticity(),
                 audit_log=BioAuditLog("e"))
        fps = [s.process_frame(f).fingerprint() for f in frames]
        return fps, s.audit_log.to_json()

    assert run() == run()


def test_homeostasis_is_applied_per_channel():
    hp = HomeostaticPlasticity(target_rate_hz=10.0, tau_homeo_ms=100.0)
    s = make(homeostatic=hp)
    th = np.full(10, 256)
    for seed in (1, 2):
        r = s.process_frame(published_frame(seed))
        rates = r.spike_counts / 0.1
        th = np.array([hp.update_threshold(int(t), float(x), 100.0) for t, x in zip(th, rates, strict=True)])
        assert np.array_equal(r.thresholds_q88, th)
    assert th[0] > 256 > th[1]          # 100 Hz channel raised, silent channel lowered


def brute_dw(t, c, counted):
    """Σ Δw per (pre, post) channel pair over the spike pairs for which counted(a, b) holds.

    Written from Bi & Poo 1998's constants (A+ 0.005, A- 0.00525, τ 20 ms), not from BiologicalSTDP.
    """
    dw = np.zeros((10, 10))
    for a in range(t.size):
        for b in range(t.size):
            d = t[b] - t[a]
            if c[a] != c[b] and abs(d) <= 5 * 20.0 and counted(a, b):
                dw[c[a], c[b]] += 0.005 * math.exp(-d / 20) if d > 0 else \
                    -0.00525 * math.exp(d / 20) if d < 0 else 0.0
    return np.floor(dw * 256).astype(int)


def test_stdp_is_applied_to_weights_across_frames():
    w0 = np.zeros((10, 10), np.int16)
    s = make(weights_q88=w0, homeostatic=None)
    frames = [published_frame(7), published_frame(8)]
    rs = [s.process_frame(f) for f in frames]
    t = np.concatenate([r.spike_time_s * 1e3 for r in rs])
    c = np.concatenate([r.spike_channel for r in rs])
    n1 = rs[0].num_spikes
    # frame 1 applies its own pairs; frame 2 every pair with at least one frame-2 spike, once each
    step1 = brute_dw(t, c, lambda a, b: a < n1 and b < n1)
    step2 = brute_dw(t, c, lambda a, b: a >= n1 or b >= n1)
    assert np.array_equal(rs[0].weights_q88, step1)
    assert np.array_equal(rs[1].weights_q88, step1 + step2)
    # the pairs across the cut (ch 3 at 95 ms with ch 0 at 100 ms, ...) did count
    assert not np.array_equal(step2, brute_dw(t, c, lambda a, b: a >= n1 and b >= n1))


def test_artifact_blanking_pharmacology_and_latency_budget():
    lb = LatencyBudget(budget_us=1e9)
    s = make(artifact_rejector=ArtifactRejector(0.1, 0.5), latency_budget=lb)
    r = s.process_frame(published_frame(), stim_times_s=[0.005])    # blank around sample 100
    assert r.blanked_samples > 0
    assert (3, 100) not in {(p.channel, round(p.timestamp_s * FS)) for p in r.spikes}
    assert r.num_spikes == 19 and lb.count == 1 and lb.compliance == 1.0
    pm = PharmModel(gain=0.5, onset_delay_s=0.0, wash_time_s=100.0)
    pm.apply(0.0)
    r = make(pharm_model=pm).process_frame(published_frame())
    assert r.spike_counts.tolist()[:4] == [5, 0, 0, 5]


def test_empty_frame_and_bad_input_leave_the_session_intact():
    s = make()
    r = s.process_frame(np.zeros((0, 10)))
    assert r.num_spikes == 0 and r.health["status"] == "empty" and s.round_count == 1
    bad = published_frame()
    bad[7, 4] = np.inf
    with pytest.raises(ValueError, match="channel 4, sample 7"):
        s.process_frame(bad)
    with pytest.raises(ValueError, match="t_start_s"):
        s.process_frame(published_frame(), t_start_s=-1.0)
    with pytest.raises(ValueError, match="channels"):
        s.process_frame(np.zeros((10, 9)))
    with pytest.raises(ValueError, match="stim_times_s"):
        s.process_frame(published_frame(), stim_times_s=[float("nan")])
    assert s.round_count == 1 and s.detector.frames_seen == 0
    assert s.process_frame(published_frame()).num_spikes == 20


def test_timestamps_may_not_go_backwards_or_overflow():
    s = make(hw_clock_hz=FS)
    s.process_frame(published_frame(), t_start_s=1.0)
    with pytest.raises(ValueError, match="backwards"):
        s.process_frame(published_frame(), t_start_s=1.05)
    assert s.round_count == 1
    s.reset()
    r = s.process_frame(published_frame(), t_start_s=0.0)
    assert r.aer_timestamp[0] == 0 and s.round_count == 2
    big = make(hw_clock_hz=1e6)
    with pytest.raises(OverflowError, match="32-bit"):
        big.process_frame(published_frame(), t_start_s=4294.9)
    assert big.round_count == 0 and big.detector.frames_seen == 0


def test_gateware_path_needs_an_even_channel_count():
    cfg = MEAConfig(num_channels=9, sample_rate_hz=FS)
    with pytest.raises(ValueError, match="even"):
        make(cfg, use_gateware_model=True)


def test_channel_map_is_used_and_checked_up_front():
    cmap = {c: 100 + c for c in range(10)}
    r = make(transcoder=MEAToAERTranscoder(hw_clock_hz=FS, channel_map=cmap)).process_frame(published_frame())
    assert sorted(set(r.aer_neuron_id.tolist())) == [100, 103] and sorted(r.bitstreams) == [100, 103]
    assert aer.unpack(r.aer_words).address.tolist() == r.aer_neuron_id.tolist()
    with pytest.raises(ValueError, match="channel 9"):
        make(transcoder=MEAToAERTranscoder(channel_map={c: c for c in range(9)}))


def test_multiwell_plate_tags_words_with_the_well():
    from bioloop.host.bioware import MultiWellPlate
    plate = MultiWellPlate(24)
    plate.attach("B3", make(hw_clock_hz=FS), drug="none")
    plate.attach(0, make(hw_clock_hz=FS))
    rb = plate.process_frame("B3", published_frame())
    ra = plate.process_frame("A1", published_frame())
    assert set(aer.unpack(rb.aer_words).source.tolist()) == {plate.index("B3")} == {8}
    assert set(aer.unpack(ra.aer_words).source.tolist()) == {0}
    with pytest.raises(KeyError, match="D6"):
        plate.process_frame("D6", published_frame())
