"""Outputs are checked first, written aside and renamed into place; run folders are new or replaced whole."""

from __future__ import annotations

import os
import stat

import pytest

from bioloop.host.output_files import OutputError, check_destination, file_mode, replacing, run_folder


def _mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def test_replacing_writes_with_the_permissions_of_a_plain_open(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("x")                         # what open() gives under this umask
    with replacing(tmp_path / "a.bin") as tmp:
        tmp.write_bytes(b"data")
    assert (tmp_path / "a.bin").read_bytes() == b"data"
    assert _mode(tmp_path / "a.bin") == _mode(plain) == file_mode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "plain"]   # no temporary left


def test_replacing_leaves_the_old_file_when_the_writer_fails(tmp_path):
    dest = tmp_path / "a.bin"
    dest.write_bytes(b"precious")
    with pytest.raises(RuntimeError):
        with replacing(dest, overwrite=True) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer died")
    assert dest.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_destination_checks(tmp_path):
    src = tmp_path / "in.dat"
    src.write_bytes(b"in")
    os.link(src, tmp_path / "hard.dat")
    (tmp_path / "soft.dat").symlink_to(src)
    for same in (src, tmp_path / "hard.dat", tmp_path / "soft.dat"):
        with pytest.raises(OutputError, match="is the input"):
            check_destination(same, overwrite=True, inputs=[src])
    with pytest.raises(OutputError, match="exists; pass --force"):
        check_destination(src)
    with pytest.raises(OutputError, match="does not exist"):
        check_destination(tmp_path / "nowhere" / "x.npy")
    with pytest.raises(OutputError, match="is a folder"):
        check_destination(tmp_path)
    assert src.read_bytes() == b"in"


def test_unwritable_folder_is_refused(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.geteuid() == 0:      # root may write anywhere: make the permission check answer as for a user
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, m: False if os.fspath(p) == os.fspath(ro) else real(p, m))
    try:
        with pytest.raises(OutputError, match=f"folder {ro} is not writable"):
            check_destination(ro / "x.npy")
        with pytest.raises(OutputError, match="not writable"):
            with run_folder(ro / "run"):
                pass
    finally:
        ro.chmod(0o700)
    assert list(ro.iterdir()) == []


def test_run_folder_is_new_or_replaced_whole(tmp_path):
    out = tmp_path / "run"
    with run_folder(out) as stage:
        (stage / "receipt.json").write_text("{}")
        (stage / "stale.npy").write_text("old")
    assert _mode(out) == file_mode(folder=True) and _mode(out / "stale.npy") == file_mode()
    with pytest.raises(OutputError, match="earlier run; pass --force"):
        with run_folder(out):
            pass
    with pytest.raises(RuntimeError):                  # a failed run leaves the earlier one intact
        with run_folder(out, overwrite=True) as stage:
            (stage / "receipt.json").write_text("new")
            raise RuntimeError
    assert (out / "receipt.json").read_text() == "{}" and (out / "stale.npy").exists()
    with run_folder(out, overwrite=True) as stage:
        (stage / "receipt.json").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["receipt.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]    # no staging or old folder left


def test_run_folder_never_replaces_a_folder_it_did_not_write(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputError, match="not a bioloop run folder"):
        with run_folder(home, overwrite=True):
            pass
    assert (home / "thesis.tex").read_text() == "years of work"
