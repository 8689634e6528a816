"""The pynq driver of the core: ``Overlay("bioloop.bit").bioloop_core_0`` is a bioloop Driver.

pynq picks an IP's driver class by the IP's VLNV (``DefaultIP`` subclasses
with ``bindto``, registered when the class is defined). :class:`BioloopCore`
binds to the module reference of the core
(:data:`~bioloop.boards.pynq_z2.CORE_VLNV`) and *is* a
:class:`bioloop.host.driver.Driver` over the ``pynq`` backend
(:class:`~bioloop.boards.pynq_backend.PynqBus`): the same accessors as on
the model or the Verilated RTL. On creation it reads the overlay manifest
beside the bitstream (``bioloop.json``, written by ``bioloop build``),
checks the ``.bit``/``.hwh`` against the hashes it lists, and compares it
with the ID, version and N, K, F the loaded core reports; any difference
raises :class:`~bioloop.boards.manifest.ManifestError` in one line.

pynq is imported only when the class is first used, so this module
imports anywhere::

    from bioloop.boards.pynq_ip import BioloopCore   # registers the driver (needs pynq)
    from pynq import Overlay
    drv = Overlay("/home/xilinx/bioloop/bioloop.bit").bioloop_core_0

or, finding the core by its VLNV whatever the block design named it::

    from bioloop.boards.pynq_ip import load
    drv = load("/home/xilinx/bioloop")          # a folder or the .bit
"""

from __future__ import annotations

from pathlib import Path

from . import manifest as manifest_mod
from .pynq_z2 import CORE_VLNV

# BioloopCore is defined on first access (module __getattr__ below), since it subclasses pynq's DefaultIP.
__all__ = ["BioloopCore", "load"]  # noqa: F822

_CLASS = None


def _define():
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    from bioloop.host.driver import Driver

    from .pynq_backend import PynqBus, _import_pynq
    pynq = _import_pynq()

    class BioloopCore(Driver, pynq.DefaultIP):
        """pynq driver of the bioloop core; a :class:`bioloop.host.driver.Driver` (see the module)."""

        bindto = [CORE_VLNV]

        def __init__(self, description):
            pynq.DefaultIP.__init__(self, description)
            bitfile = getattr(self.device, "bitfile_name", None) or pynq.PL.bitfile_name
            if not bitfile:
                raise manifest_mod.ManifestError("pynq reports no loaded bitstream; load the overlay "
                                                 "with pynq.Overlay first")
            bitfile = Path(bitfile)
            self.manifest = manifest_mod.read(bitfile.with_suffix(".json"))
            manifest_mod.check_files(self.manifest, bitfile.parent)
            overlay = pynq.Overlay(str(bitfile), download=False)
            bus = PynqBus(overlay=overlay, N=self.manifest["N"], K=self.manifest["K"],
                          F=self.manifest["F"])
            Driver.__init__(self, bus)
            manifest_mod.check(self.manifest, self.identity)

    _CLASS = BioloopCore
    return _CLASS


def __getattr__(name):
    if name == "BioloopCore":
        return _define()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load(overlay: str | Path, *, download: bool = True):
    """Load a ``bioloop build`` overlay (its folder or its ``.bit``) and return the core's driver.

    Raises
    ------
    ManifestError
        If the manifest is missing or does not match the files or the core.
    """
    path = Path(overlay)
    bitfile = path / "bioloop.bit" if path.is_dir() else path
    if not bitfile.exists():
        raise FileNotFoundError(f"no bitstream at {bitfile}; run `bioloop build` (with Vivado) and "
                                "copy its overlay folder to the board")
    manifest_mod.check_files(manifest_mod.read(bitfile.with_suffix(".json")), bitfile.parent)
    _define()
    import pynq
    ol = pynq.Overlay(str(bitfile), download=download)
    names = [name for name, ip in ol.ip_dict.items() if ip.get("type") == CORE_VLNV]
    if len(names) != 1:
        raise manifest_mod.ManifestError(f"{bitfile} holds {len(names)} bioloop cores "
                                         f"({CORE_VLNV}); expected one")
    target = ol
    for part in names[0].split("/"):    # pynq may name a module reference "<cell>/<interface>"
        target = getattr(target, part)
    return target
