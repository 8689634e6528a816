"""CSRBank on Verilator against CSRBankModel, through cocotbext-axi and raw AXI4-Lite.

The scoreboard is :class:`bioloop.host.models.csr.CSRBankModel`; the bus
traffic comes from cocotbext-axi's ``AxiLiteMaster`` (an independent AXI
implementation) with random pauses on all five channels, and from a raw
driver that forces AW before W, W before AW and both in the same cycle.
"""

import json
import logging
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from bioloop.gateware.csr import CSRBank
from bioloop.gateware.regmap_export import to_c_header, to_json, to_markdown, write_regmap
from bioloop.host.models.csr import CSRBankModel
from bioloop.host.regmap import OKAY, SLVERR
from bioloop.host.regmap import Access, RegisterMap
from bioloop.sim import runner


try:
    import cocotb
    from cocotb.triggers import ClockCycles, RisingEdge
    from cocotbext.axi import AxiLiteBus, AxiLiteMaster

    from cocotb.task import bridge, resume

    from bioloop.host.bus import BusError
    from bioloop.host.driver import Driver
    from bioloop.sim.bench import TB, wait_until
except ImportError:  # collected outside the simulator without the [sim] extra
    cocotb = None


def _factory(N, K, F, counter_bits, **_):
    return CSRBank(RegisterMap(N, K, F), counter_bits=counter_bits)


def _decode_port(table, raw: int) -> dict:
    """Unpack a WritePort ``data`` integer into ``{field: value}`` (independently of the bank)."""
    out = {}
    for f in table.fields:
        if f.member is None:
            off, width = 0, f.width
        else:
            off, width = table.layout.field(f.member)
        v = (raw >> off) & ((1 << width) - 1)
        if f.signed and v >> (width - 1):
            v -= 1 << width
        out[f.name] = v
    return out


if cocotb is not None:

    class CSRTB(TB):
        """Clock, reset, the AXI-Lite master, the model, and monitors of every bank output."""

        def __init__(self, dut, master=True):
            super().__init__(dut, seed=runner.seed())
            p = runner.params()
            self.regmap = RegisterMap(p["N"], p["K"], p["F"])
            self.model = CSRBankModel(self.regmap, counter_bits=p["counter_bits"])
            self.table_writes = []
            self.pulses = []
            for f in self.regmap.fields(Access.COUNTER):
                if f.source is None:
                    getattr(dut, f"count__{f.name}").value = 0
            dut.latency__valid.value = 0
            dut.latency__cycles.value = 0
            dut.theta_value.value = 0
            if master:
                bus = AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__")
                self.axil = AxiLiteMaster(bus, dut.clk, dut.rst)
                # One INFO line per transaction would dominate the run time.
                for log in (self.axil.write_if.log, self.axil.read_if.log):
                    log.setLevel(logging.WARNING)
            else:
                self.axil = None
                for s in ("awvalid", "wvalid", "arvalid", "awaddr", "wdata", "araddr",
                          "awprot", "arprot"):
                    getattr(dut, f"s_axil__{s}").value = 0
                dut.s_axil__wstrb.value = 0xF
                dut.s_axil__bready.value = 1
                dut.s_axil__rready.value = 1
            cocotb.start_soon(self._monitor())

        async def _monitor(self):
            pulses = [f.name for f in self.regmap.fields(Access.PULSE)]
            while True:
                await RisingEdge(self.clk)
                for t in self.regmap.tables:
                    if int(getattr(self.dut, f"{t.name}__en").value):
                        self.table_writes.append((
                            t.name, int(getattr(self.dut, f"{t.name}__addr").value),
                            _decode_port(t, int(getattr(self.dut, f"{t.name}__data").value))))
                for name in pulses:
                    if int(getattr(self.dut, name).value):
                        self.pulses.append(name)

        def pauses(self, rng, probability):
            """Random pauses on all five AXI channels (each stalls with ``probability``)."""
            def gen(r):
                while True:
                    yield r.random() < probability
            m = self.axil
            for ch in (m.write_if.aw_channel, m.write_if.w_channel, m.write_if.b_channel,
                       m.read_if.ar_channel, m.read_if.r_channel):
                ch.set_pause_generator(gen(random.Random(rng.random())))

        async def write(self, addr, data, strb=0xF):
            """A write through AxiLiteMaster; partial strobes become a short or offset write."""
            lanes = [b for b in range(4) if strb >> b & 1]
            if not lanes:
                return None
            lo, hi = lanes[0], lanes[-1]
            if lanes != list(range(lo, hi + 1)):   # AxiLiteMaster writes contiguous bytes only
                hi = lo
            strb = sum(1 << b for b in range(lo, hi + 1))
            payload = (data >> (8 * lo)).to_bytes(4, "little")[:hi - lo + 1]
            resp = await self.axil.write(addr + lo, payload)
            return strb, int(resp.resp)

        async def read(self, addr):
            resp = await self.axil.read(addr, 4)
            return int.from_bytes(resp.data, "little"), int(resp.resp)

        async def datapath_events(self, rng, cycles):
            """Random counter increments, latency measurements and theta_value for ``cycles``."""
            counters = [f for f in self.regmap.fields(Access.COUNTER) if f.source is None]
            for _ in range(cycles):
                incs = {}
                for f in counters:
                    n = rng.choice([0, 0, 0, 1, (1 << f.inc_width) - 1])
                    getattr(self.dut, f"count__{f.name}").value = n
                    incs[f.name] = n
                measure = rng.random() < 0.2
                lat = rng.randrange(0, 1 << 16) if rng.random() < 0.1 else rng.randrange(0, 40)
                self.dut.latency__valid.value = int(measure)
                self.dut.latency__cycles.value = lat
                theta = rng.randrange(1 << 16)
                self.dut.theta_value.value = theta
                await RisingEdge(self.clk)
                for name, n in incs.items():
                    self.model.increment(name, n)
                if measure:
                    self.model.measure("latency", lat)
                self.model.set_input("theta_value", theta)
            for f in counters:
                getattr(self.dut, f"count__{f.name}").value = 0
            self.dut.latency__valid.value = 0

    def _random_address(tb, rng):
        """A byte address: a register, a table word, or an unmapped hole."""
        rm = tb.regmap
        kind = rng.random()
        if kind < 0.55:
            return rng.choice(rm.registers).offset
        if kind < 0.85:
            t = rng.choice(rm.tables)
            return t.offset + 4 * rng.randrange(t.depth * t.words)
        # unmapped: gaps between register sections, the tail of a table window, the top
        while True:
            addr = rng.randrange(0, 1 << rm.addr_width) & ~3
            if rm.decode(addr) is None:
                return addr

    async def _overlapped(tb, rng):
        """Several writes and reads in flight at once (pipelined AW/W/B and AR/R).

        Writes go to distinct rw registers and reads to other registers, so the
        outcome does not depend on how the channels interleave.
        """
        rm = tb.regmap
        rw = [r for r in rm.registers if all(f.access is Access.RW for f in r.fields)]
        written = rng.sample(rw, k=min(3, len(rw)))
        others = [r for r in rm.registers if r not in written and r.name != "control"
                  and r.name != "status"]
        readers = rng.sample(others, k=3)
        values = [rng.randrange(1 << 32) for _ in written]
        writes = [cocotb.start_soon(tb.axil.write(r.offset, v.to_bytes(4, "little")))
                  for r, v in zip(written, values, strict=True)]
        expected = [tb.model.read(r.offset) for r in readers]
        reads = [cocotb.start_soon(tb.axil.read(r.offset, 4)) for r in readers]
        for task in writes:
            assert int((await task).resp) == OKAY
        for r, task, want in zip(readers, reads, expected, strict=True):
            got = await task
            assert (int.from_bytes(got.data, "little"), int(got.resp)) == want, r.name
        for r, v in zip(written, values, strict=True):
            tb.model.write(r.offset, v)
        return len(writes) + len(reads)

    async def _scoreboard_run(dut, ops, pause):
        started = time.perf_counter()
        tb = CSRTB(dut)
        await tb.reset()
        rng = random.Random(runner.seed() * 7 + ops)
        tb.pauses(rng, pause)
        stats = {"reads": 0, "writes": 0, "slverr": 0, "table_entries": 0, "saturated": 0}
        counters = set(tb.regmap.counters())
        maxcount = (1 << runner.params()["counter_bits"]) - 1
        # Reset values of every register first.
        for r in tb.regmap.registers:
            data, resp = await tb.read(r.offset)
            assert (data, resp) == tb.model.read(r.offset), f"reset value of {r.name}"
        for _ in range(ops):
            if rng.random() < 0.15:
                await tb.datapath_events(rng, rng.randrange(1, 30))
            if rng.random() < 0.1:
                stats["overlapped"] = stats.get("overlapped", 0) + await _overlapped(tb, rng)
                continue
            addr = _random_address(tb, rng)
            if rng.random() < 0.5:
                data = rng.choice([0, 0xFFFFFFFF, rng.randrange(1 << 32)])
                strb = 0xF if rng.random() < 0.7 else rng.randrange(1, 16)
                strb, resp = await tb.write(addr, data, strb)
                # writing clear_counters or soft_reset often would hide the counters
                want = tb.model.write(addr, data, strb)
                assert resp == want, f"BRESP at {addr:#x}: {resp} != {want}"
                stats["writes"] += 1
                stats["slverr"] += resp == SLVERR
            else:
                got = await tb.read(addr)
                want = tb.model.read(addr)
                assert got == want, f"read {addr:#x} ({tb.regmap.decode(addr)}): {got} != {want}"
                stats["reads"] += 1
                stats["slverr"] += got[1] == SLVERR
                hit = tb.regmap.decode(addr)
                if hit and hit[0] == "register" and hit[1].name in counters:
                    stats["saturated"] += got[0] == maxcount
        await ClockCycles(dut.clk, 4)
        # Every counter, status and probe register at the end.
        for r in tb.regmap.registers:
            got = await tb.read(r.offset)
            assert got == tb.model.read(r.offset), f"final {r.name}"
        assert tb.table_writes == tb.model.table_writes
        assert tb.pulses == tb.model.pulses
        stats["table_entries"] = len(tb.table_writes)
        stats["pulses"] = len(tb.pulses)
        stats["cycles"] = tb.cycle
        stats["wall_s"] = time.perf_counter() - started
        return stats

    @cocotb.test()
    async def random_traffic(dut):
        """Random reads/writes/strobes/unmapped addresses with random pauses, against the model."""
        p = runner.params()
        stats = await _scoreboard_run(dut, p["ops"], pause=0.3)
        runner.report(**{f"random_{k}": v for k, v in stats.items()})

    @cocotb.test()
    async def unpaused_traffic(dut):
        """The same scoreboard with no pauses (back-to-back transactions)."""
        p = runner.params()
        stats = await _scoreboard_run(dut, p["ops"] // 4, pause=0.0)
        runner.report(**{f"unpaused_{k}": v for k, v in stats.items()})

    async def _raw_write(tb, addr, data, strb, aw_delay, w_delay):
        """Drive AW and W ourselves: AW valid after ``aw_delay`` cycles, W after ``w_delay``.

        Returns (BRESP, cycles from the first valid to BVALID).
        """
        dut = tb.dut
        aw_done = w_done = False
        dut.s_axil__awaddr.value = addr
        dut.s_axil__wdata.value = data
        dut.s_axil__wstrb.value = strb
        start = None
        for cyc in range(100):
            dut.s_axil__awvalid.value = int(cyc >= aw_delay and not aw_done)
            dut.s_axil__wvalid.value = int(cyc >= w_delay and not w_done)
            if start is None and (cyc >= aw_delay or cyc >= w_delay):
                start = cyc
            await RisingEdge(tb.clk)
            if int(dut.s_axil__awvalid.value) and int(dut.s_axil__awready.value):
                aw_done = True
            if int(dut.s_axil__wvalid.value) and int(dut.s_axil__wready.value):
                w_done = True
            if aw_done:
                dut.s_axil__awvalid.value = 0
            if w_done:
                dut.s_axil__wvalid.value = 0
            if int(dut.s_axil__bvalid.value):   # bready is held high
                return int(dut.s_axil__bresp.value), cyc + 1 - start
        raise AssertionError(f"no BVALID for write to {addr:#x}")

    async def _raw_read(tb, addr):
        dut = tb.dut
        dut.s_axil__araddr.value = addr
        dut.s_axil__arvalid.value = 1
        await RisingEdge(tb.clk)
        while not int(dut.s_axil__arready.value):
            await RisingEdge(tb.clk)
        dut.s_axil__arvalid.value = 0
        await wait_until(tb, lambda: int(dut.s_axil__rvalid.value), 20, "RVALID")
        value = int(dut.s_axil__rdata.value), int(dut.s_axil__rresp.value)
        await RisingEdge(tb.clk)
        return value

    @cocotb.test()
    async def write_orderings(dut):
        """AW before W, W before AW, both together: same effect, OKAY; unmapped: SLVERR, no effect."""
        tb = CSRTB(dut, master=False)
        await tb.reset()
        rm = tb.regmap
        scratch = rm.register("scratch").offset
        rng = random.Random(5)
        latencies = {}
        for aw_delay, w_delay in [(0, 0), (0, 1), (0, 7), (1, 0), (9, 0), (3, 3)]:
            value = rng.randrange(1 << 32)
            resp, cycles = await _raw_write(tb, scratch, value, 0xF, aw_delay, w_delay)
            assert resp == OKAY
            assert await _raw_read(tb, scratch) == (value, OKAY), (aw_delay, w_delay)
            latencies[f"{aw_delay}-{w_delay}"] = cycles
        # WSTRB with garbage in the unstrobed byte lanes: only strobed bytes change.
        for strb in (0b0101, 0b1000, 0b0110):
            mask = sum(0xFF << (8 * b) for b in range(4) if strb >> b & 1)
            expect = (0xA5A5A5A5 & mask) | (value & ~mask & 0xFFFFFFFF)
            resp, _ = await _raw_write(tb, scratch, 0xA5A5A5A5, strb, 0, 0)
            assert resp == OKAY and await _raw_read(tb, scratch) == (expect, OKAY), strb
            value = expect
        # Unmapped write: SLVERR, the scratch register keeps its value.
        hole = next(a for a in range(0, 1 << rm.addr_width, 4) if rm.decode(a) is None)
        for aw_delay, w_delay in [(0, 0), (0, 4), (4, 0)]:
            resp, _ = await _raw_write(tb, hole, 0, 0xF, aw_delay, w_delay)
            assert resp == SLVERR
            assert (await _raw_read(tb, hole))[1] == SLVERR
        assert (await _raw_read(tb, scratch))[0] == value
        runner.report(write_latency_cycles=latencies)

    @cocotb.test()
    async def clear_races_increment(dut):
        """An event in the cycle of clear_counters counts after the clear; a set beats a W1C clear."""
        tb = CSRTB(dut, master=False)
        await tb.reset()
        rm = tb.regmap
        frames = rm.register("frames").offset
        control = rm.register("control")
        clear_bit = rm.field("clear_counters")[1].encode(1)
        status = rm.register("status").offset
        fe_bit = rm.field("framing_error")[1].encode(1)
        # Count 5 frames and 1 framing error.
        dut.count__frames.value = 1
        await ClockCycles(tb.clk, 5)
        dut.count__frames.value = 0
        dut.count__framing_errors.value = 1
        await RisingEdge(tb.clk)
        dut.count__framing_errors.value = 0
        await RisingEdge(tb.clk)
        assert await _raw_read(tb, frames) == (5, OKAY)
        assert (await _raw_read(tb, status))[0] & fe_bit
        # AW and W handshake together at edge e; the write happens at edge e+1. An increment
        # presented between e and e+1 must survive the clear, as in the model.
        for reg_addr, data, counter in ((control.offset, clear_bit, "frames"),
                                        (status, fe_bit, "framing_errors")):
            dut.s_axil__awaddr.value = reg_addr
            dut.s_axil__wdata.value = data
            dut.s_axil__wstrb.value = 0xF
            dut.s_axil__awvalid.value = 1
            dut.s_axil__wvalid.value = 1
            await RisingEdge(tb.clk)                   # edge e: both handshakes
            assert int(dut.s_axil__awready.value) and int(dut.s_axil__wready.value)
            dut.s_axil__awvalid.value = 0
            dut.s_axil__wvalid.value = 0
            getattr(dut, f"count__{counter}").value = 1
            await RisingEdge(tb.clk)                   # edge e+1: the write and the increment
            getattr(dut, f"count__{counter}").value = 0
            await RisingEdge(tb.clk)
            assert int(dut.s_axil__bvalid.value) == 0 or int(dut.s_axil__bresp.value) == OKAY
            await ClockCycles(tb.clk, 2)
        assert await _raw_read(tb, frames) == (1, OKAY)           # cleared, then +1
        assert (await _raw_read(tb, status))[0] & fe_bit           # set wins over clear
        resp, _ = await _raw_write(tb, status, fe_bit, 0xF, 0, 0)
        assert (await _raw_read(tb, status))[0] & fe_bit == 0      # a plain W1C clears it


    class AxiLiteCSRBus:
        """The CSR half of the bus protocol over cocotbext-axi, for a Driver in a bridge thread.

        Every call enters the simulator with ``cocotb.task.resume`` (DESIGN.md §7);
        SLVERR becomes BusError. Streams are not part of a bare CSR bank.
        """

        def __init__(self, tb):
            self.tb = tb
            self.transactions = 0

        def read32(self, addr):
            data, resp = resume(self.tb.read)(addr)
            self.transactions += 1
            if resp != OKAY:
                raise BusError(f"SLVERR reading {addr:#x}")
            return data

        def write32(self, addr, value):
            _, resp = resume(self.tb.write)(addr, value)
            self.transactions += 1
            if resp != OKAY:
                raise BusError(f"SLVERR writing {addr:#x}")

        def send_samples(self, beats):
            raise BusError("a bare CSR bank has no sample stream")

        def receive_words(self, max_words, timeout_s):
            raise BusError("a bare CSR bank has no AER stream")

    @cocotb.test()
    async def driver_on_rtl(dut):
        """The synchronous Driver, run through cocotb's bridge, against the RTL bank."""
        tb = CSRTB(dut)
        await tb.reset()
        tb.pauses(random.Random(3), 0.25)
        rm = tb.regmap
        # Datapath events before the driver looks: 7 frames, 2 overflows, one latency of 9.
        dut.count__frames.value = 1
        dut.count__overflows.value = 2
        await RisingEdge(tb.clk)
        dut.count__overflows.value = 0
        dut.latency__cycles.value = 9
        dut.latency__valid.value = 1
        await ClockCycles(tb.clk, 6)
        dut.count__frames.value = 0
        dut.latency__valid.value = 0
        dut.theta_value.value = 321
        bus = AxiLiteCSRBus(tb)
        rng = random.Random(11)
        scalars = {f.name: rng.randint(f.lo, f.hi) for f in rm.fields(Access.RW)
                   if f.name not in ("enable", "homeo_enable")}
        # The driver keeps theta_min <= theta_max (it refuses the other order): draw them as a pair.
        scalars["theta_min"], scalars["theta_max"] = sorted((scalars["theta_min"], scalars["theta_max"]))

        def session():
            drv = Driver(bus)
            assert (drv.N, drv.K, drv.F) == (rm.N, rm.K, rm.F)
            drv.set_theta_limits(scalars["theta_min"], scalars["theta_max"])
            for name, value in scalars.items():
                if name not in ("theta_min", "theta_max"):
                    setattr(drv, name, value)
            readback = {name: getattr(drv, name) for name in scalars}
            drv.enable()
            drv.homeo_enable = True
            drv.soft_reset()
            assert drv.enabled and drv.homeo_enable == 1
            counters = drv.counters
            status = drv.status
            probe = drv.latency_probe
            drv.clear_status("overflow")
            after_clear = drv.status
            n = bus.transactions
            try:
                drv.thresholds[0] = 1 << 15
            except ValueError:
                pass
            assert bus.transactions == n, "an out-of-range value reached the bus"
            drv.thresholds[:] = list(range(10, 10 + rm.N))
            drv.polarity[1] = "both"
            drv.routes.set(rm.N - 1, [("stim", rm.K - 1, -256), ("host", 77, 384)])
            try:
                bus.read32(0x3C)
                slverr = False
            except BusError:
                slverr = True
            return readback, counters, status, probe, after_clear, slverr

        readback, counters, status, probe, after_clear, slverr = await bridge(session)()
        assert readback == scalars
        assert counters["frames"] == 7 and counters["overflows"] == 2
        assert counters["latency_samples"] == 6
        assert status["overflow"] and not after_clear["overflow"]
        assert probe == (9, 9, 6)
        assert slverr
        await ClockCycles(tb.clk, 2)
        F = rm.F
        want = [("thresholds", c, {"thresholds": 10 + c}) for c in range(rm.N)]
        want += [("polarity", 1, {"polarity": 2}),
                 ("route_count", rm.N - 1, {"route_count": 0}),
                 ("routes", (rm.N - 1) * F, {"route_target": rm.K - 1, "route_port": 0,
                                             "route_weight": -256}),
                 ("routes", (rm.N - 1) * F + 1, {"route_target": 77, "route_port": 1,
                                                 "route_weight": 384}),
                 ("route_count", rm.N - 1, {"route_count": 2})]
        assert tb.table_writes == want
        assert tb.pulses == ["soft_reset"]
        runner.report(driver_transactions=bus.transactions)


def _params(N, K, F, counter_bits, ops):
    return {"N": N, "K": K, "F": F, "counter_bits": counter_bits, "ops": ops}


@pytest.mark.parametrize("N,K,F,counter_bits,ops", [
    (4, 4, 2, 6, 500),                        # small counters: saturation is reached
    pytest.param(64, 64, 16, 32, 150, marks=pytest.mark.long),   # the default Core size
    pytest.param(4, 4, 2, 6, 1200, marks=pytest.mark.long),
    pytest.param(64, 64, 16, 32, 800, marks=pytest.mark.long),
])
def test_csr_bank(N, K, F, counter_bits, ops):
    report = runner.run(_factory, design="csr_bank",
                        test_module="test_csr", bench_params=_params(N, K, F, counter_bits, ops))
    # The bench must have exercised what it claims to.
    assert report["random_slverr"] > 0 and report["random_table_entries"] > 0
    assert report["random_reads"] > 0 and report["random_writes"] > 0
    assert report["random_overlapped"] > 0
    assert report["driver_transactions"] > 2 * N
    if counter_bits < 8:
        assert report["random_saturated"] > 0
    # AW and W valid together at edge 0 -> handshake at edge 1 -> BVALID registered at edge 2,
    # sampled by the master at edge 3 (module docstring of bioloop.gateware.csr).
    assert report["write_latency_cycles"]["0-0"] == 3


def test_model_semantics():
    """The model itself, against hand-derived expectations of the documented semantics."""
    rm = RegisterMap(4, 4, 2)
    m = CSRBankModel(rm, counter_bits=4)
    scratch = rm.register("scratch").offset
    assert m.write(scratch, 0x11223344) == OKAY
    assert m.write(scratch, 0xAABBCCDD, strb=0b0101) == OKAY   # bytes 0 and 2 only
    assert m.read(scratch) == (0x11BB33DD, OKAY)
    m.increment("frames", 20)
    assert m.read(rm.register("frames").offset) == (15, OKAY)   # saturates at 2**4 - 1
    m.increment("overflows", 1)
    status = rm.register("status").offset
    ov = rm.field("overflow")[1].encode(1)
    assert m.read(status)[0] == ov
    m.write(status, ov, strb=0b0010)                            # the bit is in byte 0: no clear
    assert m.read(status)[0] == ov
    m.write(status, ov)
    assert m.read(status)[0] == 0
    m.measure("latency", 9)
    m.measure("latency", 4)
    assert m.read(rm.register("latency_last").offset)[0] == 4
    assert m.read(rm.register("latency_max").offset)[0] == 9
    assert m.read(rm.register("latency_samples").offset)[0] == 2
    routes = rm.table("routes")
    assert m.write(routes.offset + 3 * 8, (1 << 31) | 7) == OKAY          # entry 3, word 0
    assert m.table_writes == []
    assert m.write(routes.offset + 3 * 8 + 4, 0xFF80) == OKAY             # word 1 commits
    assert m.table_writes == [("routes", 3, {"route_target": 7, "route_port": 1,
                                             "route_weight": -128})]
    assert m.read(routes.offset) == (0, OKAY)
    assert m.read(0x3C) == (0, SLVERR) and m.write(0x3C, 1) == SLVERR
    assert m.write(rm.register("id").offset, 0) == OKAY                   # ignored
    assert m.read(rm.register("id").offset)[0] == 0x424C4F50


# ---- the map and its generated views ------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("N,K,F", [(64, 64, 16), (2, 1, 1), (4096, 4096, 256), (6, 3, 5)])
def test_map_has_no_overlaps_and_aligned_windows(N, K, F):
    rm = RegisterMap(N, K, F)
    spans = [(r.offset, r.offset + 4, r.name) for r in rm.registers]
    spans += [(t.offset, t.offset + t.size, t.name) for t in rm.tables]
    spans.sort()
    for (a0, a1, an), (b0, b1, bn) in zip(spans, spans[1:], strict=False):
        assert a1 <= b0, f"{an} overlaps {bn}"
    for t in rm.tables:
        assert t.offset % t.size == 0 and t.size >= t.depth * t.stride
        assert t.offset + t.size <= 1 << rm.addr_width
        assert (1 << t.addr_width) >= t.depth
    # scalar offsets do not move with the parameters (the driver reads N, K, F there first)
    default = RegisterMap()
    assert [(r.name, r.offset) for r in rm.registers] == [(r.name, r.offset) for r in default.registers]
    names = [f.name for f in rm.fields()] + [t.name for t in rm.tables]
    assert len(names) == len(set(names)), "one name per concept"


def test_decode_agrees_with_the_json():
    rm = RegisterMap(4, 4, 2)
    d = json.loads(to_json(rm))
    regs = {r["offset"]: r["name"] for r in d["registers"]}
    for addr in range(0, 1 << rm.addr_width, 4):
        hit = rm.decode(addr)
        in_table = [t for t in d["tables"] if t["offset"] <= addr < t["offset"] + t["depth"] * t["stride"]]
        if addr in regs:
            assert hit[0] == "register" and hit[1].name == regs[addr]
        elif in_table:
            (t,) = in_table
            i = (addr - t["offset"]) // 4
            assert hit[0] == "table" and hit[1].name == t["name"]
            assert hit[2:] == (i // t["words"], i % t["words"])
        else:
            assert hit is None, hex(addr)


@pytest.mark.parametrize("args,error,match", [
    ((3, 4, 2), ValueError, "N = 3 must be even"),
    ((0, 4, 2), ValueError, "N = 0 is out of range 2..4096"),
    ((4098, 4, 2), ValueError, "N = 4098"),
    ((4, 0, 2), ValueError, "K = 0"),
    ((4, 4, 0), ValueError, "F = 0"),
    ((4, 4, 257), ValueError, "F = 257"),
    ((64.0, 4, 2), TypeError, "N must be an integer"),
])
def test_bad_parameters(args, error, match):
    with pytest.raises(error, match=match):
        RegisterMap(*args)


def test_bank_parameters_are_checked():
    with pytest.raises(TypeError, match="RegisterMap"):
        CSRBank(64)
    with pytest.raises(ValueError, match="counter_bits"):
        CSRBank(RegisterMap(4, 4, 2), counter_bits=40)


def test_generated_files_are_deterministic_and_docs_are_fresh(tmp_path):
    a = write_regmap(tmp_path / "a_hdl", tmp_path / "a_docs")
    b = write_regmap(tmp_path / "b_hdl", tmp_path / "b_docs")
    for pa, pb in zip(a, b, strict=True):
        assert pa.read_bytes() == pb.read_bytes()
    committed = ROOT / "docs" / "regmap.md"
    assert committed.read_text() == (tmp_path / "a_docs" / "regmap.md").read_text(), \
        "docs/regmap.md is stale: run `make hdl`"
    d = json.loads((tmp_path / "a_hdl" / "regmap.json").read_text())
    assert d["parameters"] == {"N": 64, "K": 64, "F": 16}
    rows = [line for line in to_markdown(RegisterMap()).splitlines() if line.startswith("| 0x")]
    assert len(rows) == len(RegisterMap().registers) + len(RegisterMap().tables)


def test_c_header_compiles_and_agrees_with_the_json(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc/gcc) to compile hdl/regmap.h")
    rm = RegisterMap(64, 64, 16)
    (tmp_path / "regmap.h").write_text(to_c_header(rm))
    checks = ['"%s %u\\n", "thresholds", BIOLOOP_THRESHOLDS_BASE',
              '"%s %u\\n", "routes", BIOLOOP_ROUTES_BASE',
              '"%s %u\\n", "routes_stride", BIOLOOP_ROUTES_STRIDE',
              '"%s %u\\n", "status", BIOLOOP_STATUS_OFFSET',
              '"%s %u\\n", "overflow_mask", BIOLOOP_STATUS_OVERFLOW_MASK',
              '"%s %u\\n", "weight_word", BIOLOOP_ROUTE_WEIGHT_WORD',
              '"%s %u\\n", "port_mask", BIOLOOP_ROUTE_PORT_MASK',
              '"%s %u\\n", "id", BIOLOOP_ID']
    body = "\n".join(f"    printf({c});" for c in checks)
    (tmp_path / "main.c").write_text(f'#include <stdio.h>\n#include "regmap.h"\n'
                                     f"int main(void) {{\n{body}\n    return 0;\n}}\n")
    subprocess.run([cc, "-Wall", "-Werror", "-o", str(tmp_path / "main"), str(tmp_path / "main.c")],
                   check=True, cwd=tmp_path)
    out = dict(line.split() for line in subprocess.run(
        [str(tmp_path / "main")], check=True, capture_output=True, text=True).stdout.splitlines())
    d = json.loads(to_json(rm))
    tables = {t["name"]: t for t in d["tables"]}
    regs = {r["name"]: r for r in d["registers"]}
    assert int(out["thresholds"]) == tables["thresholds"]["offset"]
    assert int(out["routes"]) == tables["routes"]["offset"]
    assert int(out["routes_stride"]) == 8
    assert int(out["status"]) == regs["status"]["offset"]
    ov = next(f for f in regs["status"]["fields"] if f["name"] == "overflow")
    assert int(out["overflow_mask"]) == 1 << ov["lsb"]
    assert int(out["weight_word"]) == 1 and int(out["port_mask"]) == 1 << 31
    assert int(out["id"]) == 0x424C4F50
