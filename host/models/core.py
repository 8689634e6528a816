"""Cycle-exact model of the gateware ``Core``: the block models wired as in the RTL.

One :meth:`Core.step` is one rising clock edge. Every block reads the values
the others showed *before* the edge, as flip-flops do; the wiring, the AER
output merge, the counters and the latency probe follow
:mod:`bioloop.gateware.core` line by line (``docs/core.md`` lists the
timing). Three accelerations, none changing a bit of the result
(``Core.fast = False`` turns them off; ``docs/core.md``, "The model"): with
numba, :meth:`Core.run_beats` and :meth:`Core.idle` run the edges in one
compiled loop (:mod:`bioloop.host.models.core_kernel`); otherwise the
observers (Safety with the lanes, the frame LED sums, the probe) are logged by
:meth:`Core.step` and run over many edges at once (:meth:`Core.settle`), and
long stretches in which nothing can happen but free-running state (LFSRs,
Safety's duty window, pulse envelopes, frame ticks) are taken in bulk through
:mod:`bioloop.host.models.core_fast`, which uses only the public methods of
the block models. The equivalence with the RTL is a test
(``tests/gateware/test_core.py``).

Configuration changes go through :meth:`csr_write` at the edge the RTL's
CSR bank performs the write; the blocks see register fields from the next
edge and table entries from the edge after (the bank registers its write
ports), exactly as in the RTL.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from bioloop.host.layouts import (ADDRESS_BITS, AER_WORD, LATENCY_BITS, PROBE_OFFSET, SAMPLE_BEAT, THETA_INIT,
                                  TYPE_BITS, AERType, Port)
from bioloop.host.regmap import RegisterMap
from bioloop.host.models.csr import CSRBankModel
from bioloop.host.aer import pack_one

from . import core_kernel
from .aer_merge import AERMerge
from .aer_path import AERPath
from .core_fast import QuietStretches
from .homeostasis import Homeostasis, HomeostasisConstants
from .stochastic_lanes import StochasticLanes
from .aer_router import Route
from .core_budget import check_core_budget, min_frame_cycles
from .safety import Safety
from .stim_unit import StimUnit

__all__ = ["Core", "PROBE_OFFSET", "LATENCY_BITS"]

_MASK16 = (1 << LATENCY_BITS) - 1
#: Shorter idle stretches are stepped in Python (the compiled kernel's set-up costs more).
_KERNEL_MIN_EDGES = 64
_LAST = SAMPLE_BEAT.offsets["last"]
_TYPE, _ADDRESS = AER_WORD.offsets["type"], AER_WORD.offsets["address"]
_TYPE_MASK = (1 << TYPE_BITS) - 1
_ADDRESS_MASK = (1 << ADDRESS_BITS) - 1


class Core:
    """Model of :class:`bioloop.gateware.core.Core` (same parameters).

    Starts at the release of reset (edge 0 is the last reset edge). The model
    keeps the AER words the output handed over in :attr:`words` (with their
    TLAST flags in :attr:`lasts`), and, while :attr:`frame_leds` is not None,
    sums the LED vector over the cycles of each frame (the edges at which its
    beats were handshaked).
    """

    def __init__(self, n_channels: int = 64, n_lanes: int = 64, fanout: int = 16, *,
                 seed0: int = 0xACE1, lane_mode: str = "independent", pulse_init: int = 20,
                 theta_init: int = THETA_INIT, fifo_depth: int = 16, duty_window: int = 1_000_000,
                 limit_pulse: int = 500_000, limit_duty: int | None = None,
                 limit_lanes: int | None = None, safety_cadence: str = "sweep",
                 stim_cadence: str = "sweep", homeo_cadence: str = "sweep",
                 lanes_cadence: str = "sweep", encoder_cadence: str = "queue",
                 sample_rate_hz: float = 20_000):
        check_core_budget(n_channels, n_lanes, fanout, sample_rate_hz=sample_rate_hz,
                          stim_cadence=stim_cadence)
        self.regmap = rm = RegisterMap(n_channels, n_lanes, fanout)
        N, K, F = n_channels, n_lanes, fanout
        self.N, self.K, self.F = N, K, F
        self.bank = CSRBankModel(rm)
        self.bank.set_input("min_frame_cycles", min_frame_cycles(n_lanes, stim_cadence))
        v = self.bank.values
        self.path = AERPath(N, F, refractory=v["refractory"], source=v["aer_source"],
                            encoder_cadence=encoder_cadence)
        self.unit = StimUnit(K, pulse_lengths=pulse_init, leak_shift=v["leak_shift"], source=v["aer_source"],
                             cadence=stim_cadence)
        self.homeo = Homeostasis(K, theta_init=theta_init, window_frames=v["homeo_window"],
                                 theta_min=v["theta_min"], theta_max=v["theta_max"],
                                 enable=bool(v["homeo_enable"]), n_channels=N, cadence=homeo_cadence)
        limit_duty = duty_window // 2 if limit_duty is None else limit_duty
        limit_lanes = K if limit_lanes is None else limit_lanes
        self.safety = Safety(K, duty_window, limit_pulse, limit_duty, limit_lanes, pulse_bits=20,
                             cadence=safety_cadence)
        self.bank.set_input("safety_duty_window", self.safety.duty_window)   # rounded to whole sweeps
        self.lanes = StochasticLanes(K, seed0, lane_mode, cadence=lanes_cadence)
        self.codes = np.zeros(K, dtype=np.int64)
        self.targets = np.zeros(K, dtype=np.int64)
        self.fifo_depth = fifo_depth
        self._sync_registers()

        self.fast = True                 # take quiet stretches in bulk (same result, faster)
        self.accelerator = QuietStretches(self)
        self.edge_count = 0              # edges since reset release
        self.sweep_end = N // 2          # samples are not ready up to and including this edge
        self.tick = False                # frame_tick as visible before the next edge
        # AER output merge
        self.merge = AERMerge()
        # STIM FIFO (SyncFIFOBuffered: an inner queue of depth-1 and an output register)
        self.inner: deque[int] = deque()
        self.r_rdy = False
        self.r_data = 0
        self.stim_lost_reg = 0           # STIM words lost and not yet reported (20-bit saturating)
        self.stim_lost_strobe = False
        # counter plumbing (as in the RTL: strobes registered, deltas of block counters)
        self.fire_strobe = None          # lane of the fire visible now, or None
        self.clamp_strobe = False
        self.prev = {"framing_errors": 0, "unmapped": 0, "lost": 0}
        self.lost_due = 0
        # latency probe
        self.stamps = np.zeros(max(1, N // 2), dtype=np.int64)
        self.stamp_pipe = [0, 0]         # read data, then the copy aligned with the fire strobe
        self.armed = False
        self.probe_lane = 0
        self.probe_start = 0
        self.pulse_d = False
        self.probes: list[int] = []      # every measurement, for tests
        # pending configuration (edge -> callables) and outputs
        self._pending: dict[int, list] = {}
        self.words: list[int] = []
        self.lasts: list[bool] = []
        self.frame_leds = None           # a FrameLeds (bioloop.host.backends) while sending
        self._incs: dict[str, int] = {}  # counter increments not yet handed to the bank
        self._observed: list[tuple] = [] # edges whose observers are not run yet (settle())
        self._routes = None              # route_arrays(), until the next table write

    # -- configuration -------------------------------------------------------------------

    def _sync_registers(self) -> None:
        """Copy every register field of the bank into the block models."""
        v = self.bank.values
        self.enable = bool(v["enable"])
        self.block_words = v["aer_block_words"]
        det, enc = self.path.detector, self.path.encoder
        det.refractory = v["refractory"]
        enc.source = v["aer_source"]
        self.unit.source = v["aer_source"]
        self.unit.leak_shift = v["leak_shift"]
        h = self.homeo
        h.window_frames = v["homeo_window"]
        h.constants = HomeostasisConstants(self.targets.copy(), v["homeo_gain"], v["homeo_shift"])
        h.theta_min, h.theta_max = v["theta_min"], v["theta_max"]
        h.enable = bool(v["homeo_enable"])
        self.safety.set_caps(v["safety_max_pulse"], v["safety_max_duty"], v["safety_max_lanes"])

    def route_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The routing table as int64 arrays: port, target, weight (N, F) and the counts (N,)."""
        if self._routes is None:
            r = self.path.router
            a = np.array([[(int(e.port), e.target, e.weight) for e in row] for row in r.table], dtype=np.int64)
            self._routes = (np.ascontiguousarray(a[:, :, 0]), np.ascontiguousarray(a[:, :, 1]),
                            np.ascontiguousarray(a[:, :, 2]), np.array(r.counts, dtype=np.int64))
        return self._routes

    def _apply_table(self, name: str, entry: int, fields: dict) -> None:
        F = self.F
        if name in ("route_count", "routes"):
            self._routes = None
        if name == "thresholds":
            self.path.detector.thresholds[entry] = fields["thresholds"]
        elif name == "polarity":
            self.path.detector.polarity[entry] = fields["polarity"]
        elif name == "route_count":
            self.path.router.counts[entry] = fields["route_count"]
        elif name == "routes":
            a, slot = divmod(entry, F)
            self.path.router.table[a][slot] = Route(Port(fields["route_port"]), fields["route_target"],
                                                    fields["route_weight"])
        elif name == "theta":
            self.homeo.theta[entry] = fields["theta"]
        elif name == "homeo_src":
            self.homeo.src[entry] = fields["homeo_src"]
        elif name == "homeo_target":
            self.targets[entry] = fields["homeo_target"]
            self.homeo.constants = HomeostasisConstants(self.targets.copy(), self.homeo.constants.gain,
                                                        self.homeo.constants.shift)
        elif name == "lane_codes":
            # Visits before this edge used the old code: fix the bits they left first.
            self.lanes.bits(self.codes, 0, edge=max(self.edge_count, self.lanes.edge))
            self.codes[entry] = fields["lane_codes"]
        elif name == "pulse_lengths":
            self.unit.pulse_lengths[entry] = fields["pulse_lengths"]
        else:  # pragma: no cover - the register map defines the tables
            raise KeyError(name)

    def count(self, name: str, n: int) -> None:
        """``n`` events of counter ``name``, handed to the bank before its next access."""
        self._incs[name] = self._incs.get(name, 0) + n

    def next_config_edge(self) -> int | None:
        """The first edge at which a pending configuration change acts, if any."""
        return min(self._pending) if self._pending else None

    def quiet(self, first: int | None = None, last: int | None = None) -> bool:
        """Nothing in flight (AER path, output merge, STIM FIFO, strobes, counter deltas) and no
        configuration change due at edges ``first .. last`` (default: the coming edge). Quiet
        edges can be taken in bulk (:mod:`bioloop.host.models.core_fast`); the observers
        (Safety, the probe) may be busy."""
        first = self.edge_count + 1 if first is None else first
        last = first if last is None else last
        p, enc, r = self.path, self.path.encoder, self.path.router
        if not p.quiet or not self.merge.idle or self.inner or self.r_rdy:
            return False
        if self.stim_lost_reg or self.stim_lost_strobe or self.fire_strobe is not None:
            return False
        if self.lost_due or self.unit.staged_lane is not None or enc.lost_new:
            return False
        if (self.prev["framing_errors"] != p.detector.framing_errors or self.prev["unmapped"] != r.unmapped
                or self.prev["lost"] != enc.lost):
            return False
        return not any(first <= e <= last for e in self._pending)

    def _flush(self) -> None:
        """Hand the buffered increments to the bank (saturating sums commute)."""
        for name, n in self._incs.items():
            self.bank.increment(name, n)
        self._incs.clear()

    def _at(self, edge: int, action) -> None:
        self._pending.setdefault(edge, []).append(action)

    def csr_write(self, addr: int, value: int) -> int:
        """The bank performs an AXI write at the coming edge; returns BRESP.

        Register fields are in force for the blocks from the edge after,
        table entries from the one after that; ``clear_counters`` acts at
        this edge, ``soft_reset`` resets the AER path at the next one.
        """
        self.settle()
        self._flush()
        n_tables = len(self.bank.table_writes)
        n_pulses = len(self.bank.pulses)
        resp = self.bank.write(addr, value)
        e = self.edge_count + 1                     # the edge being prepared
        self._at(e + 1, self._sync_registers)
        for name, entry, fields in self.bank.table_writes[n_tables:]:
            self._at(e + 2, lambda n=name, i=entry, f=fields: self._apply_table(n, i, f))
        if "soft_reset" in self.bank.pulses[n_pulses:]:
            self._at(e + 1, self._soft_reset)
        del self.bank.table_writes[:]
        del self.bank.pulses[:]
        return resp

    def csr_read(self, addr: int) -> tuple[int, int]:
        """``(data, resp)`` the bank registers at the coming edge."""
        self.settle()
        self._flush()
        sel = self.bank.values["theta_select"]
        if sel < self.K:
            self.bank.set_input("theta_value", int(self.homeo.theta[sel]))
        return self.bank.read(addr)

    def _soft_reset(self) -> None:
        """``soft_reset`` is visible before this edge: the AER path takes its reset values here."""
        self._soft = True

    def _reset_aer_path(self, e: int) -> None:
        self.path.reset()
        self.tick = False
        self.prev = {"framing_errors": 0, "unmapped": 0, "lost": 0}
        self.sweep_end = e + self.N // 2

    # -- one edge ------------------------------------------------------------------------

    def ready(self, last: bool = False) -> bool:
        """samples.ready before the coming edge, for a beat with TLAST ``last``."""
        return self.enable and self.edge_count + 1 > self.sweep_end and not (last and self._hold())

    def _hold(self) -> bool:
        """A frame's last beat waits: the StimUnit's sweep runs or is about to start."""
        return self.unit.cadence == "sweep" and (self.unit.busy or self.tick)

    def frame_wait(self) -> int:
        """Edges from now until a frame's last beat can be taken, if no routed entry arrives."""
        u = self.unit
        if u.cadence != "sweep":
            return 0
        busy, ptr, again, tick = u.busy, u.ptr, u.again, self.tick
        w = 0
        while busy or tick:
            last = busy and ptr == self.K - 1
            if tick and (not busy or last):
                busy, ptr = True, 0
            elif tick:
                again = True
                ptr += 1
            elif last:
                busy, ptr, again = again, 0, False
            elif busy:
                ptr += 1
            tick = False
            w += 1
        return w

    def step(self, beat: int | None = None, out_ready: bool = True) -> bool:
        """One rising edge with ``beat`` (SampleBeat payload, TLAST in bit 32) offered; returns
        whether it was accepted."""
        e = self.edge_count + 1
        pending = self._pending.pop(e, None)
        self._soft = False
        if pending:
            self.settle()                  # the observers ran with the configuration before
            for action in pending:
                action()
        soft = self._soft
        path, router, unit, homeo = self.path, self.path.router, self.unit, self.homeo

        # ---- values before the edge
        hv, sv = router.h_valid, self.r_rdy
        sel_stim = self.merge.select(hv, sv)
        host_ready = out_ready and not sel_stim
        r_en = out_ready and sel_stim
        tick, frame = self.tick, path.frame
        theta = homeo.theta              # the StimUnit reads it before Homeostasis steps
        pulse = unit.pulse.copy()
        fire_now = self.fire_strobe
        cyc = (e - 1) & _MASK16
        # The beat ends a frame by count or by TLAST (DESIGN.md §3), as the Detector decides.
        beat_last = beat is not None and path.detector.ends_frame((beat >> _LAST) & 1)
        accept = beat is not None and self.ready(beat_last)
        last_beat = accept and beat_last
        spikes_now = path.detected

        # ---- counters (increments visible before the edge)
        inc = {}
        if last_beat:
            inc["frames"] = 1
        det, enc = path.detector, path.encoder
        prev = self.prev
        d_fe = det.framing_errors - prev["framing_errors"]
        d_un = router.unmapped - prev["unmapped"]
        d_lost = enc.lost - prev["lost"]
        if d_fe or d_un or d_lost:
            self.prev = {"framing_errors": det.framing_errors, "unmapped": router.unmapped, "lost": enc.lost}
        if d_fe:
            inc["framing_errors"] = 1
        if d_un:
            inc["unmapped_words"] = 1
        if spikes_now:
            inc["detections"] = bin(spikes_now).count("1")
        total = self.lost_due + d_lost + int(self.stim_lost_strobe)
        lost_inc = min(total, 3)
        self.lost_due = total - lost_inc
        if lost_inc:
            inc["overflows"] = lost_inc
        if self.fire_strobe is not None:
            inc["stim_fires"] = 1

        # ---- observers: Safety with the lanes, the LED sums of the frame, the latency probe.
        # Nothing else reads them within an edge, so the accelerated model logs the edge and
        # runs them over many edges at once (settle()); the reference runs them here.
        seen = (e, pulse, fire_now, accept, last_beat, soft, self.stamp_pipe[1], self.frame_leds)
        if self.fast:
            self._observed.append(seen)
        else:
            self._observe(*seen)

        # ---- AER output merge
        word = self.r_data if sel_stim else router.h_word
        _, taken, last = self.merge.step(hv, sv, out_ready, self.block_words)
        if taken:
            self.words.append(word)
            self.lasts.append(last)
            inc["aer_words"] = 1

        # ---- AER path
        if soft:
            self._reset_aer_path(e)
            self.merge.restart()
            step_stim = None
            step_host = None
            accepted = False
        else:
            st = path.step(beat if accept else None, host_ready, True)
            step_stim, step_host, accepted = st.stim, st.host, st.accepted
        if step_stim is not None:
            inc["routed_entries"] = 1
        # probe stamps: read at the stim handshake (old contents), then written
        self.stamp_pipe[1] = self.stamp_pipe[0]
        if step_stim is not None:
            self.stamp_pipe[0] = int(self.stamps[(step_stim.address >> 1) % len(self.stamps)])
        if spikes_now:
            low = (spikes_now & -spikes_now).bit_length() - 1
            self.stamps[low >> 1] = cyc

        # ---- StimPath
        spike_addr = None
        if step_host is not None and (step_host >> _TYPE) & _TYPE_MASK == AERType.SPIKE:
            spike_addr = (step_host >> _ADDRESS) & _ADDRESS_MASK
        s1_frame, s1_lane = unit.staged_frame, unit.staged_lane
        entry = (step_stim.target, step_stim.weight) if step_stim is not None else None
        fired_before = unit.fires
        stim_word = unit.step(entry, tick, frame, theta)
        fired = unit.fires != fired_before
        self.fire_strobe = (s1_lane if fired else None)
        homeo.step(spike_addr, tick)

        # STIM FIFO: write side, then read side, as the RTL's registers update together
        w_rdy = len(self.inner) != self.fifo_depth - 1
        push = None
        self.stim_lost_strobe = False
        if fired:
            if w_rdy:
                push = stim_word
            else:
                self.stim_lost_reg = min(self.stim_lost_reg + 1, (1 << 20) - 1)
                self.stim_lost_strobe = True
        elif self.stim_lost_reg and w_rdy:
            push = pack_one(self.stim_lost_reg, unit.source, AERType.OVERFLOW, s1_frame)
            self.stim_lost_reg = 0
        inner_read = bool(self.inner) and (not self.r_rdy or r_en)
        if inner_read:
            self.r_data = self.inner.popleft()
            self.r_rdy = True
        elif r_en:
            self.r_rdy = False
        if push is not None:
            self.inner.append(push)

        self.tick = bool(accepted and last_beat)
        incs = self._incs
        for name, n in inc.items():
            incs[name] = incs.get(name, 0) + n
        self.edge_count = e
        return accepted

    # -- the observers: Safety, the lanes, the LED sums of a frame, the latency probe -------

    def _observe(self, e: int, pulse: np.ndarray, fire_lane: int | None, accept: bool, last_beat: bool,
                 soft: bool, stamp: int, frame_leds) -> None:
        """The observers at edge ``e``, edge by edge (the reference for :meth:`settle`):
        ``pulse`` the envelopes and ``fire_lane`` the StimUnit's fire strobe visible before the
        edge, ``accept``/``last_beat`` the beat handshake, ``soft`` the soft reset, ``stamp`` the
        probe's stamp aligned with the fire strobe, ``frame_leds`` where the frame's LED sums go."""
        led = self.safety.led
        if frame_leds is not None and accept:
            frame_leds.add(led, last_beat)
        if self.clamp_strobe:
            self.count("safety_clamps", 1)
        self._probe(e, led, pulse, fire_lane, soft, stamp)
        # Safety at edge e with the lane bits of that edge (index e - 1 since reset); a cap that
        # clamped raises the strobe the bank counts at the next edge.
        states, codes = self.lane_bits(e - 1, 1)
        fires = np.array([-1 if fire_lane is None else fire_lane], dtype=np.int64)
        _, strobe = self.safety.run_edges(pulse[None, :], states, codes, fires=fires)
        self.clamp_strobe = bool(strobe[0])

    def _probe(self, e: int, led: np.ndarray, pulse: np.ndarray, fire_lane: int | None, soft: bool,
               stamp: int) -> None:
        """The latency probe at edge ``e``, ``led`` the LED vector read at it: armed by a fire, it
        measures when the fired lane's LED reads high, and gives up when the envelope ended."""
        if self.armed:
            lit = bool(led[self.probe_lane])
            if lit:
                cyc = (e - 1) & _MASK16
                elapsed = min(((cyc - self.probe_start) & _MASK16) + PROBE_OFFSET, _MASK16)
                self.probes.append(elapsed)
                self.bank.measure("latency", elapsed)
            pulse_d_next = bool(pulse[self.probe_lane])
            if lit or not self.pulse_d:
                self.armed = False
            self.pulse_d = pulse_d_next
        elif fire_lane is not None and fire_lane < self.K:
            self.armed = True
            self.probe_lane = fire_lane
            self.probe_start = stamp
            self.pulse_d = bool(pulse[fire_lane])
        if soft:
            self.armed = False

    def probe_quiet(self, e0: int, lit: np.ndarray, pulse: np.ndarray) -> None:
        """The probe over edges ``e0 ..`` without a fire strobe or soft reset: ``lit`` (n,) the
        probed lane's LED read at each edge, ``pulse`` (n,) its envelope before each. The same
        as :meth:`_probe` edge by edge."""
        if not self.armed or not len(lit):
            return
        pulse_d = np.empty(len(lit), dtype=bool)     # the envelope one edge earlier
        pulse_d[0] = self.pulse_d
        pulse_d[1:] = pulse[:-1]
        stop = np.flatnonzero(lit | ~pulse_d)
        if not stop.size:
            self.pulse_d = bool(pulse[-1])
            return
        i = int(stop[0])
        if lit[i]:
            cyc = (e0 + i - 1) & _MASK16
            elapsed = min(((cyc - self.probe_start) & _MASK16) + PROBE_OFFSET, _MASK16)
            self.probes.append(elapsed)
            self.bank.measure("latency", elapsed)
        self.armed = False
        self.pulse_d = bool(pulse[i])

    def settle(self) -> None:
        """Run the observers over the edges :meth:`step` logged (the accelerated model defers
        them): Safety over all of them at once, then the LED sums and the probe with the LED
        vectors it gave. The same as :meth:`_observe` edge by edge."""
        log = self._observed
        if not log:
            return
        self._observed = []
        n = len(log)
        e0 = log[0][0]
        pulses = np.array([r[1] for r in log], dtype=bool)
        fires = np.array([-1 if r[2] is None else r[2] for r in log], dtype=np.int64)
        states, codes = self.lane_bits(e0 - 1, n)
        led0 = self.safety.led
        out, strobes = self.safety.run_edges(pulses, states, codes, fires=fires)
        leds = np.empty_like(out)                  # the LED vector read at each edge
        leds[0] = led0
        leds[1:] = out[:-1]
        clamps = int(self.clamp_strobe) + int(np.count_nonzero(strobes[:-1]))
        self.clamp_strobe = bool(strobes[-1])
        if clamps:
            self.count("safety_clamps", clamps)
        # LED sums: the accepted beats of each frame (a frame may span settles).
        seg, target = [], None
        for i, r in enumerate(log):
            if r[3] and r[7] is not None:
                if r[7] is not target and seg:
                    target.add_sum(leds[seg].sum(axis=0), len(seg), False)
                    seg = []
                target = r[7]
                seg.append(i)
                if r[4]:
                    target.add_sum(leds[seg].sum(axis=0), len(seg), True)
                    seg = []
        if seg:
            target.add_sum(leds[seg].sum(axis=0), len(seg), False)
        # The probe: only while armed, at a fire or at a soft reset.
        for i, (e, pulse, fire_lane, _, _, soft, stamp, _) in enumerate(log):
            if self.armed or fire_lane is not None or soft:
                self._probe(e, leds[i], pulse, fire_lane, soft, stamp)

    def lane_bits(self, edge: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The lanes at block edges ``edge .. edge + n - 1`` as (values, codes) whose ``values <
        codes`` are the stochastic bits (the form Safety's kernels take)."""
        if self.lanes.cadence == "cycle":
            self.lanes.cycle = edge
            return self.lanes.states(n, advance=False), self.codes
        bits = self.lanes.bits(self.codes, n, edge=edge)
        return (~bits).astype(np.uint16), np.ones(self.K, dtype=np.int64)

    def run_beats(self, beats: np.ndarray, lasts: np.ndarray, out_ready: bool = True,
                  timeout: int | None = None, frames: np.ndarray | None = None) -> int:
        """Offer ``beats`` one per cycle, each held until accepted; returns how many were taken.

        Stops early when no beat was accepted for ``timeout`` consecutive edges.
        ``frames`` (int16, (beats // (N/2), N)), when given, are the same samples as whole
        frames (TLAST, where set, only on frames' last beats): quiet frames then go in bulk.
        """
        if out_ready and core_kernel.usable(self):
            return core_kernel.run(self, beats, lasts, timeout=timeout)
        n = len(beats)
        nb = self.N // 2
        if frames is not None and (self.path.detector.pos or n % nb or np.any(
                np.asarray(lasts, bool).reshape(-1, nb)[:, :-1])):
            frames = None          # not frame-aligned, or a TLAST inside a frame: edge by edge
        i = 0
        waited = 0
        while i < n:
            if frames is not None and out_ready and self.fast and self.quiet():
                if i % nb == 0:
                    taken = self.accelerator.dark_frames(frames[i // nb:])
                    if taken:
                        i += taken * nb
                        continue
                frame, pos = frames[i // nb], i % nb
                stop = self.path.detector.first_crossing(frame, pos)
                if stop == nb and self.frame_wait() > stop - pos - 1:
                    # The last beat must wait for the StimUnit's sweep: the beats before it in
                    # bulk, then the waiting edges in bulk (ready is low: nothing is taken).
                    if stop - pos > 1:
                        stop -= 1
                    elif self.accelerator.beats(self.frame_wait(), None):
                        continue
                if stop > pos and self.accelerator.beats(stop - pos, frame, pos):
                    i += stop - pos
                    continue
            # A SampleBeat: the 32 data bits as sent, TLAST at the layout's offset.
            b = int(beats[i]) | (int(lasts[i]) << _LAST)
            if self.step(b, out_ready):
                i += 1
                waited = 0
            else:
                waited += 1
                if timeout is not None and waited >= timeout:
                    break
        self.settle()
        return i

    def idle(self, n: int, out_ready: bool = True) -> None:
        """``n`` edges without a sample beat."""
        if out_ready and n >= _KERNEL_MIN_EDGES and core_kernel.usable(self):
            core_kernel.run(self, n=n)
            return
        while n > 0:
            if out_ready and self.fast:
                s = self.edge_count + 1
                due = [p for p in self._pending if s <= p < s + n]
                span = (min(due) - s) if due else n      # bulk up to a configuration change
                if span and self.accelerator.beats(span, None):
                    n -= span
                    continue
            self.step(None, out_ready)
            n -= 1
        self.settle()
