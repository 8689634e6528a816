"""Policies of the slow loop: an observation and the session state in, register writes out.

Every control period (50 ms of recording time by default) the slow loop
(:mod:`bioloop.host.loop`) builds one :class:`Observation` from the AER
words of the period and asks each active policy for register writes::

    class Calm:
        \"\"\"Dim every lane while a network burst is under way.\"\"\"
        name = "calm"

        def start(self, setup):                 # optional: writes before the first period
            return []

        def step(self, obs, state):
            if obs.bursting:
                return [Write("lane_codes", 0x0400, index=k, reason="burst: dim the light")
                        for k in range(state.n_lanes)]
            return []

    run_loop(driver, culture, settings, policies=[Calm()])

A :class:`Write` names a driver accessor (``register``), the table index
or route source (``index``, None for a scalar field), the value and the
reason. The loop checks every write of a period against the register map
before the first one reaches the bus (:func:`check_write`); a policy that
raises, asks for an unknown register or an out-of-range value is stopped,
its whole batch is dropped, and the audit log and the run summary say
why. Writes that a policy may ask for are :data:`WRITABLE`: the Detector,
StimUnit, lane and Homeostasis settings and the routes; the Safety caps and
the control register are not a policy's to change.

Built-in policies (:data:`POLICIES`): :class:`Homeostasis` (the default:
gateware homeostasis, the host only observes), :class:`RateHomeostasis`
(the host holds the population rate, for when the per-lane gateware
controller cannot; docs/loop.md), :class:`BurstControl` (Wagenaar,
Madhavan, Pine & Potter 2005) and :class:`Plasticity` (route weights
updated by the bioware STDP rule, Bi & Poo 1998).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Write", "Observation", "LoopState", "Policy", "PolicyError", "check_write", "WRITABLE",
           "Homeostasis", "RateHomeostasis", "BurstControl", "Plasticity", "POLICIES", "make_policy"]

#: Registers a policy may write: tables (indexed), scalar fields (index None) and ``routes``.
WRITABLE_TABLES = ("thresholds", "polarity", "theta", "homeo_src", "homeo_target", "lane_codes",
                   "pulse_lengths")
WRITABLE_FIELDS = ("refractory", "leak_shift", "homeo_enable", "homeo_window", "homeo_gain", "homeo_shift",
                   "theta_min", "theta_max")
WRITABLE = WRITABLE_TABLES + WRITABLE_FIELDS + ("routes",)


class PolicyError(ValueError):
    """A policy asked for a write the core cannot take; the message names the policy, register and range."""


@dataclass(frozen=True)
class Write:
    """One register write asked for by a policy.

    Parameters
    ----------
    register : str
        A name of :data:`WRITABLE`: a table of the driver (``"theta"``,
        ``"lane_codes"``...), a scalar field (``"homeo_gain"``...) or
        ``"routes"``.
    value : int or tuple
        The raw register value (Q8.8 codes, density codes, frames); for
        ``routes`` a tuple of ``(port, target, weight_q88)`` entries.
    index : int or None
        Table index (lane or channel) or the route's source address; None for
        a scalar field.
    reason : str
        Why, in words; it goes into the audit log with the observation.
    """
    register: str
    value: Any
    index: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class Observation:
    """What the slow loop saw in one control period (recording time, not wall time).

    Members
    -------
    period : int
        Index of the control period, from 0.
    t_s, period_s : float
        End of the period and its length, seconds of recording.
    rates_hz : ndarray (N,)
        SPIKE words per second of every recording channel in the period.
    features : ndarray (N,)
        :class:`~bioloop.host.observation.AERControlObservation` features of
        the period (rate decoder, unit normalisation).
    spike_times_s, spike_channels : ndarray
        The period's SPIKE events (frame time / sample rate, channel).
    stims : ndarray (K,)
        STIM words per lane in the period.
    theta_q88 : ndarray (K,)
        θ of every lane read back at the end of the period.
    population_rate_hz : float
        Mean of ``rates_hz`` over the controlled channels.
    health : dict
        :class:`~bioloop.host.bioware.health.CultureHealth` of the period.
    bursts : tuple
        Network bursts (:class:`~bioloop.host.bioware.bursts.NetworkBurst`)
        found in the trailing analysis window that end in this period or
        are still under way.
    bursting : bool
        A network burst is under way at the end of the period.
    """
    period: int
    t_s: float
    period_s: float
    rates_hz: np.ndarray
    features: np.ndarray
    spike_times_s: np.ndarray
    spike_channels: np.ndarray
    stims: np.ndarray
    theta_q88: np.ndarray
    population_rate_hz: float
    health: dict
    bursts: tuple
    bursting: bool

    def summary(self) -> dict:
        """The JSON-safe figures the audit log records with every write."""
        return {"period": self.period, "t_s": round(self.t_s, 6),
                "population_rate_hz": round(self.population_rate_hz, 3),
                "spikes": int(self.spike_channels.size), "stims": int(self.stims.sum()),
                "theta_mean_q88": round(float(self.theta_q88.mean()), 2) if self.theta_q88.size else None,
                "bursting": bool(self.bursting), "health": self.health.get("status")}


@dataclass
class LoopState:
    """The session state a policy may read (the loop owns it; policies do not write it).

    Members
    -------
    n_channels, n_lanes : int
        N and K of the core.
    controlled : ndarray
        Channels (= lanes) under closed-loop control.
    sample_rate_hz : float
    settings : LoopSettings
    session : BioHybridSession
        The bioware session: its ``weights_q88`` (N, N) follow its STDP/BCM
        rules from the loop's spike trains, its ``health_monitor`` judges the
        culture.
    written : dict
        The last value the loop wrote per ``(register, index)``.
    history : list
        Earlier observations of this run, oldest first (bounded).
    """
    n_channels: int
    n_lanes: int
    controlled: np.ndarray
    sample_rate_hz: float
    settings: Any
    session: Any
    written: dict = field(default_factory=dict)
    history: list = field(default_factory=list)


@runtime_checkable
class Policy(Protocol):
    """A policy: ``name`` and ``step(obs, state) -> list[Write]``; ``start(state)`` is optional."""
    name: str

    def step(self, obs: Observation, state: LoopState) -> list[Write]:
        ...


def check_write(driver, write, policy: str = "policy") -> tuple[str, int | None, Any]:
    """Check one write against the register map; return ``(register, index, value)`` or raise :class:`PolicyError`.

    Nothing touches the bus. Routes are checked as the driver would check
    them (fanout, port, lane range, Q8.8 weight).
    """
    if not isinstance(write, Write):
        raise PolicyError(f"{policy} returned {write!r}, not a Write")
    reg, idx, value = write.register, write.index, write.value
    if reg not in WRITABLE:
        raise PolicyError(f"{policy} wrote to {reg!r}, which is not a register a policy may write; "
                          f"the writable ones are {', '.join(WRITABLE)}")
    if not isinstance(write.reason, str):
        raise PolicyError(f"{policy}: the reason of a write to {reg} must be a string")
    try:
        if reg == "routes":
            if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)):
                raise PolicyError(f"{policy}: a routes write needs the source address as index, not {idx!r}")
            return reg, int(idx), tuple(driver.routes.check(int(idx), value))
        if reg in WRITABLE_TABLES:
            table = driver.regmap.table(reg)
            if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)) or not 0 <= idx < table.depth:
                raise PolicyError(f"{policy}: {reg}[{idx!r}] is not an index 0..{table.depth - 1}")
            (f,) = table.fields
            return reg, int(idx), f.check(_integer(value, f"{reg}[{idx}]"), f"{reg}[{idx}]")
        if idx is not None:
            raise PolicyError(f"{policy}: {reg} is a scalar register; its index must be None, not {idx!r}")
        _, f = driver.regmap.field(reg)
        return reg, None, f.check(_integer(value, reg), reg)
    except PolicyError:
        raise
    except (TypeError, ValueError, LookupError) as exc:
        raise PolicyError(f"{policy}: {exc}") from None


def _integer(value, what):
    if isinstance(value, (bool, np.bool_)):
        value = int(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value) or value != int(value):
            raise PolicyError(f"{what} = {value!r} is not an integer")
        value = int(value)
    if not isinstance(value, (int, np.integer)):
        raise PolicyError(f"{what} = {value!r} is not an integer")
    return int(value)


# --------------------------------------------------------------------------------------------
# Built-in policies
# --------------------------------------------------------------------------------------------

class Homeostasis:
    """Gateware homeostasis (Turrigiano 2012) moves θ per lane; the host only observes.

    The loop programs the Homeostasis block from the settings
    (:func:`bioloop.host.loop.program_core`); this policy writes nothing.
    """
    name = "homeostasis"

    def step(self, obs, state):
        return []


@dataclass
class RateHomeostasis:
    """The host holds the controlled channels' rate at the target with one common light intensity.

    Why not per lane: docs/loop.md. With the stimulation triggered by the
    lane's own spikes the loop is regenerative, the culture couples all
    lanes through network bursts, and 60 integrators acting on a 100 ms
    count each pull together: a limit cycle. This controller instead sets
    the density code of every controlled lane (the light's intensity) for
    a tonic stimulation clock (``LoopSettings.clock_hz``):

    - it measures the population rate of the controlled channels over a
      sliding ``window_s`` (long enough to average over a burst);
    - it moves the code multiplicatively (the evoked rate grows with the
      log of the intensity more evenly than with the intensity itself) by
      a proportional term on the log error of the window plus an integral
      term;
    - it changes the code by at most ``max_step`` (relative) per period,
      so a burst cannot throw it.

    Parameters
    ----------
    window_s : float
        Averaging window of the rate.
    kp, ki : float
        Proportional gain (per unit log error) and integral gain (per unit
        log error per second) on log code.
    max_step : float
        Largest change of log code per period.
    code_min, code_max : int
        Range of the density code.
    target_hz : float or None
        The rate to hold; None: ``LoopSettings.target_rate_hz``.
    """
    window_s: float = 1.0
    kp: float = 0.5
    ki: float = 0.5
    max_step: float = 0.05
    code_min: int = 64
    code_max: int = 0xFFFF
    target_hz: float | None = None
    name: str = "rate-homeostasis"
    _log_code: float | None = field(default=None, init=False, repr=False)
    _integral: float = field(default=0.0, init=False, repr=False)

    def step(self, obs, state):
        s = state.settings
        n = max(1, int(round(self.window_s / obs.period_s)))
        recent = (state.history + [obs])[-n:]
        rate = float(np.mean([o.population_rate_hz for o in recent]))
        target = s.target_rate_hz if self.target_hz is None else self.target_hz
        err = math.log(max(rate, 0.05 * target) / target)      # > 0: too active, dim the light
        if self._log_code is None:
            self._log_code = self._base = math.log(max(1, s.lane_code))
        if len(recent) < n:                                     # the window is not full yet
            return []
        self._integral -= self.ki * err * obs.period_s
        wanted = self._base + self._integral - self.kp * err
        step = float(np.clip(wanted - self._log_code, -self.max_step, self.max_step))
        code = int(np.clip(round(math.exp(self._log_code + step)), self.code_min, self.code_max))
        self._log_code = math.log(code)
        if state.written.get(("lane_codes", int(state.controlled[0]))) == code:
            return []
        why = f"rate {rate:.1f} Hz over {len(recent) * obs.period_s:g} s vs target {target:g} Hz"
        return [Write("lane_codes", code, index=int(k), reason=why) for k in state.controlled]


@dataclass
class BurstControl(RateHomeostasis):
    """Closed-loop suppression of network bursts by distributed stimulation (Wagenaar et al. 2005).

    Wagenaar, Madhavan, Pine & Potter (J. Neurosci. 2005) abolished the
    spontaneous bursts of cortical cultures with stimulation distributed
    over many electrodes, its rate adjusted by feedback on the recorded
    firing rate: the network is kept busy with many small, scattered
    responses, so the synaptic resources a burst needs never build up.

    Here the stimulation clock (``LoopSettings.clock_hz``) lights every lane
    tonically, and the policy sets the light's intensity (the lanes'
    density codes) by feedback on the population rate, holding the tonic
    rate ``target_hz`` at which the in-silico culture no longer bursts
    (docs/loop.md measures where that regime starts). It is the
    :class:`RateHomeostasis` controller with the tonic rate as its target.
    """
    target_hz: float | None = 300.0
    name: str = "burst-control"


@dataclass
class Plasticity:
    """Route weights channel c -> lane k as bio-hybrid synapses under the bioware STDP rule.

    The pre-synaptic train is the SPIKE words of channel c, the post-synaptic
    train those of channel k (the electrode under LED k). The bioware
    session applies :class:`~bioloop.host.bioware.plasticity.BiologicalSTDP`
    (Bi & Poo 1998; BCM optional) to its (N, N) weight matrix every period
    (w + ⌊256 Δw⌋, clamped to Q8.8); this policy writes the routed entries
    of that matrix to the routing table whenever they changed.

    Parameters
    ----------
    routes : dict
        ``{c: [k, ...]}``, the lanes each channel routes to (the loop's
        initial routes when None).
    """
    routes: dict | None = None
    name: str = "plasticity"
    #: The loop gives the session a weight matrix (and so runs STDP) only for policies that need it.
    needs_weights = True

    def step(self, obs, state):
        w = state.session.weights_q88
        out = []
        for c, lanes in self.routes.items():
            entries = tuple(("stim", int(k), int(w[c, k])) for k in lanes)
            if state.written.get(("routes", int(c))) != entries:
                out.append(Write("routes", entries, index=int(c), reason="STDP (Bi & Poo 1998) on SPIKE timing"))
        return out


#: Built-in policies by the name ``bioloop demo --experiment`` uses.
POLICIES = {"homeostasis": Homeostasis, "rate-homeostasis": RateHomeostasis, "burst-control": BurstControl,
            "plasticity": Plasticity}


def make_policy(name: str, **kw):
    """A built-in policy by name; ``ValueError`` naming the choices for an unknown one."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; the built-in ones are {', '.join(POLICIES)}")
    return POLICIES[name](**kw)
