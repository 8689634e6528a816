"""Codec sources and sinks (numpy, SpikeInterface, NWB via pynwb), CLI, and ground-truth quality."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from bioloop.host.codec import CodecParams, decode, encode, read_events
from bioloop.host.codec.cli import codec_cli
from bioloop.host.codec.evaluate import (MATCH_MS, Scorer, evaluate_codec, ground_truth_recording, match,
                                         quantize_baseline)
from bioloop.host.codec.sources import encode_source, numpy_source, nwb_source, recording_source, write_nwb

# one worker builds the module-scoped ground-truth recording once (tests/conftest.py)
pytestmark = pytest.mark.xdist_group("codec_io_gt")

pynwb = pytest.importorskip("pynwb", reason="pynwb (the [nwb] extra) is not installed")

P = CodecParams(block_ms=250.0)


@pytest.fixture(scope="module")
def gt():
    return ground_truth_recording(duration_s=3.0, n_channels=8, n_units=5, seed=1)


def test_sources_give_the_bytes_of_the_array(gt, tmp_path):
    ref, _ = encode(gt.samples_uv, gt.sample_rate, P, positions_um=gt.positions_um)
    assert encode_source(numpy_source(gt.samples_uv, gt.sample_rate, chunk=4321,
                                      positions_um=gt.positions_um), P)[0] == ref
    import spikeinterface.core as sc
    rec = sc.NumpyRecording([gt.samples_uv], sampling_frequency=gt.sample_rate)
    rec = rec.set_probe(rec.create_dummy_probe_from_locations(gt.positions_um)) or rec  # in place in 0.105
    with open(tmp_path / "x.blsc", "wb") as f:
        encode_source(recording_source(rec, chunk=5000), P, out=f)
    assert (tmp_path / "x.blsc").read_bytes() == ref


def _write_acquisition(path, data, rate, conversion, positions=None):
    from datetime import datetime, timezone
    from pynwb.ecephys import ElectricalSeries
    f = pynwb.NWBFile(session_description="t", identifier="t", session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc))
    dev = f.create_device(name="d")
    g = f.create_electrode_group(name="g", description="g", location="x", device=dev)
    for c in range(data.shape[1]):
        if positions is None:
            f.add_electrode(group=g, location="x")
        else:
            f.add_electrode(group=g, location="x", rel_x=float(positions[c, 0]), rel_y=float(positions[c, 1]),
                            rel_z=0.0)
    region = f.create_electrode_table_region(list(range(data.shape[1])), "all")
    f.add_acquisition(ElectricalSeries(name="raw", data=data, electrodes=region, rate=rate, conversion=conversion))
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(f)


def test_nwb_in_and_out(gt, tmp_path):
    codes = np.rint(gt.samples_uv / 0.195).astype(np.int16)
    _write_acquisition(tmp_path / "in.nwb", codes, gt.sample_rate, 0.195e-6, gt.positions_um)
    src = nwb_source(tmp_path / "in.nwb")
    assert src.uv_per_code == pytest.approx(0.195) and src.n_samples == codes.shape[0]
    assert np.array_equal(src.positions_um, gt.positions_um)
    data = encode_source(src, P)[0]
    assert data == encode(codes, gt.sample_rate, P, uv_per_code=0.195e-6 * 1e6, positions_um=gt.positions_um)[0]
    d = decode(data)
    assert np.array_equal(d.header.positions_um, gt.positions_um.astype(np.float32))
    write_nwb(tmp_path / "out.nwb", d)
    with pynwb.NWBHDF5IO(str(tmp_path / "out.nwb"), "r") as io:
        f = io.read()
        es = f.acquisition["decoded"]
        assert es.rate == gt.sample_rate and es.conversion == pytest.approx(1e-6)
        assert np.array_equal(es.data[:], d.samples_uv)
        el = f.electrodes.to_dataframe()
        assert np.allclose(el[["rel_x", "rel_y"]].to_numpy(), gt.positions_um)
        units = f.units.to_dataframe()
        assert len(units) == 8
        for c in range(8):
            want = np.sort(d.events.times[d.events.channels == c]) / gt.sample_rate
            assert np.allclose(units.iloc[c]["spike_times"], want)
    # float data with a non-trivial conversion comes in as µV
    _write_acquisition(tmp_path / "f.nwb", gt.samples_uv.astype(np.float32) * 1e-6, gt.sample_rate, 1.0)
    assert encode_source(nwb_source(tmp_path / "f.nwb"), P)[0] == encode(
        (gt.samples_uv.astype(np.float32) * 1e-6).astype(np.float64) * 1e6, gt.sample_rate, P)[0]


def test_cli_encode_decode_eval(gt, tmp_path):
    np.save(tmp_path / "x.npy", gt.samples_uv)
    r = CliRunner()
    res = r.invoke(codec_cli, ["encode", str(tmp_path / "x.npy"), str(tmp_path / "x.blsc"), "--rate", "30000",
                               "--block-ms", "250"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "x.blsc").read_bytes() == encode(gt.samples_uv, 30000.0, P)[0]
    res = r.invoke(codec_cli, ["decode", str(tmp_path / "x.blsc"), str(tmp_path / "y.npy")])
    assert res.exit_code == 0, res.output
    assert np.array_equal(np.load(tmp_path / "y.npy"), decode(encode(gt.samples_uv, 30000.0, P)[0]).samples_uv)
    res = r.invoke(codec_cli, ["decode", str(tmp_path / "x.blsc"), str(tmp_path / "y.nwb")])
    assert res.exit_code == 0, res.output
    bad = bytearray((tmp_path / "x.blsc").read_bytes())
    bad[-40] ^= 1    # inside the last data block's payload
    (tmp_path / "bad.blsc").write_bytes(bytes(bad))
    res = r.invoke(codec_cli, ["decode", str(tmp_path / "bad.blsc"), str(tmp_path / "z.npy")])
    assert res.exit_code != 0 and "CRC32" in res.output
    res = r.invoke(codec_cli, ["encode", str(tmp_path / "x.npy"), str(tmp_path / "q.blsc")])
    assert res.exit_code != 0 and "--rate" in res.output
    res = r.invoke(codec_cli, ["eval", "--duration", "1", "--channels", "4", "--units", "2"])
    assert res.exit_code == 0, res.output
    assert "codec" in res.output and "zstd" in res.output
    # gateware AER words as the detections
    from bioloop.host.aer import AERType, pack
    t = np.array([300, 1200, 5000, 5007])
    c = np.array([0, 5, 2, 3])
    np.save(tmp_path / "w.npy", pack(c, 0, AERType.SPIKE.value, t))
    res = r.invoke(codec_cli, ["encode", str(tmp_path / "x.npy"), str(tmp_path / "a.blsc"), "--rate", "30000",
                               "--aer", str(tmp_path / "w.npy"), "--spatial-radius-um", "0"])
    assert res.exit_code == 0, res.output
    _, ev, _ = read_events((tmp_path / "a.blsc").read_bytes())
    assert set(zip(ev.times.tolist(), ev.channels.tolist(), strict=True)) == set(zip(t.tolist(), c.tolist(), strict=True))


def test_match_counts_by_hand():
    home = np.array([[True, False], [False, True]])
    gt_t, gt_u = np.array([100, 200, 300]), np.array([0, 1, 0])
    tol = 12
    # det on ch0 near 100 (hit), ch1 near 200 (hit), ch1 near 300 (unit 0 not home on ch1: miss and FP)
    r, p = match(gt_t, gt_u, np.array([105, 190, 310, 5000]), np.array([0, 1, 1, 0]), home, tol)
    assert r == pytest.approx(2 / 3) and p == pytest.approx(2 / 4)
    assert MATCH_MS == 0.4


def test_ground_truth_spikes_stay_detectable_after_decoding(gt):
    """Of the ground-truth spikes the reference detector finds in the original, >= 95% it finds after decoding."""
    s = Scorer(gt)
    raw = s.score("original", gt.samples_uv, gt.samples_uv.size * 2)
    m = evaluate_codec(s, CodecParams())
    assert raw.recall > 0.5
    assert m.recall >= 0.95 * raw.recall
    assert m.precision >= 0.9
    assert m.event_ratio > 300     # bits actually saved; the bench reports the real figures
    # the lossy baseline really lands on the RMSE it is matched to
    qd, qn, step = quantize_baseline(gt.samples_uv, m.rmse_uv)
    assert np.sqrt(np.mean((qd - gt.samples_uv) ** 2)) == pytest.approx(m.rmse_uv, rel=0.01)
