"""The light the culture sees on the board, reconstructed from STIM words.

On the PYNQ-Z2 the LED pins leave the fabric and cannot be read back over
the bus, so a hardware-in-the-loop run with the in-silico culture (the
programmable logic real, the tissue simulated on the ARM) rebuilds each
lane's light per frame from what the host does see:

- a STIM word of lane k with timestamp t (the frame in which the StimUnit
  fired) starts a pulse of ``pulse_lengths[k]`` frames at frame t;
- during a pulse the LED carries the lane's stochastic bitstream, whose
  mean is the density ``(code - 1) / 65535`` of the lane code (DESIGN.md §2;
  0 for code 0): that mean is the light of each frame of the pulse.

The approximation: the mean replaces the per-cycle LFSR pattern (the
model's per-frame LED vector averages the few cycles that carry each
frame's beats), a pulse re-triggered while running is taken as restarted,
Safety's clamps (pulse length, duty, lit lanes) are not applied, and a STIM
word counts only once it has been received, so the light of a pulse whose
word is still in an unfinished DMA block arrives late. ``docs/board.md``
gives the measured difference to the model's LED vectors.
"""

from __future__ import annotations

import numpy as np

from bioloop.host import aer
from bioloop.host.aer import AERType

__all__ = ["density", "light_from_stims", "StimLight"]


def density(codes) -> np.ndarray:
    """Mean LED level of a lane code: ``(code - 1) / 65535``, 0 for code 0 (DESIGN.md §2)."""
    c = np.asarray(codes, np.float64)
    return np.where(c >= 1, (c - 1) / 65535.0, 0.0)


def light_from_stims(words, first_frame: int, n_frames: int, pulse_frames, codes,
                     carry: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame light of frames ``first_frame .. first_frame + n_frames - 1``.

    Parameters
    ----------
    words : uint64 array
        AER words; only STIM words are used (lane = address).
    pulse_frames, codes : array (K,)
        Programmed pulse length in frames and density code of every lane.
    carry : int array (K,), optional
        Frame at which each lane's running pulse ends (from the previous call).

    Returns
    -------
    light : float32 (n_frames, K)
    carry : int64 (K,) the updated pulse ends.
    """
    pulse_frames = np.asarray(pulse_frames, np.int64)
    K = pulse_frames.shape[0]
    end = np.full(K, -1, np.int64) if carry is None else np.asarray(carry, np.int64).copy()
    f = aer.unpack(np.asarray(words, np.uint64))
    st = (f.type == AERType.STIM.value) & (f.address < K)
    lanes = f.address[st].astype(np.int64)
    times = f.timestamp[st].astype(np.int64)
    frames = np.arange(first_frame, first_frame + n_frames, dtype=np.int64)
    lit = frames[:, None] < end[None, :]
    for k, t in sorted(zip(lanes.tolist(), times.tolist(), strict=True), key=lambda p: p[1]):
        stop = t + int(pulse_frames[k])
        lit[:, k] |= (frames >= t) & (frames < stop)
        end[k] = max(end[k], stop)
    return (lit * density(codes)[None, :]).astype(np.float32), end


class StimLight:
    """A bus wrapper that keeps every received word and reports the light per frame sent.

    It offers the bus protocol (forwarding to ``bus``) plus ``leds()``, the
    per-frame light rebuilt by :func:`light_from_stims` from the STIM words
    received so far, so :func:`bioloop.host.loop.run_loop` runs on the board
    as on the simulated backends. ``received`` holds every word, in order,
    so a run that fails half way can still save them.
    """

    def __init__(self, bus, driver=None):
        self.bus = bus
        self.driver = driver
        self.received: list[np.ndarray] = []
        self._frames_sent = 0
        self._frames_reported = 0
        self._pending: list[np.ndarray] = []
        self._carry = None

    def read32(self, addr):
        return self.bus.read32(addr)

    def write32(self, addr, value):
        self.bus.write32(addr, value)

    def send_samples(self, beats):
        self.bus.send_samples(beats)
        self._frames_sent += int(np.asarray(beats).shape[0])

    def receive_words(self, max_words, timeout_s):
        words = self.bus.receive_words(max_words, timeout_s)
        if words.size:
            self.received.append(words)
            self._pending.append(words)
        return words

    def words(self) -> np.ndarray:
        """Every word received so far."""
        return np.concatenate(self.received) if self.received else np.zeros(0, np.uint64)

    def leds(self) -> np.ndarray:
        """float32 (frames, K): the rebuilt light of each frame sent since the last call."""
        drv = self.driver
        if drv is None:
            raise ValueError("StimLight needs the driver (for the programmed pulse lengths and codes)")
        K = drv.K
        pulses = [drv.pulse_lengths[k] for k in range(K)]
        codes = [drv.lane_codes[k] for k in range(K)]
        n = self._frames_sent - self._frames_reported
        words = np.concatenate(self._pending) if self._pending else np.zeros(0, np.uint64)
        self._pending = []
        light, self._carry = light_from_stims(words, self._frames_reported, n, pulses, codes, self._carry)
        self._frames_reported = self._frames_sent
        return light

    def close(self):
        close = getattr(self.bus, "close", None)
        if close is not None:
            close()
