"""Run receipts: a JSON-safe, content-addressed record of a culture run.

A receipt holds the configuration hash (and the configuration itself), the
seed, the bioloop version and the run's summary (rates, burst count,
spikes per channel, saturated codes). Its id is the SHA-256 of the canonical
JSON of everything else, so the same configuration, seed, version and run
length always give the same id, and any edit of a saved receipt is caught
on load.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from .config import CultureConfig

__all__ = ["RunReceipt", "package_version"]

#: Version of the receipt layout.
RECEIPT_SCHEMA = 1


def package_version() -> str:
    """The installed bioloop version (``"unknown"`` if not installed)."""
    try:
        return metadata.version("bioloop")
    except metadata.PackageNotFoundError:
        return "unknown"


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class RunReceipt:
    """Record of one culture run.

    Members
    -------
    config : dict
        The configuration (``CultureConfig.to_dict()``).
    config_hash : str
        SHA-256 of the canonical configuration JSON.
    seed : int
    version : str
        bioloop package version that produced the run.
    summary : dict
        ``Culture.summary()`` at the time of the receipt.
    artifacts : dict
        What else the run produced, by name: hashes of its files (the closed
        loop records the audit log's final hash, the codec stream's and the
        AER log's SHA-256). Empty for a bare culture run.
    """

    config: dict
    config_hash: str
    seed: int
    version: str
    summary: dict
    artifacts: dict = field(default_factory=dict)

    @classmethod
    def from_culture(cls, culture) -> "RunReceipt":
        """Receipt of a :class:`~bioloop.host.culture.Culture` run so far."""
        cfg: CultureConfig = culture.config
        return cls(cfg.to_dict(), cfg.digest(), cfg.seed, package_version(), culture.summary())

    def _body(self) -> dict:
        body = {"schema": RECEIPT_SCHEMA, "config": self.config,
                "config_hash": self.config_hash, "seed": self.seed,
                "version": self.version, "summary": self.summary}
        if self.artifacts:                 # absent when empty: a bare culture run keeps its id
            body["artifacts"] = self.artifacts
        return body

    @property
    def id(self) -> str:
        """Deterministic id: first 16 hex digits of SHA-256 of the canonical body."""
        return hashlib.sha256(_canonical(self._body()).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        """JSON-safe dict including the id."""
        return {"id": self.id, **self._body()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, allow_nan=False)

    def save(self, path, overwrite: bool = False) -> Path:
        """Write the receipt as JSON.

        Parameters
        ----------
        path : str or os.PathLike
        overwrite : bool
            Replace an existing file; without it an existing file is an error.

        Raises
        ------
        FileExistsError
            If ``path`` exists and ``overwrite`` is false; the file is untouched.
        """
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"receipt {path} already exists; pass overwrite=True "
                                  "to replace it")
        text = self.to_json() + "\n"
        # Written beside, renamed into place: a crash never leaves half a receipt behind.
        from bioloop.host.output_files import replacing
        with replacing(path, overwrite=overwrite, what="receipt") as tmp:
            tmp.write_text(text)
        return path

    @classmethod
    def load(cls, path) -> "RunReceipt":
        """Read a saved receipt and check its id and configuration hash.

        Raises
        ------
        ValueError
            If the file was edited (id or config hash no longer match) or is
            not a receipt.
        """
        d = json.loads(Path(path).read_text())
        try:
            rec = cls(d["config"], d["config_hash"], d["seed"], d["version"], d["summary"],
                      d.get("artifacts", {}))
            stored_id, schema = d["id"], d["schema"]
        except KeyError as exc:
            raise ValueError(f"{path} is not a culture receipt: missing key {exc}") from None
        if schema != RECEIPT_SCHEMA:
            raise ValueError(f"{path}: receipt schema {schema!r} is not supported")
        if CultureConfig.from_dict(rec.config).digest() != rec.config_hash:
            raise ValueError(f"{path}: config_hash does not match the stored config")
        if rec.id != stored_id:
            raise ValueError(f"{path}: id {stored_id} does not match the content "
                             f"(recomputed {rec.id}); the receipt was edited")
        return rec
