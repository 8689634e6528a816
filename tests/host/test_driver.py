"""Driver over a bus backed by CSRBankModel: accessors, range checks, streams, timeouts.

The truth for every register access is :class:`bioloop.host.models.csr.CSRBankModel`
(the model the CSR bank's cocotb bench scores the RTL against); the truth for
sample packing is DESIGN.md §3 written out with Python integers.
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from bioloop.host.models.csr import CSRBankModel
from bioloop.host.regmap import SLVERR
from bioloop.host.layouts import Polarity, Port
from bioloop.host.regmap import ID_VALUE, Access, RegisterMap
from bioloop.host.bus import Bus, BusError, BusTimeout
from bioloop.host.driver import Driver, DriverError, LatencyProbe


class BankBus:
    """A bus whose CSRs are CSRBankModel; it records every access and the streams."""

    def __init__(self, regmap, thetas=None):
        self.model = CSRBankModel(regmap)
        self.regmap = regmap
        self.log = []                 # ("r"|"w", addr, value)
        self.sent = []
        self.pending = []             # word arrays to deliver
        self.timeouts = 0             # receive_words calls that time out first
        self.fail_writes_at = None    # raise BusTimeout on the n-th write
        self.thetas = thetas or {}
        self.overrides = {}

    def read32(self, addr):
        if addr in self.overrides:
            return self.overrides[addr]
        data, resp = self.model.read(addr)
        if resp == SLVERR:
            raise BusError(f"SLVERR reading {addr:#x}")
        self.log.append(("r", addr, data))
        return data

    def write32(self, addr, value):
        if self.fail_writes_at is not None:
            self.fail_writes_at -= 1
            if self.fail_writes_at < 0:
                self.fail_writes_at = None
                raise BusTimeout(f"write of {addr:#x} timed out")
        assert 0 <= value < 1 << 32
        if self.model.write(addr, value) == SLVERR:
            raise BusError(f"SLVERR writing {addr:#x}")
        self.log.append(("w", addr, value))
        if addr == self.regmap.register("theta_select").offset:
            self.model.set_input("theta_value", self.thetas.get(value, 0))

    def send_samples(self, beats):
        self.sent.append(np.array(beats))

    def receive_words(self, max_words, timeout_s):
        if self.timeouts:
            self.timeouts -= 1
            raise BusTimeout(f"no AER block within {timeout_s} s")
        if not self.pending:
            return np.zeros(0, np.uint64)
        words = self.pending.pop(0)
        out, rest = words[:max_words], words[max_words:]
        if rest.size:
            self.pending.insert(0, rest)
        return out

    def writes(self):
        return [e for e in self.log if e[0] == "w"]


@pytest.fixture
def bus():
    return BankBus(RegisterMap(8, 4, 3))


@pytest.fixture
def drv(bus):
    return Driver(bus)


def test_bus_protocol_and_probe(bus, drv):
    assert isinstance(bus, Bus)
    assert (drv.N, drv.K, drv.F) == (8, 4, 3)
    assert drv.identity["id"] == ID_VALUE
    assert drv.regmap.table("routes").depth == 8 * 3


def test_wrong_core_is_refused(bus):
    bus.overrides[0] = 0xDEADBEEF
    with pytest.raises(DriverError, match="no bioloop core.*0xdeadbeef"):
        Driver(bus)
    bus.overrides = {4: 7 << 16}
    with pytest.raises(DriverError, match="version 7.0"):
        Driver(bus)
    bus.overrides = {}
    with pytest.raises(DriverError, match="n_channels = 8 but the given map has 64"):
        Driver(bus, RegisterMap())
    with pytest.raises(TypeError, match="has no read32"):
        Driver(object())


def test_every_rw_field_has_an_accessor():
    """The driver's scalar attributes are exactly the map's rw fields (names from one place)."""
    rm = RegisterMap()
    rw = {f.name for f in rm.fields(Access.RW)}
    declared = {n for n, v in vars(Driver).items() if type(v).__name__ == "_Field"}
    assert declared | {"enable"} == rw
    for name in declared:                       # generated from the map: its doc and unit
        _, f = rm.field(name)
        assert Driver.__dict__[name].__doc__.startswith(f.doc) and f.unit in Driver.__dict__[name].__doc__
    tables = {t.name for t in rm.tables} - {"routes", "route_count"}
    d = Driver(BankBus(rm))
    assert all(len(getattr(d, t)) == rm.table(t).depth for t in tables)


def test_scalars_round_trip_and_reject_out_of_range(bus, drv):
    rm = bus.regmap
    for f in rm.fields(Access.RW):
        if f.name == "enable":
            continue
        if f.name == "theta_min":          # room for θ_min's whole range under the check θ_min <= θ_max
            drv.theta_max = rm.field("theta_max")[1].hi
        if f.name == "theta_max":
            drv.theta_min = rm.field("theta_min")[1].lo
        for value in (f.lo, f.hi, (f.lo + f.hi) // 2):
            setattr(drv, f.name, value)
            assert getattr(drv, f.name) == value
            assert bus.model.values[f.name] == value
        before = len(bus.writes())
        for bad in (f.hi + 1, f.lo - 1):
            with pytest.raises(ValueError, match=f"^{f.name} = {bad} is out of range"):
                setattr(drv, f.name, bad)
        with pytest.raises(ValueError, match=f"^{f.name} = 1.5 is not a whole number; it takes integers "
                                             f"{f.lo}..{f.hi}"):
            setattr(drv, f.name, 1.5)
        with pytest.raises(TypeError, match=f"^{f.name} takes an integer {f.lo}..{f.hi}"):
            setattr(drv, f.name, "1")
        assert len(bus.writes()) == before, f"{f.name}: a rejected value touched the bus"


def test_control_keeps_enable_across_pulses(bus, drv):
    drv.enable()
    drv.homeo_enable = True
    drv.soft_reset()
    drv.clear_counters()
    assert bus.model.pulses == ["soft_reset", "clear_counters"]
    assert drv.enabled and drv.homeo_enable == 1
    drv.disable()
    assert not drv.enabled and drv.homeo_enable == 1


def test_counters_status_probe(bus, drv):
    bus.model.increment("frames", 100)
    bus.model.increment("overflows", 3)
    bus.model.increment("unmapped_words", 1)
    bus.model.measure("latency", 11)
    bus.model.measure("latency", 7)
    c = drv.counters
    assert c["frames"] == 100 and c["overflows"] == 3 and c["unmapped_words"] == 1
    assert set(c) == set(bus.regmap.counters())
    assert drv.status == {"framing_error": False, "overflow": True, "unmapped": True,
                          "safety_clamp": False}
    p = drv.latency_probe
    assert p == LatencyProbe(7, 11, 2) and p.max_ns == 110.0
    drv.clear_status("overflow")
    assert drv.status["overflow"] is False and drv.status["unmapped"] is True
    drv.clear_status()
    assert not any(drv.status.values())
    with pytest.raises(ValueError, match="no status bit named bogus"):
        drv.clear_status("bogus")
    drv.clear_counters()
    assert not any(drv.counters.values()) and drv.latency_probe == LatencyProbe(0, 0, 0)


def test_theta_now_selects_the_lane():
    bus = BankBus(RegisterMap(8, 4, 3), thetas={2: 300, 3: 99})
    drv = Driver(bus)
    assert drv.theta_now(2) == 300 and drv.theta_now(3) == 99
    with pytest.raises(ValueError, match="theta_select = 4 is out of range 0..3"):
        drv.theta_now(4)


def test_tables(bus, drv):
    drv.thresholds[3] = 500
    drv.thresholds[4:6] = [7, 8]
    drv.theta[:] = 256
    assert bus.model.table_writes[:3] == [("thresholds", 3, {"thresholds": 500}),
                                          ("thresholds", 4, {"thresholds": 7}),
                                          ("thresholds", 5, {"thresholds": 8})]
    assert [w[1:] for w in bus.model.table_writes[3:]] == [(k, {"theta": 256}) for k in range(4)]
    assert drv.thresholds[3] == 500 and drv.thresholds[3:5] == [500, 7] and drv.thresholds[-4:-2] == [7, 8]
    with pytest.raises(LookupError, match="thresholds\\[0\\] has not been written"):
        drv.thresholds[0]
    drv.polarity[:] = ["negative", Polarity.BOTH, 1, "off", "positive", 0, 2, Polarity.NEGATIVE]
    assert [v["polarity"] for _, _, v in bus.model.table_writes[-8:]] == [0, 2, 1, 3, 1, 0, 2, 0]
    drv.polarity[1] = "both"
    assert drv.polarity[1] == Polarity.BOTH.value
    drv.homeo_src[:] = np.arange(4) * 2
    drv.lane_codes[0] = 0xFFFF
    drv.pulse_lengths[1] = 30
    drv.homeo_target[2] = 5 * 256
    assert bus.model.table_writes[-1] == ("homeo_target", 2, {"homeo_target": 1280})


@pytest.mark.parametrize("name,key,value,message", [
    ("thresholds", 2, 40000, r"thresholds\[2\] = 40000 is out of range 0..32767"),
    ("thresholds", slice(None), [1, 2, 3, 4, 5, 6, -1, 8], r"thresholds\[6\] = -1 is out of range"),
    ("polarity", 0, "sideways", "polarity 'sideways' is not one of negative, positive, both, off"),
    ("homeo_src", 1, 8, r"homeo_src\[1\] = 8 is out of range 0..7"),
    ("lane_codes", 3, 1 << 16, r"lane_codes\[3\] = 65536 is out of range"),
    ("theta", slice(0, 2), [1, 2, 3], "theta got 3 values for 2 entries"),
    ("theta", 0, float("nan"), r"theta\[0\] = nan is not a whole number"),
    ("thresholds", 0, 1.5, r"thresholds\[0\] = 1.5 is not a whole number; it takes integers 0..32767"),
])
def test_table_values_rejected_before_the_bus(bus, drv, name, key, value, message):
    before = len(bus.writes())
    with pytest.raises(ValueError, match=message):
        getattr(drv, name)[key] = value
    assert len(bus.writes()) == before


def test_table_type_and_index_errors(drv):
    with pytest.raises(TypeError, match="integers"):
        drv.thresholds[0] = "400"
    with pytest.raises(IndexError, match="out of range 0..7"):
        drv.thresholds[8] = 1
    with pytest.raises(TypeError, match="booleans"):
        drv.theta[0] = True


def test_routes(bus, drv):
    rm = bus.regmap
    drv.routes.set(5, [("stim", 2, 256), (Port.HOST, 0xABCDE, -128), (0, 3, -32768)])
    tw = bus.model.table_writes
    assert tw[0] == ("route_count", 5, {"route_count": 0})
    assert tw[1:4] == [
        ("routes", 15, {"route_target": 2, "route_port": 0, "route_weight": 256}),
        ("routes", 16, {"route_target": 0xABCDE, "route_port": 1, "route_weight": -128}),
        ("routes", 17, {"route_target": 3, "route_port": 0, "route_weight": -32768}),
    ]
    assert tw[4] == ("route_count", 5, {"route_count": 3})
    assert drv.routes.get(5) == ((Port.STIM, 2, 256), (Port.HOST, 0xABCDE, -128), (Port.STIM, 3, -32768))
    drv.routes.clear(5)
    assert tw[-1] == ("route_count", 5, {"route_count": 0}) and drv.routes[5] == ()
    with pytest.raises(LookupError):
        drv.routes.get(1)
    n = len(bus.writes())
    bad = [
        (5, [("stim", 4, 1)], r"routes\[5\]\[0\] target = 4 is out of range 0..3 \(stim lane\)"),
        (5, [("stim", 0, 1)] * 4, "4 entries exceed the fanout F = 3"),
        (5, [("host", 1 << 20, 1)], r"routes\[5\]\[0\] target = 1048576 is out of range"),
        (5, [("stim", 0, 32768)], r"routes\[5\]\[0\] weight = 32768 is out of range -32768..32767 \(Q8.8\)"),
        (5, [("laser", 0, 1)], "route port 'laser'"),
        (8, [], "source address 8 is out of range 0..7"),
    ]
    for address, entries, message in bad:
        with pytest.raises(ValueError, match=message):
            drv.routes.set(address, entries)
    with pytest.raises(TypeError, match=r"must be \(port, target, weight\)"):
        drv.routes.set(0, [("stim", 1)])
    assert len(bus.writes()) == n
    assert rm.table("routes").stride == 8


def _pack_reference(samples):
    """DESIGN.md §3 with Python ints: beat i = ch 2i (low half) | ch 2i+1 (high half)."""
    frames = []
    for row in samples.tolist():
        frames.append([(row[2 * i] & 0xFFFF) | ((row[2 * i + 1] & 0xFFFF) << 16)
                       for i in range(len(row) // 2)])
    return np.array(frames, dtype=np.uint32)


def test_send_samples_packs_beats(bus, drv):
    rng = np.random.default_rng(3)
    samples = rng.integers(-32768, 32768, (5, 8)).astype(np.int16)
    samples[0] = [-32768, 32767, -1, 0, 1, -2, 2, -3]
    drv.send_samples(samples)
    np.testing.assert_array_equal(bus.sent[0], _pack_reference(samples))
    assert bus.sent[0].dtype == np.uint32 and bus.sent[0].shape == (5, 4)
    wide = rng.integers(-100, 100, (5, 16)).astype(np.int16)
    drv.send_samples(wide[:, ::2])            # non-contiguous view
    np.testing.assert_array_equal(bus.sent[1], _pack_reference(wide[:, ::2]))
    # Any integer dtype holding int16 codes is the same codes (bioloop.host.samples, the host detector's rule)
    drv.send_samples(samples.astype(">i2"))
    drv.send_samples(samples.astype(np.int64))
    for sent in bus.sent[2:]:
        np.testing.assert_array_equal(sent, _pack_reference(samples))
    drv.send_samples(np.zeros((0, 8), np.int16))
    assert len(bus.sent) == 4


@pytest.mark.parametrize("samples,error,message", [
    (np.zeros((4, 8), np.float32), TypeError, "must be int16 ADC codes, not float32"),
    (np.full((4, 8), 40000, np.int32), ValueError, "40000 at channel 0, sample 0, outside the int16 ADC code range"),
    (np.zeros((4, 8), bool), TypeError, "not bool"),
    (np.zeros((4, 6), np.int16), ValueError, "have 6 channels; this core has N = 8"),
    (np.zeros(8, np.int16), ValueError, r"shape \(frames, 8\), not \(8,\)"),
    (np.zeros((2, 4, 8), np.int16), ValueError, "shape"),
])
def test_send_samples_rejects(bus, drv, samples, error, message):
    with pytest.raises(error, match=message):
        drv.send_samples(samples)
    assert bus.sent == []


def test_send_samples_names_the_non_finite_sample(drv):
    x = np.zeros((10, 8))
    x[7, 3] = np.nan
    with pytest.raises(ValueError, match="NaN at channel 3, sample 7; the detector needs finite"):
        drv.send_samples(x)
    x[7, 3] = 0
    x[2, 5] = -np.inf
    with pytest.raises(ValueError, match="infinity at channel 5, sample 2"):
        drv.send_samples(x)


def test_receive_timeout_then_the_session_continues(bus, drv):
    words = np.arange(10, dtype=np.uint64) << np.uint64(32)
    bus.pending.append(words)
    bus.timeouts = 1
    with pytest.raises(BusTimeout):
        drv.receive_words(timeout_s=0.01)
    np.testing.assert_array_equal(drv.receive_words(timeout_s=0.01, max_words=4), words[:4])
    np.testing.assert_array_equal(drv.receive_words(timeout_s=0.01), words[4:])
    assert drv.receive_words(timeout_s=0.01).size == 0
    drv.thresholds[0] = 1                    # CSRs still work after the timeout
    with pytest.raises(ValueError, match="timeout_s"):
        drv.receive_words(timeout_s=float("nan"))
    with pytest.raises(ValueError, match="max_words"):
        drv.receive_words(max_words=0)
    bus.pending.append(np.arange(3, dtype=np.int64))
    with pytest.raises(BusError, match="uint64"):
        drv.receive_words()


def test_write_timeout_keeps_what_was_accepted(bus, drv):
    bus.fail_writes_at = 2                   # the third write times out
    with pytest.raises(BusTimeout):
        drv.thresholds[0:4] = [10, 11, 12, 13]
    assert drv.thresholds[0:2] == [10, 11]
    with pytest.raises(LookupError):
        drv.thresholds[2]
    drv.thresholds[2:4] = [12, 13]           # the session carries on
    assert [w[1] for w in bus.model.table_writes] == [0, 1, 2, 3]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_value_in_range_round_trips_and_any_outside_is_refused(data):
    rm = RegisterMap(8, 4, 3)
    bus = BankBus(rm)
    drv = Driver(bus)
    f = data.draw(st.sampled_from([f for f in rm.fields(Access.RW)]))
    value = data.draw(st.integers(f.lo, f.hi))
    drv.set_theta_limits(0, 0xFFFF)          # the range θ_min <= θ_max leaves both clamps all of theirs
    setattr(drv, f.name, value) if f.name != "enable" else drv._write_field("enable", value)
    assert bus.model.values[f.name] == value
    outside = data.draw(st.one_of(st.integers(f.hi + 1, f.hi + (1 << 40)),
                                  st.integers(f.lo - (1 << 40), f.lo - 1)))
    n = len(bus.writes())
    with pytest.raises(ValueError, match=f.name):
        drv._write_field(f.name, outside)
    assert len(bus.writes()) == n


def test_mistyped_register_is_an_error():
    d = Driver(BankBus(RegisterMap()))
    with pytest.raises(AttributeError, match="homeo_windw"):
        d.homeo_windw = 3000
    d.homeo_window = 3000                       # the real one still works
    assert d.homeo_window == 3000
