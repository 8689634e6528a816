"""StimUnit: per-lane Q8.8 integrate-and-fire, leak, pulses and STIM words (DESIGN.md §4).

Per stim lane k a signed Q8.8 accumulator ``acc_k`` (int16, saturating):

- a routed entry (target k, signed Q8.8 weight w) integrates
  ``acc_k ← sat16(acc_k + w)``; if then ``acc_k >= θ_k`` the lane *fires*
  and ``acc_k ← acc_k − θ_k`` (at most one fire per entry);
- once per frame every lane leaks ``acc ← acc − (acc >> leak_shift)``
  (arithmetic shift, so the floor of DESIGN.md §2; shift 0 means no leak);
- a fire (re)starts a pulse of ``pulse_length[k]`` frames on lane k (0: no
  pulse) and emits a STIM AER word (address k, the current frame as
  timestamp); each frame tick counts every running pulse down by one, so
  the pulse ends at the L-th frame tick after the fire.

Two cadences (an elaboration parameter of the gateware):

``"sweep"`` (the default): the accumulators, pulse counters and lengths live
in memories. A frame tick sampled at edge m starts a *sweep*: lane i is read
at the (i+1)-th following edge at which no routed entry is taken (an entry
taken at an edge holds the sweep there: the memory's write port serves the
entry one edge later) and written one edge after its read, with
``acc − (acc >> leak_shift)`` and its pulse counter minus one (stopping at
0); the envelope follows the counter. So with no entries lane i is leaked
and counted down at edge m + 2 + i, and a pulse of L frames lasts from the
fire to the L-th following sweep visit of its lane. An entry integrates
into whatever the lane holds when it is read. A tick sampled while a sweep
runs is queued and starts the next sweep as the current one issues its
last read (or at once, if it issues it at that edge); a tick while one is
already queued is lost (``tick_lost``; the Core prevents it by holding a
frame's last beat while ``sweep_busy``).

``"cycle"`` (the original block): every lane in flip-flops;

Timing (cycle cadence, one :meth:`StimUnit.step` per rising edge): an entry or
frame tick sampled at edge n is registered and acted on at edge n+1, so the
pulse is visible from edge n+2 on; a tick sampled at edge m shortens the
pulses from edge m+2 on. An entry and a tick at the same edge: the entry is
integrated first, then the leak applies, and a pulse loaded by that entry
starts full (the tick does not count it down). Entries whose target is not a lane (k >= K) are ignored and
counted as ``bad_lane``.
"""

from __future__ import annotations

import numpy as np

from bioloop.host.aer import AERType, pack_one

__all__ = ["StimUnit", "integrate", "leak", "INT16_MIN", "INT16_MAX", "CADENCES", "min_frame_cycles"]

CADENCES = ("sweep", "cycle")


def min_frame_cycles(n_lanes: int) -> int:
    """Cycles between two frames' last beats that never wait for the sweep (no entries): K + 2."""
    return n_lanes + 2

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


def integrate(acc: int, weight: int, theta: int) -> tuple[int, bool]:
    """One routed entry on one lane: saturating add, fire at acc >= θ, subtract θ."""
    acc = min(max(acc + weight, INT16_MIN), INT16_MAX)
    if acc >= theta:
        return acc - theta, True
    return acc, False


def leak(acc, shift: int):
    """acc − (acc >> shift) (floor shift); shift 0 leaves acc unchanged. Works on arrays."""
    if shift == 0:
        return acc
    return acc - (acc >> shift)


class StimUnit:
    """Cycle model of the StimUnit.

    Parameters
    ----------
    n_lanes : int
    pulse_lengths : int or array of int
        Pulse length per lane in frames.
    leak_shift : int
        0 .. 15; 0 disables the leak.
    source : int
        Source field of the STIM words.
    cadence : {"sweep", "cycle"}
    """

    def __init__(self, n_lanes: int, pulse_lengths=20, leak_shift: int = 0, source: int = 0,
                 cadence: str = "sweep"):
        if cadence not in CADENCES:
            raise ValueError(f"cadence must be one of {CADENCES}, not {cadence!r}")
        self.cadence = cadence
        if n_lanes < 1:
            raise ValueError(f"n_lanes must be >= 1, not {n_lanes}")
        if not 0 <= leak_shift <= 15:
            raise ValueError(f"leak_shift must be in 0..15, not {leak_shift}")
        self.n_lanes = n_lanes
        self.pulse_lengths = np.broadcast_to(np.asarray(pulse_lengths, dtype=np.int64), (n_lanes,)).copy()
        self.leak_shift = leak_shift
        self.source = source
        self.acc = np.zeros(n_lanes, dtype=np.int64)
        self.remaining = np.zeros(n_lanes, dtype=np.int64)
        self._s1 = None        # (entry or None, tick, frame) sampled at the previous edge
        self.fires = 0
        self.bad_lane = 0
        # sweep cadence
        self.env = np.zeros(n_lanes, dtype=bool)
        self.busy = False
        self.again = False
        self.ptr = 0
        self.sw_lane = None      # lane read by the sweep at the previous edge
        self.ticks_lost = 0

    @property
    def staged(self):
        """``(entry, tick, frame)`` sampled at the previous edge (acted on at the coming one),
        or None before the first edge."""
        return self._s1

    @property
    def staged_lane(self) -> int | None:
        """Lane of the entry sampled at the previous edge (it fires, if at all, at the coming one)."""
        return None if self._s1 is None or self._s1[0] is None else self._s1[0][0]

    @property
    def staged_frame(self) -> int:
        """Frame sampled at the previous edge (the stamp of a STIM word fired at the coming one)."""
        return 0 if self._s1 is None else self._s1[2]

    def step_quiet(self, frame: int, ticks: int = 0) -> None:
        """Edges with no entry, when no pulse runs and no tick is staged, ``ticks`` of them with a
        frame tick (each leaks once), the last sampling ``frame``: the same as those steps."""
        if self.remaining.any() or (self._s1 is not None and (self._s1[0] is not None or self._s1[1])) \
                or (self.cadence == "sweep" and (self.busy or self.sw_lane is not None)):
            raise ValueError("StimUnit.step_quiet needs no pulse, no staged entry, no staged tick "
                             "and no sweep running")
        if self.leak_shift:
            for _ in range(ticks):
                new = leak(self.acc, self.leak_shift)
                if np.array_equal(new, self.acc):
                    break                     # settled: further leaks change nothing
                self.acc = new
        self._s1 = (None, False, int(frame))

    @property
    def sweeping(self) -> bool:
        """Sweep cadence: a frame tick's sweep is running, queued or writing its last lane."""
        return self.cadence == "sweep" and (self.busy or self.again or self.sw_lane is not None)

    @property
    def pulse(self) -> np.ndarray:
        """Pulse envelope visible now (bool per lane)."""
        if self.cadence == "sweep":
            return self.env
        return self.remaining != 0

    def step(self, entry=None, tick: bool = False, frame: int = 0, theta=None):
        """One rising edge.

        ``entry`` is ``(target, weight)`` or None, ``tick`` the frame tick and
        ``frame`` the frame number sampled at this edge; ``theta`` is the θ
        vector the design sees at this edge. Returns the STIM word (int)
        pushed at this edge, or None.
        """
        if self.cadence == "sweep":
            return self._clock_sweep(entry, tick, frame, theta)
        word = None
        fired_lane = -1
        s_tick = False
        if self._s1 is not None:
            s_entry, s_tick, s_frame = self._s1
            if s_entry is not None:
                target, weight = s_entry
                if 0 <= target < self.n_lanes:
                    self.acc[target], fired = integrate(int(self.acc[target]), int(weight), int(theta[target]))
                    if fired:
                        fired_lane = target
                        self.fires += 1
                        word = pack_one(target, self.source, AERType.STIM, s_frame)
                else:
                    self.bad_lane += 1
            if s_tick:
                self.acc = leak(self.acc, self.leak_shift)
        if s_tick:
            self.remaining = np.maximum(self.remaining - 1, 0)
        if fired_lane >= 0:
            self.remaining[fired_lane] = self.pulse_lengths[fired_lane]
        self._s1 = (entry, bool(tick), int(frame))
        return word

    def _clock_sweep(self, entry, tick, frame, theta):
        word = None
        K = self.n_lanes
        if self._s1 is not None:
            s_entry, _, s_frame = self._s1
            if s_entry is not None:
                target, weight = s_entry
                if 0 <= target < K:
                    self.acc[target], fired = integrate(int(self.acc[target]), int(weight), int(theta[target]))
                    if fired:
                        self.fires += 1
                        self.remaining[target] = self.pulse_lengths[target]
                        self.env = self.env.copy()
                        self.env[target] = self.remaining[target] != 0
                        word = pack_one(target, self.source, AERType.STIM, s_frame)
                else:
                    self.bad_lane += 1
        if self.sw_lane is not None:
            k = self.sw_lane
            self.acc[k] = leak(int(self.acc[k]), self.leak_shift)
            self.remaining[k] = max(int(self.remaining[k]) - 1, 0)
            self.env = self.env.copy()
            self.env[k] = self.remaining[k] != 0
        self.sw_lane = self._sweep_step(entry is not None, tick)
        self._s1 = (entry, bool(tick), int(frame))
        return word

    def _sweep_step(self, accept: bool, tick: bool):
        """The sweep's registers at one edge; returns the lane read at this edge (or None)."""
        issue = self.busy and not accept
        last = issue and self.ptr == self.n_lanes - 1
        read = self.ptr if issue else None
        if tick and (not self.busy or last):
            self.busy, self.ptr = True, 0
        elif tick:
            self.ticks_lost += self.again
            self.again = True
            self.ptr += issue
        elif last:
            self.busy, self.ptr, self.again = self.again, 0, False
        elif issue:
            self.ptr += 1
        return read

    def quiet(self, n: int, tick: bool, frame: int) -> np.ndarray:
        """``n`` edges without entries (and none in the registered stage), a frame tick sampled
        at the first if ``tick``; returns the (n, K) envelopes visible after each edge. The same
        as ``clock`` edge by edge, in O(K) steps of the sweep plus the envelope array."""
        assert self._s1 is None or self._s1[0] is None, "quiet() needs an empty entry stage"
        K = self.n_lanes
        env = np.empty((n, K), dtype=bool)
        if n == 0:
            return env
        if self.cadence == "cycle":
            # The tick acts one edge later: at edge 1 (if n > 1), or after the stretch.
            env[0] = self.pulse
            if self._s1 is not None and self._s1[1]:
                self.acc = leak(self.acc, self.leak_shift)
                self.remaining = np.maximum(self.remaining - 1, 0)
                env[0] = self.pulse
            env[1:] = self.pulse
            if tick and n > 1:
                self.acc = leak(self.acc, self.leak_shift)
                self.remaining = np.maximum(self.remaining - 1, 0)
                env[1:] = self.pulse
                tick_left = False
            else:
                tick_left = tick and n == 1
            self._s1 = (None, tick_left, int(frame))
            return env
        writes = []                           # (edge index, lane) of the sweep's writes
        i = 0
        while i < n and (self.sw_lane is not None or self.busy or (tick and i == 0)):
            if self.sw_lane is not None:
                writes.append((i, self.sw_lane))
            self.sw_lane = self._sweep_step(False, tick and i == 0)
            i += 1
        row = self.env.copy()
        start = 0
        for i, k in writes:
            env[start:i] = row
            start = i
            self.acc[k] = leak(int(self.acc[k]), self.leak_shift)
            self.remaining[k] = max(int(self.remaining[k]) - 1, 0)
            row[k] = self.remaining[k] != 0
        env[start:] = row
        self.env = row
        self._s1 = (None, bool(tick and n == 1), int(frame))
        return env
