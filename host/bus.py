"""The bus protocol every driver backend implements (DESIGN.md §7).

:class:`bioloop.host.driver.Driver` talks to ``Core`` only through an object
with these four methods, so a backend (the PYNQ board, the Verilated RTL
under cocotb, the Python transaction model, or a test fake) is nothing more
than a bus object. A bus may offer optional capabilities beside them:
:class:`LedReadback` (the LED vector per frame, on the simulated backends).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Bus", "LedReadback", "BusError", "BusTimeout"]


class BusError(RuntimeError):
    """The bus answered, but with an error (e.g. AXI SLVERR), or broke its contract."""


class BusTimeout(TimeoutError):
    """A bus operation did not complete in time.

    Raised by backends in place of their own timeout types. The backend stays
    usable afterwards: nothing already accepted is lost, and the operation
    can be retried (for ``receive_words`` the pending transfer stays armed and
    its words arrive with a later call).
    """


@runtime_checkable
class Bus(Protocol):
    """A connection to one ``Core``: 32-bit CSR access and the two streams."""

    def read32(self, addr: int) -> int:
        """Read the 32-bit CSR at byte offset ``addr`` (relative to the core's base)."""
        ...

    def write32(self, addr: int, value: int) -> None:
        """Write ``value`` (0..2**32-1) to the CSR at byte offset ``addr``."""
        ...

    def send_samples(self, beats: np.ndarray) -> None:
        """Send sample beats: ``uint32`` of shape ``(frames, N // 2)``.

        Each row is one frame; the backend marks the last beat of each row
        with TLAST (DESIGN.md §3). Beat ``i`` of a row carries channel ``2i``
        in its low half and ``2i + 1`` in its high half.
        """
        ...

    def receive_words(self, max_words: int, timeout_s: float) -> np.ndarray:
        """Receive up to ``max_words`` AER words as a ``uint64`` array.

        Returns the words that arrived within ``timeout_s``, oldest first; an
        empty array (the core had nothing to say) is not an error. A backend
        whose transport delivers only whole blocks (the PYNQ AXI DMA, which
        completes a receive at TLAST) raises :class:`BusTimeout` when no block
        completed in time, and keeps the receive armed for the next call.
        """
        ...


@runtime_checkable
class LedReadback(Protocol):
    """Optional capability of a bus: the light it produced, for an in-silico culture.

    The simulated backends (model, verilator) have it; the board does not.
    :meth:`bioloop.host.driver.Driver.leds` reaches it through the driver.
    """

    def leds(self) -> np.ndarray:
        """For each frame whose last beat went in since the last call, the lit fraction of every
        LED during that frame: float (frames, K)."""
        ...
