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
