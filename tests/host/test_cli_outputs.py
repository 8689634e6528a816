"""Issue 18, data loss: no command destroys a file it was not asked to replace, or leaves a partial one."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from bioloop.host.codec import CodecParams, encode
from bioloop.host.codec.cli import codec_cli


@pytest.fixture
def stream(tmp_path):
    x = np.random.default_rng(0).normal(0, 10, size=(4000, 4))
    x[1000, 2] = -200.0
    data, _ = encode(x, 30000.0, CodecParams(block_size=1000))
    p = tmp_path / "rec.blsc"
    p.write_bytes(data)
    return p


def _decode(*args):
    return CliRunner().invoke(codec_cli, ["decode", *map(str, args)])


def test_decode_refuses_an_existing_output_without_force(stream, tmp_path):
    raw = tmp_path / "raw_backup.npy"
    np.save(raw, np.arange(10))
    before = raw.read_bytes()
    res = _decode(stream, raw)
    assert res.exit_code == 2 and "exists; pass --force" in res.output
    assert raw.read_bytes() == before
    res = _decode(stream, raw, "--force")
    assert res.exit_code == 0, res.output
    assert np.load(raw).shape == (4000, 4)


def test_decode_and_encode_never_write_over_their_input(stream, tmp_path):
    data = stream.read_bytes()
    os.link(stream, tmp_path / "hard.blsc")
    (tmp_path / "soft.npy").symlink_to(stream)
    for out in (stream, tmp_path / "hard.blsc", tmp_path / "soft.npy"):
        for force in ([], ["--force"]):
            res = _decode(stream, out, *force)
            assert res.exit_code == 2, res.output
    assert stream.read_bytes() == data
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((100, 2), np.float32))
    before = x.read_bytes()
    res = CliRunner().invoke(codec_cli, ["encode", str(x), str(x), "--rate", "30000", "--force"])
    assert res.exit_code == 2 and "is the input" in res.output
    assert x.read_bytes() == before


@pytest.mark.parametrize("seed", ["-1", str(2**63)])
def test_decode_bad_seed_is_refused_before_the_output_is_touched(stream, tmp_path, seed):
    out = tmp_path / "out.npy"
    np.save(out, np.arange(5))
    before = out.read_bytes()
    res = _decode(stream, out, "--fill", "noise", "--seed", seed, "--force")
    assert res.exit_code == 2 and "--seed" in res.output and "Traceback" not in res.output
    assert out.read_bytes() == before


def test_a_failed_decode_leaves_no_file(stream, tmp_path):
    bad = bytearray(stream.read_bytes())
    bad[-40] ^= 1                                     # CRC error in the last block
    (tmp_path / "bad.blsc").write_bytes(bytes(bad))
    out = tmp_path / "out.npy"
    np.save(out, np.arange(5))
    before = out.read_bytes()
    res = _decode(tmp_path / "bad.blsc", out, "--force")
    assert res.exit_code == 1 and "CRC32" in res.output
    assert out.read_bytes() == before
    res = _decode(tmp_path / "bad.blsc", tmp_path / "new.npy")
    assert res.exit_code == 1 and not (tmp_path / "new.npy").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.blsc", "out.npy", "rec.blsc"]


def _demo(*args):
    from bioloop.host.cli import main
    return CliRunner().invoke(main, ["demo", "--duration", "0.05", *map(str, args)])


def test_demo_run_folder_is_new_or_replaced_as_a_whole(tmp_path):
    out = tmp_path / "run"
    res = _demo("--out", out)                                   # with the homeostasis-off comparison
    assert res.exit_code == 0, res.output
    assert (out / "aer_homeostasis_off.npy").exists()
    # piped output starts with the results (progress is for terminals, on stderr), no blank line first
    assert res.output.splitlines()[0].strip().startswith("bioloop demo: model backend")
    # the printed summary names every file written, and the latency of both conditions
    text = " ".join(res.output.split())
    listed = text.split("files: ")[1].split(", ")
    assert sorted(x.strip() for x in listed) == sorted(p.name for p in out.iterdir())
    lat_row = next(ln for ln in res.output.splitlines() if "loop latency probe" in ln)
    # every output, receipt included, has the permissions of a plain new file (not the 0600 of a temp file)
    plain = tmp_path / "plain"
    plain.write_text("x")
    modes = {p.name: os.stat(p).st_mode & 0o777 for p in out.iterdir()}
    assert set(modes.values()) == {os.stat(plain).st_mode & 0o777}, modes
    plain.unlink()
    assert lat_row.count("│") == 4 and lat_row.split("│")[3].strip()     # an "off" cell with content
    first = (out / "receipt.json").read_text()
    (out / "notes.txt").write_text("mine")
    res = _demo("--out", out, "--no-compare")                  # no --force: refused, nothing replaced
    assert res.exit_code == 2 and "--force" in res.output
    assert (out / "notes.txt").read_text() == "mine" and (out / "receipt.json").read_text() == first
    res = _demo("--out", out, "--no-compare", "--force")       # replaced whole: no stale files beside new ones
    assert res.exit_code == 0, res.output
    assert not (out / "aer_homeostasis_off.npy").exists() and not (out / "notes.txt").exists()
    assert "homeostasis_off" not in json.loads((out / "summary.json").read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_demo_never_replaces_a_folder_that_is_not_a_run(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "recording.npy").write_text("keep")
    res = _demo("--out", out, "--force")
    assert res.exit_code == 2 and "not a bioloop run folder" in res.output
    assert (out / "recording.npy").read_text() == "keep"


def test_demo_cocotb_is_quiet_unless_verbose(tmp_path, monkeypatch):
    """The CLI asks the simulator for quiet logs by default, -v for the logs, and shows the build phase."""
    import bioloop.sim.hil as hil
    from bioloop.host import cli
    calls = []

    def fake(fn, *args, quiet=False, on_phase=None, **core):     # the model in place of the simulator
        calls.append(quiet)
        on_phase("build")
        on_phase("simulate")
        seed, settings, _progress, policies, recording = args      # as the CLI passes them
        return cli._run_model(seed, settings, None, policies=policies, recording=recording)
    monkeypatch.setattr(hil, "run_with_cocotb", fake)
    res = _demo("--backend", "cocotb", "--no-compare", "--out", tmp_path / "q")
    assert res.exit_code == 0, res.output
    res = _demo("--backend", "cocotb", "--no-compare", "--out", tmp_path / "v", "-v")
    assert res.exit_code == 0, res.output
    assert calls == [True, False]


def test_demo_prints_the_target_the_experiment_holds(tmp_path):
    """burst-control holds its own tonic rate (BurstControl.target_hz), not --target-rate: the table
    and summary.json say the rate the run was measured against."""
    from bioloop.host.policy import BurstControl
    res = _demo("--experiment", "burst-control", "--out", tmp_path / "run", "--target-rate", "300")
    assert res.exit_code == 0, res.output
    row = next(ln for ln in res.output.splitlines() if "target rate" in ln)
    assert [c.strip() for c in row.split("│")[2:4]] == [f"{BurstControl.target_hz:.2f}"] * 2
    comparison = json.loads((tmp_path / "run" / "summary.json").read_text())["comparison"]
    assert comparison["target_rate_hz"] == BurstControl.target_hz != 300
