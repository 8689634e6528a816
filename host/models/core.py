"""Cycle-exact model of the gateware ``Core``: the block models wired as in the RTL.

One :meth:`Core.edge` is one rising clock edge. Every block reads the values
the others showed *before* the edge, as flip-flops do; the wiring, the AER
output merge, the counters and the latency probe follow
:mod:`bioloop.gateware.core` line by line (``docs/core.md`` lists the
timing). Long stretches in which nothing can happen but free-running state
(LFSRs, Safety's duty window, pulse envelopes, frame ticks) are taken by
:meth:`Core.run_beats` in bulk without changing a bit of the result; the
equivalence with the RTL is a test (``tests/gateware/test_core.py``).

Configuration changes go through :meth:`csr_write` at the edge the RTL's
CSR bank performs the write; the blocks see register fields from the next
edge and table entries from the edge after (the bank registers its write
ports), exactly as in the RTL.
"""

from __future__ import annotations

from collections import deque

import numba
import numpy as np

from bioloop.host.layouts import AERType, Port
from bioloop.host.regmap import RegisterMap
from bioloop.host.models.csr import CSRBankModel
from bioloop.host.aer import pack_one

from .aer_path import AERPath
from .detector import beyond
from .homeostasis import Homeostasis, HomeostasisConstants
from .stochastic_lanes import StochasticLanes
from .aer_router import Route
from .safety import Safety
from .stim_unit import StimUnit, leak as leak_acc

__all__ = ["Core", "PROBE_OFFSET", "LATENCY_BITS"]

PROBE_OFFSET = 2
LATENCY_BITS = 16
_MASK16 = (1 << LATENCY_BITS) - 1
_U32 = (1 << 32) - 1


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
                 theta_init: int = 256, fifo_depth: int = 16, duty_window: int = 1_000_000,
                 limit_pulse: int = 500_000, limit_duty: int | None = None,
                 limit_lanes: int | None = None):
        self.regmap = rm = RegisterMap(n_channels, n_lanes, fanout)
        N, K, F = n_channels, n_lanes, fanout
        self.N, self.K, self.F = N, K, F
        self.bank = CSRBankModel(rm)
        self.bank.set_input("safety_duty_window", duty_window)
        v = self.bank.values
        self.path = AERPath(N, F, refractory=v["refractory"], source=v["aer_source"])
        self.unit = StimUnit(K, pulse_lengths=pulse_init, leak_shift=v["leak_shift"], source=v["aer_source"])
        self.homeo = Homeostasis(K, theta_init=theta_init, window_frames=v["homeo_window"],
                                 theta_min=v["theta_min"], theta_max=v["theta_max"],
                                 enable=bool(v["homeo_enable"]))
        limit_duty = duty_window // 2 if limit_duty is None else limit_duty
        limit_lanes = K if limit_lanes is None else limit_lanes
        self.safety = Safety(K, duty_window, limit_pulse, limit_duty, limit_lanes, pulse_bits=20)
        self.lanes = StochasticLanes(K, seed0, lane_mode)
        self.codes = np.zeros(K, dtype=np.int64)
        self.targets = np.zeros(K, dtype=np.int64)
        self.fifo_depth = fifo_depth
        self._sync_registers()

        self.fast = True                 # take quiet stretches in bulk (same result, faster)
        self.edge_count = 0              # edges since reset release
        self.sweep_end = N // 2          # samples are not ready up to and including this edge
        self.tick = False                # frame_tick as visible before the next edge
        # AER output merge
        self.locked = self.lock_stim = self.last_stim = False
        self.blk = 0
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

    def _apply_table(self, name: str, entry: int, fields: dict) -> None:
        F = self.F
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
            self.codes[entry] = fields["lane_codes"]
        elif name == "pulse_lengths":
            self.unit.pulse_lengths[entry] = fields["pulse_lengths"]
        else:  # pragma: no cover - the register map defines the tables
            raise KeyError(name)

    def _inc(self, name: str, n: int) -> None:
        self._incs[name] = self._incs.get(name, 0) + n

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
        self._flush()
        sel = self.bank.values["theta_select"]
        if sel < self.K:
            self.bank.set_input("theta_value", int(self.homeo.theta[sel]))
        return self.bank.read(addr)

    def _soft_reset(self) -> None:
        """``soft_reset`` is visible before this edge: the AER path takes its reset values here."""
        self._soft = True

    def _reset_aer_path(self, e: int) -> None:
        p = self.path
        p.detector.reset()
        p.encoder.reset()
        p.router.reset()
        p._stage1 = (0, 0)
        p._stage2 = (0, 0)
        p._frame = 0
        self.tick = False
        self.prev = {"framing_errors": 0, "unmapped": 0, "lost": 0}
        self.sweep_end = e + self.N // 2

    # -- one edge ------------------------------------------------------------------------

    def ready(self) -> bool:
        """samples.ready before the coming edge."""
        return self.enable and self.edge_count + 1 > self.sweep_end

    def edge(self, beat: int | None = None, out_ready: bool = True) -> bool:
        """One rising edge with ``beat`` (SampleBeat payload, TLAST in bit 32) offered; returns
        whether it was accepted."""
        e = self.edge_count + 1
        pending = self._pending.pop(e, None)
        self._soft = False
        if pending:
            for action in pending:
                action()
        soft = self._soft
        bank = self.bank
        path, router, unit, homeo, safety = self.path, self.path.router, self.unit, self.homeo, self.safety
        K = self.K

        # ---- values before the edge
        hv, sv = router.h_valid, self.r_rdy
        sel_stim = self.lock_stim if self.locked else (sv and (not hv or not self.last_stim))
        out_valid = sv if sel_stim else hv
        host_ready = out_ready and not sel_stim
        r_en = out_ready and sel_stim
        tick, frame = self.tick, path._frame
        theta = homeo.theta.copy()
        pulse = unit.remaining != 0
        led = safety.led
        cyc = (e - 1) & _MASK16
        accept = beat is not None and self.enable and e > self.sweep_end
        spikes_now = path._stage2[0]

        if self.frame_leds is not None and accept:
            self.frame_leds.add(led, bool(beat >> 32 & 1))

        # ---- counters (increments visible before the edge)
        inc = {}
        if accept and beat >> 32 & 1:
            inc["frames"] = 1
        det, enc = path.detector, path.encoder
        d_fe = det.framing_errors - self.prev["framing_errors"]
        d_un = router.unmapped - self.prev["unmapped"]
        d_lost = enc.lost - self.prev["lost"]
        self.prev = {"framing_errors": det.framing_errors, "unmapped": router.unmapped, "lost": enc.lost}
        if d_fe:
            inc["framing_errors"] = 1
        if d_un:
            inc["unmapped_words"] = 1
        n_det = bin(spikes_now).count("1")
        if n_det:
            inc["detections"] = n_det
        total = self.lost_due + d_lost + int(self.stim_lost_strobe)
        lost_inc = min(total, 3)
        self.lost_due = total - lost_inc
        if lost_inc:
            inc["overflows"] = lost_inc
        if self.fire_strobe is not None:
            inc["stim_fires"] = 1
        if self.clamp_strobe:
            inc["safety_clamps"] = 1

        # ---- latency probe
        if self.armed:
            lit = bool(led[self.probe_lane])
            if lit:
                elapsed = ((cyc - self.probe_start) & _MASK16) + PROBE_OFFSET
                self.probes.append(min(elapsed, _MASK16))
                bank.measure("latency", min(elapsed, _MASK16))
            self.pulse_d_next = bool(pulse[self.probe_lane])
            if lit or not self.pulse_d:
                self.armed = False
            self.pulse_d = self.pulse_d_next
        elif self.fire_strobe is not None and self.fire_strobe < K:
            self.armed = True
            self.probe_lane = self.fire_strobe
            self.probe_start = self.stamp_pipe[1]
            self.pulse_d = bool(pulse[self.fire_strobe])

        # ---- AER output merge
        if out_valid and out_ready:
            word = self.r_data if sel_stim else router.h_word
            last = self.blk + 1 >= self.block_words
            self.words.append(word)
            self.lasts.append(last)
            self.blk = 0 if last else self.blk + 1
            self.locked = False
            self.last_stim = sel_stim
            inc["aer_words"] = 1
        elif out_valid:
            self.locked, self.lock_stim = True, sel_stim

        # ---- AER path
        if soft:
            self._reset_aer_path(e)
            self.locked, self.blk, self.armed = False, 0, False
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
        if step_host is not None and (step_host >> 28) & 0xF == AERType.SPIKE.value:
            spike_addr = step_host & 0xFFFFF
        s1 = unit._s1
        s1_frame = s1[2] if s1 is not None else 0
        entry = (step_stim.target, step_stim.weight) if step_stim is not None else None
        fired_before = unit.fires
        stim_word = unit.clock(entry, tick, frame, theta)
        fired = unit.fires != fired_before
        self.fire_strobe = (s1[0][0] if fired else None)
        homeo.clock(spike_addr, tick)
        self.clamp_strobe = self._safety_edge(e, pulse)

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

        self.tick = bool(accepted and beat >> 32 & 1)
        incs = self._incs
        for name, n in inc.items():
            incs[name] = incs.get(name, 0) + n
        self.edge_count = e
        return accepted

    def _safety_edge(self, e: int, pulse: np.ndarray) -> bool:
        """Safety at edge ``e`` with the lane states of that edge (index e - 1 since reset);
        the same as ``Safety.clock`` (tests/host/test_backends.py), compiled. Returns whether a
        cap clamped (the strobe the bank counts at the next edge)."""
        safety = self.safety
        self.lanes.cycle = e - 1
        states = self.lanes.states(1, advance=False)
        out = np.empty((1, self.K), dtype=bool)
        clamps = np.zeros(3, dtype=np.int64)
        strobe = np.zeros(1, dtype=np.bool_)
        cap_pulse, cap_duty, cap_lanes = safety.caps
        safety.win = _safety_run(pulse[None, :], states, self.codes, safety.run, safety.duty, safety.win,
                                 safety.duty_window, cap_pulse, cap_duty, cap_lanes,
                                 (1 << safety.pulse_bits) - 1, out, clamps, strobe)
        safety.clamps += clamps
        safety.led = out[0]
        return bool(strobe[0])

    # -- bulk ----------------------------------------------------------------------------
    #
    # A stretch is *quiet* when the AER path, the merge, the STIM FIFO, the probe and
    # the strobes are all empty and no configuration change is due: then only the
    # Detector's per-channel state, the frame counter, the StimUnit's per-frame
    # countdown and leak, Homeostasis' window count, and Safety with the LFSRs move.
    # _bulk() advances exactly those, with the same result as edge() edge by edge.

    def _quiet_now(self) -> bool:
        s = self.edge_count + 1
        return self._quiet(s, s)

    def _quiet(self, first: int, last: int) -> bool:
        p, enc, r = self.path, self.path.encoder, self.path.router
        if p._stage1[0] or p._stage2[0] or enc.pending or enc.valid or enc.lost_pending:
            return False
        if r.rem or r.p_valid or r.h_valid or self.locked or self.inner or self.r_rdy:
            return False
        if self.stim_lost_reg or self.stim_lost_strobe or self.fire_strobe is not None or self.armed:
            return False
        if self.lost_due or (self.unit._s1 is not None and self.unit._s1[0] is not None):
            return False
        det = p.detector
        if (self.prev["framing_errors"] != det.framing_errors or self.prev["unmapped"] != r.unmapped
                or self.prev["lost"] != enc.lost):
            return False
        return not any(first <= e <= last for e in self._pending)

    def first_hit(self, frame: np.ndarray, start: int) -> int:
        """Index of the first beat at or after ``start`` whose samples the Detector (in its
        current state) would report as a crossing; ``N/2`` if none."""
        det = self.path.detector
        c0 = 2 * start
        hit = (beyond(frame[c0:], det.thresholds[c0:], det.polarity[c0:]) & ~det.prev[c0:]
               & (det.hold[c0:] == 0))
        where = np.flatnonzero(hit)
        return start + int(where[0]) // 2 if where.size else self.N // 2

    def _bulk(self, n: int, frame: np.ndarray | None, start: int = 0) -> bool:
        """Advance ``n`` quiet edges, taking beats ``start .. start + n - 1`` of ``frame``
        (int16, N) one per edge, or no beats (``frame`` None). The caller has checked with
        :meth:`first_hit` that none of the beats holds a crossing. Returns False (nothing
        done) if the stretch is not quiet."""
        s = self.edge_count + 1
        if not self.fast or not self._quiet(s, s + n - 1):
            return False
        path, det, unit, homeo, safety = self.path, self.path.detector, self.unit, self.homeo, self.safety
        nb = self.N // 2
        ends_frame = False
        if frame is not None:
            if not (self.enable and s > self.sweep_end) or det.pos != start or det.discard \
                    or start + n > nb:
                return False
            ends_frame = start + n == nb
        tick = self.tick
        f0 = path._frame
        if frame is None and not tick and self._dark_idle(n, f0):
            return True
        # StimUnit: a tick acts one edge after it is sampled; nothing else moves.
        pulses = [unit.remaining != 0]
        unit.clock(None, tick, f0, homeo.theta)
        pulses.append(unit.remaining != 0)
        if n > 1:
            unit.clock(None, False, f0, homeo.theta)
            pulses.append(unit.remaining != 0)
        # Homeostasis: the tick at the first edge, then per edge only while an update runs.
        homeo.clock(None, tick)
        left = n - 1
        while left and homeo._close_edge is not None and homeo.edge <= homeo._close_edge + self.K + 3:
            homeo.clock(None, False)
            left -= 1
        homeo.edge += left
        # Safety and the lanes.
        led_before = safety.led
        clamp_in = self.clamp_strobe
        if not (pulses[0].any() or pulses[1].any() or pulses[-1].any() or safety.run.any()):
            w = safety.win + n
            if w >= safety.duty_window:
                safety.duty[:] = 0
            safety.win = w % safety.duty_window
            safety.led = np.zeros(self.K, dtype=bool)
            led_sum = led_before.astype(np.int64)
            strobes = 0
            self.clamp_strobe = False
        else:
            env = np.empty((n, self.K), dtype=bool)
            env[0] = pulses[0]
            if n > 1:
                env[1] = pulses[1]
                env[2:] = pulses[2]
            self.lanes.cycle = s - 1
            states = self.lanes.states(n, advance=False)
            out = np.empty((n, self.K), dtype=bool)
            cap_pulse, cap_duty, cap_lanes = safety.caps
            clamps = np.zeros(3, dtype=np.int64)
            strobe_edges = np.zeros(n, dtype=np.bool_)
            safety.win = _safety_run(env, states, self.codes, safety.run, safety.duty, safety.win,
                                     safety.duty_window, cap_pulse, cap_duty, cap_lanes,
                                     (1 << safety.pulse_bits) - 1, out, clamps, strobe_edges)
            safety.clamps += clamps
            safety.led = out[-1].copy()
            led_sum = led_before.astype(np.int64) + out[:-1].sum(axis=0)
            strobes = int(strobe_edges[:-1].sum())
            self.clamp_strobe = bool(strobe_edges[-1])
        if clamp_in or strobes:
            self._inc("safety_clamps", int(clamp_in) + strobes)
        # The AER path: the Detector takes the frame; the pipeline stays empty.
        enc = path.encoder
        if frame is not None:
            channels = slice(2 * start, 2 * (start + n))
            det._update(channels, frame[channels])
            path._stage1 = path._stage2 = (0, f0)
            if self.frame_leds is not None:
                self.frame_leds.add_sum(led_sum, n, ends_frame)
            if ends_frame:
                det.pos = 0
                det.frame += 1
                det.frames += 1
                path._frame = det.frame
                self._inc("frames", 1)
            else:
                det.pos = start + n
            self.tick = ends_frame
        else:
            path._stage2 = path._stage1 = (0, path._stage1[1])
            self.tick = False
        if enc.ts_bits < 32:
            enc.prev_tag = (f0 >> (enc.ts_bits - 2)) & 3
        self.stamp_pipe[1] = self.stamp_pipe[0]
        self.edge_count += n
        return True

    def _dark_idle(self, n: int, f0: int) -> bool:
        """``n`` quiet edges with no beat, no tick due, no light, no pulse, no homeostasis update:
        only counters of time advance. False (nothing done) if that is not the case."""
        unit, homeo, safety = self.unit, self.homeo, self.safety
        s1 = unit._s1
        if (s1 is not None and s1[1]) or self.clamp_strobe or unit.remaining.any() \
                or safety.run.any() or safety.led.any():
            return False
        if homeo._close_edge is not None and homeo.edge <= homeo._close_edge + self.K + 3:
            return False
        unit._s1 = (None, False, f0)
        homeo.edge += n
        if safety.win + n >= safety.duty_window:
            safety.duty[:] = 0
        safety.win = (safety.win + n) % safety.duty_window
        path = self.path
        path._stage2 = path._stage1 = (0, path._stage1[1])
        enc = path.encoder
        if enc.ts_bits < 32:
            enc.prev_tag = (f0 >> (enc.ts_bits - 2)) & 3
        self.stamp_pipe[1] = self.stamp_pipe[0]
        self.edge_count += n
        return True

    def _dark_frames(self, frames: np.ndarray) -> int:
        """Take whole quiet frames in which no lane is lit and no pulse runs, as many as
        possible from the start of ``frames`` (int16, (m, N)), up to the first crossing or
        the next homeostasis window close. Returns the number of frames taken (0: none)."""
        nb = self.N // 2
        s = self.edge_count + 1
        path, det, unit, homeo, safety = self.path, self.path.detector, self.unit, self.homeo, self.safety
        if nb < 2 or det.pos or det.discard or not (self.enable and s > self.sweep_end):
            return 0
        if self.clamp_strobe or unit.remaining.any() or safety.run.any() or safety.led.any():
            return 0
        if homeo._close_edge is not None and homeo.edge <= homeo._close_edge + self.K + 3:
            return 0
        # Ticks that do not close a window: the tick closing it is left to _bulk.
        w = homeo.window_frames % (1 << 24)
        open_ticks = (w - 1 - homeo.frame_count) % (1 << 24)
        m = min(len(frames), open_ticks + (0 if self.tick else 1))
        if self._pending:
            m = min(m, (min(self._pending) - s) // nb)
        if m <= 0 or not self._quiet(s, s + m * nb - 1):
            return 0
        m = _detect_quiet(frames[:m], det.thresholds.astype(np.int32), det.polarity.astype(np.int8),
                          det.prev, det.hold)
        if m == 0:
            return 0
        ticks = m if self.tick else m - 1
        f_last = path._frame + m - 1          # the frame number visible before the last edge
        # StimUnit: no entries, no pulses; each tick leaks once (until the accumulators settle).
        if unit.leak_shift:
            for _ in range(ticks):
                new = leak_acc(unit.acc, unit.leak_shift)
                if np.array_equal(new, unit.acc):
                    break
                unit.acc = new
        unit._s1 = (None, False, f_last)
        homeo.frame_count = (homeo.frame_count + ticks) % (1 << 24)
        homeo.edge += m * nb
        n = m * nb
        if safety.win + n >= safety.duty_window:
            safety.duty[:] = 0
        safety.win = (safety.win + n) % safety.duty_window
        det.frame += m
        det.frames += m
        path._frame = det.frame
        path._stage1 = path._stage2 = (0, f_last)
        enc = path.encoder
        if enc.ts_bits < 32:
            enc.prev_tag = (f_last >> (enc.ts_bits - 2)) & 3
        self._inc("frames", m)
        if self.frame_leds is not None:
            self.frame_leds.add_frames(np.zeros((m, self.K), dtype=np.int64), np.full(m, nb))
        self.tick = True
        self.stamp_pipe[1] = self.stamp_pipe[0]
        self.edge_count += n
        return m

    def run_beats(self, beats: np.ndarray, lasts: np.ndarray, out_ready: bool = True,
                  timeout: int | None = None, frames: np.ndarray | None = None) -> int:
        """Offer ``beats`` one per cycle, each held until accepted; returns how many were taken.

        Stops early when no beat was accepted for ``timeout`` consecutive edges.
        ``frames`` (int16, (beats // (N/2), N)), when given, are the same samples as whole
        frames with TLAST on each frame's last beat: quiet frames then go in bulk.
        """
        n = len(beats)
        nb = self.N // 2
        i = 0
        waited = 0
        while i < n:
            if frames is not None and out_ready and self.fast and self._quiet_now():
                if i % nb == 0:
                    taken = self._dark_frames(frames[i // nb:])
                    if taken:
                        i += taken * nb
                        continue
                frame, pos = frames[i // nb], i % nb
                stop = self.first_hit(frame, pos)
                if stop > pos and self._bulk(stop - pos, frame, pos):
                    i += stop - pos
                    continue
            b = int(beats[i]) | (int(lasts[i]) << 32)
            if self.edge(b, out_ready):
                i += 1
                waited = 0
            else:
                waited += 1
                if timeout is not None and waited >= timeout:
                    break
        return i

    def idle(self, n: int, out_ready: bool = True) -> None:
        """``n`` edges without a sample beat."""
        while n > 0:
            if out_ready and self.fast:
                s = self.edge_count + 1
                due = [p for p in self._pending if s <= p < s + n]
                span = (min(due) - s) if due else n      # bulk up to a configuration change
                if span and self._bulk(span, None):
                    n -= span
                    continue
            self.edge(None, out_ready)
            n -= 1


@numba.njit(cache=True)
def _detect_quiet(frames, thresholds, polarity, prev, hold):  # pragma: no cover - compiled
    """The Detector (bioloop.host.models.detector) over whole frames, in place, stopping before
    the first frame with a crossing; returns the number of frames taken."""
    m, n = frames.shape
    for t in range(m):
        for c in range(n):
            x = np.int32(frames[t, c])
            th = thresholds[c]
            p = polarity[c]
            b = (p == 0 and x <= -th) or (p == 1 and x >= th) or (p == 2 and (x <= -th or x >= th))
            if b and not prev[c] and hold[c] == 0:
                return t
        for c in range(n):
            x = np.int32(frames[t, c])
            th = thresholds[c]
            p = polarity[c]
            prev[c] = (p == 0 and x <= -th) or (p == 1 and x >= th) or (p == 2 and (x <= -th or x >= th))
            if hold[c] > 0:
                hold[c] -= 1
    return m


@numba.njit(cache=True)
def _safety_run(env, states, codes, run, duty, win, duty_window, cap_pulse, cap_duty, cap_lanes,
                run_max, out, clamps, strobe_edges):  # pragma: no cover - compiled
    """Safety (bioloop.host.models.safety.Safety.clock) over ``n`` edges, in place; returns win."""
    n, K = env.shape
    for e in range(n):
        granted = 0
        s_p = s_d = s_l = False
        for k in range(K):
            p = env[e, k]
            if p:
                if run[k] < run_max:
                    run[k] += 1
            else:
                run[k] = 0
            want = p and states[e, k] < codes[k]
            pass1 = want and run[k] <= cap_pulse
            pass2 = pass1 and duty[k] < cap_duty
            fin = pass2 and granted < cap_lanes
            if pass2:
                granted += 1
            s_p = s_p or (want and not pass1)
            s_d = s_d or (pass1 and not pass2)
            s_l = s_l or (pass2 and not fin)
            out[e, k] = fin
        clamps[0] += s_p
        clamps[1] += s_d
        clamps[2] += s_l
        strobe_edges[e] = s_p or s_d or s_l
        if win == duty_window - 1:
            win = 0
            for k in range(K):
                duty[k] = 0
        else:
            win += 1
            for k in range(K):
                duty[k] += out[e, k]
    return win
