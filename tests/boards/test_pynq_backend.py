"""The pynq backend against a fake of the pynq objects that records every call.

pynq cannot run off the board, so a fake ``pynq`` module (Overlay, MMIO,
allocate and an AXI DMA with the PG021 S2MM_LENGTH register) is injected
through ``sys.modules``. Its MMIO is backed by CSRBankModel, so the real
Driver runs end to end over the real PynqBus.
"""

import sys
import types

import numpy as np
import pytest

from bioloop.boards import pynq_z2
from bioloop.boards.pynq_backend import BoardUnavailable, PynqBus
from bioloop.host.models.csr import CSRBankModel
from bioloop.host.regmap import RegisterMap
from bioloop.host.bus import Bus, BusTimeout
from bioloop.host.driver import Driver


class FakeBuffer(np.ndarray):
    """What ``pynq.allocate`` returns: an ndarray with cache and lifetime methods."""

    def freebuffer(self):
        self.log.append(("freebuffer", self.shape))

    def invalidate(self):
        self.log.append(("invalidate", self.shape))

    def flush(self):
        self.log.append(("flush", self.shape))


class FakeChannel:
    def __init__(self, name, log, mmio=None):
        self.name, self.log, self.mmio = name, log, mmio
        self.idle = True
        self.sent = []           # MM2S: the bytes of every transfer
        self.blocks = []         # S2MM: AER blocks the "core" will send
        self.armed = None
        self.stalled = False     # MM2S: the core does not accept samples
        self.error = False

    def transfer(self, array, start=0, nbytes=0):
        nbytes = nbytes or array.nbytes
        self.log.append((self.name, "transfer", start, nbytes))
        if self.name == "send":
            assert self.idle, "transfer() while the channel is busy"
            self.sent.append(bytes(array.view(np.uint8).reshape(-1)[start:start + nbytes]))
            self.idle = not self.stalled
        else:
            self.armed = array
            self.idle = False
            self.complete()

    def complete(self):
        """The core finishes a block (TLAST) if it has one."""
        if self.name == "recv" and self.armed is not None and self.blocks:
            block = self.blocks.pop(0)
            self.armed[:block.size] = block
            self.mmio.regs[pynq_z2.S2MM_LENGTH] = block.nbytes
            self.armed, self.idle = None, True


class FakeDMAMMIO:
    def __init__(self):
        self.regs = {}

    def read(self, offset):
        return self.regs.get(offset, 0)


class FakeDMA:
    def __init__(self, log):
        self.mmio = FakeDMAMMIO()
        self.sendchannel = FakeChannel("send", log)
        self.recvchannel = FakeChannel("recv", log, self.mmio)


def make_fake_pynq(regmap):
    log = []
    model = CSRBankModel(regmap)
    mod = types.ModuleType("pynq")

    class Overlay:
        def __init__(self, bitfile):
            log.append(("Overlay", bitfile))
            self.axi_dma_0 = FakeDMA(log)

    class MMIO:
        def __init__(self, base, length):
            log.append(("MMIO", base, length))

        def read(self, offset):
            log.append(("read", offset))
            return model.read(offset)[0]

        def write(self, offset, value):
            log.append(("write", offset, value))
            model.write(offset, value)

    def allocate(shape, dtype):
        log.append(("allocate", shape, np.dtype(dtype).name))
        buf = np.zeros(shape, dtype).view(FakeBuffer)
        buf.log = log
        return buf

    mod.Overlay, mod.MMIO, mod.allocate = Overlay, MMIO, allocate
    mod.log, mod.model = log, model
    return mod


@pytest.fixture
def fake(monkeypatch):
    mod = make_fake_pynq(RegisterMap(8, 4, 2))
    monkeypatch.setitem(sys.modules, "pynq", mod)
    return mod


def test_without_pynq_the_error_names_the_board_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynq", None)     # import pynq -> ImportError
    with pytest.raises(BoardUnavailable, match=r"bioloop\[board\].*'model' or 'verilator'"):
        PynqBus("core.bit")


def test_platform_facts():
    assert pynq_z2.PART == "xc7z020clg400-1"
    assert pynq_z2.FCLK0_HZ == 100_000_000
    assert pynq_z2.CSR_BASE == 0x4000_0000
    assert pynq_z2.csr_span() == 1 << RegisterMap().addr_width == 0x8000
    assert pynq_z2.csr_span(2, 1, 1) == 8192      # tables start at 0x1000


def test_driver_over_pynq_bus(fake):
    bus = PynqBus("core.bit", N=8, K=4, F=2, max_words=64)
    assert isinstance(bus, Bus)
    assert fake.log[:3] == [("Overlay", "core.bit"), ("MMIO", 0x4000_0000, 8192),
                            ("allocate", (64,), "uint64")]
    drv = Driver(bus)
    assert (drv.N, drv.K, drv.F) == (8, 4, 2)
    drv.thresholds[2] = 300
    drv.refractory = 12
    assert fake.model.table_writes == [("thresholds", 2, {"thresholds": 300})]
    assert ("write", RegisterMap(8, 4, 2).register("refractory").offset, 12) in fake.log
    with pytest.raises(ValueError, match="not a word inside"):
        bus.read32(8192)


def test_samples_go_in_blocks_of_whole_frames(fake):
    bus = PynqBus("core.bit", N=8, K=4, F=2)
    assert bus.frames_per_transfer == 1000          # 50 ms at 20 kHz
    drv = Driver(bus)
    samples = np.arange(-12, 12, dtype=np.int16).reshape(3, 8)
    drv.send_samples(samples)
    send = bus.dma.sendchannel
    # One transfer: the DMA's TLAST falls on the last beat of the last frame.
    assert [e for e in fake.log if e[0] == "send"] == [("send", "transfer", 0, 48)]
    assert send.sent == [samples.astype("<i2").tobytes()]
    bus2 = PynqBus("core.bit", N=8, K=4, F=2, frames_per_transfer=2)
    bus2.send_samples(samples.view("<u4"))
    assert bus2.dma.sendchannel.sent == [samples[:2].tobytes(), samples[2:].tobytes()]
    bus3 = PynqBus("core.bit", N=8, K=4, F=2, transfer_s=0.001, sample_rate_hz=1000)
    assert bus3.frames_per_transfer == 1
    bus3.send_samples(samples.view("<u4"))
    assert bus3.dma.sendchannel.sent == [samples[i].tobytes() for i in range(3)]


def test_send_timeout_reports_progress_and_recovers(fake):
    bus = PynqBus("core.bit", N=8, K=4, F=2, send_timeout_s=0.01, frames_per_transfer=1)
    send = bus.dma.sendchannel
    send.stalled = True                      # the core stops taking samples
    beats = np.zeros((3, 4), np.uint32)
    with pytest.raises(BusTimeout, match="1 of 3 frames were handed to the DMA") as info:
        bus.send_samples(beats)
    assert info.value.frames_sent == 1
    send.stalled, send.idle = False, True    # the core drains
    bus.send_samples(beats[1:])
    assert len(send.sent) == 3


def test_receive_waits_times_out_and_continues(fake):
    bus = PynqBus("core.bit", N=8, K=4, F=2, max_words=16)
    drv = Driver(bus)
    recv = bus.dma.recvchannel
    with pytest.raises(BusTimeout, match="stays armed"):
        drv.receive_words(timeout_s=0.01)
    arms = [e for e in fake.log if e[:2] == ("recv", "transfer")]
    assert arms == [("recv", "transfer", 0, 128)]
    block = np.arange(10, dtype=np.uint64) | (np.uint64(7) << np.uint64(32))
    recv.blocks.append(block)
    recv.complete()                          # TLAST arrives into the still-armed buffer
    got = drv.receive_words(timeout_s=0.01, max_words=6)
    np.testing.assert_array_equal(got, block[:6])
    np.testing.assert_array_equal(drv.receive_words(timeout_s=0.01), block[6:])
    assert len([e for e in fake.log if e[:2] == ("recv", "transfer")]) == 1   # not re-armed twice
    assert ("invalidate", (16,)) in fake.log
    recv.blocks.append(block[:3])
    np.testing.assert_array_equal(drv.receive_words(timeout_s=0.01), block[:3])
    got[:] = 0                               # returned words are the caller's own copy
    recv.blocks.append(block[:2])
    np.testing.assert_array_equal(drv.receive_words(timeout_s=0.01), block[:2])


def test_bad_arguments(fake):
    with pytest.raises(ValueError, match="bitfile"):
        PynqBus()
    with pytest.raises(ValueError, match="frames_per_transfer"):
        PynqBus("core.bit", frames_per_transfer=0)
    with pytest.raises(ValueError, match="transfer_s"):
        PynqBus("core.bit", transfer_s=0)
    bus = PynqBus("core.bit", N=8, K=4, F=2)
    with pytest.raises(TypeError, match="uint32"):
        bus.send_samples(np.zeros((2, 4), np.int16))
