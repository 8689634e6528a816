"""The Core model's edges in one compiled loop: :meth:`Core.step` for many edges, with numba.

:meth:`bioloop.host.models.core.Core.step` is the specification, one rising
edge at a time through the block models. When numba is there (:mod:`bioloop.host.jit`)
:func:`run` takes whole calls of :meth:`Core.run_beats` and :meth:`Core.idle`
through :func:`core_edges`, the same edges written once more as scalar code
over the blocks' state (the state is copied out of the block models before and
back after, so the models stay the truth between calls):

- the AER path (Detector, AEREncoder in either cadence, AERRouter), the StimUnit and
  Homeostasis in their sweep cadences, the output merge, the STIM FIFO, the
  counters' increments and the probe's stamps, as in ``Core.step``;
- the observers edge by edge: the lanes' held bits (sweep cadence), Safety
  through its own kernel (:func:`bioloop.host.models.safety.sweep_kernel`),
  the LED sums of each frame and the latency probe.

It stops before an edge at which a configuration change is due (that edge
goes through ``Core.step``) and when its output buffers are full.

Because it restates the blocks' edges, it is used only while the block models
are those it was written against: :data:`MIRRORS` names the functions it
restates with a digest of their source, and :func:`usable` turns the kernel off
(the Core model then runs its Python path, slower, the same result) when one
of them changed. ``tests/host/test_backends.py`` checks both: the kernel
against ``Core.step`` byte for byte on busy traffic, and the digests (a
failure there means: update :func:`core_edges` to the changed block model,
then the digest). Without numba the kernel is not used at all; its plain
Python form runs only in that test.
"""

from __future__ import annotations

import hashlib
import inspect

import numpy as np

from bioloop.host import jit
from bioloop.host.layouts import (ADDRESS_BITS, AER_WORD, LANE_BITS, LATENCY_BITS, PROBE_OFFSET, SAMPLE_BEAT,
                                  SAMPLE_BITS, TYPE_BITS, AERType, Polarity, Port)

from .aer_encoder import AEREncoder
from .aer_merge import AERMerge
from .aer_path import AERPath
from .aer_router import AERRouter, Route
from .detector import Detector
from .homeostasis import COUNT_BITS, WINDOW_BITS, Homeostasis
from .safety import sweep_kernel_numba
from . import stim_unit
from .stim_unit import INT16_MAX, INT16_MIN, StimUnit
from .stochastic_lanes import LFSR_PERIOD, StochasticLanes, _period

__all__ = ["MIRRORS", "mirror_digests", "usable", "run", "core_edges"]

#: The block-model functions :func:`core_edges` restates, with the digest of the source it was
#: written against (``mirror_digests()`` gives the current ones).
MIRRORS = {
    "Detector.step": "16d6e6ed429a3b93",
    "AEREncoder.step": "56d7de9fa9db32a9",
    "AEREncoder._step_queue": "eaceebd928614e3e",
    "AEREncoder._step_cycle": "b5789e4ae7c36ecf",
    "AEREncoder._grant": "92bd6a1b67ae4646",
    "AERRouter.step": "cadab63c48210a97",
    "AERRouter.ready": "f6d81f8946540c2f",
    "AERPath.step": "20c5db3e5392b5e6",
    "AERMerge.step": "d1d2fa5a84eb23c9",
    "AERMerge.select": "f55a1cab72fbc7cb",
    "StimUnit._clock_sweep": "775f7efde24c937d",
    "StimUnit._sweep_step": "19d63aaede9fe003",
    "Homeostasis._clock_sweep": "2d1d156df45acb34",
    "Homeostasis._close": "4acdc5f6fcb77fed",
    "Homeostasis.busy": "e5a52d320e8f950b",
    "StochasticLanes._sweep_rows": "bb1121a91a82274c",
    "Core.step": "bae70f37173dfd77",
    "Core._probe": "ef23fddbd02dac7e",
    "Core._observe": "d596048e2d98d684",
    "stim_unit.integrate": "100bdc501bac1aad",
    "stim_unit.leak": "20e005f87ff0e19e",
}

# where the mirrored functions live: the block models and the stim_unit module (integrate, leak)
_CLASSES = {"Detector": Detector, "AEREncoder": AEREncoder, "AERRouter": AERRouter, "AERPath": AERPath,
            "AERMerge": AERMerge, "StimUnit": StimUnit, "Homeostasis": Homeostasis,
            "StochasticLanes": StochasticLanes, "stim_unit": stim_unit}


def mirror_digests() -> dict[str, str]:
    """The digests of the functions in :data:`MIRRORS` as the block models are now."""
    from .core import Core
    classes = dict(_CLASSES, Core=Core)
    out = {}
    for name in MIRRORS:
        cls, fn = name.split(".")
        src = inspect.getsource(getattr(classes[cls], fn))
        out[name] = hashlib.sha256(src.encode()).hexdigest()[:16]
    return out


_digest_ok: bool | None = None

#: Set False to keep the kernel off in this process (the Python path runs; for comparisons).
active = True


def usable(core) -> bool:
    """The kernel can take this Core's edges: numba is there, the block models are those it
    restates, every block in its sweep cadence (lanes independent; the AEREncoder in either of its
    cadences), and frame numbers far from
    the 31-bit range (the kernel holds AER words in int64)."""
    global _digest_ok
    if not active or not jit.ENABLED or not core.fast:
        return False
    if _digest_ok is None:
        try:
            _digest_ok = mirror_digests() == MIRRORS
        except OSError:          # no source to compare (a frozen install): stay on the Python path
            _digest_ok = False
    if not _digest_ok:
        return False
    return (core.unit.cadence == "sweep" and core.homeo.cadence == "sweep" and core.safety.cadence == "sweep"
            and core.lanes.cadence == "sweep" and core.lanes.mode == "independent" and core.unit.staged is not None
            and core.path.detector.frame < (1 << 30) and core.path.encoder.ts_bits >= 2)


# -- the scalar state, one int64 slot each --------------------------------------------------------

(EDGE, ENABLE, SWEEP_END, TICK, BLOCK_WORDS, FIFO_DEPTH, R_RDY, R_DATA, STIM_LOST_REG, STIM_LOST_STROBE, FIRE_STROBE,) = range(0, 11)
(PREV_FE, PREV_UN, PREV_LOST, LOST_DUE, STAMP0, STAMP1, FIFO_HEAD, FIFO_COUNT,) = range(11, 19)
(ST1_BITS, ST1_BASE, ST1_FRAME, ST2_BITS, ST2_BASE, ST2_FRAME, PFRAME,) = range(19, 26)
(D_POS, D_FRAME, D_FRAMES, D_FE, D_DET, D_REFR,) = range(26, 32)
(E_LOST_PENDING, E_LOST_NEW, E_PTR, E_PREV_TAG, E_VALID, E_WORD, E_WORDS, E_LOST, E_SOURCE, E_TSBITS,) = range(32, 42)
(R_REM, R_J, R_BUSY, R_PVALID, R_PWORD, R_PPORT, R_PTARGET, R_PWEIGHT, R_HVALID, R_HWORD, R_ROUTED, R_UNMAPPED,) = range(42, 54)
(M_LOCKED, M_LOCKSTIM, M_LASTSTIM, M_BLK,) = range(54, 58)
(U_BUSY, U_AGAIN, U_PTR, U_SWLANE, U_TICKSLOST, U_FIRES, U_BADLANE, U_S1_ENTRY, U_S1_TARGET, U_S1_WEIGHT, U_S1_TICK,) = range(58, 69)
(U_S1_FRAME, U_LEAK, U_SOURCE,) = range(69, 72)
(H_BANK, H_RUNNING, H_CLEARING, H_INDEX, H_CLR, H_WORD, H_WORD_BANK, H_WORD_CH, H_RCLEAR, H_RCLR,) = range(72, 82)
(H_S1, H_S1_LANE, H_S1_SRC, H_S1_TGT, H_S2, H_S2_LANE, H_S2_TGT, H_S2_COUNT, H_S3, H_S3_LANE, H_S3_DIFF,) = range(82, 93)
(H_T2, H_T2_LANE, H_T2_PROD, H_T3, H_T3_LANE, H_T3_DELTA, H_GAIN, H_SHIFT, H_TMIN, H_TMAX, H_WINDOW, H_ENABLE,) = range(93, 105)
(H_FRAMECOUNT, H_EDGE, H_WINDOWS, H_OVERRUNS,) = range(105, 109)
(SF_EDGE, SF_USED, SF_PERIOD, SF_NSWEEPS, SF_UPULSE, SF_UDUTY, SF_CAPLANES, SF_LIMRUN, SF_LIMDUTY, SF_CLAMP,) = range(109, 119)
(L_PERIOD, P_ARMED, P_LANE, P_START, P_PULSE_D,) = range(119, 124)
(E_SKID_VALID, E_SKID_WORD, E_LOST_REG,) = range(124, 127)
(E_QUEUE, E_QDEPTH, E_QHEAD, E_QCOUNT, E_HALF, E_SINCE,) = range(127, 133)
N_SLOTS = 133

#: Counter increments the kernel hands back (names of the register map), in this order.
COUNTERS = ("frames", "framing_errors", "unmapped_words", "detections", "overflows", "stim_fires",
            "safety_clamps", "aer_words", "routed_entries")
C_FRAMES, C_FE, C_UNMAPPED, C_DET, C_OVERFLOWS, C_FIRES, C_CLAMPS, C_AER, C_ROUTED = range(len(COUNTERS))

# Stop reasons.
DONE, CONFIG, FULL, TIMEOUT = 0, 1, 2, 3

_A_OFF = AER_WORD.offsets["address"]
_S_OFF = AER_WORD.offsets["source"]
_T_OFF = AER_WORD.offsets["type"]
_TS_OFF = AER_WORD.offsets["timestamp"]
_ADDR_MASK = (1 << ADDRESS_BITS) - 1
_SRC_MASK = (1 << AER_WORD.offsets["type"] - AER_WORD.offsets["source"]) - 1
_TYPE_MASK = (1 << TYPE_BITS) - 1
_TS_MASK = (1 << 32) - 1
_SPIKE, _STIM, _OVERFLOW = int(AERType.SPIKE), int(AERType.STIM), int(AERType.OVERFLOW)
_PORT_STIM = int(Port.STIM)
_LANE_MASK = (1 << LANE_BITS) - 1
_LAST = SAMPLE_BEAT.offsets["last"]
_DATA = SAMPLE_BEAT.offsets["data"]
_SAMPLE_MASK = (1 << SAMPLE_BITS) - 1
_SAMPLE_SIGN = 1 << (SAMPLE_BITS - 1)
_NEG, _POS, _BOTH = int(Polarity.NEGATIVE), int(Polarity.POSITIVE), int(Polarity.BOTH)
_MASK16 = (1 << LATENCY_BITS) - 1
_COUNT_MAX = (1 << COUNT_BITS) - 1
_WINDOW_MOD = 1 << WINDOW_BITS
_LOST_MAX = (1 << 20) - 1


@jit.njit(cache=True)
def _pack(address, source, type_, ts):
    return (address << _A_OFF) | (source << _S_OFF) | (type_ << _T_OFF) | (ts << _TS_OFF)


@jit.njit(cache=True)
def core_edges(S, beats, lasts, i0, n_beats, max_edges, stop_edge, timeout, waited0,
               det_th, det_pol, det_prev, det_hold, enc_pending, enc_stored, enc_queue,
               r_port, r_target, r_weight, r_counts,
               u_acc, u_rem, u_len, u_env, h_theta, h_counts, h_src, h_cstar,
               fifo, stamps, sf_allow, sf_budget, sf_gap, sf_seen, sf_mem, sf_clamps, sf_led,
               l_held, l_phase, l_seq, l_codes,
               words_out, lasts_out, led_sums, led_cycles, probes_out, counters, out):
    """Edges of the Core from the state ``S`` (and the arrays), taking beats ``beats[i0:n_beats]``
    (``n_beats`` < 0: no beats, ``max_edges`` edges); see the module docstring. Writes
    ``out[:] = (beats taken up to, edges, words, frames closed, probe measurements, stop reason,
    waited)``."""
    K = u_acc.shape[0]
    N = det_th.shape[0]
    nb = N // 2
    n_stamps = stamps.shape[0]
    depth = S[FIFO_DEPTH]
    # Safety's kernel takes (1, K) rows: the envelopes (u_env, read before the StimUnit steps),
    # the lanes' bits as states < 1, and the LED vector it registers (sf_led).
    st1 = np.zeros((1, K), dtype=np.uint16)
    for k in range(K):
        st1[0, k] = 0 if l_held[k] else 1
    ones = np.ones(K, dtype=np.int64)
    fire1 = np.zeros(1, dtype=np.int64)
    strobe1 = np.zeros(1, dtype=np.bool_)
    n_pend = 0
    for q in range(N):
        if enc_pending[q]:
            n_pend += 1
    i = i0
    waited = waited0
    edges = 0
    nw = 0
    nf = 0
    npb = 0
    reason = DONE
    ts_bits = S[E_TSBITS]
    ts_mask = (1 << ts_bits) - 1
    while True:
        if n_beats >= 0:
            if i >= n_beats:
                break
        elif edges >= max_edges:
            break
        e = S[EDGE] + 1
        if e == stop_edge:
            reason = CONFIG
            break
        if nw + 2 > words_out.shape[0] or nf + 2 > led_sums.shape[0] or npb + 1 > probes_out.shape[0]:
            reason = FULL
            break

        # ---- values before the edge
        hv = S[R_HVALID] != 0
        sv = S[R_RDY] != 0
        if S[M_LOCKED]:
            sel_stim = S[M_LOCKSTIM] != 0
        else:
            sel_stim = sv and (not hv or not S[M_LASTSTIM])
        host_ready = not sel_stim
        r_en = sel_stim
        tick = S[TICK] != 0
        frame = S[PFRAME]
        fire_now = S[FIRE_STROBE]
        cyc = (e - 1) & _MASK16
        have_beat = n_beats >= 0
        beat = 0
        beat_last = False
        if have_beat:
            beat = np.int64(beats[i]) | (np.int64(lasts[i]) << _LAST)
            beat_last = lasts[i] != 0 or S[D_POS] == nb - 1
        hold = S[U_BUSY] != 0 or tick
        ready = S[ENABLE] != 0 and e > S[SWEEP_END] and not (beat_last and hold)
        accept = have_beat and ready
        last_beat = accept and beat_last
        spikes_now = S[ST2_BITS]

        # ---- counters
        if last_beat:
            counters[C_FRAMES] += 1
        d_fe = S[D_FE] - S[PREV_FE]
        d_un = S[R_UNMAPPED] - S[PREV_UN]
        d_lost = S[E_LOST] - S[PREV_LOST]
        S[PREV_FE] = S[D_FE]
        S[PREV_UN] = S[R_UNMAPPED]
        S[PREV_LOST] = S[E_LOST]
        if d_fe:
            counters[C_FE] += 1
        if d_un:
            counters[C_UNMAPPED] += 1
        if spikes_now:
            counters[C_DET] += (spikes_now & 1) + ((spikes_now >> 1) & 1)
        total = S[LOST_DUE] + d_lost + S[STIM_LOST_STROBE]
        lost_inc = min(total, 3)
        S[LOST_DUE] = total - lost_inc
        counters[C_OVERFLOWS] += lost_inc
        if fire_now >= 0:
            counters[C_FIRES] += 1

        # ---- observers: LED sums, the probe, Safety with the lanes' bits
        if accept:
            for k in range(K):
                led_sums[nf, k] += sf_led[0, k]
            led_cycles[nf] += 1
            if last_beat:
                nf += 1
        if S[SF_CLAMP]:
            counters[C_CLAMPS] += 1
        if S[P_ARMED]:
            lane = S[P_LANE]
            lit = sf_led[0, lane]
            if lit:
                el = min(((cyc - S[P_START]) & _MASK16) + PROBE_OFFSET, _MASK16)
                probes_out[npb] = el
                npb += 1
            nxt = u_env[0, lane]
            if lit or not S[P_PULSE_D]:
                S[P_ARMED] = 0
            S[P_PULSE_D] = nxt
        elif fire_now >= 0 and fire_now < K:
            S[P_ARMED] = 1
            S[P_LANE] = fire_now
            S[P_START] = S[STAMP1]
            S[P_PULSE_D] = u_env[0, fire_now]
        fire1[0] = fire_now
        S[SF_USED] = sweep_kernel_numba(u_env, st1, ones, fire1, sf_allow, sf_budget, sf_gap, sf_seen, sf_mem,
                                        sf_led, sf_clamps, strobe1, S[SF_EDGE], S[SF_PERIOD], S[SF_NSWEEPS],
                                        S[SF_UPULSE], S[SF_UDUTY], S[SF_CAPLANES], S[SF_LIMRUN], S[SF_LIMDUTY],
                                        S[SF_USED])
        S[SF_EDGE] += 1
        S[SF_CLAMP] = 1 if strobe1[0] else 0
        # the lanes' sweep visits lane (t - 1) mod S at block edge t = e - 1
        t = e - 1
        lp = S[L_PERIOD]
        v = (t - 1) % lp
        if v < K:
            first = (v + 1) % lp
            if t >= first:
                j = (t - first) // lp
                l_held[v] = l_seq[(l_phase[v] + j) % LFSR_PERIOD] < l_codes[v]
                st1[0, v] = 0 if l_held[v] else 1

        # ---- AER output merge
        word = S[R_DATA] if sel_stim else S[R_HWORD]
        out_valid = sv if sel_stim else hv
        blast = S[M_BLK] + 1 >= S[BLOCK_WORDS]
        if out_valid:
            S[M_BLK] = 0 if blast else S[M_BLK] + 1
            S[M_LOCKED] = 0
            S[M_LASTSTIM] = 1 if sel_stim else 0
            words_out[nw] = word
            lasts_out[nw] = blast
            nw += 1
            counters[C_AER] += 1

        # ---- AER path: router, encoder, detector (AERPath.step)
        spikes = S[ST2_BITS]
        sbase = S[ST2_BASE]
        sts = S[ST2_FRAME]
        now = S[PFRAME]
        offered = S[E_VALID] != 0
        # router.ready / router.step with stim_ready = True
        p_valid = S[R_PVALID] != 0
        p_is_stim = S[R_PPORT] == _PORT_STIM
        h_valid = S[R_HVALID] != 0
        h_free = (not h_valid) or host_ready
        p_done = p_valid and (True if p_is_stim else h_free)
        advance = (not p_valid) or p_done
        r_ready = S[R_REM] == 0 and advance and h_free and not (p_valid and not p_is_stim)
        r_accept = offered and r_ready
        in_word = S[E_WORD]
        step_host = -1
        if h_valid and host_ready:
            step_host = S[R_HWORD]
        stim_valid = False
        stim_target = 0
        stim_weight = 0
        stim_address = 0
        if p_valid and p_is_stim:
            stim_valid = True
            stim_target = S[R_PTARGET] & _LANE_MASK
            stim_weight = S[R_PWEIGHT]
            stim_address = (S[R_PWORD] >> _A_OFF) & _ADDR_MASK
        if p_done:
            S[R_ROUTED] += 1
        routable = False
        if r_accept:
            a = (in_word >> _A_OFF) & _ADDR_MASK
            spike = ((in_word >> _T_OFF) & _TYPE_MASK) == _SPIKE
            routable = spike and a < N and r_counts[a] > 0
            if spike and not routable:
                S[R_UNMAPPED] += 1
        old_p_word = S[R_PWORD]
        old_target = S[R_PTARGET]
        if S[R_REM] and advance:
            a = (S[R_BUSY] >> _A_OFF) & _ADDR_MASK
            jj = S[R_J]
            S[R_PPORT] = r_port[a, jj]
            S[R_PTARGET] = r_target[a, jj]
            S[R_PWEIGHT] = r_weight[a, jj]
            S[R_PVALID] = 1
            S[R_PWORD] = S[R_BUSY]
            S[R_REM] -= 1
            S[R_J] += 1
        elif routable:
            a = (in_word >> _A_OFF) & _ADDR_MASK
            S[R_PPORT] = r_port[a, 0]
            S[R_PTARGET] = r_target[a, 0]
            S[R_PWEIGHT] = r_weight[a, 0]
            S[R_PVALID] = 1
            S[R_PWORD] = in_word
            S[R_REM] = r_counts[a] - 1
            S[R_J] = 1
            S[R_BUSY] = in_word
        elif advance:
            S[R_PVALID] = 0
        if r_accept:
            S[R_HVALID] = 1
            S[R_HWORD] = in_word
        elif p_done and not p_is_stim:
            src = (old_p_word >> _S_OFF) & _SRC_MASK
            S[R_HVALID] = 1
            S[R_HWORD] = _pack(old_target, src, _SPIKE, (old_p_word >> _TS_OFF) & _TS_MASK)
        elif host_ready:
            S[R_HVALID] = 0
        # encoder.step(spikes, ts, now, r_ready)
        if S[E_VALID] and r_ready:
            S[E_WORDS] += 1
        e_adv = not S[E_SKID_VALID]                      # the skid register is empty
        if S[E_QUEUE] != 0:
            # the queue cadence (AEREncoder._step_queue): one entry (pair, hits, timestamp) per cycle
            qdepth = S[E_QDEPTH]
            qh = S[E_QHEAD]
            qc = S[E_QCOUNT]
            jin = sbase >> 1
            empty = qc == 0
            if empty:
                src_j, src_hits, src_ts, src_half = jin, spikes, sts, False
            else:
                src_j, src_hits, src_ts = enc_queue[qh, 0], enc_queue[qh, 1], enc_queue[qh, 2]
                src_half = S[E_HALF] != 0
            both = src_hits == 3
            spike_req = (not empty) or spikes != 0
            q_adv = S[E_VALID] == 0 or r_ready            # no skid register in this cadence
            grant_ovf = q_adv and S[E_LOST_PENDING] != 0 and (not spike_req or S[E_SINCE] == qdepth)
            grant_spk = q_adv and spike_req and not grant_ovf
            pop = grant_spk and not empty and (not both or src_half)
            push_want = spikes != 0 and not (empty and grant_spk and not both)
            push = push_want and (qc < qdepth or pop)
            lost_now = 0
            if push_want and not push:
                lost_now = (spikes & 1) + ((spikes >> 1) & 1)
            new_word = 0
            if grant_ovf:
                new_word = _pack(S[E_LOST_PENDING], S[E_SOURCE], _OVERFLOW, now)
            elif grant_spk:
                second = 1 if ((src_hits >> 1) & 1) != 0 and ((src_hits & 1) == 0 or src_half) else 0
                new_word = _pack(2 * src_j + second, S[E_SOURCE], _SPIKE, src_ts)
            if grant_spk:
                S[E_HALF] = 1 if (both and not src_half) else 0
            if pop:
                qh = (qh + 1) % qdepth
                qc -= 1
            if push:
                slot = (qh + qc) % qdepth
                enc_queue[slot, 0] = jin
                enc_queue[slot, 1] = spikes
                enc_queue[slot, 2] = sts & _TS_MASK
                qc += 1
            S[E_QHEAD] = qh
            S[E_QCOUNT] = qc
            if grant_ovf:
                S[E_SINCE] = 0
            elif grant_spk and S[E_SINCE] != qdepth:
                S[E_SINCE] += 1
            if grant_ovf or grant_spk:
                S[E_VALID] = 1
                S[E_WORD] = new_word
            elif r_ready:
                S[E_VALID] = 0
            top = (1 << ADDRESS_BITS) - 1
            S[E_LOST_PENDING] = min((0 if grant_ovf else S[E_LOST_PENDING]) + lost_now, top)
            S[E_LOST] = min(S[E_LOST] + lost_now, _TS_MASK)
        else:
            n_enc = N
            if ts_bits < 32:
                tag = (now >> (ts_bits - 2)) & 3
                stale_any = tag != S[E_PREV_TAG]
                old_tag = (tag - 2) & 3
                S[E_PREV_TAG] = tag
            else:
                stale_any = False
                old_tag = 0
            # grant: round robin over pending | spikes | (overflow request at index N)
            idx = -1
            if e_adv and (n_pend or spikes or S[E_LOST_PENDING]):
                ptr = S[E_PTR]
                for q in range(ptr, n_enc + 1):
                    if q == n_enc:
                        req = S[E_LOST_PENDING] != 0
                    else:
                        req = enc_pending[q] or (q >= sbase and q < sbase + 2 and ((spikes >> (q - sbase)) & 1) != 0)
                    if req:
                        idx = q
                        break
                if idx < 0:
                    for q in range(0, min(ptr, n_enc + 1)):
                        if q == n_enc:
                            req = S[E_LOST_PENDING] != 0
                        else:
                            req = enc_pending[q] or (q >= sbase and q < sbase + 2
                                                     and ((spikes >> (q - sbase)) & 1) != 0)
                        if req:
                            idx = q
                            break
            n_lost = 0
            was_g = idx >= 0 and idx < n_enc and enc_pending[idx]
            # stale pending addresses (not granted) are lost; spikes on kept addresses are lost
            if stale_any and n_pend:
                for q in range(n_enc):
                    if enc_pending[q]:
                        st = ((enc_stored[q] >> (ts_bits - 2)) & 3) == old_tag
                        if q == idx:
                            enc_pending[q] = False           # granted
                            n_pend -= 1
                        elif st:
                            n_lost += 1
                            enc_pending[q] = False
                            n_pend -= 1
            elif was_g:
                enc_pending[idx] = False                     # granted
                n_pend -= 1
            # (pending now holds `keep`); the spikes: kept addresses lose them, others store them
            new_word = 0
            if idx >= 0:
                if idx == n_enc:
                    new_word = _pack(S[E_LOST_PENDING], S[E_SOURCE], _OVERFLOW, now)
                else:
                    if was_g:
                        age = (now - enc_stored[idx]) & ts_mask
                        tsw = (now - age) & _TS_MASK
                    else:
                        tsw = sts
                    new_word = _pack(idx, S[E_SOURCE], _SPIKE, tsw)
            for jb in range(2):
                if (spikes >> jb) & 1:
                    q = sbase + jb
                    if enc_pending[q]:                   # kept: this spike is lost
                        n_lost += 1
                    elif q == idx and not was_g:          # granted straight from the input
                        pass
                    else:
                        enc_pending[q] = True
                        n_pend += 1
                        enc_stored[q] = sts & ts_mask
            reported = False
            if idx >= 0:
                S[E_PTR] = 0 if idx == n_enc else idx + 1
                if idx == n_enc:
                    reported = True
            # the output register and the skid register behind it
            if S[E_SKID_VALID]:
                if r_ready:
                    S[E_WORD] = S[E_SKID_WORD]
                    S[E_SKID_VALID] = 0
            elif idx >= 0:
                if S[E_VALID] and not r_ready:
                    S[E_SKID_VALID] = 1
                    S[E_SKID_WORD] = new_word
                else:
                    S[E_VALID] = 1
                    S[E_WORD] = new_word
            elif r_ready:
                S[E_VALID] = 0
            top = (1 << ADDRESS_BITS) - 1
            S[E_LOST_PENDING] = min((0 if reported else S[E_LOST_PENDING]) + S[E_LOST_NEW], top)
            S[E_LOST] = min(S[E_LOST] + S[E_LOST_NEW], _TS_MASK)
            S[E_LOST_NEW] = S[E_LOST_REG]                    # counted a cycle after the losses
            S[E_LOST_REG] = n_lost
        # pipeline registers and the detector
        S[ST2_BITS] = S[ST1_BITS]
        S[ST2_BASE] = S[ST1_BASE]
        S[ST2_FRAME] = S[ST1_FRAME]
        if accept:
            dframe = S[D_FRAME]
            c = 2 * S[D_POS]
            hits = 0
            refr = S[D_REFR]
            for jb in range(2):
                ch = c + jb
                x = (beat >> (_DATA + jb * SAMPLE_BITS)) & _SAMPLE_MASK
                if x & _SAMPLE_SIGN:
                    x -= _SAMPLE_SIGN << 1
                th = np.int64(det_th[ch])
                p = det_pol[ch]
                if p == _NEG:
                    b = x <= -th
                elif p == _POS:
                    b = x >= th
                elif p == _BOTH:
                    b = x <= -th or x >= th
                else:
                    b = False
                hd = det_hold[ch]
                if b and not det_prev[ch] and hd == 0:
                    hits |= 1 << jb
                    det_hold[ch] = max(refr, 1) - 1
                    S[D_DET] += 1
                elif hd:
                    det_hold[ch] = hd - 1
                det_prev[ch] = b
            blt = (beat >> _LAST) & 1
            if blt and not (S[D_POS] == nb - 1):
                S[D_FE] += 1
            if blt or S[D_POS] == nb - 1:
                S[D_POS] = 0
                S[D_FRAME] += 1
                S[D_FRAMES] += 1
            else:
                S[D_POS] += 1
            S[ST1_BITS] = hits
            S[ST1_BASE] = c
            S[ST1_FRAME] = dframe
        else:
            S[ST1_BITS] = 0
        S[PFRAME] = S[D_FRAME]

        if stim_valid:
            counters[C_ROUTED] += 1
        S[STAMP1] = S[STAMP0]
        if stim_valid:
            S[STAMP0] = stamps[(stim_address >> 1) % n_stamps]
        if spikes_now:
            low = sbase + (0 if spikes_now & 1 else 1)       # the lowest channel detected
            stamps[low >> 1] = cyc

        # ---- StimPath: StimUnit (sweep cadence), Homeostasis (sweep cadence)
        spike_addr = -1
        if step_host >= 0 and ((step_host >> _T_OFF) & _TYPE_MASK) == _SPIKE:
            spike_addr = (step_host >> _A_OFF) & _ADDR_MASK
        s1_frame = S[U_S1_FRAME]
        s1_lane = S[U_S1_TARGET] if S[U_S1_ENTRY] else -1
        fired = False
        stim_word = 0
        if S[U_S1_ENTRY]:
            tg = S[U_S1_TARGET]
            if 0 <= tg < K:
                acc = min(max(u_acc[tg] + S[U_S1_WEIGHT], INT16_MIN), INT16_MAX)
                if acc >= h_theta[tg]:
                    acc -= h_theta[tg]
                    fired = True
                u_acc[tg] = acc
                if fired:
                    S[U_FIRES] += 1
                    u_rem[tg] = u_len[tg]
                    u_env[0, tg] = u_rem[tg] != 0
                    stim_word = _pack(tg, S[U_SOURCE], _STIM, s1_frame)
            else:
                S[U_BADLANE] += 1
        if S[U_SWLANE] >= 0:
            k = S[U_SWLANE]
            if S[U_LEAK]:
                u_acc[k] = u_acc[k] - (u_acc[k] >> S[U_LEAK])
            u_rem[k] = max(u_rem[k] - 1, 0)
            u_env[0, k] = u_rem[k] != 0
        # _sweep_step(entry is not None, tick)
        issue = S[U_BUSY] != 0 and not stim_valid
        ulast = issue and S[U_PTR] == K - 1
        read = S[U_PTR] if issue else -1
        if tick and (not S[U_BUSY] or ulast):
            S[U_BUSY] = 1
            S[U_PTR] = 0
        elif tick:
            S[U_TICKSLOST] += S[U_AGAIN]
            S[U_AGAIN] = 1
            S[U_PTR] += 1 if issue else 0
        elif ulast:
            S[U_BUSY] = S[U_AGAIN]
            S[U_PTR] = 0
            S[U_AGAIN] = 0
        elif issue:
            S[U_PTR] += 1
        S[U_SWLANE] = read
        S[U_S1_ENTRY] = 1 if stim_valid else 0
        S[U_S1_TARGET] = stim_target
        S[U_S1_WEIGHT] = stim_weight
        S[U_S1_TICK] = 1 if tick else 0
        S[U_S1_FRAME] = frame
        S[FIRE_STROBE] = s1_lane if fired else -1

        # Homeostasis._clock_sweep(spike_addr, tick)
        hbusy = (S[H_RUNNING] or S[H_CLEARING] or S[H_RCLEAR] or S[H_S1] or S[H_S2] or S[H_S3]
                 or S[H_T2] or S[H_T3]) != 0
        old = 1 - S[H_BANK]
        if S[H_T3] and S[H_ENABLE]:
            ln = S[H_T3_LANE]
            h_theta[ln] = min(max(h_theta[ln] + S[H_T3_DELTA], S[H_TMIN]), S[H_TMAX])
        t3v = S[H_T2]
        t3l = S[H_T2_LANE]
        t3d = S[H_T2_PROD] >> S[H_SHIFT]
        t2v = S[H_S3]
        t2l = S[H_S3_LANE]
        t2p = S[H_S3_DIFF] * S[H_GAIN]
        s3v = S[H_S2]
        s3l = S[H_S2_LANE]
        s3d = (S[H_S2_COUNT] << 8) - S[H_S2_TGT]
        s2v = S[H_S1]
        s2l = S[H_S1_LANE]
        s2t = S[H_S1_TGT]
        hsrc = S[H_S1_SRC]
        s2c = h_counts[old, hsrc] if 0 <= hsrc < N else 0
        s1v = S[H_RUNNING]
        s1l = S[H_INDEX]
        s1s = 0
        s1t = 0
        if s1v:
            s1s = h_src[s1l]
            s1t = h_cstar[s1l]
        if S[H_WORD]:
            bw = S[H_WORD_BANK]
            chw = S[H_WORD_CH]
            h_counts[bw, chw] = min(h_counts[bw, chw] + 1, _COUNT_MAX)
        if S[H_CLEARING]:
            h_counts[old, S[H_CLR]] = 0
            if S[H_CLR] == N - 1:
                S[H_CLEARING] = 0
            S[H_CLR] += 1
        if spike_addr >= 0 and spike_addr < N and not S[H_RCLEAR]:
            S[H_WORD] = 1
            S[H_WORD_BANK] = S[H_BANK]
            S[H_WORD_CH] = spike_addr
        else:
            S[H_WORD] = 0
        if S[H_RCLEAR]:
            h_counts[0, S[H_RCLR]] = 0
            h_counts[1, S[H_RCLR]] = 0
            S[H_RCLR] += 1
            S[H_RCLEAR] = 1 if S[H_RCLR] < N else 0
        if S[H_RUNNING]:
            if S[H_INDEX] == K - 1:
                S[H_RUNNING] = 0
                S[H_CLEARING] = 1
                S[H_CLR] = 0
            S[H_INDEX] += 1
        S[H_S1] = s1v
        S[H_S1_LANE] = s1l
        S[H_S1_SRC] = s1s
        S[H_S1_TGT] = s1t
        S[H_S2] = s2v
        S[H_S2_LANE] = s2l
        S[H_S2_TGT] = s2t
        S[H_S2_COUNT] = s2c
        S[H_S3] = s3v
        S[H_S3_LANE] = s3l
        S[H_S3_DIFF] = s3d
        S[H_T2] = t2v
        S[H_T2_LANE] = t2l
        S[H_T2_PROD] = t2p
        S[H_T3] = t3v
        S[H_T3_LANE] = t3l
        S[H_T3_DELTA] = t3d
        if tick:
            close = S[H_FRAMECOUNT] == (S[H_WINDOW] - 1) % _WINDOW_MOD
            S[H_FRAMECOUNT] = 0 if close else (S[H_FRAMECOUNT] + 1) % _WINDOW_MOD
            if close:
                if hbusy:
                    S[H_OVERRUNS] += 1
                else:
                    S[H_WINDOWS] += 1
                    S[H_RUNNING] = 1
                    S[H_INDEX] = 0
                    S[H_BANK] = 1 - S[H_BANK]
        S[H_EDGE] += 1

        # ---- STIM FIFO
        w_rdy = S[FIFO_COUNT] != depth - 1
        push = False
        push_word = 0
        S[STIM_LOST_STROBE] = 0
        if fired:
            if w_rdy:
                push = True
                push_word = stim_word
            else:
                S[STIM_LOST_REG] = min(S[STIM_LOST_REG] + 1, _LOST_MAX)
                S[STIM_LOST_STROBE] = 1
        elif S[STIM_LOST_REG] and w_rdy:
            push = True
            push_word = _pack(S[STIM_LOST_REG], S[U_SOURCE], _OVERFLOW, s1_frame)
            S[STIM_LOST_REG] = 0
        inner_read = S[FIFO_COUNT] > 0 and (not S[R_RDY] or r_en)
        cap = fifo.shape[0]
        if inner_read:
            S[R_DATA] = fifo[S[FIFO_HEAD]]
            S[FIFO_HEAD] = (S[FIFO_HEAD] + 1) % cap
            S[FIFO_COUNT] -= 1
            S[R_RDY] = 1
        elif r_en:
            S[R_RDY] = 0
        if push:
            fifo[(S[FIFO_HEAD] + S[FIFO_COUNT]) % cap] = push_word
            S[FIFO_COUNT] += 1

        S[TICK] = 1 if last_beat else 0
        S[EDGE] = e
        edges += 1
        if have_beat:
            if accept:
                i += 1
                waited = 0
            else:
                waited += 1
                if timeout > 0 and waited >= timeout:
                    reason = TIMEOUT
                    break
    out[0] = i
    out[1] = edges
    out[2] = nw
    out[3] = nf
    out[4] = npb
    out[5] = reason
    out[6] = waited


# -- state out of the block models and back ---------------------------------------------------------

def _bits_to_pair(bits: int) -> tuple[int, int]:
    """A detection bit set of one beat (at most two adjacent channels, 2i and 2i + 1) as
    (two bits, base channel 2i)."""
    if not bits:
        return 0, 0
    low = (bits & -bits).bit_length() - 1
    base = low & ~1
    pair = bits >> base
    if pair >> 2:     # pragma: no cover - a beat carries two channels
        raise AssertionError("detections of more than one beat in a pipeline stage")
    return pair, base


class _State:
    """The Core's state as the kernel's arrays (taken out of the block models, put back by
    :meth:`put_back`)."""

    def __init__(self, core):
        c = core
        p, det, enc, r, m = c.path, c.path.detector, c.path.encoder, c.path.router, c.merge
        u, h, sf, ln = c.unit, c.homeo, c.safety, c.lanes
        K, N = c.K, c.N
        S = np.zeros(N_SLOTS, dtype=np.int64)
        S[EDGE], S[ENABLE], S[SWEEP_END], S[TICK] = c.edge_count, c.enable, c.sweep_end, c.tick
        S[BLOCK_WORDS], S[FIFO_DEPTH], S[R_RDY], S[R_DATA] = c.block_words, c.fifo_depth, c.r_rdy, c.r_data
        S[STIM_LOST_REG], S[STIM_LOST_STROBE] = c.stim_lost_reg, c.stim_lost_strobe
        S[FIRE_STROBE] = -1 if c.fire_strobe is None else c.fire_strobe
        S[PREV_FE], S[PREV_UN], S[PREV_LOST] = c.prev["framing_errors"], c.prev["unmapped"], c.prev["lost"]
        S[LOST_DUE], S[STAMP0], S[STAMP1] = c.lost_due, c.stamp_pipe[0], c.stamp_pipe[1]
        self.fifo = np.zeros(max(1, c.fifo_depth), dtype=np.int64)
        self.fifo[:len(c.inner)] = list(c.inner)
        S[FIFO_HEAD], S[FIFO_COUNT] = 0, len(c.inner)
        b1, f1 = p._stage1
        b2, f2 = p._stage2
        (S[ST1_BITS], S[ST1_BASE]), S[ST1_FRAME] = _bits_to_pair(b1), f1
        (S[ST2_BITS], S[ST2_BASE]), S[ST2_FRAME] = _bits_to_pair(b2), f2
        S[PFRAME] = p._frame
        S[D_POS], S[D_FRAME], S[D_FRAMES] = det.pos, det.frame, det.frames
        S[D_FE], S[D_DET], S[D_REFR] = det.framing_errors, det.detections, det.refractory
        S[E_LOST_PENDING], S[E_LOST_NEW], S[E_PTR] = enc.lost_pending, enc.lost_new, enc.ptr
        S[E_PREV_TAG], S[E_VALID], S[E_WORD] = enc.prev_tag, enc.valid, enc.word
        S[E_WORDS], S[E_LOST], S[E_SOURCE], S[E_TSBITS] = enc.words, enc.lost, enc.source, enc.ts_bits
        S[E_SKID_VALID], S[E_SKID_WORD], S[E_LOST_REG] = enc.skid_valid, enc.skid_word, enc.lost_reg
        self.enc_pending = np.array([(enc.pending >> q) & 1 for q in range(N)], dtype=np.bool_)
        self.enc_stored = np.array(enc.stored, dtype=np.int64)
        S[E_QUEUE] = enc.cadence == "queue"
        depth = enc.queue_depth or 1
        S[E_QDEPTH], S[E_QHEAD], S[E_QCOUNT] = depth, 0, len(enc.queue)
        S[E_HALF], S[E_SINCE] = enc.half, enc.since
        self.enc_queue = np.zeros((depth, 3), dtype=np.int64)
        if enc.queue:
            self.enc_queue[:len(enc.queue)] = list(enc.queue)
        S[R_REM], S[R_J], S[R_BUSY], S[R_PVALID], S[R_PWORD] = r.rem, r.j, r.busy, r.p_valid, r.p_word
        S[R_PPORT], S[R_PTARGET], S[R_PWEIGHT] = int(r.p_entry.port), r.p_entry.target, r.p_entry.weight
        S[R_HVALID], S[R_HWORD], S[R_ROUTED], S[R_UNMAPPED] = r.h_valid, r.h_word, r.routed, r.unmapped
        self.table = c.route_arrays()
        S[M_LOCKED], S[M_LOCKSTIM], S[M_LASTSTIM], S[M_BLK] = m.locked, m.lock_stim, m.last_stim, m.blk
        S[U_BUSY], S[U_AGAIN], S[U_PTR] = u.busy, u.again, u.ptr
        S[U_SWLANE] = -1 if u.sw_lane is None else u.sw_lane
        S[U_TICKSLOST], S[U_FIRES], S[U_BADLANE] = u.ticks_lost, u.fires, u.bad_lane
        entry, s_tick, s_frame = u.staged
        S[U_S1_ENTRY] = entry is not None
        if entry is not None:
            S[U_S1_TARGET], S[U_S1_WEIGHT] = entry
        S[U_S1_TICK], S[U_S1_FRAME], S[U_LEAK], S[U_SOURCE] = s_tick, s_frame, u.leak_shift, u.source
        self.u_env = u.env.copy()[None, :]             # (1, K): Safety's kernel takes rows
        S[H_BANK], S[H_RUNNING], S[H_CLEARING], S[H_INDEX], S[H_CLR] = h.bank, h.running, h.clearing, h.index, h.clr
        if h._word is not None:
            S[H_WORD], (S[H_WORD_BANK], S[H_WORD_CH]) = 1, h._word
        S[H_RCLEAR], S[H_RCLR] = h.rclear, h.rclr
        for valid, slots, stage in ((H_S1, (H_S1_LANE, H_S1_SRC, H_S1_TGT), h._s1),
                                    (H_S2, (H_S2_LANE, H_S2_TGT, H_S2_COUNT), h._s2),
                                    (H_S3, (H_S3_LANE, H_S3_DIFF), h._s3),
                                    (H_T2, (H_T2_LANE, H_T2_PROD), h._t2),
                                    (H_T3, (H_T3_LANE, H_T3_DELTA), h._t3)):
            if stage is not None:
                S[valid] = 1
                for slot, value in zip(slots, stage, strict=True):
                    S[slot] = value
        k = h.constants
        S[H_GAIN], S[H_SHIFT], S[H_TMIN], S[H_TMAX] = k.gain, k.shift, h.theta_min, h.theta_max
        S[H_WINDOW], S[H_ENABLE], S[H_FRAMECOUNT], S[H_EDGE] = h.window_frames, h.enable, h.frame_count, h.edge
        S[H_WINDOWS], S[H_OVERRUNS] = h.windows, h.overruns
        self.h_cstar = np.broadcast_to(np.asarray(k.c_star, dtype=np.int64), (K,)).copy()
        self.h_src = np.asarray(h.src, dtype=np.int64)
        cap_pulse, cap_duty, cap_lanes = sf.caps
        S[SF_EDGE], S[SF_USED], S[SF_PERIOD], S[SF_NSWEEPS] = sf.edge, sf.used, sf.period, sf.n_sweeps
        S[SF_UPULSE], S[SF_UDUTY], S[SF_CAPLANES] = cap_pulse >> sf.sb, cap_duty >> sf.sb, cap_lanes
        S[SF_LIMRUN], S[SF_LIMDUTY], S[SF_CLAMP] = sf.lim_units[0], sf.lim_units[1], c.clamp_strobe
        self.sf_led = sf.led.copy()[None, :]
        self.sf_clamps = np.zeros(3, dtype=np.int64)
        # the lanes' held bits are those before block edge e - 1 of the coming edge e
        ln.bits(c.codes, 0, edge=max(c.edge_count, ln.edge))
        self.l_held = ln.held.copy()
        S[L_PERIOD] = ln.period
        S[P_ARMED], S[P_LANE], S[P_START], S[P_PULSE_D] = c.armed, c.probe_lane, c.probe_start, c.pulse_d
        self.S = S

    def put_back(self, core) -> None:
        c, S = core, self.S
        p, det, enc, r, m = c.path, c.path.detector, c.path.encoder, c.path.router, c.merge
        u, h, sf, ln = c.unit, c.homeo, c.safety, c.lanes
        c.edge_count, c.tick, c.r_rdy, c.r_data = int(S[EDGE]), bool(S[TICK]), bool(S[R_RDY]), int(S[R_DATA])
        c.stim_lost_reg, c.stim_lost_strobe = int(S[STIM_LOST_REG]), bool(S[STIM_LOST_STROBE])
        c.fire_strobe = None if S[FIRE_STROBE] < 0 else int(S[FIRE_STROBE])
        c.prev = {"framing_errors": int(S[PREV_FE]), "unmapped": int(S[PREV_UN]), "lost": int(S[PREV_LOST])}
        c.lost_due, c.stamp_pipe = int(S[LOST_DUE]), [int(S[STAMP0]), int(S[STAMP1])]
        cap = self.fifo.shape[0]
        c.inner.clear()
        c.inner.extend(int(self.fifo[(S[FIFO_HEAD] + q) % cap]) for q in range(S[FIFO_COUNT]))
        p._stage1 = (int(S[ST1_BITS]) << int(S[ST1_BASE]), int(S[ST1_FRAME]))
        p._stage2 = (int(S[ST2_BITS]) << int(S[ST2_BASE]), int(S[ST2_FRAME]))
        p._frame = int(S[PFRAME])
        det.pos, det.frame, det.frames = int(S[D_POS]), int(S[D_FRAME]), int(S[D_FRAMES])
        det.framing_errors, det.detections = int(S[D_FE]), int(S[D_DET])
        enc.lost_pending, enc.lost_new, enc.ptr = int(S[E_LOST_PENDING]), int(S[E_LOST_NEW]), int(S[E_PTR])
        enc.prev_tag, enc.valid, enc.word = int(S[E_PREV_TAG]), bool(S[E_VALID]), int(S[E_WORD])
        enc.words, enc.lost = int(S[E_WORDS]), int(S[E_LOST])
        enc.skid_valid, enc.skid_word, enc.lost_reg = bool(S[E_SKID_VALID]), int(S[E_SKID_WORD]), int(S[E_LOST_REG])
        enc.pending = sum(1 << int(q) for q in np.flatnonzero(self.enc_pending))
        enc.stored = [int(x) for x in self.enc_stored]
        depth, head = int(S[E_QDEPTH]), int(S[E_QHEAD])
        enc.queue.clear()
        enc.queue.extend([int(x) for x in self.enc_queue[(head + q) % depth]] for q in range(int(S[E_QCOUNT])))
        enc.half, enc.since = bool(S[E_HALF]), int(S[E_SINCE])
        r.rem, r.j, r.busy, r.p_valid, r.p_word = int(S[R_REM]), int(S[R_J]), int(S[R_BUSY]), bool(S[R_PVALID]), \
            int(S[R_PWORD])
        r.p_entry = Route(Port(int(S[R_PPORT])), int(S[R_PTARGET]), int(S[R_PWEIGHT]))
        r.h_valid, r.h_word = bool(S[R_HVALID]), int(S[R_HWORD])
        r.routed, r.unmapped = int(S[R_ROUTED]), int(S[R_UNMAPPED])
        m.locked, m.lock_stim, m.last_stim, m.blk = bool(S[M_LOCKED]), bool(S[M_LOCKSTIM]), bool(S[M_LASTSTIM]), \
            int(S[M_BLK])
        u.busy, u.again, u.ptr = bool(S[U_BUSY]), bool(S[U_AGAIN]), int(S[U_PTR])
        u.sw_lane = None if S[U_SWLANE] < 0 else int(S[U_SWLANE])
        u.ticks_lost, u.fires, u.bad_lane = int(S[U_TICKSLOST]), int(S[U_FIRES]), int(S[U_BADLANE])
        entry = (int(S[U_S1_TARGET]), int(S[U_S1_WEIGHT])) if S[U_S1_ENTRY] else None
        u._s1 = (entry, bool(S[U_S1_TICK]), int(S[U_S1_FRAME]))
        u.env = self.u_env[0].copy()
        h.bank, h.running, h.clearing = int(S[H_BANK]), bool(S[H_RUNNING]), bool(S[H_CLEARING])
        h.index, h.clr = int(S[H_INDEX]), int(S[H_CLR])
        h._word = (int(S[H_WORD_BANK]), int(S[H_WORD_CH])) if S[H_WORD] else None
        h.rclear, h.rclr = bool(S[H_RCLEAR]), int(S[H_RCLR])
        stage = lambda valid, *slots: tuple(int(S[s]) for s in slots) if S[valid] else None   # noqa: E731
        h._s1 = stage(H_S1, H_S1_LANE, H_S1_SRC, H_S1_TGT)
        h._s2 = stage(H_S2, H_S2_LANE, H_S2_TGT, H_S2_COUNT)
        h._s3 = stage(H_S3, H_S3_LANE, H_S3_DIFF)
        h._t2 = stage(H_T2, H_T2_LANE, H_T2_PROD)
        h._t3 = stage(H_T3, H_T3_LANE, H_T3_DELTA)
        h.frame_count, h.edge = int(S[H_FRAMECOUNT]), int(S[H_EDGE])
        h.windows, h.overruns = int(S[H_WINDOWS]), int(S[H_OVERRUNS])
        sf.edge, sf.used, sf.led = int(S[SF_EDGE]), int(S[SF_USED]), self.sf_led[0].copy()
        sf.clamps += self.sf_clamps
        c.clamp_strobe = bool(S[SF_CLAMP])
        ln.held, ln.edge = self.l_held, int(S[EDGE])
        c.armed, c.probe_lane, c.probe_start = bool(S[P_ARMED]), int(S[P_LANE]), int(S[P_START])
        c.pulse_d = bool(S[P_PULSE_D])


_BUF = 4096


def run(core, beats=None, lasts=None, n: int = 0, timeout: int | None = None) -> int:
    """Take ``beats`` (uint32) with their TLAST flags ``lasts``, each held until accepted (as
    :meth:`Core.run_beats`), or, without beats, ``n`` edges (as :meth:`Core.idle`); edges at
    which a configuration change is due go through :meth:`Core.step`. Returns the beats taken.
    The caller has checked :func:`usable`."""
    core.settle()
    n_beats = -1 if beats is None else len(beats)
    if beats is None:
        beats = np.zeros(1, dtype=np.uint32)
        lasts = np.zeros(1, dtype=np.bool_)
    else:
        beats = np.ascontiguousarray(beats, dtype=np.uint32)
        lasts = np.ascontiguousarray(lasts, dtype=np.bool_)
    seq, _ = _period()
    i = waited = 0
    left = n
    K = core.K
    words = np.zeros(_BUF, dtype=np.int64)
    wlasts = np.zeros(_BUF, dtype=np.bool_)
    probes = np.zeros(_BUF, dtype=np.int64)
    counters = np.zeros(len(COUNTERS), dtype=np.int64)
    out = np.zeros(7, dtype=np.int64)
    while (i < n_beats) if n_beats >= 0 else left > 0:
        due = core.next_config_edge()
        if due == core.edge_count + 1:              # a configuration change acts at this edge
            if n_beats >= 0:
                if core.step(int(beats[i]) | (int(lasts[i]) << _LAST)):
                    i, waited = i + 1, 0
                else:
                    waited += 1
                    if timeout is not None and waited >= timeout:
                        break
            else:
                core.step(None)
                left -= 1
            core.settle()
            continue
        st = _State(core)
        det, u, h, sf = core.path.detector, core.unit, core.homeo, core.safety
        enc_pending, enc_stored = st.enc_pending, st.enc_stored
        port, target, weight, counts = st.table
        rows = 2 if n_beats < 0 else min(_BUF, (n_beats - i) // max(1, core.N // 2 - 1) + 3)
        led_sums = np.zeros((rows, K), dtype=np.int64)
        led_cycles = np.zeros(rows, dtype=np.int64)
        counters[:] = 0
        core_edges(st.S, beats, lasts, i, n_beats, left, -1 if due is None else due,
                   0 if timeout is None else timeout, waited,
                   det.thresholds, det.polarity, det.prev, det.hold, enc_pending, enc_stored, st.enc_queue,
                   port, target, weight, counts,
                   u.acc, u.remaining, u.pulse_lengths, st.u_env, h.theta, h.bank_counts, st.h_src, st.h_cstar,
                   st.fifo, core.stamps, sf.allow, sf.budget, sf.gap, sf.seen, sf.mem, st.sf_clamps, st.sf_led,
                   st.l_held, core.lanes._phase, seq, core.codes,
                   words, wlasts, led_sums, led_cycles, probes, counters, out)
        st.put_back(core)
        i, edges, nw, nf, npb, reason, waited = (int(x) for x in out)
        left -= edges
        if nw:
            core.words.extend(int(w) for w in words[:nw])
            core.lasts.extend(bool(x) for x in wlasts[:nw])
        fl = core.frame_leds
        if fl is not None:
            if nf:       # the first frame closes the one open before; the others at once
                fl.add_sum(led_sums[0], int(led_cycles[0]), True)
            if nf > 1:
                fl.add_counts(led_sums[1:nf], led_cycles[1:nf])
            if led_cycles[nf]:
                fl.add_sum(led_sums[nf], int(led_cycles[nf]), False)
        for v in probes[:npb]:
            core.probes.append(int(v))
            core.bank.measure("latency", int(v))
        for name, v in zip(COUNTERS, counters, strict=True):
            if v:
                core.count(name, int(v))
        if reason == TIMEOUT:
            break
    return i
