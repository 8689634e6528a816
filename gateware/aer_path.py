"""AERPath: Detector -> AEREncoder -> AERRouter, one sample stream in, host and stim ports out."""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .detector import Detector
from .aer_encoder import AEREncoder
from bioloop.host.parameters import check_encoder_cadence, validated

from .layouts import SOURCE_BITS, TIMESTAMP_BITS, aer_stream, routed_stream, sample_stream
from .aer_router import AERRouter

__all__ = ["AERPath"]

#: Counters of the path, in the order the register map lists them.
COUNTERS = ("frames", "framing_errors", "detections", "words", "lost", "routed", "unmapped")


class AERPath(wiring.Component):
    """The first half of the fast loop (DESIGN.md §1).

    L_aer (handshake of the beat carrying a crossing to valid of its SPIKE
    word on ``host`` with ready high) is 4 cycles for a spike that finds the
    encoder idle: 2 in the Detector (RAM read, decision), 1 in the AEREncoder
    (grant), 1 in the AERRouter (host copy). Waiting spikes wait in the
    encoder's queue, in arrival order (queue cadence), or at most
    ``n_channels + 1`` further cycles in its round-robin (cycle cadence).

    Parameters
    ----------
    n_channels : int
        Recording channels N (even, 2..4096); also the AER address space.
    fanout : int
        Router fanout F (1..256).
    thresholds, polarity : optional
        Reset contents of the Detector's RAMs.
    ts_bits : int
        AEREncoder pending-timestamp bits (cycle cadence).
    encoder_cadence : {"queue", "cycle"}
        The AEREncoder's cadence (default "queue": the Detector's beat of
        detections queued in LUTRAM, one word per cycle in arrival order;
        "cycle": the original per-address pending bits and round-robin).
    queue_depth : int or None
        The AEREncoder's queue entries (queue cadence; default N/2 rounded
        up to a power of two, at most 256).
    counters : bool
        Build the Detector's and the AEREncoder's counters (default True;
        the Core counts their increments in its CSR bank instead).

    Members
    -------
    samples : In(stream of SampleBeat)
    host : Out(stream of AERWord)
    stim : Out(stream of RoutedEntry)
    threshold_write, polarity_write, table_write, fanout_write : In(WritePort)
        Table writes, passed to the Detector and the AERRouter.
    refractory : In(16)
    source : In(8)
        AER source field.
    frame : Out(32)
        Current frame.
    frame_end : Out(1)
        The beat handshaken in this cycle ends a frame (Detector).
    frame_tick : Out(1)
        One cycle per frame.
    spike_pair, spike_pair_hits : Out
        The detections at the encoder's input: the Detector's beat row ``j``
        and its two bits (channels 2j, 2j+1), for the Core's latency probe.
    clear : In(1)
    frames, framing_errors, detections, words, lost, routed, unmapped : Out(32)
        The blocks' counters (the Detector's and the AEREncoder's read 0
        without ``counters``).
    framing_error, detections_inc, lost_inc : Out
        The Detector's and the AEREncoder's increments (what their counters
        add at the coming edge), for a counter bank outside the path.
    """

    @validated
    def __init__(self, n_channels: int = 64, fanout: int = 16, *, thresholds=None, polarity=None,
                 ts_bits: int = 16, encoder_cadence: str = "queue", queue_depth: int | None = None,
                 counters: bool = True):
        check_encoder_cadence(encoder_cadence, "encoder_cadence")
        # The queue encoder takes the Detector's beat row and bits: no N-bit vector is built.
        self.detector = Detector(n_channels, thresholds=thresholds, polarity=polarity, counters=counters,
                                 vector=encoder_cadence != "queue")
        self.encoder = AEREncoder(n_channels, ts_bits=ts_bits, cadence=encoder_cadence, queue_depth=queue_depth,
                                  counters=counters, pair_input=encoder_cadence == "queue")
        self.router = AERRouter(n_channels, fanout)
        self.n_channels, self.fanout = n_channels, fanout
        d, r = self.detector, self.router
        super().__init__({
            "samples": In(sample_stream()),
            "host": Out(aer_stream()),
            "stim": Out(routed_stream()),
            "threshold_write": In(d.threshold_write.signature.flip()),
            "polarity_write": In(d.polarity_write.signature.flip()),
            "table_write": In(r.table_write.signature.flip()),
            "fanout_write": In(r.fanout_write.signature.flip()),
            "refractory": In(16),
            "source": In(SOURCE_BITS),
            "frame": Out(TIMESTAMP_BITS),
            "frame_end": Out(1),
            "frame_tick": Out(1),
            "clear": In(1),
            **{name: Out(32) for name in COUNTERS},
            "framing_error": Out(1),
            "detections_inc": Out(2),
            "lost_inc": Out(self.encoder.lost_inc.shape()),
            "spike_pair": Out(d.pair.shape()),
            "spike_pair_hits": Out(2),
        })

    def elaborate(self, platform):
        m = Module()
        d, e, r = self.detector, self.encoder, self.router
        m.submodules.detector = d
        m.submodules.encoder = e
        m.submodules.router = r
        wiring.connect(m, wiring.flipped(self.samples), d.samples)
        wiring.connect(m, e.aer, r.aer)
        wiring.connect(m, r.host, wiring.flipped(self.host))
        wiring.connect(m, r.stim, wiring.flipped(self.stim))
        for port, block in (("threshold_write", d), ("polarity_write", d), ("table_write", r),
                            ("fanout_write", r)):
            wiring.connect(m, wiring.flipped(getattr(self, port)), getattr(block, port))
        m.d.comb += [
            d.refractory.eq(self.refractory),
            e.spikes.eq(d.spikes),
            *([e.pair.eq(d.pair), e.pair_hits.eq(d.pair_hits)] if e.pair_input else []),
            e.timestamp.eq(d.timestamp),
            e.now.eq(d.frame),
            e.source.eq(self.source),
            self.frame.eq(d.frame),
            self.frame_end.eq(d.frame_end),
            self.frame_tick.eq(d.frame_tick),
            self.spike_pair.eq(d.pair),
            self.spike_pair_hits.eq(d.pair_hits),
            self.framing_error.eq(d.framing_error),
            self.detections_inc.eq(d.detections_inc),
            self.lost_inc.eq(e.lost_inc),
        ]
        for block in (d, e, r):
            m.d.comb += block.clear.eq(self.clear)
        for name, block in (("frames", d), ("framing_errors", d), ("detections", d), ("words", e),
                            ("lost", e), ("routed", r), ("unmapped", r)):
            m.d.comb += getattr(self, name).eq(getattr(block, name))
        return m
