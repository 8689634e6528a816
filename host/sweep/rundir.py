"""One sweep run on a worker: execute it and write its run directory atomically.

A run directory ``<out>/runs/<run_id>/`` holds ``settings.json`` (the
resolved settings that the id hashes), ``summary.json`` (every measured
figure), ``aer.npy`` (the AER log, uint64), ``timing.json`` (wall time and
speed, the only figures that depend on the machine) and ``receipt.json``,
written last, with the SHA-256 of every other file. The directory is built
under a temporary name and renamed into place
(:func:`bioloop.host.output_files.run_folder`), so a run directory either is
complete and verifies, or does not exist: a worker killed mid-run leaves
only a hidden ``.<run_id>.*.tmp`` staging folder, removed at the end of the sweep.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from bioloop.host.output_files import RUN_FOLDER_MARK, OutputError, run_folder

from .plan import Run

__all__ = ["execute_run", "run_dir", "verify_run_dir", "read_summary", "RECEIPT", "RunDirError"]

RECEIPT = RUN_FOLDER_MARK
_FILES = ("settings.json", "summary.json", "aer.npy", "timing.json")


class RunDirError(RuntimeError):
    """A run directory exists but does not verify against its receipt."""


def run_dir(out, run: Run) -> Path:
    return Path(out) / "runs" / run.run_id


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, indent=1, allow_nan=False).encode() + b"\n"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_run_dir(path, run: Run | None = None) -> dict:
    """Check a run directory against its receipt; return the receipt.

    Raises
    ------
    RunDirError
        If the receipt is missing or unreadable, a file is missing or its hash
        differs, or (with ``run``) the settings are not this run's.
    """
    path = Path(path)
    try:
        receipt = json.loads((path / RECEIPT).read_text())
        files = receipt["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunDirError(f"{path}: no valid {RECEIPT} ({exc})") from None
    for name in _FILES:
        try:
            data = (path / name).read_bytes()
        except OSError:
            raise RunDirError(f"{path}: {name} is missing") from None
        if files.get(name) != _sha(data):
            raise RunDirError(f"{path}: {name} does not match its hash in {RECEIPT}")
    if run is not None and receipt.get("run_id") != run.run_id:
        raise RunDirError(f"{path}: receipt names run {receipt.get('run_id')}, expected {run.run_id}")
    return receipt


def read_summary(path) -> dict:
    return json.loads((Path(path) / "summary.json").read_text())


def _slope(t: np.ndarray, y: np.ndarray) -> float:
    if len(t) < 2 or np.ptp(t) == 0:
        return 0.0
    return float(np.polyfit(t, y, 1)[0])


def figures_of(result) -> dict:
    """The deterministic figures of one closed-loop run (the sweep table's measured columns)."""
    s = result.summary()
    target = s["target_rate_hz"]
    b3 = int(len(result.t_s) * 2 / 3)
    theta = result.theta[:, result.controlled].mean(axis=1)
    windows = result.window_rates(1.0)
    last = windows[int(len(windows) * 2 / 3):] if len(windows) else windows
    duration = len(result.t_s) * result.block_frames / result.sample_rate_hz
    bursts_per_min = result.bursts_per_minute()
    lat = s["latency_probe_cycles"]
    counters = s["counters"]
    return {
        "rate_last_third_hz": s["rate_last_third_hz"],
        "rate_error_hz": s["rate_last_third_hz"] - target,
        "abs_rate_error_hz": s["abs_error_last_third_hz"],
        "rel_rate_error": (s["rate_last_third_hz"] - target) / target,
        "window_rate_min_hz": float(last.min()) if last.size else math.nan,
        "window_rate_max_hz": float(last.max()) if last.size else math.nan,
        "window_rate_std_hz": float(last.std()) if last.size else math.nan,
        "windows_within_15pct": float(np.mean(np.abs(last - target) <= 0.15 * target))
        if last.size else math.nan,
        "bursts_per_min": bursts_per_min,
        "theta_first_q88": float(theta[0]),
        "theta_last_q88": float(theta[-1]),
        "theta_std_last_third_q88": float(theta[b3:].std()),
        "theta_slope_last_third_q88_per_s": _slope(result.t_s[b3:], theta[b3:]),
        "stims_total": s["stims_total"],
        "slow_loop_writes": s["slow_loop"]["writes"],
        "led_duty_mean": s["led_duty_mean"],
        "aer_words": s["aer_words"],
        "latency_probe_n": lat["n"],
        "latency_probe_p50_cycles": lat["p50"] if lat["p50"] is not None else math.nan,
        "latency_probe_p99_cycles": lat["p99"] if lat["p99"] is not None else math.nan,
        "latency_probe_max_cycles": lat["max"] if lat["max"] is not None else math.nan,
        "overflows": int(counters.get("overflows", 0)),
        "duration_s": duration,
    }


def _loop_on_backend(run: Run):
    """Run the closed loop of ``run`` on its backend; return the LoopResult."""
    from bioloop.host.culture import Culture
    from bioloop.host.loop import run_loop
    settings = run.loop_settings()
    culture_cfg = run.culture_config()
    from bioloop.host.driver import Driver
    if run.backend == "model":
        from bioloop.host.backends import ModelBus
        bus = ModelBus(**run.core)
    elif run.backend == "verilator":
        from bioloop.sim.verilated_core import build_core_library
        from bioloop.sim.verilator_bus import VerilatorBus
        bus = VerilatorBus(**run.core, library=build_core_library(**run.core))
    else:
        raise ValueError(f"backend {run.backend!r} is not available to sweeps")
    return run_loop(Driver(bus), Culture(culture_cfg), settings, policies=run.policies())


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return _json_safe(obj.item())
    return obj


def execute_run(run: Run, out) -> dict:
    """Run ``run`` and write its directory under ``out``; return its summary.

    Idempotent: if the run directory already exists and verifies (an earlier
    attempt finished), nothing is run again.
    """
    final = run_dir(out, run)
    if final.exists():
        verify_run_dir(final, run)
        return read_summary(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = _loop_on_backend(run)
    wall = time.perf_counter() - t0
    figures = _json_safe(figures_of(result))
    summary = {"run_id": run.run_id, "index": run.index, "figures": figures,
               "loop": _json_safe(result.summary())}
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(result.words, dtype="<u8"), allow_pickle=False)
    files = {
        "settings.json": _canonical(run.settings()),
        "summary.json": _canonical(summary),
        "aer.npy": buf.getvalue(),
        "timing.json": _canonical(_json_safe({"wall_s": wall, "culture_s": figures["duration_s"],
                                   "culture_s_per_wall_s": figures["duration_s"] / wall if wall else None,
                                   "pid": os.getpid(), "slow_loop": result.timing()})),
    }
    try:
        with run_folder(final) as stage:
            for name, data in files.items():
                (stage / name).write_bytes(data)
            receipt = {"run_id": run.run_id, "settings_sha256": _sha(files["settings.json"]),
                       "files": {name: _sha(data) for name, data in files.items()}}
            (stage / RECEIPT).write_bytes(_canonical(receipt))
    except OutputError:
        verify_run_dir(final, run)         # another attempt finished first: keep its directory
    return summary
