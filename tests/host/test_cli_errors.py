"""Issue 18: every bad input is one clear line with the right exit code (usage 2, runtime 1), before any work."""

from __future__ import annotations

import importlib.util
import os
import stat

import numpy as np
import pytest
from click.testing import CliRunner

from bioloop.host.cli import main
from bioloop.host.codec import CodecParams, encode

SEED_MAX = 2**63 - 1


def run(*args):
    # stderr apart from stdout: the one-line rule is about what the user reads on either
    return CliRunner().invoke(main, list(map(str, args)))


def one_error_line(res, code):
    assert res.exit_code == code, res.output
    assert isinstance(res.exception, SystemExit), res.exception      # a click exit, not an uncaught error
    lines = res.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output      # one line, nothing else
    return lines[0]


# -- demo: everything checked before the calibration starts ---------------------------------------------

@pytest.fixture
def no_simulation(monkeypatch):
    """Any attempt to simulate fails the test: validation must come first."""
    import bioloop.host.cli as cli

    def boom(*a, **k):
        raise AssertionError("the simulation started before the options were checked")
    monkeypatch.setattr(cli, "_run_model", boom)
    monkeypatch.setattr(cli, "_run_verilator", boom)


@pytest.mark.parametrize("args, words", [
    (["--seed", SEED_MAX + 1], "--seed"),
    (["--seed", -1], "--seed"),
    (["--target-rate", "1e12"], "--target-rate"),
    (["--duration", "inf"], "--duration"),
    (["--duration", "0.01"], "--duration"),
])
def test_demo_refuses_bad_options_before_simulating(tmp_path, no_simulation, args, words):
    res = run("demo", "--out", tmp_path / "run", *args)
    assert words in one_error_line(res, 2)
    assert not (tmp_path / "run").exists() and list(tmp_path.iterdir()) == []


def test_demo_refuses_a_missing_or_unwritable_out_before_simulating(tmp_path, no_simulation, monkeypatch):
    line = one_error_line(run("demo", "--out", tmp_path / "no" / "run"), 2)
    assert str(tmp_path / "no") in line and "does not exist" in line
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.geteuid() == 0:      # root may write anywhere: make the permission check answer as for a user
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, m: False if os.fspath(p) == os.fspath(ro) else real(p, m))
    try:
        line = one_error_line(run("demo", "--out", ro / "run"), 2)
    finally:
        ro.chmod(0o700)
    assert str(ro) in line and "not writable" in line


# -- codec encode: say what the input is and what was expected ------------------------------------------

def _npy_bytes(a):
    import io
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


@pytest.mark.parametrize("name, content, words", [
    ("empty.npy", b"", "an empty file"),
    ("random.npy", bytes(np.random.default_rng(1).integers(0, 256, 500, np.uint8)), "no .npy signature"),
    ("short.npy", _npy_bytes(np.zeros((1000, 4), np.float32))[:2000], "truncated"),
    ("objects.npy", _npy_bytes(np.array([{}, []], dtype=object)), "Python objects"),
    ("one_d.npy", _npy_bytes(np.zeros(100, np.float32)), "shape (100,)"),
    ("text.npy", _npy_bytes(np.array(["a", "b"])[None]), "<U1"),
    ("nothing.npy", _npy_bytes(np.zeros((0, 4), np.float32)), "holds no samples"),
])
def test_encode_says_what_a_bad_npy_is(tmp_path, name, content, words):
    (tmp_path / name).write_bytes(content)
    line = one_error_line(run("codec", "encode", tmp_path / name, tmp_path / "o.blsc", "--rate", 30000), 1)
    assert words in line and name in line
    assert "allow_pickle" not in line and "Aborted" not in line and "mmap" not in line
    assert not (tmp_path / "o.blsc").exists()


def test_encode_says_what_a_bad_folder_or_nwb_is(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    line = one_error_line(run("codec", "encode", tmp_path / "notes", tmp_path / "o.blsc"), 1)
    assert "not a saved SpikeInterface recording" in line
    (tmp_path / "bad.nwb").write_bytes(b"not hdf5" * 40)
    line = one_error_line(run("codec", "encode", tmp_path / "bad.nwb", tmp_path / "o.blsc"), 1)
    assert "not a readable NWB" in line
    np.save(tmp_path / "x.npy", np.zeros((100, 2), np.float32))
    np.save(tmp_path / "w.npy", np.zeros((3, 2), np.float64))
    line = one_error_line(run("codec", "encode", tmp_path / "x.npy", tmp_path / "o.blsc", "--rate", 30000,
                              "--aer", tmp_path / "w.npy"), 1)
    assert "--aer" in line and "uint64" in line
    assert not (tmp_path / "o.blsc").exists()


def test_encode_and_decode_refuse_a_missing_output_folder(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((100, 2), np.float32))
    line = one_error_line(run("codec", "encode", tmp_path / "x.npy", tmp_path / "no" / "o.blsc", "--rate", 30000), 2)
    assert str(tmp_path / "no") in line and "does not exist" in line
    data, _ = encode(np.zeros((100, 2)), 30000.0, CodecParams(block_size=50))
    (tmp_path / "s.blsc").write_bytes(data)
    line = one_error_line(run("codec", "decode", tmp_path / "s.blsc", tmp_path / "no" / "o.npy"), 2)
    assert "does not exist" in line


@pytest.mark.parametrize("out", ["o.wav", "o", "o.npz", "o.blsc"])
def test_decode_refuses_suffixes_it_does_not_write(tmp_path, out):
    data, _ = encode(np.zeros((100, 2)), 30000.0, CodecParams(block_size=50))
    (tmp_path / "s.blsc").write_bytes(data)
    line = one_error_line(run("codec", "decode", tmp_path / "s.blsc", tmp_path / out), 2)
    assert ".npy or .nwb" in line and not (tmp_path / out).exists()


@pytest.mark.parametrize("args", [
    ["--duration", "0"], ["--duration", "-1"], ["--duration", "nan"], ["--duration", "1e9"],
    ["--channels", "0"], ["--channels", "100000"], ["--units", "0"], ["--units", "-3"],
    ["--seed", "-1"], ["--seed", str(SEED_MAX + 1)],
])
def test_eval_validates_its_options(args, monkeypatch):
    import bioloop.host.codec.evaluate as ev
    monkeypatch.setattr(ev, "ground_truth_recording", lambda *a, **k: pytest.fail("ran with a bad option"))
    line = one_error_line(run("codec", "eval", *args), 2)
    assert args[0] in line and line.endswith("codec eval --help')")


def test_every_output_has_the_permissions_of_a_plain_file(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    want = stat.S_IMODE(plain.stat().st_mode)
    x = np.random.default_rng(0).normal(0, 10, (3000, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert run("codec", "encode", tmp_path / "x.npy", tmp_path / "x.blsc", "--rate", 30000).exit_code == 0
    assert run("codec", "decode", tmp_path / "x.blsc", tmp_path / "y.npy").exit_code == 0
    for f in ("x.blsc", "y.npy"):
        assert stat.S_IMODE((tmp_path / f).stat().st_mode) == want, f
    if importlib.util.find_spec("pynwb") is not None:        # the [nwb] extra
        assert run("codec", "decode", tmp_path / "x.blsc", tmp_path / "y.nwb").exit_code == 0
        assert stat.S_IMODE((tmp_path / "y.nwb").stat().st_mode) == want
    # a build folder, manifest included, down to its nested files
    res = run("build", "--channels", 8, "--lanes", 4, "--fanout", 2, "--no-vivado", "--out", tmp_path / "b")
    assert res.exit_code == 0, res.output
    files = [p for p in (tmp_path / "b").rglob("*") if p.is_file()]
    assert any(p.name == "bioloop.json" for p in files)
    assert {p.relative_to(tmp_path).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in files} == \
        {p.relative_to(tmp_path).as_posix(): want for p in files}


def test_codec_output_starts_with_the_result(tmp_path):
    x = np.random.default_rng(0).normal(0, 10, (3000, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    for args in (["codec", "encode", tmp_path / "x.npy", tmp_path / "x.blsc", "--rate", 30000],
                 ["codec", "decode", tmp_path / "x.blsc", tmp_path / "y.npy"]):
        res = run(*args)
        assert res.exit_code == 0 and res.stdout.splitlines()[0].startswith("3000 samples"), res.output


def test_options_have_help_text():
    for args, options in ((["demo"], ["--seed"]), (["codec", "eval"], ["--seed", "--channels", "--units"]),
                          (["codec", "decode"], ["--seed"])):
        import click
        cmd = main
        for a in args:
            cmd = cmd.commands[a]
        helps = {p.opts[0]: p.help for p in cmd.params if isinstance(p, click.Option)}
        for o in options:
            assert helps[o] and len(helps[o]) > 20 and "(spikeinterface)" != helps[o], (args, o)


# -- one convention for the whole CLI -------------------------------------------------------------------

def test_every_cli_module_raises_through_the_exit_code_convention():
    """Usage errors and runtime failures are UsageFailure (2) / RuntimeFailure (1): one line, no usage dump;
    every group is a OneLineGroup (or mounted under one), so click's parser errors are one line too."""
    import re
    from pathlib import Path
    root = Path(__file__).parents[2]
    offenders = []
    for path in [*root.glob("host/**/*.py"), *root.glob("boards/**/*.py")]:
        text = path.read_text()
        if "import click" not in text:
            continue
        for m in re.finditer(r"raise click\.(UsageError|ClickException)\(", text):
            offenders.append(f"{path.relative_to(root)}:{text[:m.start()].count(chr(10)) + 1}")
    assert offenders == []


@pytest.mark.parametrize("args, code", [
    (["demo", "--out", "{tmp}/no/run"], 2),
    (["codec", "decode", "{tmp}/s.blsc", "{tmp}/o.txt"], 2),
    (["codec", "decode", "{tmp}/junk.blsc", "{tmp}/o.npy"], 1),
    (["codec", "encode", "{tmp}/junk.blsc", "{tmp}/o.blsc"], 2),
    (["sweep", "plan", "{tmp}/missing.toml"], 2),
    (["build", "--channels", "3", "--out", "{tmp}/b"], 2),
    (["demo", "--bogus"], 2),                                  # click's own parser errors: one line too
    (["codec", "decode", "{tmp}/s.blsc", "{tmp}/o.npy", "--seed", "-1"], 2),
    (["nosuch"], 2),
    (["codec", "encode", "{tmp}/x.npy", "{tmp}/o.blsc", "--rate", "0"], 2),
    (["codec", "encode", "{tmp}/x.npy", "{tmp}/o.blsc", "--rate", "nan"], 2),
    (["codec", "encode", "{tmp}/x.npy", "{tmp}/o.blsc", "--rate", "30000", "--uv-per-code", "-1"], 2),
])
def test_whole_cli_exit_codes_and_one_line(tmp_path, args, code):
    data, _ = encode(np.zeros((100, 2)), 30000.0, CodecParams(block_size=50))
    (tmp_path / "s.blsc").write_bytes(data)
    (tmp_path / "junk.blsc").write_bytes(b"junk" * 20)
    np.save(tmp_path / "x.npy", np.zeros((100, 2), np.int16))
    res = run(*[a.format(tmp=tmp_path) for a in args])
    one_error_line(res, code)


def test_a_failed_simulation_is_one_line_exit_1(tmp_path, monkeypatch):
    pytest.importorskip("cocotb", reason="cocotb (bioloop[sim]) is not installed")
    import bioloop.sim.hil as hil

    def broken(*a, **k):
        raise hil.HILError("the simulation ended without a result; see the cocotb log in sim_build\nmore")
    monkeypatch.setattr(hil, "run_with_cocotb", broken)
    line = one_error_line(run("demo", "--backend", "cocotb", "--out", tmp_path / "run"), 1)
    assert "cocotb simulation failed" in line and "sim_build" in line
    assert not (tmp_path / "run").exists()
