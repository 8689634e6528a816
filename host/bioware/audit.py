"""Append-only experiment audit log with a SHA-256 hash chain.

Entry i stores the hash of entry i-1; its own hash is SHA-256 (or
HMAC-SHA-256 when a key is given) over the canonical JSON of its index,
time, kind, data and the previous hash. Editing, inserting, deleting or
reordering any entry breaks the chain at that entry; the export also
carries the count and the head hash, so cutting entries off the end is
caught too. Without a key anyone can recompute a forged chain; with a key
kept off the record they cannot (tamper-evident, not tamper-proof storage).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from types import MappingProxyType

__all__ = ["BioAuditLog", "AuditError"]

_GENESIS = "0" * 64
SCHEMA = "bioloop.audit/1"


class AuditError(ValueError):
    """The audit chain does not verify; the message names the first bad entry."""


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode()


class BioAuditLog:
    """Hash-chained, append-only record of an experiment.

    Parameters
    ----------
    experiment_id : str
    key : bytes, optional
        HMAC key; without it the chain uses plain SHA-256.
    clock : callable, optional
        Time source for entries appended without ``t_s`` (default
        ``time.time``); pass entry times for byte-identical logs.
    """

    def __init__(self, experiment_id: str = "experiment", key: bytes | None = None, clock=time.time):
        if not isinstance(experiment_id, str) or not experiment_id:
            raise ValueError(f"experiment_id must be a non-empty string, not {experiment_id!r}")
        if key is not None and not isinstance(key, (bytes, bytearray)):
            raise TypeError("key must be bytes")
        self.experiment_id = experiment_id
        self._key = bytes(key) if key is not None else None
        self._clock = clock
        self._entries: list[dict] = []

    def _hash(self, body: dict) -> str:
        raw = _canonical({"schema": SCHEMA, "experiment_id": self.experiment_id, **body})
        if self._key is not None:
            return hmac.new(self._key, raw, hashlib.sha256).hexdigest()
        return hashlib.sha256(raw).hexdigest()

    def append(self, kind: str, t_s: float | None = None, **data) -> MappingProxyType:
        """Append an entry; returns its read-only view.

        ``data`` must be JSON-serialisable (finite numbers, strings, lists,
        dicts); it is stored as its canonical JSON round trip.
        """
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"kind must be a non-empty string, not {kind!r}")
        t = self._clock() if t_s is None else t_s
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            raise ValueError(f"t_s must be a finite number, not {t!r}")
        try:
            data = json.loads(_canonical(data))
        except (TypeError, ValueError) as e:
            raise ValueError(f"audit data must be JSON-serialisable with finite numbers: {e}") from None
        body = {"index": len(self._entries), "t_s": float(t), "kind": kind, "data": data,
                "prev_hash": self._entries[-1]["hash"] if self._entries else _GENESIS}
        entry = dict(body, hash=self._hash(body))
        self._entries.append(entry)
        return MappingProxyType(entry)

    @property
    def entries(self) -> tuple:
        """Read-only views of all entries, oldest first."""
        return tuple(MappingProxyType(e) for e in self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def head(self) -> str:
        """Hash of the last entry (the genesis value when empty)."""
        return self._entries[-1]["hash"] if self._entries else _GENESIS

    def _check(self, entries, count=None, head=None) -> None:
        prev = _GENESIS
        for i, e in enumerate(entries):
            body = {k: e.get(k) for k in ("index", "t_s", "kind", "data", "prev_hash")}
            if body["index"] != i:
                raise AuditError(f"entry {i} has index {body['index']!r}: an entry was removed, "
                                 f"inserted or moved")
            if body["prev_hash"] != prev:
                raise AuditError(f"entry {i} does not link to entry {i - 1}")
            if not hmac.compare_digest(str(e.get("hash")), self._hash(body)):
                raise AuditError(f"entry {i} was modified (hash mismatch)")
            prev = e["hash"]
        if count is not None and count != len(entries):
            raise AuditError(f"log declares {count} entries but holds {len(entries)}")
        if head is not None and head != prev:
            raise AuditError("head hash does not match the last entry: entries were cut off")

    def verify(self) -> bool:
        """True when the chain is intact; raises :class:`AuditError` otherwise."""
        self._check(self._entries)
        return True

    def to_json(self) -> str:
        """Canonical JSON export: schema, experiment id, count, head and entries."""
        return _canonical({"schema": SCHEMA, "experiment_id": self.experiment_id,
                           "count": len(self._entries), "head": self.head,
                           "entries": self._entries}).decode()

    @classmethod
    def from_json(cls, text: str, key: bytes | None = None) -> "BioAuditLog":
        """Load and verify an export; raises :class:`AuditError` on any tampering."""
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise AuditError(f"audit export is not valid JSON: {e}") from None
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            raise AuditError(f"not a {SCHEMA} export")
        log = cls(doc.get("experiment_id", ""), key=key)
        entries = doc.get("entries")
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise AuditError("entries must be a list of objects")
        log._check(entries, doc.get("count"), doc.get("head"))
        log._entries = [dict(e) for e in entries]
        return log
