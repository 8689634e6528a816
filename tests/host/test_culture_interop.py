"""SpikeInterface round-trip: export a culture run, replay any recording as a source.

Skipped only when the ``[sort]`` extra (spikeinterface, probeinterface) is not
installed; CI installs it.
"""

import numpy as np
import pytest

si = pytest.importorskip("spikeinterface.core", reason="needs the [sort] extra: spikeinterface")
pytest.importorskip("probeinterface", reason="needs the [sort] extra: probeinterface")

from bioloop.host.culture import (Culture, CultureBlock, CultureConfig,  # noqa: E402
                                  RecordingSource, sorting_spikes, to_recording, to_sorting)

# one worker runs the module-scoped culture once (tests/conftest.py)
pytestmark = pytest.mark.xdist_group("culture_interop_run")

CFG = CultureConfig().with_network(n_neurons=150, connection_probability=0.3).with_seed(21)


@pytest.fixture(scope="module")
def run():
    culture = Culture(CFG)
    culture.step(1234)   # a block that does not start at sample 0
    return culture, culture.step(12_000)


def test_recording_carries_traces_probe_and_scale(run):
    culture, block = run
    rec = to_recording(block, culture)
    assert rec.get_sampling_frequency() == 20_000.0 and rec.get_num_samples() == 12_000
    np.testing.assert_array_equal(rec.get_traces(return_in_uV=True), block.voltages_uv)
    probe = rec.get_probe()
    np.testing.assert_array_equal(probe.contact_positions, culture.electrode_positions_um)
    np.testing.assert_array_equal(rec.get_channel_locations(), culture.electrode_positions_um)
    codes = to_recording(block, culture, as_codes=True)
    np.testing.assert_array_equal(codes.get_traces(), block.codes)
    uv = codes.get_traces(return_in_uV=True)
    assert np.abs(uv - block.voltages_uv).max() <= 0.5 * CFG.uv_per_code + 1e-4


def test_sorting_is_the_ground_truth(run):
    culture, block = run
    sorting = to_sorting(block, culture)
    assert list(sorting.unit_ids) == list(range(culture.n_neurons))
    samples, units = sorting_spikes(sorting)
    order = np.lexsort((block.spikes["neuron"], block.spikes["sample"]))
    np.testing.assert_array_equal(samples, block.spikes["sample"][order] - block.t0_sample)
    np.testing.assert_array_equal(units, block.spikes["neuron"][order])
    np.testing.assert_array_equal(sorting.get_property("nearest_channel"), culture.nearest_channel)


def test_round_trip_through_spikeinterface_gives_the_same_blocks(run):
    culture, block = run
    source = RecordingSource(to_recording(block, culture), sorting=to_sorting(block, culture),
                             uv_per_code=CFG.uv_per_code)
    parts = [source.step(n) for n in (1, 999, 0, 5000, 7000)]   # the last one runs short
    assert source.remaining == 0 and parts[-1].n_samples == 6000
    back = CultureBlock.concatenate(parts)
    np.testing.assert_array_equal(back.voltages_uv, block.voltages_uv)
    np.testing.assert_array_equal(back.codes, block.codes)
    assert back.saturated == block.saturated
    expect = block.spikes.copy()
    expect["sample"] -= block.t0_sample
    order = np.lexsort((expect["neuron"], expect["sample"]))
    np.testing.assert_array_equal(back.spikes, expect[order])


def test_any_spikeinterface_recording_is_a_source():
    rec, sorting = si.generate_ground_truth_recording(
        durations=[1.0], sampling_frequency=20_000.0, num_channels=8, num_units=5, seed=2)
    source = RecordingSource(rec, sorting=sorting)
    assert source.n_channels == 8 and source.sample_rate_hz == 20_000.0
    blocks = [source.step(3000, led=np.zeros(8)) for _ in range(7)]
    run = CultureBlock.concatenate(blocks)
    assert run.n_samples == 20_000 and source.ignored_led_samples == 20_000
    np.testing.assert_array_equal(run.voltages_uv, rec.get_traces(return_in_uV=True))
    s, u = sorting_spikes(sorting)
    np.testing.assert_array_equal(run.spikes["sample"], s)
    main = rec.ids_to_indices(list(sorting.get_property("main_channel_id")))
    np.testing.assert_array_equal(run.spikes["nearest_channel"], np.asarray(main)[u])
    with pytest.raises(ValueError, match="expected"):
        RecordingSource(rec).step(10, led=np.zeros(7))


def test_non_finite_samples_are_rejected_by_position():
    x = np.zeros((100, 4), np.float32)
    x[57, 2] = np.nan
    source = RecordingSource(si.NumpyRecording([x], sampling_frequency=20_000.0))
    with pytest.raises(ValueError, match="channel 2, sample 57"):
        source.step(100)
    assert source.t == 0   # nothing consumed
    assert source.step(50).n_samples == 50
