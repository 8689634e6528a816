"""The host runtime's budget on the board: numba disabled, numpy only (issue 11).

Writes ``docs/bench/board_host.md``. Measures in a subprocess with
``BIOLOOP_NUMBA=0`` (the board has no numba), per piece of
work the host does in the closed loop of ``bioloop board run``:

- per frame block (5 ms = 100 frames of 64 channels at 20 kHz):
  ``PynqBus.send_samples`` (one DMA transfer per frame, as now, and one
  transfer per block, once the core takes several frames per transfer), the
  receive, and the loop's bookkeeping of the block's AER words
  (``aer.unpack``, rate and STIM counts, SpikeBuffer);
- per control period (θ read back every 25 ms): 64 lanes, two CSR accesses each;
- the in-silico culture on the CPU without numba, per block, at sizes
  that might fit the A9.

The pynq objects are a null stand-in (DMA transfers complete at once, MMIO
is a CSR bank model), so what is measured is bioloop's own Python, not
pynq's, not the MMIO or DMA hardware, and not the core.

Each figure is the median over repeats, with the 10th-90th percentile spread.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import time
import types
from fractions import Fraction
from pathlib import Path

import numpy as np

from bioloop.sim.measure import DOCS_BENCH, cpu_model

FS, N, K, F = 20_000.0, 64, 64, 16
BLOCK = 100                     # 5 ms at 20 kHz
A9_MHZ = 650


def null_pynq():
    """pynq objects that cost nothing but bioloop's own Python: DMA done at once, MMIO a CSR bank."""
    from bioloop.host.models.csr import CSRBankModel
    from bioloop.host.regmap import RegisterMap
    from bioloop.boards.pynq_z2 import S2MM_LENGTH

    bank = CSRBankModel(RegisterMap(N, K, F))
    mod = types.ModuleType("pynq")

    class Buffer(np.ndarray):
        physical_address = 0

        def flush(self):
            pass

        def invalidate(self):
            pass

        def freebuffer(self):
            pass

    class Channel:
        idle, error, running = True, False, True

        def __init__(self, regs=None):
            self.regs = regs

        def transfer(self, array, start=0, nbytes=0):
            if self.regs is not None:
                self.regs[S2MM_LENGTH] = 8 * 40          # a block of 40 AER words

    class DMAMMIO:
        def __init__(self):
            self.regs = {}

        def read(self, offset):
            return self.regs.get(offset, 0)

    class DMA:
        def __init__(self):
            self.mmio = DMAMMIO()
            self.sendchannel = Channel()
            self.recvchannel = Channel(self.mmio.regs)

    class Overlay:
        def __init__(self, bitfile):
            self.axi_dma_0 = DMA()

    class MMIO:
        def __init__(self, base, length):
            pass

        def read(self, offset):
            return bank.read(offset)[0]

        def write(self, offset, value):
            bank.write(offset, value)

    def allocate(shape, dtype):
        return np.zeros(shape, dtype).view(Buffer)

    mod.Overlay, mod.MMIO, mod.allocate = Overlay, MMIO, allocate
    return mod


def timed(fn, repeats: int, inner: int) -> dict:
    """Seconds per call: median and 10th-90th percentiles over ``repeats`` runs of ``inner`` calls."""
    fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        out.append((time.perf_counter() - t0) / inner)
    q = np.percentile(out, [10, 50, 90])
    return {"p10": q[0], "median": q[1], "p90": q[2]}


def measure(smoke: bool = False) -> dict:
    from bioloop.boards.pynq_backend import PynqBus
    from bioloop.host import aer
    from bioloop.host.aer import AERType
    from bioloop.host.driver import Driver
    from bioloop.host.jit import ENABLED
    from bioloop.host.observation import SpikeBuffer

    assert not ENABLED, "run with BIOLOOP_NUMBA=0"
    sys.modules["pynq"] = null_pynq()
    rng = np.random.default_rng(0)
    samples = rng.integers(-200, 200, (BLOCK, N)).astype(np.int16)
    res = {}
    reps = 3 if smoke else 15
    for fpt in (1, BLOCK):
        bus = PynqBus("null.bit", N=N, K=K, F=F, frames_per_transfer=fpt)
        drv = Driver(bus)
        res[f"send_fpt{fpt}"] = timed(lambda: drv.send_samples(samples), reps, 20)
    words = aer.pack(rng.integers(0, N, 40), 0, np.where(np.arange(40) % 4 == 0, AERType.STIM.value,
                                                          AERType.SPIKE.value), np.sort(rng.integers(0, BLOCK, 40)))
    bus.dma.recvchannel.regs[0x58] = words.nbytes
    bus._recv_buf[:40] = words
    res["receive"] = timed(lambda: drv.receive_words(timeout_s=0.01), reps, 50)
    buffer = SpikeBuffer(capacity=1 << 20)
    rate = np.zeros(N)
    stims = np.zeros(K, np.int64)
    period_ns = Fraction(10**9, int(FS))
    state = {"b": 0}

    def bookkeeping():
        b = state["b"] = state["b"] + 1
        f = aer.unpack(words + np.uint64(b * BLOCK << 32))
        spike = (f.type == AERType.SPIKE.value) & (f.address < N)
        np.add.at(rate, f.address[spike].astype(np.int64), 1)
        st = f.type == AERType.STIM.value
        np.add.at(stims, f.address[st].astype(np.int64), 1)
        buffer.ingest_aer(words + np.uint64(b * BLOCK << 32), period_ns)
        buffer.drain_window_arrays(int(1e9), int((b + 1) * BLOCK * period_ns))
    res["bookkeeping"] = timed(bookkeeping, reps, 50)
    res["theta_read"] = timed(lambda: [drv.theta_now(k) for k in range(K)], reps, 3)
    res["culture"] = {}
    from bioloop.host.culture import Culture, CultureConfig
    for n in ((16,) if smoke else (32, 64)):
        culture = Culture(CultureConfig(seed=1).with_network(n_neurons=n))
        culture.step(200)
        res["culture"][n] = timed(lambda: culture.step(BLOCK), 2 if smoke else 5, 1)
    return res


def fmt(t: dict, unit=1e3) -> str:
    return f"{t['median'] * unit:.3g} ({t['p10'] * unit:.3g}-{t['p90'] * unit:.3g})"


def light_error(frames: int = 20_000, seed: int = 1) -> dict:
    """The rebuilt light (bioloop.boards.light) against the Core model's per-frame LED vectors.

    A (64, 64, 16) core, every channel routed to its lane, Poisson spikes at
    about 40 Hz per channel at 20 kHz, lane densities and pulse lengths
    spread over their ranges. Returns per-lane relative errors of the total
    light and the fraction of frames whose lit/dark state agrees.
    """
    from bioloop.boards.light import light_from_stims
    from bioloop.host.backends import ModelBus
    from bioloop.host.driver import Driver
    bus = ModelBus(N, K, F)
    drv = Driver(bus)
    rng = np.random.default_rng(seed)
    codes = rng.integers(1, 0x10000, K)
    codes[:4] = 0xFFFF
    pulses = rng.integers(2, 60, K)
    drv.thresholds[:] = 100
    drv.polarity[:] = "negative"
    for c in range(N):
        drv.routes.set(c, [("stim", c, 256)])
    drv.theta[:] = 256
    drv.lane_codes[:] = codes.tolist()
    drv.pulse_lengths[:] = pulses.tolist()
    drv.enable()
    x = np.zeros((frames, N), np.int16)
    x[rng.random((frames, N)) < 40 / FS] = -500
    words, leds = [], []
    for a in range(0, frames, 1000):
        drv.send_samples(x[a:a + 1000])
        words.append(drv.receive_words(timeout_s=0.1, max_words=1 << 20))
        leds.append(bus.leds())
    words, leds = np.concatenate(words), np.concatenate(leds)
    light, _ = light_from_stims(words, 0, frames, pulses, codes)
    tot_m, tot_l = leds.sum(0), light.sum(0)
    rel = np.abs(tot_l - tot_m) / np.maximum(tot_m, 1e-9)
    agree = ((leds > 0) == (light > 0))[:, :4].mean()
    return {"frames": frames, "rel_median": float(np.median(rel)), "rel_p90": float(np.percentile(rel, 90)),
            "rel_max": float(rel.max()), "agree_full": float(agree),
            "mean_abs": float(np.abs(light - leds).mean()), "mean_light": float(leds.mean())}


def main(out: Path = DOCS_BENCH, smoke: bool = False) -> Path:
    """Measure in a subprocess without numba, write ``<out>/board_host.md``, return its path."""
    env = dict(os.environ, BIOLOOP_NUMBA="0")
    code = f"import json; from bioloop.sim.benches.board_host import measure; print(json.dumps(measure({smoke}), default=float))"
    res = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    result = json.loads(res.stdout.strip().splitlines()[-1])
    result["light"] = light_error(2000 if smoke else 20_000)
    return write(result, Path(out) / "board_host.md")


def write(res: dict, path: Path) -> Path:
    cpu_mhz = _mhz()
    clock = cpu_mhz / A9_MHZ
    block_ms = BLOCK / FS * 1e3
    per_block = (res["send_fpt1"]["median"] + res["receive"]["median"] + res["bookkeeping"]["median"]
                 + res["theta_read"]["median"] * block_ms / 25.0)
    per_block_batched = per_block - res["send_fpt1"]["median"] + res[f"send_fpt{BLOCK}"]["median"]
    rows = [
        ("send a block, one DMA transfer per frame (today)", res["send_fpt1"]),
        ("send a block, one DMA transfer per block", res[f"send_fpt{BLOCK}"]),
        ("receive one AER block (40 words)", res["receive"]),
        ("bookkeeping of a block's words (unpack, counts, SpikeBuffer)", res["bookkeeping"]),
        ("read θ of 64 lanes (128 CSR accesses), every 25 ms", res["theta_read"]),
    ]
    lines = [
        "## Host budget on the board (numpy only)",
        "",
        f"Measured {datetime.date.today().isoformat()} on {platform.machine()}, {cpu_model()} "
        f"(~{cpu_mhz:.0f} MHz), Python {platform.python_version()}, numpy {np.__version__}, with "
        "numba disabled (`BIOLOOP_NUMBA=0`), by `scripts/bench_board_host.py`. The pynq objects are a "
        "null stand-in (DMA transfers complete at once, MMIO is a CSR bank model), so these are "
        "bioloop's own Python costs; pynq's own MMIO and DMA calls, the hardware and the core come on "
        f"top. A block is {BLOCK} frames of {N} channels ({block_ms:g} ms at {FS / 1e3:g} kHz); "
        "median over repeats, 10th-90th percentile in brackets, ms.",
        "",
        "| per block | here (ms) | A9 estimate, ×4 clock (ms) | A9 estimate, ×16 (ms) |",
        "|---|---:|---:|---:|",
    ]
    for label, t in rows:
        lines.append(f"| {label} | {fmt(t)} | {t['median'] * 1e3 * clock:.3g} | {t['median'] * 1e3 * 16:.3g} |")
    for n, t in res["culture"].items():
        lines.append(f"| in-silico culture, {n} neurons, one block (numpy/Python path) | {fmt(t)} | "
                     f"{t['median'] * 1e3 * clock:.3g} | {t['median'] * 1e3 * 16:.3g} |")
    lines += [
        "",
        f"Per {block_ms:g} ms block, the loop's own host work (send, receive, bookkeeping, and θ read "
        f"back every 25 ms, pro rata) is {per_block * 1e3:.3g} ms here with one transfer per frame and "
        f"{per_block_batched * 1e3:.3g} ms with one transfer per block.",
        "",
        "Scaling to the PYNQ-Z2's Cortex-A9 at 650 MHz. The clock ratio alone is "
        f"{cpu_mhz:.0f} / {A9_MHZ} = {clock:.1f} (column 3: a lower bound). Per clock the A9 does less: "
        "ARM gives 2.5 DMIPS/MHz for the Cortex-A9 (ARM, Cortex-A9 processor page), and a Zen-class "
        "x86 core retires several times more instructions per clock; we plan with a total factor of "
        "16 (column 4), an assumption, not a measurement. At ×16 the block's host work is "
        f"{per_block * 1e3 * 16:.3g} ms with a transfer per frame and {per_block_batched * 1e3 * 16:.3g} ms "
        f"with a transfer per block, against the {block_ms:g} ms the block lasts"
        + (": bioloop's own work fits, barely, before pynq's own MMIO and DMA calls (not measured "
           "here) are added, so real-time replay on the A9 is marginal"
           if per_block_batched * 16 < BLOCK / FS else
           ": bioloop's own work alone does not fit, so replay on the A9 will not keep real time "
           "with these settings (`--realtime off` runs it slower than real time)")
        + "; of bioloop's own work the θ read back every 25 ms and the per-block bookkeeping "
        "dominate. With a transfer per frame pynq's own calls (several MMIO accesses per transfer, "
        "in Python) come 100 times per block on top, which batched transfers avoid"
        + ". The in-silico culture without numba is the expensive part: its neuron update runs as plain "
        "Python per sample, so on the A9 `--source culture` runs slower than real time "
        "(use `--realtime off` and few `--neurons`). Not measured on a board.",
    ]
    li = res["light"]
    lines += [
        "",
        "### The culture's light rebuilt from STIM words",
        "",
        f"`bioloop board run --source culture` rebuilds each lane's light from STIM words and the "
        f"programmed pulse lengths and densities (`bioloop.boards.light`; the LED pins cannot be read "
        f"over the bus). Against the Core model's per-frame LED vectors (`ModelBus.leds()`), "
        f"(N, K, F) = ({N}, {K}, {F}), {li['frames']:,} frames, every channel routed to its lane, "
        f"spikes at about 40 Hz per channel, random lane codes and pulses of 2-59 frames: the total "
        f"light of a lane differs by {100 * li['rel_median']:.2g} % (median over lanes; 90th percentile "
        f"{100 * li['rel_p90']:.2g} %, max {100 * li['rel_max']:.2g} %); on the four full-density lanes "
        f"the lit/dark state of {100 * li['agree_full']:.4g} % of the frames agrees; the mean absolute "
        f"per-frame difference is {li['mean_abs']:.3g} for a mean light of {li['mean_light']:.3g}. The "
        "model's frame averages only the N/2 cycles that carry the frame's beats, so its per-frame "
        "values are noisy samples of the LFSR bitstream whose mean the rebuild uses; on the board, "
        "where a frame lasts 5,000 cycles, the mean is the better description. Not included: "
        "the delay of STIM words still in an unfinished DMA block (up to `--aer-block` words).",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _mhz() -> float:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("cpu mhz"):
                return float(line.split(":")[1])
            if line.lower().startswith("bogomips"):
                return float(line.split(":")[1]) / 2
    except OSError:
        pass
    return 2600.0

