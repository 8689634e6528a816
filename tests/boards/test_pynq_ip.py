"""The pynq DefaultIP driver (bioloop.boards.pynq_ip) against a minimal fake of pynq.

The fake keeps what the driver relies on from pynq 4.0 (overlay.py:
DefaultIP registers ``bindto`` VLNVs through its metaclass and sets
``device`` and ``mmio`` from the IP description; ``Device.bitfile_name`` is
the loaded bitstream). Its MMIO at 0x4000_0000 is the Core model, so the
manifest is checked against registers a real core computes.
"""

import importlib
import sys
import types

import numpy as np
import pytest

from bioloop.boards import manifest, pynq_z2
from bioloop.boards.build import generate
from bioloop.host.backends import ModelBus
from bioloop.host.driver import Driver


def _fake_pynq(core_bus, registry):
    pynq = types.ModuleType("pynq")

    class RegisterIP(type):
        def __init__(cls, name, bases, attrs):
            for vlnv in attrs.get("bindto", []):
                registry[vlnv] = cls
            super().__init__(name, bases, attrs)

    class MMIO:
        def __init__(self, base, length, device=None):
            assert base == pynq_z2.CSR_BASE
            self.length = length

        def read(self, offset):
            return core_bus.read32(offset)

        def write(self, offset, value):
            core_bus.write32(offset, value)

    class DefaultIP(metaclass=RegisterIP):
        def __init__(self, description):
            self.device = description["device"]
            self.mmio = MMIO(description["phys_addr"], description["addr_range"])

    class Channel:
        idle = True

    class Overlay:
        def __init__(self, bitfile, download=True):
            self.bitfile, self.download = bitfile, download
            self.axi_dma_0 = types.SimpleNamespace(sendchannel=Channel(), recvchannel=Channel(),
                                                   mmio=None)

    pynq.DefaultIP, pynq.MMIO, pynq.Overlay = DefaultIP, MMIO, Overlay
    pynq.allocate = lambda shape, dtype: np.zeros(shape, dtype)
    pynq.PL = types.SimpleNamespace(bitfile_name=None)
    return pynq


@pytest.fixture
def overlay_dir(tmp_path_factory):
    folder = generate(tmp_path_factory.mktemp("b") / "pynq-z2", N=8, K=4, F=2)
    folder.bit.write_bytes(b"bitstream")
    folder.hwh.write_bytes(b"handoff")
    m = manifest.read(folder.manifest)
    m["files"] = {p.name: manifest.sha256_file(p) for p in (folder.bit, folder.hwh)}
    manifest.write(folder.manifest, m)
    return folder


@pytest.fixture
def with_pynq(monkeypatch):
    def install(core_bus):
        registry = {}
        monkeypatch.setitem(sys.modules, "pynq", _fake_pynq(core_bus, registry))
        import bioloop.boards.pynq_ip as mod
        monkeypatch.setattr(mod, "_CLASS", None)
        return mod, registry
    return install


def _description(folder):
    return {"phys_addr": pynq_z2.CSR_BASE, "addr_range": pynq_z2.csr_span(8, 4, 2),
            "type": pynq_z2.CORE_VLNV,
            "device": types.SimpleNamespace(bitfile_name=str(folder.bit))}


def test_binds_to_the_module_reference_and_is_a_driver(with_pynq, overlay_dir):
    mod, registry = with_pynq(ModelBus(8, 4, 2))
    cls = mod.BioloopCore
    assert registry[pynq_z2.CORE_VLNV] is cls
    drv = cls(_description(overlay_dir))
    assert isinstance(drv, Driver) and (drv.N, drv.K, drv.F) == (8, 4, 2)
    assert drv.manifest["core_sha256"] == manifest.read(overlay_dir.manifest)["core_sha256"]
    drv.refractory = 7
    assert drv.refractory == 7
    with pytest.raises(AttributeError):
        drv.refractoryy = 7


def test_refuses_a_core_that_does_not_match_the_manifest(with_pynq, overlay_dir):
    mod, _ = with_pynq(ModelBus(16, 4, 2))
    with pytest.raises(manifest.ManifestError, match="N 8 in the manifest, 16 on the core"):
        mod.BioloopCore(_description(overlay_dir))


def test_refuses_files_the_manifest_was_not_written_for(with_pynq, overlay_dir):
    mod, _ = with_pynq(ModelBus(8, 4, 2))
    overlay_dir.bit.write_bytes(b"another bitstream")
    with pytest.raises(manifest.ManifestError, match="sha256 differs"):
        mod.BioloopCore(_description(overlay_dir))


def test_imports_without_pynq(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynq", None)       # import pynq raises ImportError
    mod = importlib.import_module("bioloop.boards.pynq_ip")
    monkeypatch.setattr(mod, "_CLASS", None)
    from bioloop.boards.pynq_backend import BoardUnavailable
    with pytest.raises(BoardUnavailable, match=r"bioloop\[board\]"):
        mod.BioloopCore
