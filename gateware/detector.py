"""Detector: per-channel threshold crossing with refractory period (DESIGN.md §4)."""

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .counter import count_saturating
from bioloop.host.parameters import check_channels, validated

from .layouts import TIMESTAMP_BITS, Polarity, WritePort, sample_stream

__all__ = ["Detector"]

REFRACTORY_BITS = 16


class Detector(wiring.Component):
    """Threshold-crossing spike detector, two channels per beat, one beat per cycle.

    Sample ``t`` of channel ``c`` is a detection when it is beyond the
    threshold (``x <= -θ[c]`` for NEGATIVE, ``x >= θ[c]`` for POSITIVE,
    either for BOTH, never for OFF), sample ``t-1`` of the same channel was
    not beyond (the first frame after reset counts as not beyond), and at
    least ``refractory`` frames passed since the last detection on ``c``.
    The detection is reported with the frame ``t`` of that first sample
    beyond threshold.

    Thresholds, polarities and per-channel state (previous-beyond bit and
    refractory hold-off) live in block RAM, one row per beat (two channels).
    After reset the state RAM is cleared in ``n_channels // 2`` cycles, during
    which ``samples.ready`` is low.

    Framing (DESIGN.md §3): a frame is ``n_channels // 2`` beats, counted;
    ``last`` (TLAST) is optional, because the AXI DMA raises it only at the
    end of a transfer. A beat with ``last`` that is not a frame's last beat
    (the count says otherwise) is a framing error: it is counted and ends the
    frame there, so the next beat is channel 0 and 1 of a new frame
    (resynchronised at that TLAST). Beats already taken keep the channels
    their position gave them, counted from the frame's first beat; a beat is
    never assigned a channel from a position other than its count since the
    last frame end. ``frame`` counts frame ends (by count or TLAST).

    Parameters
    ----------
    n_channels : int
        Even, 2..4096.
    thresholds : sequence of int, optional
        Reset contents of the threshold RAM (magnitudes 0..32767); default
        32767 on every channel.
    polarity : sequence of Polarity or int, optional
        Reset contents of the polarity RAM; default NEGATIVE.
    vector : bool
        Build the N-bit ``spikes`` vector (default True); without it
        ``spikes`` reads 0 and consumers take ``pair`` and ``pair_hits``
        (the AERPath with the queue encoder: no N-bit decode only to be
        encoded back).
    counters : bool
        Build the three counters (default True). The Core counts in its CSR
        bank from ``frame_end``, ``framing_error`` and ``detections_inc``
        and builds none (they then read 0).

    Members
    -------
    samples : In(stream of SampleBeat)
        Sample beats; always ready after the reset sweep.
    threshold_write : In(WritePort(ch_bits, 16))
        Writes θ[addr] (magnitude, 0..32767).
    polarity_write : In(WritePort(ch_bits, Polarity))
        Writes the polarity of channel addr.
    refractory : In(16)
        Refractory period R in frames (0 and 1 both allow consecutive-frame
        detections once the signal returns below threshold).
    spikes : Out(n_channels)
        Detections of the beat accepted one cycle earlier (at most two bits;
        0 without ``vector``).
    pair, pair_hits : Out(range(n_channels // 2)), Out(2)
        The same detections as the beat's row ``j`` and its two bits
        (channels 2j, 2j+1), for consumers that would otherwise encode
        ``spikes`` back into a row.
    timestamp : Out(32)
        Frame of the detections on ``spikes``.
    frame : Out(32)
        Index of the frame being received (frame ends seen).
    frame_end : Out(1)
        The beat handshaken in this cycle ends a frame (its last beat by
        count, or a TLAST).
    frame_tick : Out(1)
        High for one cycle after each frame's last beat is accepted.
    clear : In(1)
        Clears the counters.
    frames, framing_errors, detections : Out(32)
        Saturating counters (0 without ``counters``).
    framing_error : Out(1)
        The beat handshaken in this cycle is a framing error.
    detections_inc : Out(2)
        The detections ``detections`` counts at the coming edge.
    """

    @validated
    def __init__(self, n_channels: int = 64, *, thresholds=None, polarity=None, counters: bool = True,
                 vector: bool = True):
        self.n_channels = check_channels(n_channels)
        if not isinstance(counters, bool):
            raise TypeError(f"counters must be a bool, not {type(counters).__name__} {counters!r}")
        self.counters = counters
        if not isinstance(vector, bool):
            raise TypeError(f"vector must be a bool, not {type(vector).__name__} {vector!r}")
        self.vector = vector
        self.beats = n_channels // 2
        self.ch_bits = max(1, (n_channels - 1).bit_length())
        thresholds = [0x7FFF] * n_channels if thresholds is None else list(thresholds)
        polarity = [Polarity.NEGATIVE] * n_channels if polarity is None else list(polarity)
        for name, values in (("thresholds", thresholds), ("polarity", polarity)):
            if len(values) != n_channels:
                raise ValueError(f"{name} has {len(values)} entries, expected n_channels={n_channels}")
        for c, t in enumerate(thresholds):
            if not 0 <= int(t) <= 0x7FFF:
                raise ValueError(f"threshold of channel {c} is {t}; magnitudes must be in 0..32767")
        self._thr_init = [int(t) for t in thresholds]
        self._pol_init = [Polarity(p).value for p in polarity]
        super().__init__({
            "samples": In(sample_stream()),
            "threshold_write": In(WritePort(self.ch_bits, 16)),
            "polarity_write": In(WritePort(self.ch_bits, Polarity)),
            "refractory": In(REFRACTORY_BITS),
            "spikes": Out(n_channels),
            "timestamp": Out(TIMESTAMP_BITS),
            "frame": Out(TIMESTAMP_BITS),
            "frame_end": Out(1),
            "frame_tick": Out(1),
            "clear": In(1),
            "frames": Out(32),
            "framing_errors": Out(32),
            "detections": Out(32),
            "framing_error": Out(1),
            "detections_inc": Out(2),
            "pair": Out(max(1, (self.beats - 1).bit_length())),
            "pair_hits": Out(2),
        })

    def elaborate(self, platform):
        m = Module()
        nb = self.beats
        row_bits = max(1, (nb - 1).bit_length())

        # Configuration RAMs, one row per beat, one 16-bit (or 2-bit) granule per channel.
        def pairs(values, width):
            return [values[2 * i] | (values[2 * i + 1] << width) for i in range(nb)]
        m.submodules.thr_mem = thr_mem = memory.Memory(shape=32, depth=nb, init=pairs(self._thr_init, 16))
        m.submodules.pol_mem = pol_mem = memory.Memory(shape=4, depth=nb, init=pairs(self._pol_init, 2))
        # State RAM: per channel 1 previous-beyond bit and a 16-bit refractory hold-off.
        m.submodules.state_mem = state_mem = memory.Memory(shape=34, depth=nb, init=[])

        thr_w = thr_mem.write_port(granularity=16)
        pol_w = pol_mem.write_port(granularity=2)
        for port, wp in ((thr_w, self.threshold_write), (pol_w, self.polarity_write)):
            m.d.comb += [
                port.addr.eq(wp.addr >> 1),
                port.data.eq(Cat(wp.data, wp.data)),
                port.en.eq(Mux(wp.addr[0], 0b10, 0b01) & Mux(wp.en, 0b11, 0b00)),
            ]
        st_w = state_mem.write_port()
        thr_r = thr_mem.read_port()
        pol_r = pol_mem.read_port()
        st_r = state_mem.read_port(transparent_for=(st_w,))

        # Reset sweep clears the state RAM.
        sweeping = Signal(init=1)
        sweep_row = Signal(row_bits)

        pos = Signal(row_bits)          # beat position inside the frame
        frame = self.frame
        beat = self.samples.payload
        accept = Signal()
        m.d.comb += [
            self.samples.ready.eq(~sweeping),
            accept.eq(self.samples.valid & self.samples.ready),
        ]

        process = accept
        for r in (thr_r, pol_r, st_r):
            m.d.comb += [r.addr.eq(pos), r.en.eq(1)]

        error = Signal()
        end = self.frame_end
        m.d.comb += [end.eq(accept & (beat.last | (pos == nb - 1))),
                     error.eq(accept & beat.last & (pos != nb - 1))]
        m.d.sync += self.frame_tick.eq(end)
        with m.If(end):
            m.d.sync += [pos.eq(0), frame.eq(frame + 1)]
        with m.Elif(accept):
            m.d.sync += pos.eq(pos + 1)

        # Stage 1: the accepted beat meets its RAM rows.
        s1_valid = Signal()
        s1_pos = Signal(row_bits)
        s1_data = Signal.like(beat.data)
        s1_frame = Signal(TIMESTAMP_BITS)
        m.d.sync += [s1_valid.eq(process), s1_pos.eq(pos), s1_data.eq(beat.data), s1_frame.eq(frame)]

        hits = Signal(2)
        new_state = Signal(34)
        refr = self.refractory
        hold_init = Mux(refr == 0, 0, refr - 1)
        for j in range(2):
            x = s1_data[j]
            theta = Signal(signed(17), name=f"theta{j}")
            m.d.comb += theta.eq(thr_r.data.word_select(j, 16))
            pol = pol_r.data.word_select(j, 2)
            prev = st_r.data[17 * j]
            hold = st_r.data[17 * j + 1:17 * j + 17]
            beyond = Signal(name=f"beyond{j}")
            neg = x <= -theta
            pos_ = x >= theta
            with m.Switch(pol):
                with m.Case(Polarity.NEGATIVE):
                    m.d.comb += beyond.eq(neg)
                with m.Case(Polarity.POSITIVE):
                    m.d.comb += beyond.eq(pos_)
                with m.Case(Polarity.BOTH):
                    m.d.comb += beyond.eq(neg | pos_)
                with m.Default():                  # Polarity.OFF
                    m.d.comb += beyond.eq(0)
            hit = beyond & ~prev & (hold == 0)
            m.d.comb += [
                hits[j].eq(hit),
                new_state[17 * j].eq(beyond),
                new_state[17 * j + 1:17 * j + 17].eq(Mux(hit, hold_init, Mux(hold == 0, 0, hold - 1))),
            ]

        with m.If(sweeping):
            m.d.comb += [st_w.addr.eq(sweep_row), st_w.data.eq(0), st_w.en.eq(1)]
            m.d.sync += sweep_row.eq(sweep_row + 1)
            with m.If(sweep_row == nb - 1):
                m.d.sync += sweeping.eq(0)
        with m.Else():
            m.d.comb += [st_w.addr.eq(s1_pos), st_w.data.eq(new_state), st_w.en.eq(s1_valid)]

        if self.vector:
            m.d.sync += self.spikes.eq(Mux(s1_valid, hits, 0) << (s1_pos * 2))
        m.d.sync += [
            self.pair.eq(s1_pos),
            self.pair_hits.eq(Mux(s1_valid, hits, 0)),
            self.timestamp.eq(s1_frame),
        ]

        m.d.comb += [self.framing_error.eq(error), self.detections_inc.eq(Mux(s1_valid, hits[0] + hits[1], 0))]
        if self.counters:
            count_saturating(m, self.frames, end, self.clear)
            count_saturating(m, self.framing_errors, error, self.clear)
            count_saturating(m, self.detections, self.detections_inc, self.clear, most=2)
        return m
