"""Safety: caps on pulse length, duty and lanes lit at once, before the LED pins (DESIGN.md §4).

Bit-exact with :class:`bioloop.host.models.safety.Safety`, which states the
rules of both cadences. The hard limits are elaboration parameters, so no
register value can loosen them: each cap in force is ``min(register, limit)``.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from bioloop.gateware.lane_vector import one_hot, with_bit
from bioloop.gateware.layouts import LANE_BITS
from bioloop.host.parameters import check_lanes, check_uint, validated

__all__ = ["Safety", "CADENCES", "sweep_period"]

#: ``"sweep"``: per-lane state in a memory, one lane visited per cycle (what StimPath and
#: Core use by default); ``"cycle"``: every lane's counters in flip-flops, decided every cycle
#: (the original block, the block's own default and the subject of the formal proofs so far).
CADENCES = ("sweep", "cycle")


def sweep_period(n_lanes: int) -> int:
    """S, the cycles between two visits of a lane in the sweep cadence: K rounded up to a power of 2."""
    return 1 << max(0, (n_lanes - 1).bit_length())


class Safety(wiring.Component):
    """The last stage before the LEDs; no CSR setting bypasses it.

    Lane k wants its LED on when ``pulse[k] & bits[k]``. Three caps: the
    length of light within one continuous envelope (``max_pulse``), the lit
    cycles per lane per window of ``duty_window`` cycles (``max_duty``), the
    lanes lit at once (``max_lanes``). The LED vector is registered; each
    ``clamp_*`` strobe is one cycle per refusal.

    ``cadence="cycle"`` (default): exact per cycle. Only the first ``max_pulse`` cycles
    of each envelope light; at most ``max_duty`` on-cycles per lane per
    window; at most ``max_lanes`` lanes, lowest indices first. Per-lane
    counters in flip-flops and a prefix count over K lanes.

    ``cadence="sweep"``: a sequencer visits one lane per cycle, each
    lane every S = :func:`sweep_period` (K) cycles, and keeps the lane's
    counters in a memory, in units of S cycles. A lane lights only while it
    holds an *allowance*; the visit grants it for the next S cycles when that
    cannot break a cap (counting S cycles for every interval with any light,
    an upper bound), and the StimUnit's ``fire`` admits a lane at once so
    the first light is not delayed. Every cap holds on every cycle; the
    rules are in the model's docstring and ``docs/stim_path.md``.

    Parameters
    ----------
    n_lanes : int
        K (default 64).
    pulse_bits : int
        Width of the pulse-length cap register (default 20).
    duty_window : int
        Duty window in cycles (default 1_000_000 = 10 ms at 100 MHz), 1 .. 2^32 − 1; the
        sweep cadence rounds it up to a multiple of S (``self.duty_window`` is the one in force).
    limit_pulse : int
        Hard ceiling of ``max_pulse`` in cycles (default 500_000 = 5 ms); below
        2^pulse_bits − 1; at least S in the sweep cadence.
    limit_duty : int
        Hard ceiling of ``max_duty`` in on-cycles per window (default half the
        window), at most ``duty_window``; at least S in the sweep cadence.
    limit_lanes : int
        Hard ceiling of ``max_lanes`` (default K), at most K.
    cadence : {"sweep", "cycle"}
        See above.

    Members
    -------
    pulse : In(K), bits : In(K)
        Pulse envelopes (StimUnit) and stochastic bits (StochasticLanes).
    fire : In(1), fire_lane : In(12)
        The StimUnit's fire strobe: lane ``fire_lane`` starts an envelope now
        (sweep cadence: admission; ignored by the cycle cadence).
    max_pulse : In(pulse_bits), max_duty : In(duty bits), max_lanes : In(lit bits)
        Cap registers; reset to the limits.
    led : Out(K)
        LED drive, registered.
    clamp_pulse, clamp_duty, clamp_lanes : Out(1)
        Strobes, one per cap.
    formal_observer : object or None
        Formal hook (docs/verification.md), default None. A proof harness
        may attach an observer before elaboration; elaborated for the
        ``"formal"`` platform, Safety then asserts how its own state
        explains the observer's documented counters (per lane ``k``):
        ``lit_run[k]`` (consecutive lit cycles before this one),
        ``duty_pos`` (the observer's duty-window phase, ``e mod W`` after
        edge ``e``) and ``lit_in_window[k]`` (lit cycles of the observer's
        window before this one); for the sweep cadence also
        ``window_total[k]`` (with this cycle's) and ``age``
        (``min(e + 1, W + S + 3)``), see :class:`bioloop.sim.proofs.SafetyCaps`.
        Any attribute the observer lacks is not linked. An observer with
        ``lane`` (a signal, free but constant in the proof) observes that
        one lane: its per-lane lists then have the one entry of lane
        ``lane``, the block states that lane's invariants only, and the
        sweep leaves out its slot-count (popcount) invariants, which only
        the lanes cap needs. The sweep cadence
        also states its own invariants under the formal platform (with or
        without an observer), reading its memory through extra
        asynchronous read ports that exist only there.

    A reset does not clear the sweep cadence's memory, so its first sweep
    after a reset starts no new duty window (the counts stored before the
    reset are kept, an upper bound); from power-on (memory zero) that makes
    no difference.
    """

    formal_observer = None

    @validated
    def __init__(self, n_lanes: int = 64, pulse_bits: int = 20, duty_window: int = 1_000_000,
                 limit_pulse: int = 500_000, limit_duty: int | None = None,
                 limit_lanes: int | None = None, cadence: str = "cycle"):
        self.n_lanes = check_lanes(n_lanes)
        if isinstance(pulse_bits, bool) or not isinstance(pulse_bits, int):
            raise TypeError(f"pulse_bits must be an int, not {pulse_bits!r}")
        if not 2 <= pulse_bits <= 32:
            raise ValueError(f"pulse_bits must be in 2..32, not {pulse_bits}")
        self.pulse_bits = pulse_bits
        self.duty_window = check_uint("duty_window", duty_window, 32, minimum=1)
        self.limit_pulse = check_uint("limit_pulse", limit_pulse, pulse_bits)
        if limit_pulse == (1 << pulse_bits) - 1:
            raise ValueError(f"limit_pulse must be below 2^pulse_bits - 1 = {limit_pulse} "
                             f"(the saturated run counter must exceed it); widen pulse_bits")
        self.duty_bits = max(1, duty_window.bit_length())
        limit_duty = duty_window // 2 if limit_duty is None else limit_duty
        self.limit_duty = check_uint("limit_duty", limit_duty, self.duty_bits)
        if limit_duty > duty_window:
            raise ValueError(f"limit_duty ({limit_duty}) must not exceed duty_window ({duty_window})")
        self.lanes_bits = max(1, n_lanes.bit_length())
        limit_lanes = n_lanes if limit_lanes is None else limit_lanes
        self.limit_lanes = check_uint("limit_lanes", limit_lanes, self.lanes_bits)
        if limit_lanes > n_lanes:
            raise ValueError(f"limit_lanes ({limit_lanes}) must not exceed n_lanes ({n_lanes})")
        if cadence not in CADENCES:
            raise ValueError(f"cadence must be one of {CADENCES}, not {cadence!r}")
        self.cadence = cadence
        self.period = S = sweep_period(n_lanes) if cadence == "sweep" else 1
        if cadence == "sweep":
            # The sweep counts whole sweeps: the window in force is rounded up to a multiple of S
            # (a longer window with the same cap allows a smaller fraction, never a larger one).
            self.duty_window = -(-duty_window // S) * S
            self.duty_bits = max(self.duty_bits, self.duty_window.bit_length())
            if limit_pulse < S or limit_duty < S:
                raise ValueError(f"limit_pulse ({limit_pulse}) and limit_duty ({limit_duty}) must be at "
                                 f"least the sweep period S = {S} cycles (K = {n_lanes} lanes): a lane "
                                 f"is granted light S cycles at a time")
        super().__init__({
            "pulse": In(n_lanes),
            "bits": In(n_lanes),
            "fire": In(1),
            "fire_lane": In(LANE_BITS),
            "max_pulse": In(pulse_bits, init=self.limit_pulse),
            "max_duty": In(self.duty_bits, init=self.limit_duty),
            "max_lanes": In(self.lanes_bits, init=self.limit_lanes),
            "led": Out(n_lanes),
            "clamp_pulse": Out(1),
            "clamp_duty": Out(1),
            "clamp_lanes": Out(1),
        })

    def _capped(self, m, register, limit):
        eff = Signal.like(register, name=f"{register.name}_eff")
        m.d.comb += eff.eq(Mux(register > limit, limit, register))
        return eff

    def elaborate(self, platform):
        m = Module()
        cap_pulse = self._capped(m, self.max_pulse, self.limit_pulse)
        cap_duty = self._capped(m, self.max_duty, self.limit_duty)
        cap_lanes = self._capped(m, self.max_lanes, self.limit_lanes)
        if self.cadence == "cycle":
            self._per_cycle(m, cap_pulse, cap_duty, cap_lanes, platform)
        else:
            self._sweep(m, cap_pulse, cap_duty, cap_lanes, platform)
        return m

    def _per_cycle(self, m, cap_pulse, cap_duty, cap_lanes, platform=None):
        K = self.n_lanes
        # The duty window.
        window = Signal(range(self.duty_window))
        window_end = Signal()
        m.d.comb += window_end.eq(window == self.duty_window - 1)
        m.d.sync += window.eq(Mux(window_end, 0, window + 1))

        run_max = (1 << self.pulse_bits) - 1
        want, pass1, pass2, final = (Signal(K, name=n) for n in ("want", "pass1", "pass2", "final"))
        m.d.comb += want.eq(self.pulse & self.bits)
        runs, duties = [], []
        for k in range(K):
            run = Signal(self.pulse_bits, name=f"run{k}")
            run_next = Signal(self.pulse_bits, name=f"run_next{k}")
            duty = Signal(self.duty_bits, name=f"duty{k}")
            runs.append(run)
            duties.append(duty)
            m.d.comb += [
                run_next.eq(Mux(self.pulse[k], Mux(run == run_max, run, run + 1), 0)),
                pass1[k].eq(want[k] & (run_next <= cap_pulse)),
                pass2[k].eq(pass1[k] & (duty < cap_duty)),
            ]
            m.d.sync += [
                run.eq(run_next),
                duty.eq(Mux(window_end, 0, duty + final[k])),
            ]

        # Lit cap: lane k passes while fewer than max_lanes lower lanes passed.
        granted = Const(0, self.lanes_bits)
        for k in range(K):
            m.d.comb += final[k].eq(pass2[k] & (granted < cap_lanes))
            nxt = Signal(self.lanes_bits, name=f"granted{k}")
            m.d.comb += nxt.eq(granted + pass2[k])
            granted = nxt

        m.d.sync += [
            self.led.eq(final),
            self.clamp_pulse.eq((want & ~pass1).any()),
            self.clamp_duty.eq((pass1 & ~pass2).any()),
            self.clamp_lanes.eq((pass2 & ~final).any()),
        ]

        # Formal only: link the attached observer's counters to this block's state (docs/verification.md).
        observer = self.formal_observer
        if platform == "formal" and observer is not None:
            from amaranth.hdl import Assert
            W = self.duty_window
            # Every lane, or only the observer's free lane ``lane`` (see _sweep_formal).
            j = getattr(observer, "lane", None)
            if j is None:
                lanes = [(self.led[k], runs[k], duties[k]) for k in range(K)]
            else:
                lanes = [(self.led.bit_select(j, 1), Cat(*runs).word_select(j, self.pulse_bits),
                          Cat(*duties).word_select(j, self.duty_bits))]
            for i, (lit, run, duty) in enumerate(lanes):
                m.d.comb += Assert(~lit | (run <= cap_pulse), "a lit lane's run exceeds the pulse cap")
                m.d.comb += Assert(duty <= cap_duty, "a lane's duty count exceeds the duty cap")
                if hasattr(observer, "lit_run"):
                    m.d.comb += Assert(~lit | (observer.lit_run[i] + 1 <= run),
                                       "observer's lit run not covered by the pulse run")
                if hasattr(observer, "lit_in_window"):
                    before = Mux(window == 1, 0, observer.lit_in_window[i])   # the observer's window restarts
                    m.d.comb += Assert((window == 0) | (before + lit == duty),
                                       "observer's duty count differs from the lane's")
            m.d.comb += Assert(window < W, "the duty window's phase is below W")
            if hasattr(observer, "duty_pos"):
                m.d.comb += Assert(observer.duty_pos == Mux(window == 0, W - 1, window - 1),
                                   "observer's duty window is not one cycle behind the block's")

    def _sweep(self, m, cap_pulse, cap_duty, cap_lanes, platform=None):
        # Issue 14 (LUT levels): the fire -> LED decision and the visit are built for a short path.
        # - a lane's memory word is read one edge before its visit (an asynchronous read at ptr
        #   into registers), and what the visit needs of it is computed there: run + 1 and the two
        #   duty counts (with and without light in the interval), saturated, the window restart
        #   applied; the visit only compares them with the caps;
        # - a cap in force is min(register, limit), so ``x < cap`` is ``(x < register) & (x < limit)``
        #   (two compares side by side, no Mux before a compare);
        # - compares, increments and decrements are gates (_less, _plus_one, _minus_one), not carry
        #   chains, which ABC cannot see through;
        # - everything the fire's admission (``fire_acq``) changes at the visit is computed for both
        #   of its values and chosen by it at the end (Shannon), and so is the grant for the
        #   visited lane's envelope and bit (the last inputs to arrive).
        # The decisions are those of the model, edge for edge (docs/stim_path.md).
        K, S = self.n_lanes, self.period
        sb = S.bit_length() - 1                       # S = 2^sb
        lim_run = self.limit_pulse >> sb              # counters in units of S cycles
        lim_duty = self.limit_duty >> sb
        units_pulse = Signal(range(lim_run + 1))      # the caps in units (the formal hook's terms)
        units_duty = Signal(range(lim_duty + 1))
        m.d.comb += [units_pulse.eq(cap_pulse >> sb), units_duty.eq(cap_duty >> sb)]
        mp, md = self.max_pulse[sb:], self.max_duty[sb:]    # the registers in units (floor)

        def below_cap(x, register, limit):
            """``x < min(register, limit)``."""
            return _less(x, register) & _less(x, limit)

        # Per-lane flags in flip-flops; counters in a memory.
        allow = Signal(K)              # the lane may light (it holds one of the max_lanes slots)
        budget = Signal(K, init=(1 << K) - 1)   # a fire may admit it before its next visit
        gap = Signal(K)                # the envelope was low in a cycle since the last visit
        seen = Signal(K)               # the LED was lit in a cycle since the last visit
        used = Signal(range(K + 1))    # popcount(allow), kept incrementally
        word = {"run": range(lim_run + 1), "duty": range(lim_duty + 1), "epoch": 1}
        layout = data.StructLayout(word)
        m.submodules.state = state = memory.Memory(shape=layout, depth=K, init=[])
        wp = state.write_port()
        rp = state.read_port(domain="comb")

        # The sweep: ptr is read, vis (ptr one cycle later) is decided and written.
        abits = max(1, (K - 1).bit_length())
        # Reset as if lane S - 1 was read before the first edge: its visit is edge 0, so no
        # lane's first interval is longer than S cycles.
        ptr = Signal(max(1, sb))
        vis = Signal(max(1, sb), init=S - 1)
        vis_valid = Signal(init=S - 1 < K)
        n_windows = self.duty_window // S             # sweeps per duty window
        wcount = Signal(range(n_windows))
        epoch_ptr = Signal()
        epoch_vis = Signal()
        # The first sweep after reset: the memory may still hold the counts of a run before the
        # reset (a reset does not clear it), whose window bit means nothing in the new time base;
        # so no visit of this sweep starts a new window (the stored count is kept, an upper bound).
        fresh = Signal(init=1)
        last = ptr == S - 1 if S > 1 else Const(1)
        m.d.sync += fresh.eq(fresh & ~last)
        m.d.sync += [
            ptr.eq(Mux(last, 0, _plus_one(ptr)) if S > 1 else 0),
            vis.eq(ptr),
            vis_valid.eq(_less(ptr, K)),
            epoch_vis.eq(epoch_ptr),
        ]
        with m.If(last):
            m.d.sync += wcount.eq(Mux(wcount == n_windows - 1, 0, _plus_one(wcount)))
            with m.If(wcount == n_windows - 1):
                m.d.sync += epoch_ptr.eq(~epoch_ptr)
        m.d.comb += rp.addr.eq(ptr[:abits])

        # The read stage: lane ptr's word, prepared for its visit at the next edge. Only lane vis
        # is written at that edge, never lane ptr unless S = 1 (then the word being written is
        # the one read). A reset loads them as from a zero word (the memory's power-on contents),
        # so the first visit after a reset, of lane S - 1, counts from 0 (and lit cycles from 1).
        w = rp.data if S > 1 else data.View(layout, Mux(wp.en, wp.data, rp.data))
        new_window = Signal()          # the visit starts a new duty window: its count restarts at 0
        m.d.comb += new_window.eq((w.epoch != epoch_ptr) & ~(fresh & ~last))
        run_inc = Signal(range(lim_run + 1), init=1)       # min(run + 1, lim)
        duty_dark = Signal(range(lim_duty + 1))            # the count, no light in the interval
        duty_lit = Signal(range(lim_duty + 1), init=1)     # ... with light
        m.d.sync += [
            run_inc.eq(Mux(w.run == lim_run, lim_run, _plus_one(w.run))),
            duty_dark.eq(Mux(new_window, 0, w.duty)),
            duty_lit.eq(Mux(new_window, 0, Mux(w.duty == lim_duty, lim_duty, _plus_one(w.duty)))),
        ]

        # Cap terms, each from registers only.
        pulse_nz, duty_nz = Signal(), Signal()        # units_pulse != 0, units_duty != 0
        pulse_gt1 = Signal()                          # units_pulse > 1
        m.d.comb += [pulse_nz.eq(mp != 0), duty_nz.eq(md != 0),
                     pulse_gt1.eq(mp[1:].any() & (lim_run > 1))]
        # used - 1, used + 1, used + 2: the slot count after a visit is one of them (or used).
        used_dn, used_up, used_up2 = (Signal(range(K + 2), name=n) for n in ("used_dn", "used_up", "used_up2"))
        m.d.comb += [used_dn.eq(_minus_one(used)), used_up.eq(_plus_one(Cat(used, Const(0, len(used_up) - len(used))))),
                     used_up2.eq(_plus_one(used_up))]
        lanes_lt0, lanes_le0, lanes_lt1 = Signal(), Signal(), Signal()   # used < cap, used <= cap, used + 1 < cap
        m.d.comb += [
            lanes_lt0.eq(below_cap(used, self.max_lanes, self.limit_lanes)),
            lanes_le0.eq(~_less(self.max_lanes, used) & (used <= self.limit_lanes)),
            lanes_lt1.eq(below_cap(used_up, self.max_lanes, self.limit_lanes)),
        ]

        # Admission by the StimUnit's fire.
        f = self.fire_lane
        f_ok = Signal()
        m.d.comb += f_ok.eq(self.fire & _less(f, K))
        fl = f[:abits]
        fire_acq = Signal()
        m.d.comb += fire_acq.eq(f_ok & ~allow.bit_select(fl, 1) & budget.bit_select(fl, 1)
                                & lanes_lt0 & pulse_nz & duty_nz)
        fire_at = Signal(K)            # one-hot of the fire's lane (0 without a valid fire)
        m.d.comb += fire_at.eq(one_hot(fl, K, f_ok))
        admit = Signal(K)
        m.d.comb += admit.eq(Mux(fire_acq, fire_at, 0))
        led_next = Signal(K)
        m.d.comb += led_next.eq(self.pulse & self.bits & (allow | admit))

        # The visit of lane v, for both values of fire_acq.
        v = vis[:abits]
        p_now, b_now = Signal(), Signal()
        m.d.comb += [p_now.eq(self.pulse.bit_select(v, 1)), b_now.eq(self.bits.bit_select(v, 1))]
        fire_v = Signal()              # the fire is on lane v
        m.d.comb += fire_v.eq(f_ok & (fl == v))
        allow_v, seen_v, gap_v = Signal(), Signal(), Signal()
        m.d.comb += [allow_v.eq(allow.bit_select(v, 1)), seen_v.eq(seen.bit_select(v, 1)),
                     gap_v.eq(gap.bit_select(v, 1))]
        # The envelope and the bit of lane v (K-way selections of inputs) arrive last: the grant is
        # prepared for each of their values and chosen by them.
        run_n = Signal(range(lim_run + 1))
        run_on = Signal()              # the run is within the pulse cap if the envelope is high
        m.d.comb += [
            run_n.eq(Mux(p_now, Mux(gap_v, 1, run_inc), 0)),
            run_on.eq(Mux(gap_v, pulse_gt1, below_cap(run_inc, mp, lim_run))),
        ]
        run_ok = Signal()
        m.d.comb += run_ok.eq(Mux(p_now, run_on, pulse_nz))
        dark_ok, lit_ok = Signal(), Signal()
        m.d.comb += [dark_ok.eq(below_cap(duty_dark, md, lim_duty)),
                     lit_ok.eq(below_cap(duty_lit, md, lim_duty))]
        case = {}
        for acq in (0, 1):
            held = Signal(name=f"held{acq}")          # lane v holds a slot at this edge
            seen_e = Signal(name=f"seen_e{acq}")
            duty_ok = Signal(name=f"duty_ok{acq}")
            ok = Signal(name=f"ok{acq}")
            grant = Signal(name=f"grant{acq}")
            duty_n = Signal(range(lim_duty + 1), name=f"duty_n{acq}")
            used_n = Signal(range(K + 1), name=f"used_n{acq}")
            # u1 = used + fire_acq; keep needs u1 <= cap, a new grant u1 < cap.
            keep, take = (lanes_lt0, lanes_lt1) if acq else (lanes_le0, lanes_lt0)
            # A grant with the envelope high, if the lane is lit (with its bit) or dark (without).
            if_lit, if_dark = Signal(name=f"grant_lit{acq}"), Signal(name=f"grant_dark{acq}")
            m.d.comb += [
                held.eq(allow_v | fire_v if acq else allow_v),
                if_lit.eq(run_on & Mux(held, keep, take) & Mux(seen_v | held, lit_ok, dark_ok)),
                if_dark.eq(run_on & Mux(held, keep, take) & Mux(seen_v, lit_ok, dark_ok)),
                grant.eq(p_now & Mux(b_now, if_lit, if_dark)),
                seen_e.eq(seen_v | (p_now & b_now & held)),
                duty_ok.eq(Mux(seen_e, lit_ok, dark_ok)),
                duty_n.eq(Mux(seen_e, duty_lit, duty_dark)),
                ok.eq(p_now & run_on & duty_ok),
                used_n.eq(Mux(vis_valid & ~held & grant, (used_up2 if acq else used_up),
                              Mux(vis_valid & held & ~grant, (used if acq else used_dn),
                                  (used_up if acq else used)))),
            ]
            case[acq] = dict(held=held, duty_ok=duty_ok, ok=ok, grant=grant, duty_n=duty_n, used_n=used_n)

        def pick(name):
            return Mux(fire_acq, case[1][name], case[0][name])
        held, duty_ok, ok, grant, duty_n = (pick(n) for n in ("held", "duty_ok", "ok", "grant", "duty_n"))
        # A budget is set only with the envelope low: then lane v is dark whatever fire_acq is.
        budget_v = Signal()
        m.d.comb += budget_v.eq(~p_now & pulse_nz & Mux(seen_v, lit_ok, dark_ok))

        m.d.comb += [wp.addr.eq(v), wp.en.eq(vis_valid), wp.data.run.eq(run_n), wp.data.duty.eq(duty_n),
                     wp.data.epoch.eq(epoch_vis)]
        # Lane v as a one-hot: with S = K (K a power of two) a rotating register, no decoder
        # (64 flip-flops instead of about 80 LUTs at K = 64); otherwise decoded from vis.
        if S == K:
            onehot_v = Signal(K, init=1 << (S - 1))
            m.d.sync += onehot_v.eq(Cat(onehot_v[-1], onehot_v[:-1]) if K > 1 else onehot_v)
        else:
            onehot_v = Signal(K)
            m.d.comb += onehot_v.eq(one_hot(v, K, vis_valid))
        if platform == "formal":
            self._sweep_formal(m, locals())
        m.d.sync += [
            allow.eq(Mux(fire_acq, with_bit(allow | fire_at, onehot_v, case[1]["grant"]),
                         with_bit(allow, onehot_v, case[0]["grant"]))),
            budget.eq(with_bit(budget, onehot_v, budget_v)),
            gap.eq((gap | ~self.pulse) & ~onehot_v),
            seen.eq((seen | led_next) & ~onehot_v),
            used.eq(pick("used_n")),
            self.led.eq(led_next),
            self.clamp_pulse.eq(vis_valid & p_now & ~run_ok),
            self.clamp_duty.eq(vis_valid & p_now & run_ok & ~duty_ok),
            self.clamp_lanes.eq(vis_valid & ok & ~grant),
        ]

    def _sweep_formal(self, m, v):
        """Formal only (sweep cadence): the invariants that make the caps provable by k-induction.

        The block's own state first (sequencer, window bits, slot count, memory bounds), then,
        if an observer is attached, how that state bounds the observer's counters
        (docs/verification.md). ``v`` is the namespace of :meth:`_sweep`.
        """
        from amaranth.hdl import Assert
        K, S, abits = self.n_lanes, self.period, v["abits"]
        W, n_windows = self.duty_window, v["n_windows"]
        ptr, vis, vis_valid, wcount = v["ptr"], v["vis"], v["vis_valid"], v["wcount"]
        epoch_ptr, epoch_vis, fresh = v["epoch_ptr"], v["epoch_vis"], v["fresh"]
        allow, budget, gap, seen, used = v["allow"], v["budget"], v["gap"], v["seen"], v["used"]
        state, lim_run, lim_duty = v["state"], v["lim_run"], v["lim_duty"]
        run_inc, duty_dark, duty_lit = v["run_inc"], v["duty_dark"], v["duty_lit"]
        u_pulse, u_duty, cap_lanes = v["units_pulse"], v["units_duty"], v["cap_lanes"]
        led = self.led

        observer = self.formal_observer
        # The lanes whose invariants are stated: every lane, or only the observer's lane ``lane``
        # (an AnyConst: the proof then covers every lane at once, and its size does not grow with
        # K lane by lane; what makes the default K = 64 provable, docs/verification.md).
        free_lane = getattr(observer, "lane", None)
        lanes = list(range(K)) if free_lane is None else [free_lane]

        # Edges since reset, saturating at S + 1 (formal only): 0 is the reset state.
        since = Signal(range(S + 2), name="formal_since")
        m.d.sync += since.eq(Mux(since == S + 1, since, since + 1))

        def row_of(k):
            port = state.read_port(domain="comb")
            m.d.comb += port.addr.eq(k)
            return port.data
        rows = [row_of(k) for k in lanes]
        mask = S - 1
        g = wcount * S + ptr                        # (edges since reset + 1) mod W, after reset 0
        # (g - 1) mod W without a divider (g < W): a modulo by W (not a power of 2 at the default
        # W = 1 000 000) in each lane's invariant made the default size out of reach of the solver.
        g_prev = Mux(g == 0, W - 1, g - 1)
        reset_state = since == 0
        m.d.comb += [
            Assert(since <= S + 1, "edges since reset saturate at S + 1"),
            Assert(vis == ((ptr - 1) & mask) if S > 1 else vis == 0, "vis is the lane read one edge ago"),
            Assert(vis_valid == (vis < K), "vis_valid"),
            Assert(v["onehot_v"] == one_hot(vis[:abits], K, vis_valid), "onehot_v is lane vis, one-hot"),
            Assert(wcount < n_windows, "window count in range"),
            Assert(fresh == (since < S), "the first sweep lasts S edges"),
            Assert((since > S) | (vis == ((since - 1) & mask)), "the first sweep starts at lane S - 1"),
            Assert(epoch_vis == (epoch_ptr ^ ((ptr == 0) & (wcount == 0) & ~reset_state)),
                   "epoch_vis is epoch_ptr one edge late"),
            Assert(~reset_state | ((allow == 0) & (budget == (1 << K) - 1) & (gap == 0) & (seen == 0)
                                   & (led == 0) & (epoch_ptr == 0) & (epoch_vis == 0) & (wcount == 0)),
                   "the reset state"),
        ]
        # Every lane's counters (and the read stage's) stay in range.
        for k in range(K):
            row = rows[k] if free_lane is None else row_of(k)
            m.d.comb += Assert((row.run <= lim_run) & (row.duty <= lim_duty), f"lane {k}: counters in range")
        m.d.comb += [
            Assert((run_inc >= 1) & (run_inc <= lim_run) & (duty_dark <= lim_duty) & (duty_lit <= lim_duty),
                   "the read stage's counters in range"),
            Assert(~reset_state | ((run_inc == 1) & (duty_dark == 0) & (duty_lit == 1)),
                   "the read stage after a reset: a zero word"),
        ]
        if free_lane is None:
            # The slot count (what the lanes cap rests on). A proof of one lane's pulse and duty caps
            # leaves it out: those caps do not depend on it, and a popcount over K lanes is what made
            # the solver slow at the default K = 64 (docs/verification.md).
            m.d.comb += [Assert(used == sum(allow[k] for k in range(K)), "used == popcount(allow)"),
                         Assert(used <= cap_lanes, "allowances within the lanes cap")]
        else:
            m.d.comb += Assert(free_lane < K, "the observed lane is a lane")
        last_vis = (vis - 1) & mask
        for k, row in zip(lanes, rows, strict=True):
            name = f"lane {k}" if isinstance(k, int) else "the observed lane"
            # The read stage holds the lane's word, prepared, when the lane is visited.
            restart = (row.epoch != epoch_vis) & ~fresh
            prepared = ((run_inc == Mux(row.run == lim_run, lim_run, row.run + 1))
                        & (duty_dark == Mux(restart, 0, row.duty))
                        & (duty_lit == Mux(restart, 0, Mux(row.duty == lim_duty, lim_duty, row.duty + 1))))
            m.d.comb += Assert(~vis_valid | reset_state | (vis[:abits] != k) | prepared,
                               f"{name}: the read stage holds its word, prepared, when it is visited")
            t = ((k + S - vis) & mask) + 1                           # edges to lane k's next visit
            visited = since >= (Mux(k < S - 1, k + 2, 1))           # visited since reset
            # Window bit of lane k's last visit: a window boundary lies between it and the next edge.
            x = S - t + 1
            crossed = (g_prev < x) if W > 1 else Const(1)
            first_window = (k == S - 1) & (since <= S)
            lit, allowed = led.bit_select(k, 1), allow.bit_select(k, 1)
            budgeted, seen_k = budget.bit_select(k, 1), seen.bit_select(k, 1)
            m.d.comb += [
                Assert(~visited | (row.epoch == (epoch_vis ^ (crossed & ~first_window))),
                       f"{name}: window bit is its last visit's"),
                Assert(~visited | ~allowed | ((row.run < u_pulse) & (row.duty < u_duty)),
                       f"{name}: an allowance is within both caps"),
                Assert(~visited | ~budgeted | ((row.run == 0) & (u_pulse != 0) & (row.duty < u_duty)),
                       f"{name}: a budget is within both caps"),
                Assert(~visited | ~seen_k | (row.duty < u_duty), f"{name}: light since the visit was allowed"),
                Assert(~lit | allowed | ((k == last_vis) & ~reset_state & ((row.run <= u_pulse) | (since <= S))),
                       f"{name}: a lit lane holds its allowance or lost it at the last edge"),
                Assert(~(lit | allowed | seen_k) | ((u_pulse != 0) & (u_duty != 0)),
                       f"{name}: lit, allowed or seen lit only if both caps allow light"),
            ]
        if observer is None:
            return
        if hasattr(observer, "age"):
            age, top = observer.age, W + S + 3
            m.d.comb += [Assert(since == Mux(age > S + 1, S + 1, age), "edges since reset"),
                         Assert(age <= top, "the observer's age saturates at W + S + 3"),
                         Assert(observer.duty_pos < W, "the observer's phase is below W"),
                         Assert((age == top) | (observer.duty_pos == _mod(age + W - 1, W, 2 * W + S + 2)),
                                "the observer's phase is its age - 1 mod W"),
                         Assert(_mod(observer.duty_pos + 1, W, W + 1) == g, "the observer's window phase")]
        for i, (k, row) in enumerate(zip(lanes, rows, strict=True)):
            name = f"lane {k}" if isinstance(k, int) else "the observed lane"
            t = ((k + S - vis) & mask) + 1
            visited = since >= (Mux(k < S - 1, k + 2, 1))
            lit, gap_k, seen_k = led.bit_select(k, 1), gap.bit_select(k, 1), seen.bit_select(k, 1)
            if hasattr(observer, "lit_run"):
                run = observer.lit_run[i]
                m.d.comb += [
                    Assert(~lit | (since > S) | (run + 1 <= since), f"{name}: lit at most since reset"),
                    Assert(~lit | ~visited | (run + 1 <= Mux(gap_k, 0, row.run * S) + S - t),
                           f"{name}: the lit run is within the intervals counted"),
                ]
            if hasattr(observer, "window_total"):
                total = observer.window_total[i]
                ud = Mux(row.duty > u_duty, u_duty, row.duty)
                after_first = (observer.duty_pos == _mod(k + 1, W, K + 1)) & (observer.age >= W + k + 2)
                m.d.comb += [
                    Assert(visited | (total <= Mux(seen_k, since, 0)), f"{name}: lit at most since reset"),
                    Assert(~visited | after_first | (total <= ud * S + Mux(seen_k, S - t, 0)),
                           f"{name}: the window's light is within the intervals counted"),
                ]


def _mod(x, W, bound):
    """``x mod W`` for ``0 <= x < bound`` by conditional subtraction (no divider: cheap for a solver)."""
    if isinstance(x, int):
        return x % W
    for j in reversed(range(1, -(-bound // W))):
        x = Mux(x >= j * W, x - j * W, x)
    return x


def _less(a, b) -> Value:
    """``a < b`` (unsigned) as gates, a balanced tree of (less, equal) pairs, not a subtraction.

    Yosys maps a ``<`` to a carry chain (CARRY4), which ABC sees as a cut: it maps the LUTs on
    each side of it to the design's full depth, so a path through one compare can reach twice
    the depth of the deepest cone ABC knows of. Gates stay inside ABC's view (issue 14).
    """
    a, b = Value.cast(a).as_unsigned(), Value.cast(b).as_unsigned()
    n = max(len(a), len(b), 1)
    a, b = (Cat(x, Const(0, n - len(x))) if len(x) < n else x for x in (a, b))   # zero-extended

    def tree(lo, hi):
        if hi - lo == 1:
            return ~a[lo] & b[lo], ~(a[lo] ^ b[lo])
        mid = (lo + hi) // 2
        lt_hi, eq_hi = tree(mid, hi)
        lt_lo, eq_lo = tree(lo, mid)
        return lt_hi | (eq_hi & lt_lo), eq_hi & eq_lo
    return tree(0, n)[0]


def _plus_one(x) -> Value:
    """``x + 1`` in ``len(x)`` bits (wrapping) as gates: bit i flips when every bit below it is 1."""
    x = Value.cast(x)
    return Cat(*(x[i] ^ (x[:i].all() if i else 1) for i in range(len(x))))


def _minus_one(x) -> Value:
    """``x - 1`` in ``len(x)`` bits (wrapping) as gates: bit i flips when every bit below it is 0."""
    x = Value.cast(x)
    return Cat(*(x[i] ^ (~x[:i].any() if i else 1) for i in range(len(x))))
