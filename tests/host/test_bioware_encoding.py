"""Transcoding, stochastic conversion and opto encoding against the formalism and the lanes model."""


import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from bioloop.host import aer
from bioloop.host.bioware import (AEREvent, AERToSCConverter, DetectedSpike, MEAToAERTranscoder,
                                  SCToOptoEncoder, decode_bitstream_rate, density_code,
                                  events_to_words, words_to_events)
from bioloop.host.models.stochastic_lanes import LFSR_PERIOD, StochasticLanes


def sp(ch, t):
    return DetectedSpike(ch, t, -50.0)


def test_ticks_are_floor_of_time_times_clock_and_sorted():
    tr = MEAToAERTranscoder(hw_clock_hz=20_000.0)
    spikes = [sp(3, 0.00015), sp(1, 0.00015), sp(0, 0.1), sp(2, 0.00005 * 7)]
    ev = tr.transcode(spikes)
    # exact: sorted by tick then id; 0.00015 s * 20 kHz = 3 exactly (not 2.9999)
    assert [(e.timestamp, e.neuron_id) for e in ev] == [(3, 1), (3, 3), (7, 2), (2000, 0)]
    # an exact multiple of the tick is never pushed down by binary rounding
    i = np.arange(100_000)
    assert np.array_equal(tr.ticks(i / 20_000.0), i)
    # t_start_s is an epoch origin
    assert tr.transcode([sp(0, 1.5)], t_start_s=1.0)[0].timestamp == 10_000


def test_channel_map_and_errors():
    tr = MEAToAERTranscoder(hw_clock_hz=1e6, channel_map={0: 10, 1: 11})
    assert [e.neuron_id for e in tr.transcode([sp(1, 0.0), sp(0, 1e-6)])] == [11, 10]
    with pytest.raises(KeyError, match="channel 2"):
        tr.transcode([sp(2, 0.0)])
    with pytest.raises(OverflowError, match="32 bits"):
        MEAToAERTranscoder(hw_clock_hz=1e6).transcode([sp(0, 5000.0)])
    with pytest.raises(ValueError, match="negative"):
        MEAToAERTranscoder().transcode([sp(0, 0.5)], t_start_s=1.0)
    with pytest.raises(ValueError, match="address range"):
        MEAToAERTranscoder(channel_map={0: 1 << 20})


def test_words_round_trip_through_the_shared_packer():
    tr = MEAToAERTranscoder(hw_clock_hz=20_000.0, source=7)
    ev = [AEREvent(5, 100), AEREvent(6, 101, valid=False), AEREvent((1 << 20) - 1, (1 << 32) - 1)]
    w = tr.to_words(ev)
    assert w.dtype == np.uint64 and w.size == 2
    f = aer.unpack(w)
    assert f.address.tolist() == [5, (1 << 20) - 1]
    assert f.source.tolist() == [7, 7]
    assert f.type.tolist() == [aer.AERType.SPIKE.value] * 2
    assert f.timestamp.tolist() == [100, (1 << 32) - 1]
    mixed = np.concatenate([w, aer.pack([1], [0], [aer.AERType.TICK.value], [9])])
    assert [(e.neuron_id, e.timestamp) for e in words_to_events(mixed)] == [(5, 100), ((1 << 20) - 1, (1 << 32) - 1)]
    with pytest.raises(ValueError, match="address"):
        events_to_words([AEREvent(1 << 20, 0)])


def test_density_code_mapping_is_exact_over_a_period():
    p = np.array([0.0, 1e-6, 0.25, 0.5, 0.999, 1.0])
    codes = density_code(p)
    assert codes[0] == 0
    for pi, c in zip(p, codes.tolist(), strict=True):
        d = StochasticLanes.density(c)
        assert d == round(pi * LFSR_PERIOD) / LFSR_PERIOD or (pi == 1.0 and d == 65534 / 65535)
        assert abs(d - pi) <= 1 / LFSR_PERIOD
    # the lanes model over one full period counts exactly code - 1 ones
    lanes = StochasticLanes(1)
    assert int(lanes.run(int(codes[2]), LFSR_PERIOD).sum()) == int(codes[2]) - 1


def test_bitstreams_are_the_gateware_lanes_bit_for_bit():
    conv = AERToSCConverter(bitstream_length=777, smoothing_constant=2.0)
    events = [AEREvent(n, t) for n, k in ((0, 1), (3, 5), (9, 40)) for t in range(k)]
    streams = conv.convert(events)
    assert sorted(streams) == [0, 3, 9]
    ref = StochasticLanes(10).run(density_code([1 / 3, 0, 0, 5 / 7, 0, 0, 0, 0, 0, 40 / 42]), 777)
    for n, b in streams.items():
        assert b.dtype == np.uint8 and b.shape == (777,)
        assert np.array_equal(b.astype(bool), ref[:, n])
    # same counts, same bytes (each call restarts the lanes from their seeds)
    again = conv.convert(events)
    assert all(again[n].tobytes() == streams[n].tobytes() for n in streams)


def test_probability_and_decode_invert():
    conv = AERToSCConverter(bitstream_length=LFSR_PERIOD, smoothing_constant=1.5)
    assert conv.probability([0, 1, 3]).tolist() == [0.0, 1 / 2.5, 3 / 4.5]
    b = conv.convert_counts([4], [3])[4]
    d = decode_bitstream_rate(b)
    assert d == round(3 / 4.5 * LFSR_PERIOD) / LFSR_PERIOD     # full period: exact density
    k = decode_bitstream_rate(b, smoothing_constant=1.5)
    assert k == pytest.approx(3, abs=1e-3)
    assert decode_bitstream_rate(b, 1.5, duration_s=0.1) == pytest.approx(30, abs=1e-2)
    with pytest.raises(ValueError, match="0 and 1"):
        decode_bitstream_rate(np.array([0, 2]))
    with pytest.raises(ValueError, match="unbounded"):
        decode_bitstream_rate(np.ones(8, np.uint8), smoothing_constant=1.0)
    with pytest.raises(ValueError, match="non-empty"):
        decode_bitstream_rate(np.array([], np.uint8))


def test_opto_formula():
    enc = SCToOptoEncoder(wavelength_nm=470, max_intensity_mw_mm2=5.0, min_pulse_ms=1.0,
                          max_pulse_ms=50.0, max_total_power_mw=1e9)
    b = np.zeros(100, np.uint8)
    b[:25] = 1
    (p,) = enc.encode({7: b}, t_start_ms=3.0)
    assert (p.channel_id, p.wavelength_nm, p.onset_ms) == (7, 470, 3.0)
    assert p.intensity_mw_mm2 == pytest.approx(0.25 * 5.0)
    assert p.duration_ms == pytest.approx(1.0 + 49.0 * 0.25)
    assert p.power_mw == pytest.approx(1.25)


@settings(max_examples=40, deadline=None)
@given(dens=st.lists(st.floats(0, 1), min_size=0, max_size=30),
       budget=st.floats(0, 40), area=st.floats(0.1, 3))
def test_power_budget_is_never_exceeded_and_skips_are_reported(dens, budget, area):
    enc = SCToOptoEncoder(max_intensity_mw_mm2=5.0, max_total_power_mw=budget, illuminated_area_mm2=area)
    ch = list(range(len(dens)))[::-1]
    pulses = enc.encode_densities(ch, dens)
    assert sum(p.power_mw for p in pulses) <= budget + 1e-9
    got = sorted([p.channel_id for p in pulses] + list(enc.last_skipped))
    assert got == sorted(ch)
    # greedy in ascending channel order: a skipped channel did not fit at its turn
    total = 0.0
    for c in sorted(ch):
        pw = dens[ch.index(c)] * 5.0 * area
        fits = total + pw <= budget
        assert (c in enc.last_skipped) == (not fits)
        total += pw if fits else 0.0


def test_validation():
    with pytest.raises(ValueError, match="bitstream_length"):
        AERToSCConverter(bitstream_length=0)
    with pytest.raises(ValueError, match="smoothing_constant"):
        AERToSCConverter(smoothing_constant=float("inf"))
    with pytest.raises(ValueError, match="num_neurons"):
        AERToSCConverter(num_neurons=2).convert([AEREvent(5, 0)])
    with pytest.raises(ValueError, match="max_pulse_ms"):
        SCToOptoEncoder(min_pulse_ms=10, max_pulse_ms=5)
    with pytest.raises(ValueError, match="density"):
        SCToOptoEncoder().encode_densities([0], [1.5])
    with pytest.raises(ValueError, match="hw_clock_hz"):
        MEAToAERTranscoder(hw_clock_hz=0)
