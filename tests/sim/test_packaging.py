"""An installed bioloop (not an editable one) carries what the compiled Verilator backend builds from.

``pip wheel --no-deps .`` builds the wheel a user installs; the shim, the simulation top, the
Core's Verilog (``hdl/``) and the lint waivers must be inside, at the paths
``bioloop.sim.verilated_core`` reads them from relative to its own file, with the bytes of the
checkout. The long run also installs that wheel into a fresh venv and builds the library there.
"""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bioloop.sim import verilated_core as vc

#: The checkout these tests live in (the project a user builds the wheel from), whatever bioloop is imported from.
ROOT = Path(__file__).resolve().parents[2]


def _checkout(path: Path) -> Path:
    """A file of the imported package (``bioloop.sim.verilated_core``'s paths) in this checkout."""
    return ROOT / path.relative_to(vc.ROOT)


def _in_wheel(path: Path) -> str:
    """Where a checkout file lands in the wheel: the top-level folders are the subpackages of bioloop."""
    return "bioloop/" + path.relative_to(ROOT).as_posix()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    # A copy of the checkout without its venvs, build caches and outputs: setuptools builds in the
    # source folder (build/, *.egg-info), which must neither be left in the checkout nor reused.
    src = tmp_path_factory.mktemp("src") / "bioloop"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "sim_build", "build", "runs", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"))
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = out.glob("bioloop-*.whl")
    return built


def test_the_wheel_holds_the_backend_sources(wheel):
    hdl = _checkout(vc.HDL)
    needed = [_checkout(vc.SHIM), _checkout(vc.SIM_TOP), hdl / "core.v", hdl / "bioloop_core.v",
              ROOT / "sim" / "verilator_waivers.vlt", hdl / "regmap.json"]
    needed += sorted(hdl.glob("*.v"))
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        missing = [_in_wheel(p) for p in needed if _in_wheel(p) not in names]
        assert not missing, f"not in {wheel.name}: {missing}"
        for p in needed:
            assert z.read(_in_wheel(p)) == p.read_bytes(), _in_wheel(p)
        assert "bioloop/sim/verilated_core.py" in names


@pytest.mark.long
def test_a_non_editable_install_builds_the_library(wheel, tmp_path):
    """The wheel installed into a folder ahead of the editable checkout on sys.path: the library builds
    from the installed files and is cached outside the install."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, timeout=600)
    env = {k: v for k, v in os.environ.items() if k != "BIOLOOP_BUILD_DIR"}
    env["PYTHONPATH"] = str(target)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    code = ("import bioloop.sim.verilated_core as vc; from bioloop.sim.verilator_bus import VerilatorBus;"
            "lib = vc.build_core_library(); bus = VerilatorBus(library=lib);"
            "print(vc.ROOT); print(lib.path); print(bus.edges)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    root, lib, edges = proc.stdout.split()
    assert Path(root) == target / "bioloop"
    assert Path(lib).is_relative_to(tmp_path / "cache" / "bioloop" / "verilated") and Path(lib).exists()
    assert int(edges) == 2080
