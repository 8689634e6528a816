"""The accelerator of the Core model: quiet stretches in bulk, with the same result.

:class:`bioloop.host.models.core.Core` is the edge-by-edge specification
(:meth:`Core.step`). Most of a recording is *quiet*: the AER path, the output
merge, the STIM FIFO, the latency probe and the strobes are empty and no
configuration change is due. Then only the Detector's per-channel state, the
frame counter, the StimUnit's per-frame countdown and leak, Homeostasis'
window count, and Safety with the LFSRs move, and :class:`QuietStretches`
advances exactly those through the block models' public ``step_quiet``
methods (each documented as equal to that many ``step`` calls).
``tests/host/test_backends.py`` checks the accelerated model against the
edge-by-edge one byte for byte, and ``tests/gateware/test_core.py`` both
against the RTL.
"""

from __future__ import annotations

import numpy as np

__all__ = ["QuietStretches"]


class QuietStretches:
    """Takes quiet stretches of a :class:`~bioloop.host.models.core.Core` in bulk."""

    def __init__(self, core):
        self.core = core

    def beats(self, n: int, samples: np.ndarray | None, start: int = 0) -> bool:
        """Advance ``n`` quiet edges, taking beats ``start .. start + n - 1`` of the frame
        ``samples`` (int16, N) one per edge, or no beats (``samples`` None). The caller has
        checked with :meth:`Detector.first_crossing` that none of the beats holds a crossing.
        Returns False (nothing done) if the stretch is not quiet."""
        core = self.core
        s = core.edge_count + 1
        if not core.fast or not core.quiet(s, s + n - 1):
            return False
        core.settle()                         # the observers of the edges stepped so far
        path, det, unit, homeo, safety = core.path, core.path.detector, core.unit, core.homeo, core.safety
        nb = core.N // 2
        ends_frame = False
        if samples is not None:
            if not (core.enable and s > core.sweep_end) or det.pos != start or start + n > nb:
                return False
            ends_frame = start + n == nb
        if ends_frame and core.frame_wait() > n - 1:
            return False                      # the last beat would wait for the StimUnit's sweep
        tick = core.tick
        f0 = path.frame
        if samples is None and not tick and self._dark_idle(n, f0):
            return True
        # StimUnit: no entries; the tick's leak and countdown (all lanes one edge after it is
        # sampled in the cycle cadence, lane by lane in the sweep cadence).
        pulse_before = unit.pulse.copy()
        after = unit.quiet(n, tick, f0)
        # Homeostasis: the tick at the first edge, then edge by edge only while an update runs.
        homeo.step(None, tick)
        left = n - 1
        while left and homeo.busy():
            homeo.step(None, False)
            left -= 1
        if left:
            homeo.step_quiet(left)
        # Safety and the lanes.
        led_before = safety.led
        clamp_in = core.clamp_strobe
        if not (pulse_before.any() or after.any()):
            safety.idle(n)
            led_sum = led_before.astype(np.int64)
            strobes = 0
            core.clamp_strobe = False
            if core.armed:
                lit = np.zeros(n, dtype=bool)
                lit[0] = led_before[core.probe_lane]
                core.probe_quiet(s, lit, np.zeros(n, dtype=bool))
        else:
            env = np.empty((n, core.K), dtype=bool)
            env[0] = pulse_before
            env[1:] = after[:-1]
            states, codes = core.lane_bits(s - 1, n)
            out, strobe_edges = safety.run_edges(env, states, codes)
            led_sum = led_before.astype(np.int64) + out[:-1].sum(axis=0)
            strobes = int(strobe_edges[:-1].sum())
            core.clamp_strobe = bool(strobe_edges[-1])
            if core.armed:
                k = core.probe_lane
                lit = np.empty(n, dtype=bool)
                lit[0] = led_before[k]
                lit[1:] = out[:-1, k]
                core.probe_quiet(s, lit, env[:, k])
        if clamp_in or strobes:
            core.count("safety_clamps", int(clamp_in) + strobes)
        # The AER path: the Detector takes the beats; the pipeline stays empty.
        path.step_quiet(n, samples, start)
        if samples is not None:
            if core.frame_leds is not None:
                core.frame_leds.add_sum(led_sum, n, ends_frame)
            if ends_frame:
                core.count("frames", 1)
        core.tick = ends_frame
        core.stamp_pipe[1] = core.stamp_pipe[0]
        core.edge_count += n
        return True

    def _dark_idle(self, n: int, f0: int) -> bool:
        """``n`` quiet edges with no beat, no tick due, no light, no pulse, no homeostasis update:
        only counters of time advance. False (nothing done) if that is not the case."""
        core = self.core
        unit, homeo, safety = core.unit, core.homeo, core.safety
        staged = unit.staged
        if (staged is not None and staged[1]) or core.clamp_strobe or unit.remaining.any() \
                or safety.run.any() or safety.led.any() or homeo.busy() or homeo.word_pending \
                or unit.sweeping or core.armed:
            return False
        unit.step_quiet(f0)
        homeo.step_quiet(n)
        safety.idle(n)
        core.path.step_quiet(n)
        core.stamp_pipe[1] = core.stamp_pipe[0]
        core.edge_count += n
        return True

    def dark_frames(self, frames: np.ndarray) -> int:
        """Take whole quiet frames in which no lane is lit and no pulse runs, as many as
        possible from the start of ``frames`` (int16, (m, N)), up to the first crossing or
        the next homeostasis window close. Returns the number of frames taken (0: none)."""
        core = self.core
        core.settle()                     # the observers of the edges stepped so far
        nb = core.N // 2
        s = core.edge_count + 1
        path, det, unit, homeo, safety = core.path, core.path.detector, core.unit, core.homeo, core.safety
        if nb < 2 or det.pos or not (core.enable and s > core.sweep_end):
            return 0
        staged = unit.staged
        if core.clamp_strobe or unit.remaining.any() or safety.run.any() or safety.led.any() \
                or (staged is not None and staged[1]) or unit.sweeping or core.armed:
            return 0
        if homeo.busy() or homeo.word_pending:
            return 0
        # Edges per frame: N/2 beats, the last one held until the StimUnit's sweep of the
        # previous frame is done (the minimum frame period, without entries).
        first = max(nb - 1, core.frame_wait()) + 1
        period = max(nb, core.K + 2) if unit.cadence == "sweep" else nb
        # Ticks that do not close a window: the tick closing it is left to beats().
        m = min(len(frames), homeo.ticks_to_close() + (0 if core.tick else 1))
        due = core.next_config_edge()
        if due is not None:
            m = min(m, (due - s - first) // period + 1)
        if m <= 0 or not core.quiet(s, s + first + (m - 1) * period - 1):
            return 0
        f_first = path.frame
        m = path.step_quiet_frames(frames[:m])
        if m == 0:
            return 0
        ticks = m if core.tick else m - 1
        f_last = f_first + m - 1          # the frame number visible before the last edge
        unit.step_quiet(f_last, ticks)    # no entries, no pulses; each tick leaks once
        n_edges = first + (m - 1) * period
        homeo.step_quiet(n_edges, ticks)
        safety.idle(n_edges)
        core.count("frames", m)
        if core.frame_leds is not None:
            core.frame_leds.add_frames(np.zeros((m, core.K), dtype=np.int64), np.full(m, nb))
        core.tick = True
        core.stamp_pipe[1] = core.stamp_pipe[0]
        core.edge_count += n_edges
        return m
