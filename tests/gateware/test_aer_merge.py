"""AERMerge on Verilator: random idle on both inputs, random backpressure on the output,
a per-edge replay through the cycle-exact model, and a scoreboard of what went through."""

import pytest

import cocotb

from bioloop.gateware.aer_merge import AERMerge
from bioloop.host import aer
from bioloop.host.layouts import AERType
from bioloop.host.models.aer_merge import AERMerge as AERMergeModel
from bioloop.sim import runner
from bioloop.sim.bench import TB

LAST = 1 << 64          # TLAST above the 64-bit word in the AEROutBeat payload


def _factory(**_):
    return AERMerge()


class MergeTB(TB):
    def __init__(self, dut, p):
        super().__init__(dut, seed=runner.seed())
        dut.block_words.value = p["block_words"]
        dut.restart.value = 0
        self.host = self.source("host", idle=p["host_idle"])
        self.stim = self.source("stim", idle=p["stim_idle"])
        self.out = self.sink("out", backpressure=p["backpressure"])
        self.trace = self.record(self._sample)

    def _sample(self):
        """Per edge: host valid, stim valid, out ready, restart, and the output handshake."""
        d = self.dut
        hv, sv, ready = int(d.host__valid.value), int(d.stim__valid.value), int(d.out__ready.value)
        taken = int(d.out__valid.value) and ready
        return (bool(hv), bool(sv), bool(ready), bool(int(d.restart.value)),
                int(d.out__payload.value) if taken else None,
                int(d.host__payload.value) if hv else None, int(d.stim__payload.value) if sv else None)


@cocotb.test()
async def merge(dut):
    p = runner.params()
    tb = MergeTB(dut, p)
    await tb.reset()
    tb.recording = True
    n = p["words"]
    host_words = [aer.pack_one(i % 4096, 0, AERType.SPIKE, i) for i in range(n)]
    stim_words = [aer.pack_one(i % 64, 1, AERType.STIM, i) for i in range(n // 2)]
    tb.host.send(host_words)
    tb.stim.send(stim_words)
    restart_at = p.get("restart_at")
    while not (tb.host.idle_now and tb.stim.idle_now):
        await tb.cycles(1)
        if restart_at is not None and tb.cycle == restart_at:
            dut.restart.value = 1
            await tb.cycles(1)
            dut.restart.value = 0
    await tb.cycles(20)
    tb.recording = False

    # scoreboard: every word out exactly once, each input's order kept, TLAST per block
    got = [w for _, w in tb.out.received]
    words = [w & (LAST - 1) for w in got]
    assert sorted(words) == sorted(host_words + stim_words)
    assert [w for w in words if w in set(host_words)] == host_words
    assert [w for w in words if w in set(stim_words)] == stim_words
    if restart_at is None:
        lasts = [i for i, w in enumerate(got) if w & LAST]
        k = p["block_words"]
        assert lasts == list(range(k - 1, len(got), k))

    # cycle-exact replay through the model
    model = AERMergeModel()
    for hv, sv, ready, restart, out, hp, sp in tb.trace:
        sel_stim, taken, last = model.step(hv, sv, ready, p["block_words"])
        want = None
        if taken:
            want = (sp if sel_stim else hp) | (LAST if last else 0)
        assert out == want
        if restart:
            model.restart()
    both = sum(1 for hv, sv, *_ in tb.trace if hv and sv)
    runner.report(words=len(got), host=len(host_words), stim=len(stim_words), both_valid_edges=both,
                  edges=len(tb.trace))


@pytest.mark.parametrize("host_idle,stim_idle,backpressure,block_words,restart_at", [
    (0.0, 0.0, 0.0, 4, None), (0.3, 0.5, 0.4, 7, None), (0.6, 0.1, 0.7, 1, None),
    (0.2, 0.2, 0.3, 5, 150)])
def test_aer_merge(host_idle, stim_idle, backpressure, block_words, restart_at):
    report = runner.run(_factory, design="aer_merge", test_module="test_aer_merge",
                        bench_params={"host_idle": host_idle, "stim_idle": stim_idle,
                                      "backpressure": backpressure, "block_words": block_words,
                                      "restart_at": restart_at, "words": 600,
                                      "seed": 3 + block_words})
    assert report["words"] == report["host"] + report["stim"] == 900
    assert report["both_valid_edges"] > 0
