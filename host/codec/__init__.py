"""bioloop.host.codec: a lossy, deterministic, streamable spike-event codec.

Detections (the codec's own MAD threshold detector, or the gateware's AER
SPIKE words) become events: channel, sample time and a quantized waveform
snippet, Rice-coded in CRC-protected blocks of a versioned container. The
format is specified in ``docs/codec.md``.
"""

from .decoder import Decoded, Decoder, Events, decode, read_events
from .encoder import Encoder, EncoderStats, encode
from .format import CodecError, CodecParams, CodecTruncated, StreamHeader

__all__ = ["CodecError", "CodecTruncated", "CodecParams", "StreamHeader", "Encoder", "EncoderStats",
           "encode", "Decoder", "Decoded", "Events", "decode", "read_events"]
