"""`bioloop build`: the folder it writes, its manifest, Vivado runs (a fake vivado), bad input."""

import hashlib
import json
import os
import stat

import pytest
from click.testing import CliRunner

from bioloop.boards import manifest
from bioloop.boards.build import BuildFolder, generate
from bioloop.host.regmap import ID_VALUE, VERSION
from bioloop.host.cli import main

SMALL = ["--channels", "8", "--lanes", "4", "--fanout", "2"]


def _invoke(args, path=None):
    env = {"PATH": path} if path is not None else {}
    return CliRunner().invoke(main, ["build", *args], env=env)


def _one_line_error(res, code):
    assert res.exit_code == code, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    return lines[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("b") / "pynq-z2", N=8, K=4, F=2)


def test_folder_and_manifest(built):
    root = built.root
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "build.tcl", "constraints/bioloop.xdc", "hdl/bioloop_core.v", "hdl/core.v",
        "overlay/bioloop.json"]
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")]   # no temp left
    m = manifest.read(built.manifest)
    assert (m["N"], m["K"], m["F"]) == (8, 4, 2)
    assert m["id"] == ID_VALUE and m["regmap_version"] == VERSION and m["fclk_hz"] == 100_000_000
    core = (root / "hdl" / "core.v").read_text() + (root / "hdl" / "bioloop_core.v").read_text()
    assert m["core_sha256"] == hashlib.sha256(core.encode()).hexdigest()
    assert m["tools"]["amaranth"] and m["tools"]["python"] and m["tools"]["vivado"] is None
    assert m["files"] == {}


def test_manifest_checked_against_the_loaded_core(built):
    from bioloop.host.backends import ModelBus
    from bioloop.host.driver import Driver
    m = manifest.read(built.manifest)
    manifest.check(m, Driver(ModelBus(8, 4, 2)).identity)          # the same core: accepted
    with pytest.raises(manifest.ManifestError) as info:
        manifest.check(m, Driver(ModelBus(16, 4, 2)).identity)
    assert "N 8 in the manifest, 16 on the core" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(manifest.ManifestError, match="register map version 2.0"):
        manifest.check({**m, "regmap_version": 2 << 16}, Driver(ModelBus(8, 4, 2)).identity)


def test_manifest_files_and_format(tmp_path, built):
    m = manifest.read(built.manifest)
    (tmp_path / "bioloop.bit").write_bytes(b"bits")
    m["files"] = {"bioloop.bit": manifest.sha256_file(tmp_path / "bioloop.bit")}
    manifest.check_files(m, tmp_path)
    (tmp_path / "bioloop.bit").write_bytes(b"other bits")
    with pytest.raises(manifest.ManifestError, match="sha256 differs"):
        manifest.check_files(m, tmp_path)
    (tmp_path / "m.json").write_text(json.dumps({**m, "format": 99}))
    with pytest.raises(manifest.ManifestError, match="format 99"):
        manifest.read(tmp_path / "m.json")
    with pytest.raises(manifest.ManifestError, match="no overlay manifest"):
        manifest.read(tmp_path / "missing.json")


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_builds_of_the_same_inputs_are_byte_identical(tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    a = generate(tmp_path / "a", N=8, K=4, F=2)
    b = generate(tmp_path / "b", N=8, K=4, F=2)
    first, second = _tree(a.root), _tree(b.root)
    assert len(first) == 5 and first == second
    assert "created_utc" not in manifest.read(a.manifest)      # no wall-clock time in the folder


def test_source_date_epoch_sets_the_creation_time(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")      # 2023-11-14 22:13:20 UTC
    a = generate(tmp_path / "a", N=8, K=4, F=2)
    assert manifest.read(a.manifest)["created_utc"] == "2023-11-14T22:13:20Z"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    res = _invoke([*SMALL, "--out", str(tmp_path / "c")])
    assert "SOURCE_DATE_EPOCH must be a whole number" in _one_line_error(res, 2)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("args, needle", [
    (["--board", "zedboard"], "unknown board 'zedboard'"),
    (["--channels", "7"], "N = 7 must be even"),
    (["--channels", "8192"], "N = 8192 is out of range 2..4096"),
    (["--lanes", "0"], "K = 0 is out of range 1..4096"),
    (["--fanout", "300"], "F = 300 is out of range 1..256"),
])
def test_bad_settings_exit_2_write_nothing(tmp_path, args, needle):
    res = _invoke([*args, "--out", str(tmp_path / "out")])
    assert needle in _one_line_error(res, 2)
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_refused_unless_an_earlier_build_and_force(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    for force in ([], ["--force"]):        # not a build folder: never replaced
        res = _invoke([*SMALL, "--out", str(out), "--no-vivado", *force])
        assert "not a bioloop build folder" in _one_line_error(res, 2)
        assert [p.name for p in out.iterdir()] == ["notes.txt"]
    out = tmp_path / "earlier"
    assert _invoke([*SMALL, "--out", str(out), "--no-vivado"]).exit_code == 0
    (out / "hdl" / "stale.v").write_text("// from an earlier build")
    res = _invoke([*SMALL, "--out", str(out), "--no-vivado"])
    assert "pass --force" in _one_line_error(res, 2)
    assert (out / "hdl" / "stale.v").exists()
    res = _invoke([*SMALL, "--out", str(out), "--no-vivado", "--force"])
    assert res.exit_code == 0, res.output
    assert not (out / "hdl" / "stale.v").exists() and (out / "build.tcl").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier", "out"]


def _fake_vivado(tmp_path, body):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "vivado"
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return f"{bindir}{os.pathsep}{os.environ['PATH']}"


def test_without_vivado_prints_the_command_left(tmp_path):
    res = _invoke([*SMALL, "--out", str(tmp_path / "out")], path="/nonexistent")
    assert res.exit_code == 0, res.output
    assert "vivado -mode batch -nojournal -log vivado.log -source build.tcl" in res.output
    res = _invoke([*SMALL, "--out", str(tmp_path / "out2"), "--vivado"], path="/nonexistent")
    assert "vivado is not on PATH" in _one_line_error(res, 1)
    assert not (tmp_path / "out2").exists()


def test_vivado_failure_shows_its_last_error(tmp_path):
    path = _fake_vivado(tmp_path, """
echo "Vivado v2023.2 (64-bit)" > vivado.log
echo "ERROR: [BD 41-237] Bus Interface property FREQ_HZ does not match" >> vivado.log
echo "ERROR: [Common 17-39] 'validate_bd_design' failed due to earlier errors." >> vivado.log
echo "partial" > overlay/bioloop.bit
exit 1
""")
    out = tmp_path / "out"
    res = _invoke([*SMALL, "--out", str(out)], path=path)
    line = _one_line_error(res, 1)
    assert "ERROR: [Common 17-39] 'validate_bd_design' failed" in line and "exit 1" in line
    assert not (out / "overlay" / "bioloop.bit").exists()
    assert manifest.read(out / "overlay" / "bioloop.json")["files"] == {}


def test_vivado_success_completes_the_overlay(tmp_path):
    path = _fake_vivado(tmp_path, """
test "$1 $2 $3 $4 $5 $6 $7" = "-mode batch -nojournal -log vivado.log -source build.tcl" || exit 3
test -f build.tcl || exit 4
echo "****** Vivado v2023.2 (64-bit)" > vivado.log
printf 'bit' > overlay/bioloop.bit
printf 'hwh' > overlay/bioloop.hwh
""")
    out = tmp_path / "out"
    res = _invoke([*SMALL, "--out", str(out)], path=path)
    assert res.exit_code == 0, res.output
    assert "overlay ready" in res.output
    m = manifest.read(out / "overlay" / "bioloop.json")
    assert m["tools"]["vivado"] == "2023.2"
    assert m["files"] == {"bioloop.bit": hashlib.sha256(b"bit").hexdigest(),
                          "bioloop.hwh": hashlib.sha256(b"hwh").hexdigest()}
    manifest.check_files(m, out / "overlay")
    assert BuildFolder(out).bit.exists()
