"""Measurements for `make bench`: machine description, raw Verilator speed, cocotb bench figures."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path

from .runner import ROOT, toolchain_env, write_verilog

__all__ = ["DOCS_BENCH", "cpu_model", "machine", "verilator_speed", "markdown_table"]

#: Where `make bench` writes its fragments (docs/benchmarks.md is assembled from them).
DOCS_BENCH = ROOT / "docs" / "bench"


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """One line naming the machine, Python and date, for every benchmark table."""
    return (f"{platform.machine()}, {cpu_model()}, {os.cpu_count()} logical CPUs, Python "
            f"{platform.python_version()}, {datetime.date.today().isoformat()}")


def verilator_speed(component, top: str, harness: Path, cycles: int = 2_000_000) -> dict:
    """Build ``component`` with a free-running C++ ``harness`` and return its cycles per second."""
    build = ROOT / "sim_build" / f"speed-{top}"
    if build.exists():
        shutil.rmtree(build)
    src = write_verilog(component, build / f"{top}.v", name=top)
    env = {**os.environ, **toolchain_env()}
    subprocess.run(["verilator", "--cc", "--exe", "--build", "-O3", "-Wno-fatal", "-Wno-lint", "-Wno-style",
                    "--x-assign", "0", "--x-initial", "0", "-j", "2", "--top-module", top,
                    "-Mdir", str(build / "obj"), str(src), str(harness)],
                   check=True, env=env, capture_output=True, text=True)
    out = subprocess.run([str(build / "obj" / f"V{top}"), str(cycles)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"
