"""Multi-well plates: well naming, AER source ids, one session per well.

Standard footprints (ANSI/SLAS 1-2004): 6 wells as 2 x 3, 24 as 4 x 6,
48 as 6 x 8, 96 as 8 x 12; rows are lettered A.., columns numbered 1...
The well index (row-major) is the AER ``source`` field (DESIGN.md §3), so
words from different wells stay apart in one stream.
"""

from __future__ import annotations

import re

__all__ = ["MultiWellPlate", "PLATE_FORMATS"]

#: wells -> (rows, columns)
PLATE_FORMATS = {6: (2, 3), 24: (4, 6), 48: (6, 8), 96: (8, 12)}


class MultiWellPlate:
    """A plate of wells, each optionally running its own session.

    Parameters
    ----------
    num_wells : {6, 24, 48, 96}
    plate_id : str
    """

    def __init__(self, num_wells: int = 24, plate_id: str = "plate"):
        if num_wells not in PLATE_FORMATS:
            raise ValueError(f"num_wells must be one of {sorted(PLATE_FORMATS)}, not {num_wells!r}")
        self.num_wells = num_wells
        self.rows, self.cols = PLATE_FORMATS[num_wells]
        self.plate_id = plate_id
        self.sessions: dict[int, object] = {}
        self.metadata: dict[int, dict] = {}

    def label(self, well: int) -> str:
        """'A1'-style label of well index ``well`` (row-major)."""
        self._check(well)
        r, c = divmod(well, self.cols)
        return f"{chr(ord('A') + r)}{c + 1}"

    def index(self, label: str) -> int:
        """Well index of an 'A1'-style label."""
        m = re.fullmatch(r"([A-Za-z])(\d+)", label.strip()) if isinstance(label, str) else None
        if not m:
            raise ValueError(f"well label must look like 'A1', not {label!r}")
        r, c = ord(m.group(1).upper()) - ord("A"), int(m.group(2)) - 1
        if not (0 <= r < self.rows and 0 <= c < self.cols):
            raise ValueError(f"well {label!r} is not on a {self.num_wells}-well plate "
                             f"(A1..{chr(ord('A') + self.rows - 1)}{self.cols})")
        return r * self.cols + c

    def _check(self, well) -> int:
        if isinstance(well, str):
            return self.index(well)
        if isinstance(well, bool) or not isinstance(well, int) or not 0 <= well < self.num_wells:
            raise ValueError(f"well must be 0..{self.num_wells - 1} or a label, not {well!r}")
        return well

    def source_id(self, well) -> int:
        """AER source field for a well (its index)."""
        return self._check(well)

    def attach(self, well, session, **metadata) -> None:
        """Run ``session`` in ``well``; its transcoder's source becomes the well's id."""
        w = self._check(well)
        session.transcoder.source = w
        self.sessions[w] = session
        self.metadata[w] = dict(metadata)

    def process_frame(self, well, voltage_data, **kw):
        """``process_frame`` of the session attached to ``well``."""
        w = self._check(well)
        if w not in self.sessions:
            raise KeyError(f"no session attached to well {self.label(w)}")
        return self.sessions[w].process_frame(voltage_data, **kw)
