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
    unit_rates_hz : ndarray (n_electrodes, units) or None
        With sorting in the loop (``LoopSettings.sort_units``): spikes per
        second of every sorted unit in the period (unit u of channel c at
        ``[c, u - 1]``); None without sorting.
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
    unit_rates_hz: np.ndarray | None = None

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
    clock : dict
        The stimulation clock (``LoopSettings.clock_hz``): ``{spare channel:
        [lanes]}`` as programmed; every clock spike on a spare channel
        enters the routes of that channel, which a policy may rewrite.
    """
    n_channels: int
    n_lanes: int
    controlled: np.ndarray
    sample_rate_hz: float
    settings: Any
    session: Any
    written: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    clock: dict = field(default_factory=dict)


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
class BurstControl:
    """Closed-loop suppression of network bursts by distributed stimulation (Wagenaar et al. 2005).

    Wagenaar, Madhavan, Pine & Potter (J. Neurosci. 25:680, 2005) turned the
    burst-dominated activity of cortical cultures into dispersed firing with
    background stimulation at an aggregate rate of tens of stimuli per
    second (up to 50/s) spread over many electrodes, one electrode per
    stimulus, cycling; fine-tuning the stimulus strength by closed-loop
    feedback on the recorded firing rate improved the control further (their
    abstract: distributing the stimuli and closed-loop fine-tuning of their
    strength "greatly enhanced burst control"). The network is kept busy with
    many small, scattered responses, so the synaptic resources a burst needs
    never build up.

    Here one stimulus is one light pulse (``LoopSettings.pulse_ms``) on one
    lane. The stimulation clock (``LoopSettings.clock_hz``) gives every spare
    channel of the core one synthetic spike per slot; every control period
    this policy points the routes of as many spare channels as the aggregate
    ``rate_hz`` needs to the next lanes of a fixed shuffled cycle over all
    controlled lanes (the others get no route: that slot stays dark), so the
    stimuli are spread over every electrode in turn. Each route's weight is
    the lane's θ, so every slot fires exactly one pulse and leaves the lane's
    accumulator at 0. The strength is the lanes' density code (the light's
    intensity), moved by a proportional-integral controller on the log of
    the tonic population rate (the median of the period rates over the last
    ``window_s``, so a burst's brief surge does not count as tonic activity)
    against ``target_hz``: when the culture falls quiet, the stimuli get
    stronger before resources for a burst can build up. Only the lanes about
    to be stimulated get their code written.

    Parameters
    ----------
    rate_hz : float
        Aggregate stimuli per second over all lanes (Wagenaar et al.: 50).
    target_hz : float
        Tonic detection rate per channel to hold (median of the period rates).
    window_s : float
        Window of the median.
    kp, ki : float
        Proportional gain (per unit log error) and integral gain (per unit
        log error per second) on log code.
    max_step : float
        Largest change of log code per period.
    code_min, code_max : int
        Range of the density code.
    seed : int
        Seed of the shuffled lane cycle.
    """
    rate_hz: float = 50.0
    target_hz: float = 30.0
    window_s: float = 1.0
    kp: float = 0.5
    ki: float = 1.0
    max_step: float = 0.05
    code_min: int = 0x1000
    code_max: int = 0xFFFF
    seed: int = 0
    name: str = "burst-control"
    _cycle: list = field(default_factory=list, init=False, repr=False)
    _next: int = field(default=0, init=False, repr=False)
    _owed: float = field(default=0.0, init=False, repr=False)
    _log_code: float | None = field(default=None, init=False, repr=False)
    _integral: float = field(default=0.0, init=False, repr=False)

    def start(self, state):
        clock = getattr(state, "clock", {}) or {}
        s = state.settings
        slots = len(clock) * s.clock_hz * s.control_period_ms / 1000.0
        need = self.rate_hz * s.control_period_ms / 1000.0
        if not clock or slots + 1e-9 < math.ceil(need):
            raise ValueError(f"burst-control needs {math.ceil(need)} stimulation slots per control period for "
                             f"{self.rate_hz:g} stimuli/s; the stimulation clock gives {slots:g} "
                             f"({len(clock)} spare channels at clock_hz = {s.clock_hz:g})")
        if abs(slots - round(slots)) > 1e-9:
            raise ValueError(f"burst-control needs a whole number of clock slots per control period, not {slots:g}: "
                             f"set clock_hz so that clock_hz x control_period_ms / 1000 is an integer")
        self._cycle = [int(k) for k in np.random.default_rng(self.seed).permutation(state.controlled)]
        self._log_code = math.log(max(1, s.lane_code))
        self._base = self._log_code
        theta = np.full(state.n_lanes, s.theta0_q88, np.int64)
        return self._schedule(state, theta, max(1, s.lane_code), "first period's stimuli")

    def _schedule(self, state, theta, code, why):
        """Routes of the spare channels (and the codes of their lanes) for the next control period."""
        s = state.settings
        spare = sorted(state.clock)
        self._owed += self.rate_hz * s.control_period_ms / 1000.0
        n = min(len(spare), int(self._owed))
        self._owed -= n
        # n of the slots, spread evenly over the period (the clock staggers the spare channels).
        chosen = [spare[int(i * len(spare) / n)] for i in range(n)] if n else []
        out = []
        for ch in spare:
            if ch in chosen:
                k = self._cycle[self._next % len(self._cycle)]
                self._next += 1
                if state.written.get(("lane_codes", k), s.lane_code) != code:
                    out.append(Write("lane_codes", code, index=k, reason=why))
                w = int(min(max(int(theta[k]), 1), 32767))
                entries = (("stim", k, w),)
            else:
                entries = ()
            if state.written.get(("routes", ch)) != entries:
                out.append(Write("routes", entries, index=ch,
                                 reason=f"distributed stimulation, {self.rate_hz:g}/s over {len(self._cycle)} lanes"))
        return out

    def step(self, obs, state):
        n = max(1, int(round(self.window_s / obs.period_s)))
        recent = (state.history + [obs])[-n:]
        tonic = float(np.median([o.population_rate_hz for o in recent]))
        if len(recent) >= n:
            err = math.log(max(tonic, 0.05 * self.target_hz) / self.target_hz)   # > 0: busier than the target
            self._integral -= self.ki * err * obs.period_s
            self._integral = float(np.clip(self._integral, math.log(self.code_min) - self._base,
                                           math.log(self.code_max) - self._base))
            wanted = self._base + self._integral - self.kp * err
            step = float(np.clip(wanted - self._log_code, -self.max_step, self.max_step))
            self._log_code = float(np.clip(self._log_code + step, math.log(self.code_min), math.log(self.code_max)))
        code = int(np.clip(round(math.exp(self._log_code)), self.code_min, self.code_max))
        why = f"tonic rate {tonic:.1f} Hz (median over {len(recent) * obs.period_s:g} s) vs target {self.target_hz:g} Hz"
        return self._schedule(state, obs.theta_q88, code, why)


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
    rule : str
        ``"stdp"`` (default), ``"bcm"`` (the session's
        :class:`~bioloop.host.bioware.plasticity.BCMPlasticity` on each
        period's rates instead: Bienenstock, Cooper & Munro 1982) or
        ``"stdp+bcm"`` (both, STDP first).
    bcm : BCMPlasticity, optional
        The BCM rule's parameters (its defaults when None).
    """
    routes: dict | None = None
    rule: str = "stdp"
    bcm: Any = None
    name: str = "plasticity"
    #: The loop gives the session a weight matrix (and so runs STDP) only for policies that need it.
    needs_weights = True

    def __post_init__(self):
        if self.rule not in ("stdp", "bcm", "stdp+bcm"):
            raise ValueError(f"rule must be 'stdp', 'bcm' or 'stdp+bcm', not {self.rule!r}")

    def configure_session(self, session) -> None:
        """Set the session's rules for this policy (the loop calls it before the first period)."""
        from bioloop.host.bioware.plasticity import BCMPlasticity
        if "stdp" not in self.rule:
            session.stdp = None
        if "bcm" in self.rule:
            session.bcm = self.bcm if self.bcm is not None else BCMPlasticity()

    def step(self, obs, state):
        w = state.session.weights_q88
        out = []
        for c, lanes in self.routes.items():
            entries = tuple(("stim", int(k), int(w[c, k])) for k in lanes)
            if state.written.get(("routes", int(c))) != entries:
                out.append(Write("routes", entries, index=int(c), reason=_RULE_REASON[self.rule]))
        return out


_RULE_REASON = {"stdp": "STDP (Bi & Poo 1998) on SPIKE timing",
                "bcm": "BCM (Bienenstock, Cooper & Munro 1982) on the period's SPIKE rates",
                "stdp+bcm": "STDP on SPIKE timing, then BCM on the period's rates"}

#: Built-in policies by the name ``bioloop demo --experiment`` uses.
POLICIES = {"homeostasis": Homeostasis, "rate-homeostasis": RateHomeostasis, "burst-control": BurstControl,
            "plasticity": Plasticity}


def make_policy(name: str, **kw):
    """A built-in policy by name; ``ValueError`` naming the choices for an unknown one."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; the built-in ones are {', '.join(POLICIES)}")
    return POLICIES[name](**kw)
