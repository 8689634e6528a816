"""The real pynq backend code path against the pynq stand-in, whose logic is the Core model.

Truths: the ``model`` backend running the same closed loop on the same
recording (its AER words are the Core model's, itself equal to the RTL bit
for bit in tests/gateware/test_core.py), and PG021's register semantics
(MM2S/S2MM status bits, S2MM_LENGTH).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bioloop.boards import manifest, pynq_standin
from bioloop.host.layouts import FCLK_HZ
from bioloop.host.regmap import ID_VALUE, VERSION
from bioloop.boards.light import density, light_from_stims
from bioloop.boards.pynq_backend import PynqBus
from bioloop.boards.pynq_z2 import S2MM_LENGTH
from bioloop.host import aer
from bioloop.host.aer import AERType
from bioloop.host.bus import BusError, BusTimeout
from bioloop.host.driver import Driver

CORE = {"N": 8, "K": 8, "F": 2}


def make_overlay(path: Path, core=CORE, **standin) -> Path:
    """An overlay folder as `bioloop build` leaves it; the stand-in models the core it names."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "bioloop.bit").write_bytes(b"stand-in bitstream")
    (path / "bioloop.hwh").write_text("<stand-in/>")
    m = {"format": manifest.MANIFEST_FORMAT, "board": "pynq-z2", "N": core["N"], "K": core["K"],
         "F": core["F"], "id": ID_VALUE, "regmap_version": VERSION, "fclk_hz": FCLK_HZ,
         "core_sha256": "0" * 64, "tools": {}, "files": {
             name: manifest.sha256_file(path / name) for name in ("bioloop.bit", "bioloop.hwh")}}
    if standin:
        m["standin"] = standin
    manifest.write(path / "bioloop.json", m)
    return path


@pytest.fixture
def standin():
    with pynq_standin.installed() as mod:
        yield mod


def spiky_recording(frames=4000, channels=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 20, (frames, channels))
    for c in range(channels):
        for t in rng.integers(10, frames - 10, 40):
            x[t:t + 3, c] -= 400
    return np.round(x).astype(np.int16)


def test_dma_registers_and_completion(standin, tmp_path):
    ov = standin.Overlay(make_overlay(tmp_path / "ov") / "bioloop.bit")
    dma = ov.axi_dma_0
    assert dma.sendchannel.running and not dma.sendchannel.idle   # Idle only after a transfer
    drv = Driver(PynqBus(tmp_path / "ov" / "bioloop.bit", overlay=ov, **CORE))
    assert (drv.N, drv.K, drv.F) == (8, 8, 2)
    # Disabled core: the MM2S transfer stays busy, status polls do not complete it.
    buf = standin.allocate(shape=(1, 4), dtype=np.uint32)      # one frame
    dma.sendchannel.transfer(buf)
    assert not dma.sendchannel.idle
    with pytest.raises(RuntimeError, match="not idle"):
        dma.sendchannel.transfer(buf)
    drv.enable()
    assert dma.sendchannel.idle                      # the core took the frame's beats now
    # S2MM: a receive completes at TLAST; S2MM_LENGTH says how many bytes came.
    drv.aer_block_words = 1
    drv.thresholds[:] = 100
    drv.polarity[:] = "negative"
    out = standin.allocate(shape=(16,), dtype=np.uint64)
    dma.recvchannel.transfer(out)
    assert not dma.recvchannel.idle
    frames = np.zeros((3, 8), np.int16)
    frames[1, 3] = -500
    drv.send_samples(frames)
    assert dma.recvchannel.idle and not dma.recvchannel.error
    assert dma.mmio.read(S2MM_LENGTH) == 8
    f = aer.unpack(out[:1])
    assert (int(f.type[0]), int(f.address[0]), int(f.timestamp[0])) == (AERType.SPIKE.value, 3, 2)


def test_s2mm_overrun_is_an_error(standin, tmp_path):
    bus = PynqBus(make_overlay(tmp_path / "ov") / "bioloop.bit", max_words=2, **CORE)
    drv = Driver(bus)
    drv.aer_block_words = 4                          # blocks longer than the 2-word buffer
    drv.thresholds[:] = 100
    drv.polarity[:] = "negative"
    drv.enable()
    frames = np.zeros((8, 8), np.int16)
    frames[2::2, :] = -500
    drv.send_samples(frames)
    with pytest.raises(BusError, match="S2MM channel reports an error"):
        drv.receive_words(timeout_s=0.05)


def test_send_timeout_when_the_core_stalls(standin, tmp_path):
    bus = PynqBus(make_overlay(tmp_path / "ov") / "bioloop.bit", send_timeout_s=0.05,
                  frames_per_transfer=1, **CORE)
    drv = Driver(bus)                                 # not enabled: the core takes no beat
    with pytest.raises(BusTimeout, match="1 of 2 frames were handed"):
        drv.send_samples(np.zeros((2, 8), np.int16))
    with pytest.raises(BusTimeout):                   # the receive has nothing either
        drv.receive_words(timeout_s=0.01)


def test_transfers_keep_the_dma_s_alignment(standin, tmp_path):
    ov = make_overlay(tmp_path / "ov", core={"N": 2, "K": 1, "F": 1})
    bus = PynqBus(ov / "bioloop.bit", N=2, K=1, F=1, frames_per_transfer=1)
    # one frame of N = 2 is 4 bytes: the second transfer would start off the 64-bit grid
    with pytest.raises(ValueError, match="8-byte boundary"):
        bus.send_samples(np.zeros((3, 1), np.uint32))
    buf = standin.allocate(shape=(4,), dtype=np.uint32)
    with pytest.raises(RuntimeError, match="unaligned"):       # what pynq itself says
        bus.dma.sendchannel.transfer(buf, start=4, nbytes=4)
    Driver(bus).enable()
    bus.frames_per_transfer = 2
    bus.send_samples(np.zeros((4, 1), np.uint32))             # 8-byte transfers are fine


def _model_loop(codes, fs, settings, core=CORE):
    from bioloop.boards.run import RecordingReplay
    from bioloop.host.backends import ModelBus
    from bioloop.host.loop import run_loop
    bus = ModelBus(core["N"], core["K"], core["F"])
    drv = Driver(bus)
    return run_loop(drv, RecordingReplay(codes, fs, drv.K), settings)


def test_closed_loop_gives_the_model_backends_words(standin, tmp_path):
    from bioloop.boards.run import RecordingReplay, open_board, run_board
    from bioloop.host.loop import LoopSettings
    codes, fs = spiky_recording(), 20_000.0
    settings = LoopSettings(duration_s=0.1, block_ms=5.0, calibration_ms=50.0, target_rate_hz=20.0)
    want = _model_loop(codes, fs, settings)
    os.environ["BIOLOOP_PYNQ"] = "standin"
    try:
        h = open_board(make_overlay(tmp_path / "ov"))
    finally:
        del os.environ["BIOLOOP_PYNQ"]
    got, light = run_board(h, RecordingReplay(codes, fs, h.driver.K), settings, realtime=False,
                           aer_block_words=16)
    assert want.words.size > 100
    # The DMA delivers whole blocks: at most the last, unfinished one stays in the core.
    assert want.words.size - 16 < got.words.size <= want.words.size
    np.testing.assert_array_equal(got.words, want.words[:got.words.size])
    np.testing.assert_array_equal(light.words(), got.words)


@pytest.mark.parametrize("frames_per_transfer", [1, 37, 100])
def test_any_transfer_size_gives_the_model_backends_words(standin, tmp_path, frames_per_transfer):
    """The core counts frames (TLAST optional): a DMA transfer of one frame, of a whole 5 ms block
    (100 frames, `bioloop board run`'s default) or of a size that splits frames across blocks
    unevenly gives the model backend's words."""
    from bioloop.boards.run import RecordingReplay, open_board, run_board
    from bioloop.host.loop import LoopSettings
    codes, fs = spiky_recording(frames=3000), 20_000.0
    settings = LoopSettings(duration_s=0.05, block_ms=5.0, calibration_ms=50.0, target_rate_hz=20.0)
    want = _model_loop(codes, fs, settings)
    h = open_board(make_overlay(tmp_path / "ov"))
    h.bus.frames_per_transfer = frames_per_transfer
    got, _ = run_board(h, RecordingReplay(codes, fs, h.driver.K), settings, realtime=False,
                       aer_block_words=16)
    blocks = 10
    assert h.bus.overlay.logic.transfers["mm2s"] == blocks * -(-100 // frames_per_transfer)
    assert want.words.size > 20
    assert want.words.size - 16 < got.words.size <= want.words.size
    np.testing.assert_array_equal(got.words, want.words[:got.words.size])


@pytest.mark.skipif(not __import__("bioloop.host.jit", fromlist=["ENABLED"]).ENABLED,
                    reason="numba (the [culture] extra) is not installed: the culture's plain-Python "
                           "path takes minutes here")
def test_culture_in_the_loop_feels_the_rebuilt_light(standin, tmp_path):
    """Hardware in the loop: the culture on the CPU, its light rebuilt from the STIM words received."""
    from bioloop.boards.run import open_board, run_board
    from bioloop.host.culture import Culture, CultureConfig
    from bioloop.host.loop import LoopSettings
    culture = Culture(CultureConfig(seed=3).with_network(n_neurons=60))
    core = {"N": 64, "K": 64, "F": 4}
    h = open_board(make_overlay(tmp_path / "ov", core=core))
    felt = []
    step = culture.step

    def spy(n, led=None):
        felt.append(None if led is None else np.asarray(led).copy())
        return step(n, led)
    culture.step = spy
    settings = LoopSettings(duration_s=0.3, calibration_ms=50.0, weight_q88=256, theta0_q88=256,
                            lane_code=0xFFFF)
    result, light = run_board(h, culture, settings, realtime=False, aer_block_words=1)
    st = aer.unpack(result.words).type == AERType.STIM.value
    assert st.sum() > 0, "the settings must make the core fire"
    lit = [x for x in felt if x is not None and x.any()]
    assert lit, "the culture never felt the light of the STIM words"
    # the light it felt is the rebuild: dark, or the density of code 0xFFFF, (0xFFFF - 1) / 65535
    full = np.float32(density(0xFFFF))
    assert all(set(np.unique(x).tolist()) <= {0.0, float(full)} for x in lit)


def test_light_from_stims_against_the_models_leds():
    """The rebuilt light follows the model's per-frame LED vectors (docs/board.md gives the figures)."""
    from bioloop.host.backends import ModelBus
    bus = ModelBus(8, 8, 2)
    drv = Driver(bus)
    drv.thresholds[:] = 100
    drv.polarity[:] = "negative"
    for c in range(8):
        drv.routes.set(c, [("stim", c, 256)])
    drv.theta[:] = 256
    codes = [0xFFFF, 0x8000, 0x2000, 0xFFFF, 0, 0x4000, 0xFFFF, 0x1000]
    drv.lane_codes[:] = codes
    drv.pulse_lengths[:] = [5, 10, 20, 3, 5, 8, 40, 12]
    drv.enable()
    rng = np.random.default_rng(1)
    frames = np.zeros((3000, 8), np.int16)
    frames[rng.random((3000, 8)) < 0.01] = -500
    drv.send_samples(frames)
    words = drv.receive_words(timeout_s=0.1)
    leds = bus.leds()
    light, _ = light_from_stims(words, 0, 3000, [5, 10, 20, 3, 5, 8, 40, 12], codes)
    n_stims = np.bincount(aer.unpack(words).address[aer.unpack(words).type == AERType.STIM.value]
                          .astype(np.int64), minlength=8)
    # Full-density lanes: the rebuilt pulse covers the frames its word names; the model's
    # LED comes on a few cycles after the fire, in the fire's frame or the next (the model
    # backend gives a frame only N/2 cycles), so the two differ by at most one frame at each
    # end of a pulse.
    for k in (0, 3, 6):
        assert ((light[:, k] > 0) & (leds[:, k] == 0)).sum() <= n_stims[k]
        assert ((leds[:, k] > 0) & (light[:, k] == 0)).sum() <= n_stims[k]
    # Every lane: the rebuilt light carries the model's light energy, up to the LFSR's
    # sampling noise (each model frame averages N/2 = 4 stochastic bits: 4 σ of a binomial)
    # and a partial frame at each end of every pulse.
    p = density(codes)
    for k in range(8):
        cycles = 4 * (light[:, k] > 0).sum()
        sigma = np.sqrt(cycles * p[k] * (1 - p[k])) / 4
        assert abs(light[:, k].sum() - leds[:, k].sum()) <= 4 * sigma + n_stims[k] * p[k] + 1e-6, k


def _cli(*args, env_extra=None, timeout=300):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "bioloop.host.cli", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def test_bioloop_board_info_and_errors(tmp_path):
    ov = make_overlay(tmp_path / "ov")
    r = _cli("board", "info", "--overlay", str(ov), env_extra={"BIOLOOP_PYNQ": "standin"})
    assert r.returncode == 0, r.stderr
    assert "8 channels, 8 lanes, fanout 2" in r.stdout and "100 MHz" in r.stdout
    r = _cli("board", "info", "--overlay", str(tmp_path / "nowhere"), env_extra={"BIOLOOP_PYNQ": "standin"})
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "does not exist" in r.stderr
    (ov / "bioloop.hwh").write_text("<another build/>")
    r = _cli("board", "info", "--overlay", str(ov), env_extra={"BIOLOOP_PYNQ": "standin"})
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "sha256 differs" in r.stderr
    bad = make_overlay(tmp_path / "old", version=0x0002_0000)
    r = _cli("board", "info", "--overlay", str(bad), env_extra={"BIOLOOP_PYNQ": "standin"})
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "version 2.0" in r.stderr


@pytest.mark.skipif(__import__("importlib").util.find_spec("pynq") is not None,
                    reason="pynq is installed here (the board profile tests the import error below)")
def test_bioloop_board_without_pynq_names_the_extra(tmp_path):
    r = _cli("board", "info", "--overlay", str(make_overlay(tmp_path / "ov")))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "pip install 'bioloop[board]'" in r.stderr


@pytest.mark.skipif(__import__("importlib").util.find_spec("pynq") is None,
                    reason="pynq (the [board] extra) is not installed; the board profile runs this")
def test_bioloop_board_with_pynq_but_no_board_says_so_in_one_line(tmp_path):
    r = _cli("board", "info", "--overlay", str(make_overlay(tmp_path / "ov")))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("Error: loading the overlay") and "No Devices Found" in r.stderr


def test_bioloop_board_run_replays_a_recording(tmp_path):
    from bioloop.host.loop import LoopSettings
    codes = spiky_recording(frames=8000)
    np.save(tmp_path / "rec.npy", codes)
    ov = make_overlay(tmp_path / "ov")
    out = tmp_path / "run"
    r = _cli("board", "run", "--overlay", str(ov), "--source", str(tmp_path / "rec.npy"), "--duration", "0.1",
             "--out", str(out), "--realtime", "off", "--target-rate", "20", "--aer-block", "16",
             env_extra={"BIOLOOP_PYNQ": "standin"})
    assert r.returncode == 0, r.stderr
    words = np.load(out / "aer.npy")
    want = _model_loop(codes, 20_000.0, LoopSettings(duration_s=0.1, target_rate_hz=20.0))
    assert want.words.size - 16 < words.size <= want.words.size and words.size > 50
    np.testing.assert_array_equal(words, want.words[:words.size])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == "pynq-standin" and summary["homeostasis_on"]["aer_words"] == words.size
    assert summary["frames_per_transfer"] == 1000          # the default: one 50 ms block per transfer
    assert json.loads((out / "receipt.json").read_text())["frames"] == 8000


def test_bioloop_board_run_dma_timeout_saves_what_came(tmp_path):
    codes = spiky_recording(frames=8000)
    np.save(tmp_path / "rec.npy", codes)
    ov = make_overlay(tmp_path / "ov", stall_after_frames=3000)
    out = tmp_path / "run"
    r = _cli("board", "run", "--overlay", str(ov), "--source", str(tmp_path / "rec.npy"), "--duration", "0.3",
             "--out", str(out), "--realtime", "off", "--aer-block", "4", env_extra={"BIOLOOP_PYNQ": "standin"})
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "DMA timeout" in r.stderr
    saved = np.load(out / "aer.npy")
    assert saved.size > 0 and f"{saved.size} AER words received" in r.stderr
