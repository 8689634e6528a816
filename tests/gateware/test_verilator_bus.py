"""The compiled Verilator backend (``bioloop.sim.verilator_bus``, ``bioloop.sim.verilated_core``).

Its bit-for-bit equivalence with the ``model`` and ``cocotb`` backends over one
second of culture is ``tests/gateware/test_core.py::test_core_equivalence``.
Here: the closed loop and the demo run on it unchanged and give what they give
on the model; TLAST per block or per frame gives the same core on both; a
session that times out; the AER buffer holding the core's ready
low instead of dropping words; two cores in one process; the build cache; and
typed errors for bad input.

Every test uses the default (64, 64, 16) build, which the first test to need it
compiles once (a CPU-minute or so; processes that need it meanwhile wait on its
lock) and later runs find in ``sim_build/verilated``.
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

from bioloop.gateware.layouts import AERType
from bioloop.host.aer import unpack
from bioloop.host.backends import BusTiming, ModelBus
from bioloop.host.bus import BusError, BusTimeout
from bioloop.host.driver import Driver
from bioloop.sim import verilated_core
from bioloop.sim.core_bench import latency_frames, latency_program
from bioloop.sim.verilated_core import LibraryMismatch, ToolchainMissing, build_core_library, library_key
from bioloop.sim.verilator_bus import AERBackpressure, VerilatorBus

N, K, F = 64, 64, 16


@pytest.fixture(scope="module")
def library(core_library):                     # tests/conftest.py: built once, skips only without a toolchain
    assert (N, K, F) == (64, 64, 16)
    return core_library


# ---------------------------------------------------------------------------------------
# sessions: the same as on the model

def loop_run(bus):
    from bioloop.host.culture import Culture, CultureConfig
    from bioloop.host.loop import LoopSettings, run_loop
    settings = LoopSettings(duration_s=0.25, calibration_ms=100.0, block_ms=5.0, theta0_q88=256)
    return run_loop(Driver(bus), bus, Culture(CultureConfig(seed=3)), settings)


def test_closed_loop_matches_the_model(library):
    """The closed loop (culture, bioware, homeostasis) gives the same record on both backends."""
    want = loop_run(ModelBus(N, K, F))
    got = loop_run(VerilatorBus(N, K, F, library=library))
    assert np.array_equal(got.words, want.words) and len(want.words) > 100
    assert np.array_equal(got.t_s, want.t_s)
    s_got, s_want = got.summary(), want.summary()
    assert s_got == s_want and s_want["stims_total"] > 0


def test_demo_cli(library, tmp_path):
    from click.testing import CliRunner

    from bioloop.host.cli import main
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["demo", "--backend", "verilator", "--duration", "0.1", "--no-compare",
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "verilator backend" in res.output
    assert (out / "aer.npy").exists() and (out / "summary.json").exists()


def timeout_session(driver, bus, frames):
    out = {}
    try:
        driver.send_samples(frames)              # enable is 0 after reset: the core takes nothing
    except BusTimeout as exc:
        out["timeout"] = (str(exc), exc.frames_sent)
    driver.enable()
    driver.send_samples(frames)
    out["frames"] = driver.counters["frames"]
    out["leds"] = bus.leds().shape
    out["edges"] = bus.edges
    return out


def test_timeout_then_carry_on(library):
    frames = np.zeros((5, N), dtype=np.int16)
    timing = BusTiming(send_timeout_edges=50)
    bus = ModelBus(N, K, F, timing=timing)
    want = timeout_session(Driver(bus), bus, frames)
    got = timeout_session(*(lambda b: (Driver(b), b))(VerilatorBus(N, K, F, timing=timing, library=library)),
                          frames)
    assert got == want
    msg, sent = got["timeout"]
    assert sent == 0 and "enable" in msg and "50 cycles" in msg and got["frames"] == 5


def test_two_cores_in_one_process(library):
    """Each bus holds its own core: a notebook can keep several."""
    a, b = VerilatorBus(N, K, F, library=library), VerilatorBus(N, K, F, library=library)
    da, db = Driver(a), Driver(b)
    da.scratch = 0x1234_5678
    assert da.scratch == 0x1234_5678 and db.scratch == 0
    da.enable()
    da.send_samples(np.zeros((10, N), dtype=np.int16))
    assert da.counters["frames"] == 10 and db.counters["frames"] == 0
    assert a.leds().shape == (10, K) and b.leds().shape == (0, K)
    a.close()
    assert db.counters["frames"] == 0                     # b lives on
    with pytest.raises(ValueError, match="closed"):
        a.read32(0)


@pytest.mark.xdist_group(f"core_n{N}_k{K}_f{F}")      # beside test_core's cocotb runs: one cocotb build
def test_latency_as_on_cocotb(library):
    """L_aer and L_loop per isolated crossing, and the hardware probe, as the cocotb bench sees them."""
    from bioloop.sim.core_bench import measure_latency, measure_latency_compiled
    got = measure_latency_compiled("isolated", 0.0, 1500, library=library)
    want = measure_latency("isolated", 0.0, 1500)
    assert got["detections"] == want["detections"] > 5
    for key in ("l_aer", "l_loop", "l_aer_values", "l_loop_values", "merged", "probe"):
        assert got[key] == want[key], key
    assert got["l_loop"]["max"] == got["probe"]["latency_max"]


# ---------------------------------------------------------------------------------------
# frames by count (DESIGN.md §3): TLAST at the end of each block, as the board's DMA sends it,
# or on every frame, gives the same core

def _tlast_spy(bus):
    """The number of sample beats with TLAST the core took so far."""
    if isinstance(bus, VerilatorBus):
        return lambda: bus.core.tlasts
    sent, run_beats = [], bus.core.run_beats

    def spy(beats, lasts, *args, **kwargs):
        taken = run_beats(beats, lasts, *args, **kwargs)
        sent.append(int(np.asarray(lasts[:taken]).sum()))
        return taken
    bus.core.run_beats = spy
    return lambda: sum(sent)


def test_tlast_per_block_or_per_frame_gives_the_same_words_and_leds(library):
    frames, th = latency_frames("culture", 1200, seed=3)
    sizes = [1, 37, 400, 262, 500]                         # uneven blocks of whole frames
    runs = {}
    for backend in ("model", "verilator"):
        for tlast in ("frame", "block"):
            bus = (ModelBus(N, K, F, tlast=tlast) if backend == "model"
                   else VerilatorBus(N, K, F, tlast=tlast, library=library))
            tlasts = _tlast_spy(bus)
            drv = Driver(bus)
            latency_program(drv, th)
            drv.clear_counters()
            words, leds, at = [], [], 0
            for n in sizes:
                drv.send_samples(frames[at:at + n])
                at += n
                words.append(drv.receive_words())
                leds.append(bus.leds())
            counters = drv.counters
            assert tlasts() == (len(frames) if tlast == "frame" else len(sizes)), (backend, tlast)
            assert counters["frames"] == len(frames) and counters["framing_errors"] == 0, (backend, tlast)
            runs[backend, tlast] = (np.concatenate(words), np.concatenate(leds))
    want_words, want_leds = runs["model", "frame"]
    types = np.asarray(unpack(want_words).type)
    assert (types == AERType.SPIKE.value).sum() > 50 and (types == AERType.STIM.value).sum() > 50
    assert want_leds.shape == (len(frames), K) and want_leds.any()
    for key, (words, leds) in runs.items():
        assert np.array_equal(words, want_words), key
        assert np.array_equal(leds, want_leds), key


# ---------------------------------------------------------------------------------------
# the AER buffer: a full buffer holds the core's ready low, nothing is dropped

def test_full_aer_buffer_stalls_the_core_and_loses_nothing(library):
    frames, th = latency_frames("bursts", 400, seed=4)
    bus = VerilatorBus(N, K, F, library=library, aer_capacity=40)
    drv = Driver(bus)
    latency_program(drv, th)
    drv.clear_counters()
    with pytest.warns(AERBackpressure, match="40 words"):
        drv.send_samples(frames)
    stalls = bus.aer_stalls
    assert stalls > 0
    first = drv.receive_words()
    assert len(first) == 40                     # exactly what the buffer held
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AERBackpressure)
        words = [first]
        for _ in range(200):                     # the core drains while we keep receiving
            bus.idle(200)
            words.append(drv.receive_words())
            if not len(words[-1]) and bus.core.aer_pending == 0:
                break
    words = np.concatenate(words)
    counters = drv.counters
    # every word the core emitted arrived, in order, exactly once
    assert len(words) == counters["aer_words"] > 40
    f = unpack(words)
    types = np.asarray(f.type)
    # the stalls reached back into the AEREncoder: it lost spikes and said so in OVERFLOW words
    assert counters["overflows"] > 0
    reported = int(np.asarray(f.address)[types == AERType.OVERFLOW.value].sum())
    assert 0 < reported <= counters["overflows"]
    # with a buffer that keeps up, the same block stalls nothing
    roomy = VerilatorBus(N, K, F, library=library)
    d2 = Driver(roomy)
    latency_program(d2, th)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AERBackpressure)
        d2.send_samples(frames)
    assert roomy.aer_stalls == 0 and d2.counters["overflows"] == 0


# ---------------------------------------------------------------------------------------
# the build cache

def test_cached_build_is_reused(library):
    again = build_core_library(N, K, F)
    assert again.cached and again.path == library.path and again.build_s == 0.0
    assert VerilatorBus(N, K, F).core.key == library.key


def test_key_follows_hdl(tmp_path, monkeypatch):
    """A change in hdl/ (or the shim) is a new key, so the next bus builds anew."""
    before = library_key(N, K, F)
    shutil.copytree(verilated_core.HDL, tmp_path / "hdl")
    monkeypatch.setattr(verilated_core, "HDL", tmp_path / "hdl")
    assert library_key(N, K, F) == before
    core_v = tmp_path / "hdl" / "core.v"
    core_v.write_text(core_v.read_text() + "\n// changed\n")
    assert library_key(N, K, F) != before


def test_profile_guided_build_is_in_the_key(monkeypatch, library):
    """The default build is gcc-PGO'd (an instrumented build, a training run, the kept build);
    BIOLOOP_VERILATOR_PGO=0 asks for another library, never the PGO'd one from the cache."""
    import json
    recipe = json.loads((library.path.parent / "build.json").read_text())
    assert recipe["pgo"] == verilated_core._pgo()
    if recipe["pgo"]:
        assert recipe["train_s"] > 0
    monkeypatch.setenv("BIOLOOP_VERILATOR_PGO", "0")
    assert not verilated_core._pgo()
    assert library_key(N, K, F) != library.key or not recipe["pgo"]


def test_missing_compiler_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-bioloop")
    with pytest.raises(ToolchainMissing, match="no C.. compiler") as err:
        build_core_library(N, K, F, directory=tmp_path)
    assert "\n" not in str(err.value)
    from click.testing import CliRunner

    from bioloop.host.cli import main
    monkeypatch.setenv("BIOLOOP_BUILD_DIR", str(tmp_path))
    res = CliRunner().invoke(main, ["demo", "--backend", "verilator", "--duration", "0.1", "--no-compare",
                                    "--out", str(tmp_path / "run")])
    assert res.exit_code == 1 and "no C++ compiler" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.output


# ---------------------------------------------------------------------------------------
# bad input: typed errors

def test_bad_input(library):
    bus = VerilatorBus(N, K, F, library=library)
    with pytest.raises(TypeError, match="uint32"):
        bus.send_samples(np.zeros((2, N // 2), dtype=np.int32))
    with pytest.raises(ValueError, match=r"shape \(frames, 32\)"):
        bus.send_samples(np.zeros((2, N), dtype=np.uint32))
    with pytest.raises(ValueError, match="shape"):
        bus.send_samples(np.zeros(N // 2, dtype=np.uint32))
    with pytest.raises(ValueError, match="inside the 32768-byte register map"):
        bus.read32(1 << 15)
    with pytest.raises(ValueError, match="not a 32-bit word inside"):
        bus.write32(0x42, 1)
    with pytest.raises(TypeError, match="CSR address"):
        bus.read32("id")
    with pytest.raises(ValueError, match="not a 32-bit word"):
        bus.write32(0x48, 1 << 32)
    with pytest.raises(TypeError, match="CSR value"):
        bus.write32(0x48, 1.0)
    hole = next(a for a in range(0, 1 << bus.regmap.addr_width, 4) if bus.regmap.decode(a) is None)
    with pytest.raises(BusError, match="SLVERR"):
        bus.read32(hole)
    with pytest.raises(BusError, match="SLVERR"):
        bus.write32(hole, 1)
    with pytest.raises(ValueError, match="edges"):
        bus.idle(-1)
    with pytest.raises(ValueError, match="edges"):
        bus.core.idle(-1)
    with pytest.raises(TypeError, match="C-contiguous uint32"):
        bus.core.push(np.zeros((2, N), dtype=np.uint32)[:, ::2], 100)     # a strided view
    with pytest.raises(ValueError, match="shape"):
        bus.core.push(np.zeros((2, N), dtype=np.uint32), 100)
    with pytest.raises(ValueError, match="tlast must be 'block'"):
        VerilatorBus(N, K, F, library=library, tlast="sometimes")
    with pytest.raises(TypeError, match="tlast"):
        VerilatorBus(N, K, F, library=library, tlast=True)
    with pytest.raises(ValueError, match="tlast must be 'block'"):
        ModelBus(N, K, F, tlast="never")
    with pytest.raises(ValueError, match="tlast must be 'block'"):
        bus.core.push(np.zeros((2, N // 2), dtype=np.uint32), 100, tlast="row")
    with pytest.raises(TypeError, match="aer_capacity"):
        VerilatorBus(N, K, F, library=library, aer_capacity=1.5)
    with pytest.raises(ValueError, match="aer_capacity"):
        VerilatorBus(N, K, F, library=library, aer_capacity=0)
    # a library built for other parameters
    with pytest.raises(LibraryMismatch, match="built for N=64, K=64, F=16, not N=32, K=64, F=16"):
        VerilatorBus(32, K, F, library=library)
    with pytest.raises(LibraryMismatch):
        VerilatorBus(N, K, 8, library=library.path)
    assert issubclass(LibraryMismatch, ValueError)
    # the bus still works after all of that
    d = Driver(bus)
    assert d.read_register("n_lanes") == K
