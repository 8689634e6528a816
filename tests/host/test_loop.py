"""The closed loop on the model backend: causality, determinism, homeostasis, the demo CLI."""

import json

import numpy as np
import pytest

from bioloop.host.layouts import AERType
from bioloop.host import aer
from bioloop.host.backends import ModelBus
from bioloop.host.culture import Culture, CultureConfig
from bioloop.host.driver import Driver
from bioloop.host.loop import LoopSettings, run_loop

# one worker runs the module-scoped loop recording once (tests/conftest.py)
pytestmark = pytest.mark.xdist_group("loop_recorded")

SHORT = LoopSettings(duration_s=0.25, calibration_ms=100.0, block_ms=5.0, theta0_q88=256)


class RecordingCulture(Culture):
    """The default culture, recording the LED drive of every step."""

    def __init__(self, config):
        super().__init__(config)
        self.led_in = []

    def step(self, n_samples, led=None):
        self.led_in.append(None if led is None else np.array(led, copy=True))
        return super().step(n_samples, led)


class RecordingBus(ModelBus):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.led_out = []

    def leds(self):
        out = super().leds()
        self.led_out.append(out.copy())
        return out


def _run(settings, seed=3, culture_cls=Culture, bus_cls=ModelBus):
    bus = bus_cls(64, 64, 16)
    culture = culture_cls(CultureConfig(seed=seed))
    return run_loop(Driver(bus), culture, settings), culture, bus


@pytest.fixture(scope="module")
def recorded():
    return _run(SHORT, culture_cls=RecordingCulture, bus_cls=RecordingBus)


def test_light_acts_from_the_next_block_on(recorded):
    """Causality: block b+1 is driven by exactly the LED duty the core produced during block b."""
    result, culture, bus = recorded
    # step 0 is the dark calibration, step 1 the first loop block (dark: nothing produced yet)
    assert culture.led_in[0] is None and culture.led_in[1] is None
    loop_in = culture.led_in[2:]
    assert len(loop_in) == len(bus.led_out) - 1
    for b, (fed, produced) in enumerate(zip(loop_in, bus.led_out, strict=False)):
        assert np.array_equal(fed, produced[:, :fed.shape[1]]), f"block {b + 1}"
    assert any(o.any() for o in bus.led_out), "the loop never lit an LED"


def test_block_records_match_the_aer_log(recorded):
    result = recorded[0]
    f = aer.unpack(result.words)
    spikes = int((f.type == AERType.SPIKE.value).sum())
    stims = int((f.type == AERType.STIM.value).sum())
    B = result.block_frames
    assert round(result.rate_hz.sum() * B / result.sample_rate_hz) == spikes
    assert result.stims.sum() == stims == result.counters["stim_fires"]
    assert result.counters["detections"] == spikes + int(f.address[f.type == AERType.OVERFLOW.value].sum())
    assert result.buffer_report["ingested_events"] == spikes
    # timestamps are frames since the core's reset: monotonic per channel
    for a in np.unique(f.address[f.type == 0])[:10]:
        assert (np.diff(f.timestamp[(f.type == 0) & (f.address == a)].astype(np.int64)) > 0).all()


def test_deterministic():
    a = _run(SHORT, seed=5)[0]
    b = _run(SHORT, seed=5)[0]
    assert a.words.tobytes() == b.words.tobytes()
    assert np.array_equal(a.theta, b.theta) and np.array_equal(a.led_duty, b.led_duty)


def test_homeostasis_moves_theta_only_when_on(recorded):
    on = recorded[0]
    off = _run(LoopSettings(**{**SHORT.__dict__, "homeostasis": False}))[0]
    assert (off.theta[:, off.controlled] == SHORT.theta0_q88).all()
    assert (on.theta[:, on.controlled] != SHORT.theta0_q88).any()
    assert on.theta.min() >= SHORT.theta_min_q88 and on.theta.max() <= SHORT.theta_max_q88


@pytest.mark.parametrize("duration_s", [2.0, pytest.param(6.0, marks=pytest.mark.long)])
def test_controller_holds_the_target_with_light_authority(duration_s):
    """With the light on for the whole pulse (density 0xFFFF) the gateware homeostasis holds the
    controlled channels' rate within 15 % of the target over the last third; with it off (θ fixed)
    the culture stays far from it."""
    s = LoopSettings(duration_s=duration_s, lane_code=0xFFFF)
    on = _run(s, seed=1)[0]
    off = _run(LoopSettings(**{**s.__dict__, "homeostasis": False}), seed=1)[0]
    err_on = abs(on.controlled_rate() - s.target_rate_hz)
    err_off = abs(off.controlled_rate() - s.target_rate_hz)
    assert err_on < 0.15 * s.target_rate_hz and err_on < 0.25 * err_off, (on.controlled_rate(), off.controlled_rate())


@pytest.mark.long
def test_controller_raises_the_rate_at_the_default_density():
    """At the default density (light 1/8 of the pulse) the controller does not reach the target
    (docs/loop.md: about 40 Hz against 60), but it brings the rate nearer the target than θ held
    fixed."""
    s = LoopSettings(duration_s=6.0)
    on = _run(s, seed=1)[0]
    off = _run(LoopSettings(**{**s.__dict__, "homeostasis": False}), seed=1)[0]
    assert on.controlled_rate(2 / 3) < s.target_rate_hz
    assert abs(on.controlled_rate(2 / 3) - s.target_rate_hz) < abs(off.controlled_rate(2 / 3) - s.target_rate_hz)


@pytest.mark.parametrize("kw,match", [
    ({"duration_s": 0}, "duration_s"), ({"block_ms": float("nan")}, "block_ms"),
    ({"lane_code": 70000}, "lane_code"), ({"max_duty": 0}, "max_duty"), ({"weight_q88": 1.5}, "weight_q88")])
def test_settings_rejected_by_name(kw, match):
    with pytest.raises(ValueError, match=match):
        LoopSettings(**kw)


def test_bus_without_leds_is_refused():
    class NoLeds(ModelBus):
        leds = None
    bus = NoLeds(64, 64, 16)
    with pytest.raises(ValueError, match="LED"):
        run_loop(Driver(bus), Culture(CultureConfig(seed=1)), SHORT)


def test_demo_cli_writes_a_run_directory(tmp_path):
    from click.testing import CliRunner

    from bioloop.host.cli import main
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["demo", "--duration", "0.1", "--no-compare", "--out", str(out)])
    assert res.exit_code == 0, res.output
    for name in ("receipt.json", "aer.npy", "summary.json", "raster.png", "control.png", "latency.png"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    words = np.load(out / "aer.npy")
    assert words.dtype == np.uint64 and summary["homeostasis_on"]["aer_words"] == words.size
    assert "rate, last third" in res.output
    again = CliRunner().invoke(main, ["demo", "--duration", "0.1", "--no-compare", "--out", str(out)])
    assert again.exit_code != 0 and "exists" in again.output
