"""Packing and unpacking 64-bit AER words with numpy (DESIGN.md §3).

Field offsets and widths come from :data:`bioloop.host.layouts.AER_WORD`, the
field list the gateware builds its ``AERWord`` layout from, so the host, the
models and the RTL cannot disagree about the word. Scalar words go through the
contract's one :func:`bioloop.host.layouts.pack`; arrays apply the same offsets
with numpy.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from bioloop.host.layouts import AER_WORD, AERType
from bioloop.host import layouts as _layouts

__all__ = ["AERType", "AERFields", "pack", "unpack", "pack_one", "unpack_one", "FIELD_MAX", "pair_stim_with_spikes"]


_OFFSETS = {m.name: AER_WORD.field(m.name) for m in AER_WORD}
#: Largest value each field can hold.
FIELD_MAX = {name: (1 << w) - 1 for name, (_, w) in _OFFSETS.items()}


class AERFields(NamedTuple):
    """Unpacked AER words: one numpy array per field."""
    address: np.ndarray
    source: np.ndarray
    type: np.ndarray
    timestamp: np.ndarray


def pack(address, source, type, timestamp) -> np.ndarray:
    """Pack field arrays (broadcast together) into uint64 AER words.

    Raises
    ------
    ValueError
        If any field is negative or does not fit its width.
    """
    arrays = {"address": address, "source": source, "type": type, "timestamp": timestamp}
    out = None
    for name, value in arrays.items():
        v = np.asarray(value.value if isinstance(value, AERType) else value)
        if v.dtype.kind not in "iu":
            raise TypeError(f"AER field {name} must be integer, not {v.dtype}")
        if v.size and (v.min() < 0 or int(v.max()) > FIELD_MAX[name]):
            raise ValueError(f"AER field {name} out of range 0..{FIELD_MAX[name]}: "
                             f"min {int(v.min())}, max {int(v.max())}")
        off, _ = _OFFSETS[name]
        part = v.astype(np.uint64) << np.uint64(off)
        out = part if out is None else out | part
    return np.asarray(out, dtype=np.uint64)


def unpack(words) -> AERFields:
    """Unpack uint64 AER words (any shape) into field arrays, without copying the input."""
    w = np.asarray(words)
    if w.dtype != np.uint64:
        raise TypeError(f"AER words must be uint64, not {w.dtype}")
    fields = []
    for name in AERFields._fields:
        off, width = _OFFSETS[name]
        fields.append(((w >> np.uint64(off)) & np.uint64((1 << width) - 1)).astype(
            np.uint32 if width > 16 else np.uint16 if width > 8 else np.uint8))
    return AERFields(*fields)


def pack_one(address: int, source: int, type: AERType | int, timestamp: int) -> int:
    """Pack one AER word into a Python int."""
    return _layouts.pack(AER_WORD, address=address, source=source, type=int(type), timestamp=timestamp)


def unpack_one(word: int) -> tuple[int, int, AERType | int, int]:
    """Unpack one AER word; the type is an :class:`AERType` where defined, else the raw value."""
    f = _layouts.unpack(AER_WORD, word)
    return f["address"], f["source"], f["type"], f["timestamp"]


def pair_stim_with_spikes(words, routes, lookahead: int = 64) -> np.ndarray:
    """For every STIM word, the index of the SPIKE word that caused it (-1 if none is found).

    ``words`` is an AER word stream (uint64) in the order the core sent it; ``routes`` maps a
    source address to the stim lanes its STIM route entries target (for example
    ``{a: {t for p, t, w in drv.routes[a] if p == Port.STIM}}``). A STIM word for lane k
    stamped frame t is caused by the last SPIKE word routed to lane k stamped at most t:

    - its timestamp is the frame of the crossing, the STIM word's is the frame counter when
      the StimUnit took the routed entry (four edges after the crossing's beat at full rate),
      so they are equal unless the frame ended in between: a crossing in a frame's last four
      beats gives a STIM word stamped one frame later (docs/core.md);
    - in the stream the SPIKE copy normally comes first, but under backpressure the output
      merge may send the STIM word a few words earlier, so up to ``lookahead`` later words
      are searched when no earlier SPIKE qualifies.

    Returns an int64 array with one entry per STIM word, in stream order.
    """
    f = unpack(np.asarray(words, dtype=np.uint64).ravel())
    lanes_of = {int(a): {int(k) for k in ks} for a, ks in dict(routes).items()}
    last_spike: dict[int, tuple[int, int]] = {}     # lane -> (index, timestamp) of its last SPIKE
    stim_idx = np.flatnonzero(f.type == AERType.STIM)
    out = np.full(len(stim_idx), -1, dtype=np.int64)
    types, addrs, ts = f.type.tolist(), f.address.tolist(), f.timestamp.tolist()
    j = 0
    for i, (t, a, s) in enumerate(zip(types, addrs, ts, strict=True)):
        if t == AERType.SPIKE:
            for k in lanes_of.get(a, ()):
                last_spike[k] = (i, s)
        elif t == AERType.STIM:
            cand = last_spike.get(a)
            if cand is not None and cand[1] <= s:
                out[j] = cand[0]
            else:
                for i2 in range(i + 1, min(len(types), i + 1 + lookahead)):
                    if types[i2] == AERType.SPIKE and a in lanes_of.get(addrs[i2], ()) and ts[i2] <= s:
                        out[j] = i2
                        break
            j += 1
    return out
