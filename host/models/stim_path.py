"""StimPath: routed entries and SPIKE words in, LED vector and STIM words out (DESIGN.md §1).

The cycle model composes the block models the way the gateware wires them:

    routed entries ─► StimUnit (θ from Homeostasis) ─► pulse ─┐
    SPIKE words ─► Homeostasis (counts per homeo_src[k])       ├─► Safety ─► LEDs
    StochasticLanes (free-running from reset) ─► bits ─────────┘

At each rising edge every block reads the state the others had *before*
the edge, as flip-flops do. Fire-to-LED: an entry sampled at edge n fires
at edge n+1, its pulse is visible at edge n+2, Safety registers the LED at
edge n+2, so the pin is high at edge n+3 (when the lane bit is 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bioloop.host.aer import AERType
from bioloop.host.models.homeostasis import Homeostasis
from bioloop.host.models.stochastic_lanes import StochasticLanes
from bioloop.host.models.safety import Safety
from bioloop.host.models.stim_unit import StimUnit

__all__ = ["StimPath", "StimPathTrace", "ENTRY_TO_LED"]

#: Edges from the handshake of a routed entry to the first edge at which the
#: LED reads high (density code 0xFFFF, weight >= θ).
ENTRY_TO_LED = 3


@dataclass
class StimPathTrace:
    """What the model produced over a run of edges."""
    led: np.ndarray                      # (n, K) bool: LED vector registered at each edge
    stim: list = field(default_factory=list)   # (edge, word) STIM words pushed
    closes: list = field(default_factory=list)  # edges at which a homeostasis window closed
    overruns: int = 0
    clamps: np.ndarray = None


class StimPath:
    """Cycle model of StimPath; construct with the table contents in force.

    Parameters
    ----------
    n_lanes : int
    codes : array of int
        Density code per lane.
    lane_steps : int
        How many cycles the LFSRs already ran (since reset) when the run starts.
    stim_unit, homeostasis, safety : models configured by the caller.
    seed0, lane_mode, lanes_cadence : LFSR seed, mode and the lanes' cadence.
    """

    def __init__(self, n_lanes: int, codes, stim_unit: StimUnit, homeostasis: Homeostasis,
                 safety: Safety, lane_steps: int = 0, seed0: int = 0xACE1,
                 lane_mode: str = "independent", lanes_cadence: str = "sweep"):
        self.n_lanes = n_lanes
        self.codes = np.broadcast_to(np.asarray(codes, dtype=np.int64), (n_lanes,)).copy()
        self.lanes = StochasticLanes(n_lanes, seed0, lane_mode, cadence=lanes_cadence)
        self.lane_steps = lane_steps
        self.stim_unit = stim_unit
        self.homeostasis = homeostasis
        self.safety = safety

    def run(self, n_edges: int, entries=None, spikes=None, ticks=None, frames=None) -> StimPathTrace:
        """Run ``n_edges`` edges.

        entries : dict edge -> (target, weight) for routed entries handshaked at that edge
        spikes : dict edge -> (address, type) for AER words handshaked at that edge
        ticks : iterable of edges at which frame_tick is sampled high
        frames : array (n,) of the ``frame`` input at each edge (default 0)
        """
        entries = entries or {}
        spikes = spikes or {}
        ticks = set(ticks or ())
        frames = np.zeros(n_edges, dtype=np.int64) if frames is None else np.asarray(frames)
        bits = self.lanes.bits(self.codes, n_edges, edge=self.lane_steps)
        self.lane_steps += n_edges
        trace = StimPathTrace(led=np.zeros((n_edges, self.n_lanes), dtype=bool))
        fire_lane = None                 # the StimUnit's fire strobe, visible one edge after the fire
        for e in range(n_edges):
            theta = self.homeostasis.theta.copy()
            trace.led[e], _ = self.safety.step(self.stim_unit.pulse, bits[e], fire_lane)
            tick = e in ticks
            s1 = self.stim_unit._s1
            fires = self.stim_unit.fires
            word = self.stim_unit.step(entries.get(e), tick, int(frames[e]), theta)
            fire_lane = s1[0][0] if self.stim_unit.fires != fires else None
            if word is not None:
                trace.stim.append((e, word))
            spike = spikes.get(e)
            address = spike[0] if spike is not None and spike[1] == AERType.SPIKE.value else None
            closed, overrun = self.homeostasis.step(address, tick)
            if closed:
                trace.closes.append(e)
            trace.overruns += overrun
        trace.clamps = self.safety.clamps.copy()
        return trace

