"""Measurements of ``Core`` on Verilator: loop latency (DESIGN.md §6) and the traffic it runs on.

:func:`measure_latency` runs the cocotb test :func:`core_latency` of this
module on the Verilated Core (the same build :mod:`bioloop.sim.hil` uses)
and returns L_aer and L_loop per detected crossing, summarised, with the
hardware probe's registers read at the end. ``tests/gateware/test_core.py``
asserts on it; ``bioloop.sim.benches.core`` tabulates it.

Definitions (DESIGN.md §6), in clock edges observed by the bench, each edge
counted where cocotb samples the values present at it:

- L_aer: from the edge of the handshake of the sample beat that carries a
  crossing to the first edge at which the core's AER output shows ``valid``
  with that crossing's SPIKE word (the word may wait there under
  backpressure; the figure stops at its first ``valid``).
- L_loop: from the same handshake to the first rising edge of the LED of
  the routed lane at or after it (fanout 1, weight = θ = 1.0, density code
  0xFFFF, pulses of one frame so that every fire is a fresh rise).

Traffic: ``isolated`` (Poisson spikes rare enough that no two meet in the
pipeline), ``bursts`` (Poisson spiking plus network bursts in which 60 % of
the channels cross in the same frame, :func:`bioloop.sim.stimulus.spiking_frames`)
and ``culture`` (the default in-silico culture, 60 electrodes on channels
0..59, thresholds at five robust sigmas).
"""

from __future__ import annotations

import functools
import json
import os
import random

import numpy as np

from bioloop.host.layouts import AERType
from bioloop.sim import runner

__all__ = ["ELECTRODES", "culture_frames", "noise_thresholds", "latency_frames", "latency_program",
           "percentiles", "measure_latency", "measure_latency_compiled", "run_bench", "bench_settings",
           "speed_session", "loop_session"]

#: Electrodes of the default culture's MEA (on channels 0..59 of a 64-channel core).
ELECTRODES = 60


@functools.lru_cache(maxsize=4)
def culture_frames(n_frames: int, seed: int = 11, n_channels: int = 64) -> np.ndarray:
    """int16 (n_frames, n_channels): the default culture's 60 electrodes on channels 0..59."""
    from bioloop.host.culture import Culture, CultureConfig
    codes = Culture(CultureConfig(seed=seed)).step(n_frames).codes
    frames = np.zeros((n_frames, n_channels), dtype=np.int16)
    frames[:, :ELECTRODES] = codes[:, :n_channels]
    return frames


def noise_thresholds(frames: np.ndarray, k: float = 5.0) -> np.ndarray:
    """k robust sigmas (MAD / 0.6745, Donoho & Johnstone 1994) per channel; 32767 if silent."""
    x = frames[:2000].astype(np.float64)
    sigma = np.median(np.abs(x - np.median(x, axis=0)), axis=0) / 0.6745
    return np.where(sigma > 0, np.clip(np.round(k * sigma), 1, 32767), 32767).astype(np.int64)


def latency_frames(traffic: str, n_frames: int, seed: int, n_channels: int = 64):
    """(frames, thresholds) for ``isolated`` spikes, synthetic ``bursts`` or the ``culture``."""
    from bioloop.sim.stimulus import spiking_frames
    rng = np.random.default_rng(seed)
    if traffic == "culture":
        frames = culture_frames(n_frames, n_channels=n_channels)
        return frames, noise_thresholds(frames)
    th = np.full(n_channels, 1000)
    if traffic == "isolated":
        frames = spiking_frames(rng, n_frames, n_channels, th, rate=0.0004, burst_prob=0.0, width=1)
    elif traffic == "bursts":
        frames = spiking_frames(rng, n_frames, n_channels, th, rate=0.01, burst_prob=0.03,
                                burst_fraction=0.6)
    else:
        raise ValueError(f"unknown traffic {traffic!r}; use isolated, bursts or culture")
    return frames, th


def latency_program(driver, thresholds) -> None:
    """DESIGN.md §6: fanout 1, weight >= θ, density code 0xFFFF; one-frame pulses, caps open."""
    driver.thresholds[:] = [int(t) for t in thresholds]
    driver.polarity[:] = "both"
    driver.refractory = 2
    for c in range(driver.N):
        driver.routes.set(c, [("stim", c % driver.K, 256)])
    driver.theta[:] = 256
    driver.lane_codes[:] = 0xFFFF
    driver.pulse_lengths[:] = 1
    driver.enable()


def speed_session(driver, bus, frames: np.ndarray, block: int = 2000) -> dict:
    """A demo-like session for speed figures: the culture's frames through the core block by
    block (thresholds at five robust sigmas, channel c routed to lane c, θ 1.0, lane codes
    0x8000, 10-frame pulses, homeostasis on), reading words and LEDs after each block.

    Returns the wall time of the streaming part and what came out."""
    import time

    from bioloop.host.models.homeostasis import homeostasis_constants
    th = noise_thresholds(frames)
    driver.thresholds[:] = th.tolist()
    driver.polarity[:] = "negative"
    driver.refractory = 20
    for c in range(min(ELECTRODES, driver.N)):
        driver.routes.set(c, [("stim", c % driver.K, 256)])
    driver.theta[:] = 256
    driver.lane_codes[:] = 0x8000
    driver.pulse_lengths[:] = 10
    k = homeostasis_constants(5.0, 1000.0, 2000, 20_000.0)
    driver.homeo_target[:] = k.c_star
    driver.homeo_gain, driver.homeo_shift, driver.homeo_window = k.gain, k.shift, 2000
    driver.homeo_enable = True
    driver.enable()
    words = lit = 0
    start = time.perf_counter()
    for i in range(0, len(frames), block):
        driver.send_samples(frames[i:i + block])
        words += len(driver.receive_words(timeout_s=1.0))
        lit += float(bus.leds().sum())
    wall = time.perf_counter() - start
    return {"wall_s": wall, "frames": len(frames), "words": words, "lit": lit,
            "counters": driver.counters}


def loop_session(driver, bus, duration_s: float, seed: int = 1, experiment: str | None = None) -> dict:
    """The closed loop for ``duration_s`` of culture after its calibration, timed: wall and CPU
    seconds, culture seconds (calibration included) and the core's clock edges.

    ``experiment=None``: ``run_loop``'s defaults (gateware homeostasis on). ``experiment="homeostasis"``
    (or another of :data:`bioloop.host.experiments.EXPERIMENTS`): its "on" run, as ``bioloop demo``
    runs it (settings and policies)."""
    import time

    from bioloop.host.culture import Culture, CultureConfig
    from bioloop.host.loop import LoopSettings, run_loop
    settings = LoopSettings(duration_s=duration_s)
    policies = None
    if experiment is not None:
        from bioloop.host.experiments import DEFAULT_TARGET_HZ, experiment as get_experiment
        exp = get_experiment(experiment)
        settings = exp.settings(LoopSettings(duration_s=duration_s, target_rate_hz=DEFAULT_TARGET_HZ))
        policies = exp.policies()
    culture = Culture(CultureConfig(seed=seed))
    edges0 = bus.edges
    t0, c0 = time.perf_counter(), time.process_time()
    result = run_loop(driver, culture, settings, policies=policies)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"wall_s": wall, "cpu_s": cpu, "culture_s": duration_s + settings.calibration_ms / 1000.0,
            "edges": bus.edges - edges0, "words": len(result.words)}


def loop_latencies(lanes, handshakes, rises, falls) -> tuple[list[int], int]:
    """L_loop per crossing from per-lane LED rise and fall edges; also the number of crossings
    whose light merged into a pulse already running (no rise of their own).

    A crossing at handshake h on lane k is measured by the first rise r >= h of that lane when
    the lane is dark at h, every earlier crossing on the lane has had its rise before h, and the
    next crossing on the lane comes after r; otherwise its fire extended a running pulse (or a
    delayed earlier fire lit the lane after h) and which rise is whose is ambiguous."""
    def last_before(events, h):
        i = int(np.searchsorted(events, h, side="right"))
        return int(events[i - 1]) if i else -1

    by_lane: dict[int, list[int]] = {}
    for k, h in sorted(zip(np.asarray(lanes).tolist(), handshakes, strict=True), key=lambda x: x[1]):
        by_lane.setdefault(k, []).append(h)
    out, merged = [], 0
    for k, hs in by_lane.items():
        r_k, f_k = np.asarray(rises[k], dtype=np.int64), np.asarray(falls[k], dtype=np.int64)
        earlier_ok = True
        for i, h in enumerate(hs):
            j = int(np.searchsorted(r_k, h))
            r = int(r_k[j]) if j < len(r_k) else None
            dark = last_before(f_k, h) >= last_before(r_k, h)
            own = r is not None and (i + 1 == len(hs) or r < hs[i + 1])
            if own and dark and earlier_ok:
                out.append(r - h)
            else:
                merged += 1
            earlier_ok = own
    return out, merged


def percentiles(values) -> dict:
    """n, p50, p99, min and max of a list of cycle counts."""
    v = np.asarray(values)
    if v.size == 0:
        return {"n": 0}
    return {"n": int(v.size), "p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99)),
            "max": int(v.max()), "min": int(v.min())}


def bench_settings() -> dict:
    """Inside a cocotb test run by :func:`run_bench`: its settings."""
    return json.loads(os.environ.get("BIOLOOP_CORE_BENCH", "{}"))


def run_bench(test_module: str, testcase: str, n_channels: int, n_lanes: int, fanout: int,
              **settings) -> dict:
    """Run cocotb test ``testcase`` of ``test_module`` on the Core build of
    :func:`bioloop.sim.hil.run_with_cocotb` (no rebuild); ``settings`` reach the test
    through the environment (:func:`bench_settings`), not the build parameters."""
    from bioloop.sim import hil
    params = {"n_channels": n_channels, "n_lanes": n_lanes, "fanout": fanout, "core": {}}
    os.environ["BIOLOOP_CORE_BENCH"] = json.dumps(settings)
    try:
        return runner.run(hil._factory, design=f"core_n{n_channels}_k{n_lanes}_f{fanout}",
                          test_module=test_module, bench_params=params, testcase=testcase)
    finally:
        os.environ.pop("BIOLOOP_CORE_BENCH", None)


def measure_latency(traffic: str, backpressure: float, frames: int, *, seed: int = 3,
                    n_channels: int = 64, n_lanes: int = 64, fanout: int = 16) -> dict:
    """L_aer and L_loop on Verilator (see the module docstring).

    Returns a dict with ``l_aer`` and ``l_loop`` (``percentiles``), the sets of
    values seen, ``detections``, ``edges`` and ``probe`` (the hardware probe's
    ``latency_last``, ``latency_max``, ``latency_samples`` and ``stim_fires``).
    """
    return run_bench("bioloop.sim.core_bench", "core_latency", n_channels, n_lanes, fanout,
                     traffic=traffic, backpressure=backpressure, frames=frames, seed=seed)


def measure_latency_compiled(traffic: str, backpressure: float, frames: int, *, seed: int = 3,
                             n_channels: int = 64, n_lanes: int = 64, fanout: int = 16,
                             library=None) -> dict:
    """L_aer and L_loop as :func:`measure_latency` gives them, on the compiled backend.

    The same traffic, programming and definitions; the shim records the beat handshakes,
    each word's first ``valid`` and the LED changes (``VerilatedCore.trace``), and holds the
    AER ready low at random on ``backpressure`` of the edges (its own generator, so under
    backpressure the values are statistically, not edge for edge, those of the cocotb bench).
    """
    from bioloop.host.driver import Driver
    from bioloop.host.models.detector import Detector as DetectorModel
    from bioloop.sim.verilator_bus import VerilatorBus

    n, K = n_channels, n_lanes
    nb = n // 2
    bus = VerilatorBus(n, K, fanout, library=library)
    frames_, th = latency_frames(traffic, frames, seed, n)
    drv = Driver(bus)
    latency_program(drv, th)
    drv.clear_counters()
    core = bus.core
    core.pop_words()
    core.aer_backpressure(backpressure, seed)
    core.trace(True)
    start = core.edges
    beats = frames_.view(np.uint32).reshape(-1, nb)
    taken, _, _ = core.push(beats, timeout=bus.timing.send_timeout_edges)
    core.idle(400)
    core.aer_backpressure(0.0)
    tr = core.read_trace()
    core.trace(False)
    edges = core.edges - start
    words, _ = core.pop_words()
    first_valid = {}
    for w, e in zip(words.tolist(), tr["word_first"].tolist(), strict=True):
        if (w >> 28) & 0xF == AERType.SPIKE.value:
            first_valid.setdefault((w >> 32, w & 0xFFFFF), e)
    det = DetectorModel(n, np.minimum(th, 32767), [2] * n, refractory=2).process(frames_)
    handshake = tr["beats"]
    hs = [int(handshake[t * nb + c // 2]) for t, c in det.tolist()]
    l_aer = [first_valid[(t, c)] - h for (t, c), h in zip(det.tolist(), hs, strict=True) if (t, c) in first_valid]
    rises = [[] for _ in range(K)]
    falls = [[] for _ in range(K)]
    for e, lane, level in zip(tr["led_edge"].tolist(), tr["led_lane"].tolist(), tr["led_level"].tolist(), strict=True):
        (rises if level else falls)[lane].append(e)
    l_loop, merged = loop_latencies(det[:, 1] % K, hs, rises, falls)
    probe = {name: drv.read_register(name)
             for name in ("latency_last", "latency_max", "latency_samples", "stim_fires", "overflows")}
    return {"traffic": traffic, "backpressure": backpressure, "frames": frames, "edges": edges, "beats_taken": taken, "detections": len(det),
            "words_seen": len(first_valid), "merged": merged, "l_aer": percentiles(l_aer),
            "l_loop": percentiles(l_loop), "l_loop_values": sorted(set(l_loop)),
            "l_aer_values": sorted(set(l_aer)), "probe": probe}


try:
    import cocotb
    from cocotb.triggers import RisingEdge
except ImportError:  # pragma: no cover - the sim extra is part of the dev install
    cocotb = None

if cocotb is not None:
    @cocotb.test()
    async def core_latency(dut):
        """Per-edge trace of beats, AER words and LEDs; L_aer and L_loop per detected crossing."""
        from cocotb.task import bridge

        from bioloop.host.driver import Driver
        from bioloop.host.models.detector import Detector as DetectorModel
        from bioloop.sim.cocotb_bus import CocotbBus

        st = bench_settings()
        p = runner.params()
        n, K = p["n_channels"], p["n_lanes"]
        nb = n // 2
        bus = CocotbBus(dut, n, K, p["fanout"])
        await bus.start()
        frames, th = latency_frames(st["traffic"], st["frames"], st["seed"], n)

        def setup():
            drv = Driver(bus)
            latency_program(drv, th)
            drv.clear_counters()
        await bridge(setup)()

        flat = frames.view(np.uint32).reshape(-1).tolist()
        rng = random.Random(st["seed"])
        bp = st["backpressure"]
        valid, ready, payload = dut.samples__valid, dut.samples__ready, dut.samples__payload
        a_valid, a_ready, a_payload, led_h = dut.aer__valid, dut.aer__ready, dut.aer__payload, dut.led
        handshake = np.zeros(len(flat), dtype=np.int64)
        first_valid = {}                     # (timestamp, address) of a SPIKE word -> edge
        rises = [[] for _ in range(K)]
        falls = [[] for _ in range(K)]
        prev_led = 0
        edge = i = tail = 0
        valid_since = None
        payload.value = flat[0] | ((nb == 1) << 32)
        valid.value = 1
        while tail < 400:
            a_ready.value = int(not (bp and rng.random() < bp))
            await RisingEdge(dut.clk)
            edge += 1
            if i < len(flat):
                if int(ready.value):
                    handshake[i] = edge
                    i += 1
                    if i < len(flat):
                        payload.value = flat[i] | ((i % nb == nb - 1) << 32)
                    else:
                        valid.value = 0
            else:
                tail += 1
            if int(a_valid.value):
                if valid_since is None:
                    valid_since = edge
                if int(a_ready.value):
                    w = int(a_payload.value) & ((1 << 64) - 1)
                    if (w >> 28) & 0xF == AERType.SPIKE.value:
                        first_valid.setdefault((w >> 32, w & 0xFFFFF), valid_since)
                    valid_since = None
            lit = int(led_h.value)
            changed = lit ^ prev_led
            while changed:
                low = changed & -changed
                (rises if lit & low else falls)[low.bit_length() - 1].append(edge)
                changed ^= low
            prev_led = lit
        a_ready.value = 1

        det = DetectorModel(n, np.minimum(th, 32767), [2] * n, refractory=2).process(frames)
        hs = [int(handshake[t * nb + c // 2]) for t, c in det.tolist()]
        l_aer = [first_valid[(t, c)] - h for (t, c), h in zip(det.tolist(), hs, strict=True) if (t, c) in first_valid]
        l_loop, merged = loop_latencies(det[:, 1] % K, hs, rises, falls)
        probe = {}
        for name in ("latency_last", "latency_max", "latency_samples", "stim_fires", "overflows"):
            probe[name] = await bus._read32(bus.regmap.register(name).offset)
        runner.report(traffic=st["traffic"], backpressure=bp, frames=st["frames"], edges=edge,
                      detections=len(det), words_seen=len(first_valid), merged=merged,
                      l_aer=percentiles(l_aer), l_loop=percentiles(l_loop),
                      l_loop_values=sorted(set(l_loop)), l_aer_values=sorted(set(l_aer)), probe=probe)
