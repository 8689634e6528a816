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

__all__ = ["AERType", "AERFields", "pack", "unpack", "pack_one", "unpack_one", "FIELD_MAX"]


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
