"""The host runtime imports neither amaranth nor numba (issue 11): it must run on the board image.

Each check imports in a fresh interpreter and lists what ``sys.modules``
holds afterwards. In the board profile (``make test-board``: no amaranth, no
numba installed) the same file checks that the runtime imports at all.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

HEAVY = ("amaranth", "numba", "llvmlite", "cocotb", "cocotbext", "pynq")

RUNTIME = [
    "bioloop.host.driver", "bioloop.host.bus", "bioloop.host.aer", "bioloop.host.noise",
    "bioloop.host.observation", "bioloop.host.bioware", "bioloop.host.codec", "bioloop.host.loop",
    "bioloop.host.cli", "bioloop.boards.pynq_backend", "bioloop.boards.run", "bioloop.boards.cli",
    "bioloop.boards.light", "bioloop.boards.pynq_standin",
]


def heavy_modules_after(modules, env=None):
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules) +
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, **(env or {})))
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("module", RUNTIME)
def test_runtime_module_imports_no_amaranth_numba_or_pynq(module):
    assert heavy_modules_after([module]) == "[]"


def test_the_issue_s_own_check():
    # python -c "import bioloop.host.driver, bioloop.boards.pynq_backend"
    assert heavy_modules_after(["bioloop.host.driver", "bioloop.boards.pynq_backend"]) == "[]"


BLOCKING = """
import sys
class Absent:                              # as if the extra were not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Absent())
from bioloop.host.cli import main
main({args!r})
"""


@pytest.mark.parametrize("blocked, args, extra", [
    ({"amaranth"}, ["build", "--no-vivado"], "gateware"),
    ({"cocotb"}, ["demo", "--backend", "cocotb", "--duration", "0.05", "--no-compare"], "sim"),
    ({"pynq"}, ["board", "info"], "board"),
])
def test_a_command_needing_an_absent_extra_names_it_in_one_line(tmp_path, blocked, args, extra):
    args = args + ["--out", str(tmp_path / "out")] if args[0] != "board" else \
        args + ["--overlay", str(tmp_path / "ov")]
    if args[0] == "board":
        from bioloop.boards import manifest
        from bioloop.host.layouts import FCLK_HZ
        from bioloop.host.regmap import ID_VALUE, VERSION
        ov = tmp_path / "ov"
        ov.mkdir()
        (ov / "bioloop.bit").write_bytes(b"x")
        (ov / "bioloop.hwh").write_text("x")
        manifest.write(ov / "bioloop.json", {"format": manifest.MANIFEST_FORMAT, "board": "pynq-z2", "N": 8,
                                             "K": 8, "F": 2, "id": ID_VALUE, "regmap_version": VERSION,
                                             "fclk_hz": FCLK_HZ, "core_sha256": "0", "tools": {}})
    res = subprocess.run([sys.executable, "-c", BLOCKING.format(blocked=blocked, args=args)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    assert res.stderr.strip().count("\n") == 0
    assert f"pip install 'bioloop[{extra}]'" in res.stderr


@pytest.mark.skipif(os.environ.get("BIOLOOP_BOARD_PROFILE") != "1",
                    reason="checks the board profile's venv (make test-board sets BIOLOOP_BOARD_PROFILE=1)")
def test_the_board_profile_is_built_as_the_board_has_it():
    import importlib.metadata
    import importlib.util

    import numpy
    assert numpy.__version__.startswith("1.26."), numpy.__version__
    assert importlib.metadata.version("pynq") == "4.0.0"
    for module in ("amaranth", "numba", "llvmlite", "cocotb"):
        assert importlib.util.find_spec(module) is None, f"{module} is installed in the board profile"
