"""``bioloop board``: the overlay on the board, and the closed loop through it.

:func:`open_board` loads an overlay directory with pynq (or, with
``BIOLOOP_PYNQ=standin`` in the environment, with
:mod:`bioloop.boards.pynq_standin`, whose logic is the Core model) and
returns the driver. :func:`run_board` runs :func:`bioloop.host.loop.run_loop`
through it, with samples from a recording replayed by DMA or from the
in-silico culture on the board's CPU, whose light is rebuilt from STIM
words (:mod:`bioloop.boards.light`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from . import manifest as manifest_mod
from .light import StimLight

__all__ = ["BoardHandle", "OverlayError", "RecordingReplay", "find_overlay", "load_recording",
           "open_board", "run_board", "UV_PER_CODE"]

#: µV per ADC code assumed for recordings in µV (Intan RHD, MEAConfig's default).
UV_PER_CODE = 0.195


class OverlayError(FileNotFoundError):
    """The overlay directory or its bitstream is missing."""


def find_overlay(directory) -> tuple[Path, dict]:
    """The bitstream of a ``bioloop build`` overlay folder and its checked manifest.

    The folder holds ``bioloop.bit``, ``bioloop.hwh`` and ``bioloop.json``
    (:mod:`bioloop.boards.manifest`); the files the manifest lists must
    match their sha256.

    Raises
    ------
    OverlayError, ManifestError
    """
    d = Path(directory)
    if not d.exists():
        raise OverlayError(f"overlay folder {d} does not exist; copy the overlay/ folder of a "
                           "`bioloop build` there (docs/board.md)")
    bit = d / "bioloop.bit" if d.is_dir() else d
    if not bit.is_file():
        raise OverlayError(f"no bitstream at {bit}; copy the overlay/ folder of a `bioloop build` "
                           "(bioloop.bit, bioloop.hwh, bioloop.json)")
    if not bit.with_suffix(".hwh").is_file():
        raise OverlayError(f"{bit.with_suffix('.hwh')} is missing; pynq needs the hardware handoff "
                           "beside the bitstream")
    manifest = manifest_mod.read(bit.with_suffix(".json"))
    manifest_mod.check_files(manifest, bit.parent)
    return bit, manifest


@dataclass
class BoardHandle:
    """A loaded overlay: its bitstream, manifest, bus and driver."""
    bitfile: Path
    manifest: dict
    bus: object          # PynqBus
    driver: object       # Driver
    standin: bool = field(default=False)

    def close(self):
        self.bus.close()


def _standin_requested() -> bool:
    return os.environ.get("BIOLOOP_PYNQ", "").strip().lower() == "standin"


def open_board(overlay_dir, *, max_words: int = 1 << 16, send_timeout_s: float = 1.0) -> BoardHandle:
    """Load the overlay in ``overlay_dir`` and connect the driver.

    Checks the files against the manifest, then the core's ID, register-map
    version, N, K, F and clock against the manifest
    (:func:`bioloop.boards.manifest.check`).

    Raises
    ------
    OverlayError, ManifestError, BoardUnavailable, DriverError, BusError
    """
    import sys

    from bioloop.host.driver import Driver

    from .pynq_backend import PynqBus

    bit, manifest = find_overlay(overlay_dir)
    standin = _standin_requested()
    if standin and not getattr(sys.modules.get("pynq"), "BIOLOOP_STANDIN", False):
        from . import pynq_standin
        sys.modules["pynq"] = pynq_standin.module()
    bus = PynqBus(bit, N=int(manifest["N"]), K=int(manifest["K"]), F=int(manifest["F"]),
                  max_words=max_words, send_timeout_s=send_timeout_s)
    try:
        driver = Driver(bus)
        manifest_mod.check(manifest, driver.identity)
    except BaseException:
        bus.close()
        raise
    return BoardHandle(bit, manifest, bus, driver, standin)


class RecordingReplay:
    """A recording replayed block by block, with the part of the Culture interface run_loop uses.

    The light is ignored (a recording does not answer); past the end the
    recording is not repeated: :func:`run_board` caps the duration.
    """

    def __init__(self, codes: np.ndarray, sample_rate_hz: float, n_lanes: int, name: str = ""):
        if codes.dtype != np.int16 or codes.ndim != 2:
            raise ValueError(f"a recording must be int16 codes of shape (frames, channels), not "
                             f"{codes.dtype} {codes.shape}")
        self.codes = codes
        self.name = name
        self.config = SimpleNamespace(sample_rate_hz=float(sample_rate_hz))
        self.electrode_positions_um = np.zeros((codes.shape[1], 2))
        self.n_lanes = min(n_lanes, codes.shape[1])
        self.t = 0

    def step(self, n: int, led=None):
        block = np.zeros((n, self.codes.shape[1]), np.int16)
        part = np.asarray(self.codes[self.t:self.t + n])
        block[:len(part)] = part
        self.t += n
        return SimpleNamespace(codes=block, spikes=np.zeros(0))


def load_recording(path, sample_rate_hz: float | None = None) -> tuple[np.ndarray, float]:
    """int16 codes (frames, channels) and the sample rate of a ``.npy``, NWB or codec file.

    ``.npy``: int16 codes (float arrays are taken as µV at :data:`UV_PER_CODE`),
    at ``sample_rate_hz`` (default 20 kHz). ``.nwb``: the ElectricalSeries
    (pynwb, the ``[nwb]`` extra). Anything else is read as a codec stream
    (``bioloop codec encode``) and decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recording {path} does not exist")
    if path.suffix == ".npy":
        x = np.load(path, mmap_mode="r")
        fs = 20_000.0 if sample_rate_hz is None else float(sample_rate_hz)
    elif path.suffix == ".nwb":
        from bioloop.host.codec.sources import nwb_source
        src = nwb_source(path)
        x = np.concatenate(list(src.chunks()))
        if src.uv_per_code != 1.0 and x.dtype != np.int16:
            x = x * src.uv_per_code
        fs = src.sample_rate
    else:
        from bioloop.host.codec import decode
        dec = decode(path.read_bytes())
        x, fs = dec.samples_uv, float(dec.header.sample_rate)
    if x.ndim != 2:
        raise ValueError(f"recording {path} has shape {x.shape}, not (frames, channels)")
    if x.dtype != np.int16:
        x = np.clip(np.round(np.asarray(x, np.float64) / UV_PER_CODE), -32768, 32767).astype(np.int16)
    return x, fs


def run_board(handle: BoardHandle, source, settings, *, realtime: bool = True, progress=None,
              aer_block_words: int = 64, policies=None):
    """The closed loop through the board; returns (LoopResult, StimLight).

    ``source`` is a :class:`RecordingReplay` or a Culture; ``policies`` the
    slow loop's (:func:`bioloop.host.loop.run_loop`'s default when None). With ``realtime``
    each block is sent no earlier than its time since the start. On an
    exception the words received so far are in ``StimLight.received``,
    reachable as ``exc.light``.
    """
    from bioloop.host.loop import run_loop

    drv = handle.driver
    light = StimLight(handle.bus)
    drv_light = type(drv)(light, drv.regmap)
    light.driver = drv_light
    drv_light.aer_block_words = aer_block_words
    block_s = settings.block_ms / 1000.0
    t_start = time.monotonic()

    def pace(done, total):
        if realtime:
            wait = t_start + done * block_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        if progress is not None:
            progress(done, total)

    try:
        result = run_loop(drv_light, source, settings, policies=policies, progress=pace)
    except BaseException as exc:
        exc.light = light
        raise
    return result, light
