"""STIM words and the SPIKE words that caused them (docs/core.md, "Timestamps of STIM words").

A SPIKE word is stamped with the frame of its crossing, a STIM word with the frame counter
when the StimUnit takes the routed entry, four edges after the crossing's beat at full
rate: a crossing in a frame's last four beats gives a STIM word stamped one frame later. The
truth here is built independently: which channels crossed in which frame (the samples we
send) and the route we wrote."""

import numpy as np

from bioloop.host.aer import pair_stim_with_spikes, unpack
from bioloop.host.backends import ModelBus
from bioloop.host.driver import Driver
from bioloop.host.layouts import AERType

N, K, F = 16, 4, 2          # 8 beats per frame


def _session():
    bus = ModelBus(N, K, F)
    drv = Driver(bus)
    drv.thresholds[:] = 300
    drv.routes[3] = [("stim", 1, 256)]        # channel 3 (beat 1 of 8) -> lane 1, fires at once
    drv.routes[15] = [("stim", 2, 256)]       # channel 15 (the frame's last beat) -> lane 2
    drv.lane_codes[:] = 0xFFFF
    drv.pulse_lengths[:] = 1
    drv.enable()
    frames = np.zeros((40, N), np.int16)
    frames[5, 3] = -1000                      # mid-frame crossing, frame 5
    frames[20, 15] = -1000                    # last-beat crossing, frame 20
    drv.send_samples(frames)
    return drv.receive_words(timeout_s=0.5)


def test_stim_stamp_rule_and_pairing():
    words = _session()
    f = unpack(words)
    spikes = [(int(a), int(t)) for a, ty, t in zip(f.address, f.type, f.timestamp, strict=True) if ty == AERType.SPIKE]
    stims = [(int(a), int(t)) for a, ty, t in zip(f.address, f.type, f.timestamp, strict=True) if ty == AERType.STIM]
    assert spikes == [(3, 5), (15, 20)]
    assert stims == [(1, 5), (2, 21)]           # the last-beat crossing's STIM is one frame later
    pairs = pair_stim_with_spikes(words, {3: {1}, 15: {2}})
    assert [(int(f.address[i]), int(f.timestamp[i])) for i in pairs] == spikes


def test_pairing_looks_ahead_and_reports_orphans():
    from bioloop.host.aer import pack
    spike = lambda a, t: int(pack(a, 0, AERType.SPIKE, t))    # noqa: E731
    stim = lambda k, t: int(pack(k, 0, AERType.STIM, t))      # noqa: E731
    words = np.array([stim(0, 9), spike(4, 9), spike(5, 3), stim(1, 4), stim(2, 7)], np.uint64)
    # STIM lane 0 precedes its SPIKE (merge order under backpressure); lane 1 pairs with the
    # earlier SPIKE; lane 2 has no route, so no cause.
    assert pair_stim_with_spikes(words, {4: {0}, 5: {1}}).tolist() == [1, 2, -1]
