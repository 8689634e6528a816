"""Issue 18, Python API consistency: one rule for types and values, bounded allocations, cross-checked configs."""

from __future__ import annotations

import numpy as np
import pytest

from bioloop.host.bioware.detection import SpikeDetector
from bioloop.host.bioware.mea import MEAConfig


# -- integer samples are int16 ADC codes, for the host detector as for the driver ----------------------

@pytest.fixture
def detector():
    det = SpikeDetector(MEAConfig(num_channels=4, sample_rate_hz=20000.0), noise_policy="calibrated")
    det.calibrate(np.random.default_rng(0).normal(0, 20, (2000, 4)).astype(np.int16))
    return det


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint16])
def test_detector_refuses_integers_outside_int16_like_the_gateware_path(detector, dtype):
    x = np.zeros((100, 4), dtype)
    x[37, 2] = 40000
    with pytest.raises(ValueError, match="40000 at channel 2, sample 37, outside the int16 ADC code range"):
        detector.detect(x)
    assert detector.frames_seen == 0                        # refused before any state changed


def test_detector_takes_int16_codes_in_any_integer_dtype(detector):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 20, (3000, 4)).astype(np.int16)
    x[1000, 1] = -3000
    ref = SpikeDetector(MEAConfig(num_channels=4, sample_rate_hz=20000.0), noise_policy="calibrated")
    ref.calibrate(np.random.default_rng(0).normal(0, 20, (2000, 4)).astype(np.int16))
    a, b = detector.detect_arrays(x.astype(np.int64)), ref.detect_arrays(x)
    assert np.array_equal(a.channel, b.channel) and np.array_equal(a.sample_index, b.sample_index) and a.channel.size


def test_process_frame_applies_the_same_rule():
    from bioloop.host.bioware import (AERToSCConverter, BioHybridSession, MEAToAERTranscoder, SCToOptoEncoder)
    cfg = MEAConfig(num_channels=4, sample_rate_hz=20000.0)
    s = BioHybridSession(mea_config=cfg, detector=SpikeDetector(config=cfg), transcoder=MEAToAERTranscoder(),
                         sc_converter=AERToSCConverter(), opto_encoder=SCToOptoEncoder())
    x = np.zeros((50, 4), np.int32)
    x[3, 0] = -40000
    with pytest.raises(ValueError, match="-40000 at channel 0, sample 3"):
        s.process_frame(x)


# -- bounded allocations --------------------------------------------------------------------------------

def test_spike_buffer_capacity_is_bounded_with_a_clear_error():
    from bioloop.host.observation import SpikeBuffer
    from bioloop.host.observation.spike_buffer import MAX_CAPACITY
    with pytest.raises(ValueError, match=r"capacity 1099511627776 would allocate 1.23e\+04 GiB \(12 bytes per event\)"):
        SpikeBuffer(2**40)
    with pytest.raises(ValueError, match=f"1..{MAX_CAPACITY}"):
        SpikeBuffer(MAX_CAPACITY + 1)
    with pytest.raises(TypeError):
        SpikeBuffer(1e3)
    assert SpikeBuffer(1000).capacity == 1000


# -- culture configs are cross-checked ------------------------------------------------------------------

def test_culture_refuses_a_field_cutoff_inside_the_minimum_distance():
    from bioloop.host.culture import CultureConfig
    from bioloop.host.culture.config import ConfigError
    with pytest.raises(ConfigError, match="field.cutoff_um = 10 must exceed field.min_distance_um = 20"):
        CultureConfig().with_field(cutoff_um=10.0)
    with pytest.raises(ConfigError, match="must exceed layout.soma_height_um = 50"):
        CultureConfig().with_layout(soma_height_um=50.0).with_field(cutoff_um=40.0)
    CultureConfig().with_field(cutoff_um=25.0)             # just beyond both is fine


# -- the driver: wrong type TypeError, right type wrong value ValueError, naming register and range ------

@pytest.fixture
def drv():
    from bioloop.host.backends import ModelBus
    from bioloop.host.driver import Driver
    return Driver(ModelBus(n_channels=8, n_lanes=4, fanout=2))


@pytest.mark.parametrize("value, error, words", [
    (1.5, ValueError, r"thresholds\[0\] = 1.5 is not a whole number; it takes integers 0..32767 \(ADC codes\)"),
    (float("nan"), ValueError, r"thresholds\[0\] = nan is not a whole number; it takes integers 0..32767"),
    (-1, ValueError, r"thresholds\[0\] = -1 is out of range 0..32767"),
    ("400", TypeError, r"thresholds takes integers 0..32767 \(ADC codes\), not <U3 values"),
    (True, TypeError, r"thresholds takes integers 0..32767 \(ADC codes\), not booleans"),
])
def test_table_values_follow_one_rule(drv, value, error, words):
    with pytest.raises(error, match=words):
        drv.thresholds[0] = value
    drv.thresholds[0] = 400.0                                 # a whole float is an integer value
    assert drv.thresholds[0] == 400


@pytest.mark.parametrize("value, error, words", [
    (float("nan"), ValueError, "refractory = nan is not a whole number; it takes integers 0.."),
    (1.5, ValueError, "refractory = 1.5 is not a whole number"),
    (float("inf"), ValueError, "refractory = inf is not a whole number"),
    ("3", TypeError, "refractory takes an integer 0..[0-9]+.*, not str '3'"),
    (None, TypeError, "refractory takes an integer 0..[0-9]+.*, not NoneType None"),
    (-1, ValueError, "refractory = -1 is out of range 0.."),
])
def test_scalar_values_follow_the_same_rule(drv, value, error, words):
    before = drv.refractory
    with pytest.raises(error, match=words):
        drv.refractory = value
    assert drv.refractory == before


def test_theta_min_above_theta_max_is_refused(drv):
    drv.set_theta_limits(64, 512)
    with pytest.raises(ValueError, match="theta_min = 600 above theta_max = 512"):
        drv.theta_min = 600
    with pytest.raises(ValueError, match="theta_min = 64 above theta_max = 10"):
        drv.theta_max = 10
    with pytest.raises(ValueError, match="theta_min = 900 is above theta_max = 800"):
        drv.set_theta_limits(900, 800)
    assert (drv.theta_min, drv.theta_max) == (64, 512)
    drv.set_theta_limits(1000, 2000)                           # both above the old max: written max first
    assert (drv.theta_min, drv.theta_max) == (1000, 2000)
    drv.set_theta_limits(10, 20)                               # both below the old min: written min first
    assert (drv.theta_min, drv.theta_max) == (10, 20)


def test_routes_refuse_a_string_and_name_the_lane_range(drv):
    writes = []
    real = drv.bus.write32
    drv.bus.write32 = lambda a, v: (writes.append(a), real(a, v))[1]
    with pytest.raises(TypeError, match=r"routes\[0\] takes a sequence of \(port, target, weight\) entries, "
                                        r"not str 'abc'"):
        drv.routes.set(0, "abc")
    with pytest.raises(TypeError, match=r"routes\[0\]\[0\] must be \(port, target, weight\), not 'abc'"):
        drv.routes.set(0, ["abc"])
    with pytest.raises(ValueError, match=r"routes\[0\]\[0\] target = -1 is out of range 0..3 \(stim lane\)"):
        drv.routes.set(0, [("stim", -1, 256)])
    with pytest.raises(ValueError, match=r"routes\[0\]\[0\] target = 4 is out of range 0..3 \(stim lane\)"):
        drv.routes.set(0, [("stim", 4, 256)])
    with pytest.raises(ValueError, match=r"routes\[0\]\[0\] weight = 1.5 is not a whole number"):
        drv.routes.set(0, [("stim", 1, 1.5)])
    with pytest.raises(TypeError, match=r"routes\[0\]\[0\] target takes an integer 0..3 \(stim lane\), not str"):
        drv.routes.set(0, [("stim", "1", 256)])
    assert writes == []                                        # everything checked before the first write
    drv.routes.set(0, [("stim", 3, 256)])
    assert drv.routes[0][0][1:] == (3, 256)


def test_loop_settings_refuse_crossed_theta_limits_and_registers_that_do_not_fit():
    from bioloop.host.loop import LoopSettings
    with pytest.raises(ValueError, match="theta_min_q88 = 9000 is above theta_max_q88 = 8192"):
        LoopSettings(theta_min_q88=9000)
    with pytest.raises(ValueError, match="does not fit UQ16.8"):
        LoopSettings(target_rate_hz=1e12).check_registers(20000.0)
    LoopSettings().check_registers(20000.0)
