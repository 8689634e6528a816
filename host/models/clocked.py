"""The one verb of the block models: :meth:`Clocked.step` is one rising clock edge.

Every cycle-exact model of a gateware block (Detector, AEREncoder, AERRouter,
AERPath, StimUnit, StochasticLanes, Homeostasis, Safety, Core) advances with
``step(...)``: the arguments are the block's inputs as they are before the
edge, the result is what the block hands over at that edge. ``reset()``
returns a model to its state after reset. Bulk helpers that take many edges
at once say so in their names (``run``, ``run_beats``, ``idle``, ``process``).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Clocked"]


@runtime_checkable
class Clocked(Protocol):
    """A block model advanced one rising clock edge per :meth:`step`."""

    def step(self, *args, **kwargs):
        """Advance one rising clock edge with the given inputs; return the block's outputs."""
        ...
