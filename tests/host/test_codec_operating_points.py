"""Codec operating points in time, physical header ranges, channel positions on the command line."""

import json
import re
import struct
import zlib

import numpy as np
import pytest
from click.testing import CliRunner

from bioloop.host.codec import CodecError, CodecParams, decode, encode
from bioloop.host.codec.cli import codec_cli
from bioloop.host.codec.format import MAX_NOISE_UV, read_header

HEAD = 49   # fixed header bytes before the per-channel noise (docs/codec.md)


def recording(fs, seconds=1.0, c=4, seed=0):
    """Noise plus spikes of 0.2 ms, the same in time at any rate."""
    rng = np.random.default_rng(seed)
    n = int(fs * seconds)
    x = rng.normal(0, 5, (n, c)).astype(np.float32)
    for t in np.sort(rng.choice(np.arange(50, n - 50), 40, replace=False)):
        w = max(2, int(round(2e-4 * fs)))
        x[t:t + w, int(rng.integers(0, c))] -= 80
    return x


@pytest.mark.parametrize("fs, samples", [
    (30000.0, dict(pre=4, post=12, refractory=30, block_size=30000, spatial_window=10)),
    (20000.0, dict(pre=3, post=8, refractory=20, block_size=20000, spatial_window=7)),
])
def test_defaults_are_durations_turned_into_samples_at_the_rate(fs, samples):
    data, _ = encode(recording(fs), fs, CodecParams())
    p = decode(data).header.params
    assert {k: getattr(p, k) for k in samples} == samples
    assert p.refractory_ms == pytest.approx(1.0) and p.block_ms == pytest.approx(1000.0)


def test_a_pinned_sample_count_wins_and_a_duration_too_long_is_refused():
    assert CodecParams(refractory=7).at_rate(20000.0).refractory == 7
    assert CodecParams(refractory_ms=1.0).at_rate(20000.0).refractory == 20
    assert CodecParams(post_ms=0.01).at_rate(20000.0).post == 1          # at least one sample
    with pytest.raises(ValueError, match=r"pre_ms = 10 ms is 300 samples at 30000 Hz; pre allows 0..255"):
        CodecParams(pre_ms=10.0).at_rate(30000.0)
    for bad in (dict(pre_ms=-1.0), dict(block_ms=float("nan")), dict(refractory=0), dict(pre=2.0)):
        with pytest.raises(ValueError):
            CodecParams(**bad)


def test_20_and_30_khz_recordings_give_the_same_events_in_time():
    times = {}
    for fs in (20000.0, 30000.0):
        x = np.zeros((int(fs), 2), np.float32)
        x[:, :] = np.random.default_rng(1).normal(0, 5, (int(fs), 2))
        # two spikes 1.2 ms apart on channel 0: both are kept only if the refractory period is
        # shorter than 1.2 ms, which it is in time (1 ms) but was not at 20 kHz in samples (30 = 1.5 ms)
        for t_ms in (100.0, 101.2, 500.0):
            t = int(round(t_ms * fs / 1000))
            x[t:t + 3, 0] -= 100
        d = decode(encode(x, fs, CodecParams(spatial_radius_um=0))[0])
        times[fs] = (d.events.times / fs * 1000).round(1).tolist()
    assert times[20000.0] == times[30000.0] == [100.0, 101.2, 500.0]


def _reseal(buf, n_channels):
    end = HEAD + 4 * n_channels
    buf[end:end + 4] = struct.pack("<I", zlib.crc32(bytes(buf[:end])) & 0xFFFFFFFF)
    return bytes(buf)


@pytest.mark.parametrize("noise", [3e38, MAX_NOISE_UV * 1.01, np.float32(np.inf)])
def test_decoder_refuses_a_valid_stream_with_an_unphysical_noise(noise):
    data = bytearray(encode(recording(30000.0, c=2), 30000.0, CodecParams(spatial_radius_um=0))[0])
    data[HEAD + 4:HEAD + 8] = struct.pack("<f", noise)      # channel 1's sigma
    with pytest.raises(CodecError, match=r"header: noise level of channel 1 is .* outside"):
        decode(_reseal(data, 2))


@pytest.mark.parametrize("rate", [0.5, 2e7])
def test_decoder_refuses_an_unphysical_sample_rate(rate):
    data = bytearray(encode(recording(30000.0, c=2), 30000.0, CodecParams(spatial_radius_um=0))[0])
    data[8:16] = struct.pack("<d", rate)
    with pytest.raises(CodecError, match="sample rate"):
        read_header(_reseal(data, 2))


def test_encoder_refuses_what_the_decoder_would_refuse():
    x = recording(30000.0, c=2)
    with pytest.raises(ValueError, match="noise_uv"):
        encode(x, 30000.0, noise_uv=[1.0, 3e38])
    with pytest.raises(ValueError, match="sample_rate"):
        encode(x, 2e7)
    with pytest.raises(ValueError, match="positions_um"):
        encode(x, 30000.0, positions_um=[[0, 0], [0, 1e9]])


# -- positions on the command line ---------------------------------------------------

def _probe_json(path, xy, wiring=None, units="um"):
    probe = {"ndim": 2, "si_units": units, "contact_positions": xy.tolist()}
    if wiring is not None:
        probe["device_channel_indices"] = list(wiring)
    path.write_text(json.dumps({"specification": "probeinterface", "version": "0.2.0", "probes": [probe]}))
    return path


@pytest.fixture
def column(tmp_path):
    fs = 30000.0
    x = recording(fs, seconds=2.0, c=8, seed=4)
    # each spike on two neighbouring channels: the spatial rule keeps one event of the pair
    x[:, 1::2] += x[:, 0::2] * 0.9
    np.save(tmp_path / "x.npy", x)
    pos = np.stack([np.zeros(8), np.arange(8) * 20.0], axis=1)
    return x, fs, pos


def test_cli_positions_from_npy_and_probeinterface_json_give_the_api_bytes(tmp_path, column):
    x, fs, pos = column
    want = encode(x, fs, CodecParams(), positions_um=pos)[0]
    without = encode(x, fs, CodecParams())[0]
    assert len(want) < len(without)            # the rule is on and merges events
    np.save(tmp_path / "pos.npy", pos)
    perm = [3, 0, 7, 1, 6, 2, 5, 4]            # contacts wired to channels out of order
    sources = {"pos.npy": tmp_path / "pos.npy",
               "probe.json": _probe_json(tmp_path / "probe.json", pos[perm], perm),
               "probe_mm.json": _probe_json(tmp_path / "probe_mm.json", pos / 1000, units="mm")}
    for name, f in sources.items():
        res = CliRunner().invoke(codec_cli, ["encode", str(tmp_path / "x.npy"), str(tmp_path / f"{name}.blsc"),
                                             "--rate", "30000", "--positions", str(f)])
        assert res.exit_code == 0, res.output
        assert "Warning" not in res.output
        assert (tmp_path / f"{name}.blsc").read_bytes() == want, name


def test_cli_warns_when_the_spatial_rule_is_off_for_lack_of_positions(tmp_path, column):
    res = CliRunner().invoke(codec_cli, ["encode", str(tmp_path / "x.npy"), str(tmp_path / "a.blsc"),
                                         "--rate", "30000"])
    assert res.exit_code == 0
    assert "Warning: no channel positions" in res.stderr and "Warning" not in res.stdout
    res = CliRunner().invoke(codec_cli, ["encode", str(tmp_path / "x.npy"), str(tmp_path / "b.blsc"),
                                         "--rate", "30000", "--spatial-radius-um", "0"])
    assert res.exit_code == 0 and "Warning" not in res.stderr


@pytest.mark.parametrize("content, match", [
    (np.zeros((7, 2)), r"holds \(7, 2\) values"),
    ("not json", "not a probeinterface JSON"),
    ({"probes": [{"contact_positions": [[0, 0]] * 8, "device_channel_indices": [0] * 8}]}, "wire each"),
])
def test_cli_bad_positions_file_is_one_line_exit_1(tmp_path, column, content, match):
    if isinstance(content, np.ndarray):
        f = tmp_path / "pos.npy"
        np.save(f, content)
    else:
        f = tmp_path / "pos.json"
        f.write_text(content if isinstance(content, str) else json.dumps(content))
    res = CliRunner().invoke(codec_cli, ["encode", str(tmp_path / "x.npy"), str(tmp_path / "c.blsc"),
                                         "--rate", "30000", "--positions", str(f)])
    assert res.exit_code == 1, res.output
    assert len(res.output.strip().splitlines()) == 1 and re.search(match, res.output)
    assert not (tmp_path / "c.blsc").exists()
