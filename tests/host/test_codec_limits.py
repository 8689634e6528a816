"""Issue 18: the encoder refuses what its own decoder would reject, at the true limits of the container."""

from __future__ import annotations

import numpy as np
import pytest

from bioloop.host.codec import CodecParams, Encoder, decode, encode
from bioloop.host.codec.encoder import MAX_SAMPLE_UV
from bioloop.host.codec.format import (MAX_CHANNELS, MAX_CHANNELS_WITH_POSITIONS, StreamHeader, pack_header,
                                       read_header)


def test_channel_limits_follow_from_the_u16_header_length():
    # 53 fixed bytes (49 header + 4 CRC), 4 per channel, 8 more per channel with positions
    assert MAX_CHANNELS == (65535 - 53) // 4 == 16370
    assert MAX_CHANNELS_WITH_POSITIONS == (65535 - 53) // 12 == 5456


@pytest.mark.parametrize("n, positions", [(MAX_CHANNELS, False), (MAX_CHANNELS_WITH_POSITIONS, True)])
def test_the_largest_headers_round_trip_and_one_more_channel_is_refused(n, positions):
    p = CodecParams(block_size=2)
    pos = np.zeros((n, 2), np.float32) if positions else None
    h = StreamHeader(30000.0, n, 1.0, p, 0, np.ones(n, np.float32), pos)
    back, size = read_header(pack_header(h))
    assert back.n_channels == n and size == h.nbytes <= 65535
    pos1 = np.zeros((n + 1, 2), np.float32) if positions else None
    with pytest.raises(ValueError, match=f"at most {MAX_CHANNELS} channels, {MAX_CHANNELS_WITH_POSITIONS} with"):
        pack_header(StreamHeader(30000.0, n + 1, 1.0, p, 0, np.ones(n + 1, np.float32), pos1))
    with pytest.raises(ValueError, match=f"outside 1..{n}"):
        Encoder(n + 1, 30000.0, p, positions_um=pos1)
    Encoder(n, 30000.0, p, positions_um=pos)           # the limit itself is accepted


def test_docs_state_the_same_channel_limits():
    from pathlib import Path
    doc = (Path(__file__).parents[2] / "docs" / "codec.md").read_text()
    assert f"1..{MAX_CHANNELS} without positions, 1..{MAX_CHANNELS_WITH_POSITIONS} with" in doc
    assert "1..65535" not in doc


def test_huge_float32_samples_are_refused_at_encode():
    x = np.random.default_rng(0).normal(0, 10, (2000, 3)).astype(np.float32)
    x[:, 1] = 3e38                                    # a whole channel near float32's maximum: sigma would be inf
    with pytest.raises(ValueError, match=r"sample 0 of channel 1 is 3e\+38 µV"):
        encode(x, 30000.0, CodecParams(block_size=1000))
    x[:, 1] = MAX_SAMPLE_UV                          # the limit itself encodes and decodes
    data, _ = encode(x, 30000.0, CodecParams(block_size=1000))
    assert np.isfinite(decode(data).header.noise_uv).all()
    with pytest.raises(ValueError, match="uv_per_code"):
        Encoder(2, 30000.0, uv_per_code=1e38)
