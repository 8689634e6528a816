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

Timing (cycle model, one :meth:`StimUnit.clock` per rising edge): an entry or
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

__all__ = ["StimUnit", "integrate", "leak", "INT16_MIN", "INT16_MAX"]

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
    """

    def __init__(self, n_lanes: int, pulse_lengths=20, leak_shift: int = 0, source: int = 0):
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
        if self.remaining.any() or (self._s1 is not None and (self._s1[0] is not None or self._s1[1])):
            raise ValueError("StimUnit.step_quiet needs no pulse, no staged entry and no staged tick")
        if self.leak_shift:
            for _ in range(ticks):
                new = leak(self.acc, self.leak_shift)
                if np.array_equal(new, self.acc):
                    break                     # settled: further leaks change nothing
                self.acc = new
        self._s1 = (None, False, int(frame))

    @property
    def pulse(self) -> np.ndarray:
        """Pulse envelope visible now (bool per lane)."""
        return self.remaining != 0

    def step(self, entry=None, tick: bool = False, frame: int = 0, theta=None):
        """One rising edge.

        ``entry`` is ``(target, weight)`` or None, ``tick`` the frame tick and
        ``frame`` the frame number sampled at this edge; ``theta`` is the θ
        vector the design sees at this edge. Returns the STIM word (int)
        pushed at this edge, or None.
        """
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
