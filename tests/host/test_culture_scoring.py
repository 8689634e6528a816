"""Detection scoring: a hand-worked vector, then the host detector on the culture
cross-checked with SpikeInterface's own detect_peaks at the same threshold."""

import numpy as np
import pytest

from bioloop.host.culture import Culture, CultureConfig, score_detections, unit_snr

# Channels 0 and 1 are 100 µm apart, channel 2 is 1 mm away.
POS = np.array([[0.0, 0.0], [100.0, 0.0], [1000.0, 0.0]])
GT_S = [100, 200, 300, 400]
GT_U = [0, 1, 0, 1]
DET_S = [108, 209, 300, 395, 396, 700]
DET_C = [0, 2, 2, 2, 2, 1]


def test_hand_worked_vector_with_geometry():
    # 0.4 ms at 20 kHz = 8 samples. 108 matches 100 (unit 0 on channel 0);
    # 209 is 9 samples late; 300 is on time but 1 mm from unit 0; 395 and 396
    # both match 400 (unit 1 lives on channel 2); 700 matches nothing.
    s = score_detections(DET_S, DET_C, GT_S, GT_U, 20_000, unit_channel=[0, 2],
                         channel_positions_um=POS, radius_um=150, unit_snr=[2.0, 10.0])
    assert (s.n_found, s.n_true_detections) == (2, 3)
    assert s.recall == 0.5 and s.precision == 0.5
    np.testing.assert_array_equal(s.unit_recall, [0.5, 0.5])
    np.testing.assert_array_equal(s.unit_spikes, [2, 2])
    bins = {(b["lo"], b["hi"]): b for b in s.recall_by_snr}
    assert bins[(0.0, 3.0)]["units"] == 1 and bins[(0.0, 3.0)]["recall"] == 0.5
    assert bins[(8.0, 12.0)]["units"] == 1 and bins[(3.0, 5.0)]["units"] == 0
    assert np.isnan(bins[(3.0, 5.0)]["recall"])


def test_hand_worked_vector_time_only():
    s = score_detections(DET_S, DET_C, GT_S, GT_U, 20_000)
    assert (s.n_found, s.n_true_detections) == (3, 4)
    assert s.recall == 0.75 and s.precision == pytest.approx(4 / 6)
    # The window is inclusive and scales with the sample rate: 9 samples is
    # inside 0.4 ms at 25 kHz (10 samples).
    assert score_detections([209], [0], [200], [0], 25_000).recall == 1.0
    assert score_detections([209], [0], [200], [0], 20_000).recall == 0.0


def test_empty_and_bad_inputs():
    s = score_detections([], [], [5], [0], 20_000)
    assert s.recall == 0.0 and np.isnan(s.precision)
    with pytest.raises(ValueError, match="differ in length"):
        score_detections([1, 2], [0], [], [], 20_000)
    with pytest.raises(TypeError, match="integers"):
        score_detections([1.5], [0], [], [], 20_000)
    with pytest.raises(ValueError, match="gt_units"):
        score_detections([], [], [1], [3], 20_000, n_units=2)


def test_unit_snr_of_a_known_waveform():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40_000, 3)).astype(np.float32) * 2.0
    spikes = np.arange(500, 39_000, 400)
    x[spikes, 1] -= 30.0   # a one-sample 30 µV trough on channel 1
    snr, best = unit_snr(x, spikes, np.zeros(len(spikes), int), 1)
    assert best[0] == 1
    # Mean trough 30 µV (plus the averaged noise) over the MAD σ of about 2.
    assert snr[0] == pytest.approx(30.0 / 2.0, rel=0.1)


def test_host_detector_on_the_culture_agrees_with_spikeinterface():
    pytest.importorskip("spikeinterface.sortingcomponents",
                        reason="needs the [sort] extra: spikeinterface")
    from spikeinterface.core import get_noise_levels
    from spikeinterface.sortingcomponents.peak_detection import detect_peaks

    from bioloop.host.bioware.detection import SpikeDetector
    from bioloop.host.culture import to_recording

    culture = Culture(CultureConfig().with_network(n_neurons=400, connection_probability=0.2)
                      .with_seed(3))
    block = culture.step(40_000)
    gt = block.spikes
    assert len(gt) > 300
    kw = dict(n_units=culture.n_neurons, unit_channel=culture.nearest_channel,
              channel_positions_um=culture.electrode_positions_um,
              radius_um=1.5 * culture.mea.electrode_pitch_um, unit_snr=culture.unit_snr())
    det = SpikeDetector(culture.mea, refractory_samples=20).detect_arrays(block.voltages_uv)
    host = score_detections(det.sample_index, det.channel, gt["sample"], gt["neuron"],
                            20_000, **kw)
    rec = to_recording(block, culture)
    noise = get_noise_levels(rec, return_in_uV=False, method="mad", progress_bar=False)
    peaks = detect_peaks(rec, method="by_channel",
                         method_kwargs=dict(peak_sign="neg", detect_threshold=5.0,
                                            noise_levels=noise),
                         job_kwargs=dict(n_jobs=1, progress_bar=False))
    ref = score_detections(peaks["sample_index"], peaks["channel_index"], gt["sample"],
                           gt["neuron"], 20_000, **kw)
    # Coincidences alone (detections shifted by 50 ms) must score far lower.
    chance = score_detections(det.sample_index + 1000, det.channel, gt["sample"], gt["neuron"],
                              20_000, **kw)
    assert host.recall - chance.recall > 0.4 and host.precision - chance.precision > 0.4
    high = [b for b in host.recall_by_snr if b["lo"] >= 8.0 and b["spikes"]]
    assert high and all(b["recall"] >= 0.85 for b in high)
    assert host.precision >= 0.8
    assert abs(host.recall - ref.recall) < 0.05
    assert abs(host.precision - ref.precision) < 0.05
