"""The closed-loop experiments of ``bioloop demo --experiment``: settings, policies and the comparison run.

Each :class:`Experiment` says how to run the loop with its policy ("on")
and what to compare it with ("off"):

- ``homeostasis`` (default): the rate held at the target by the host's
  :class:`~bioloop.host.policy.RateHomeostasis` on a tonic stimulation
  clock (docs/loop.md explains why not the per-lane gateware integrators);
  off: the same clock at its initial intensity, no feedback.
- ``burst-control``: distributed stimulation against network bursts
  (Wagenaar, Madhavan, Pine & Potter 2005): 50 single-lane pulses per
  second cycling over all 60 lanes, their strength fed back from the tonic
  population rate (:class:`~bioloop.host.policy.BurstControl`); off: the
  culture without stimulation. Compared in bursts per minute.
- ``plasticity``: route weights channel c -> lanes of its neighbours under
  the bioware STDP rule (Bi & Poo 1998); off: the same routes with fixed
  weights.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from bioloop.host.policy import BurstControl, Plasticity, RateHomeostasis

__all__ = ["Experiment", "EXPERIMENTS", "experiment", "TONIC", "DISTRIBUTED", "DEFAULT_TARGET_HZ"]


@dataclass(frozen=True)
class Experiment:
    """One experiment: its settings and policies, and the reference run it is compared with.

    Members
    -------
    name : str
    description : str
    settings : callable(LoopSettings) -> LoopSettings
        Adjusts the user's settings (duration, target) for the experiment.
    policies : callable() -> list
        Fresh policy objects for the "on" run.
    reference : callable(LoopSettings) -> LoopSettings
        Settings of the "off" run (its policies: none).
    on_label, off_label : str
    """
    name: str
    description: str
    settings: Callable
    policies: Callable
    reference: Callable
    on_label: str
    off_label: str


#: The tonic operating point: a 100 Hz stimulation clock on every lane at density 1/4. Below about
#: 1/8 the culture keeps bursting under the light (docs/loop.md); the controllers start here.
TONIC = {"clock_hz": 100.0, "lane_code": 0x4000, "theta0_q88": 2048, "homeostasis": False}

#: Distributed stimulation (burst-control): the 4 spare channels tick at 20 Hz each, staggered by 12.5 ms, so
#: every 50 ms control period has 4 stimulation slots (80/s) for the policy to fill; no spike-triggered light
#: (the channels' own routes have weight 0); full-intensity 2 ms pulses until the controller moves them.
DISTRIBUTED = {"clock_hz": 20.0, "weight_q88": 0, "lane_code": 0xFFFF, "theta0_q88": 2048, "pulse_ms": 2.0,
               "homeostasis": False, "target_rate_hz": BurstControl.target_hz}

#: The rate the homeostasis experiment holds unless told otherwise (detections per second per channel):
#: inside the tonic regime (docs/loop.md).
DEFAULT_TARGET_HZ = 300.0


EXPERIMENTS = {
    "homeostasis": Experiment(
        "homeostasis", "the controlled channels' rate held at the target (host controller on a stimulation clock)",
        lambda s: replace(s, **TONIC), lambda: [RateHomeostasis()], lambda s: replace(s, **TONIC),
        "controller on", "controller off"),
    "burst-control": Experiment(
        "burst-control", "network bursts suppressed by distributed stimulation (Wagenaar et al. 2005)",
        lambda s: replace(s, **DISTRIBUTED), lambda: [BurstControl()],
        lambda s: replace(s, homeostasis=False, weight_q88=0, clock_hz=0.0),
        "burst control on", "no stimulation"),
    "plasticity": Experiment(
        "plasticity", "route weights c -> k under the bioware STDP rule (Bi & Poo 1998)",
        lambda s: replace(s, homeostasis=False, neighbours=4, theta0_q88=1024),
        lambda: [Plasticity()],
        lambda s: replace(s, homeostasis=False, neighbours=4, theta0_q88=1024),
        "STDP on", "fixed weights"),
}


def experiment(name: str) -> Experiment:
    """The experiment called ``name``; ``ValueError`` naming the choices otherwise."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]
