"""The overlay manifest: what a bitstream was built from, checked when it is loaded.

``bioloop build`` writes ``overlay/bioloop.json`` beside ``bioloop.bit`` and
``bioloop.hwh``. It records the core's parameters (N, K, F), the register
map version and ID the core will report, the sha256 of the core's Verilog,
the versions of the tools that generated it and, once Vivado has run, the
sha256 of the ``.bit`` and ``.hwh``. On the board the driver compares it
with what the loaded core reports over the bus (:func:`check`), so a
bitstream and a manifest that do not belong together are refused with one
line instead of being driven with the wrong map.

Plain Python (json, hashlib): imported on the board, where there is no amaranth.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

__all__ = ["MANIFEST_FORMAT", "ManifestError", "sha256_file", "write", "read", "check",
           "check_files"]

#: Version of the manifest's own layout.
MANIFEST_FORMAT = 1


class ManifestError(ValueError):
    """The manifest is missing, unreadable, or does not match the loaded core or files."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write(path: Path, manifest: dict) -> Path:
    """Write ``manifest`` as JSON atomically (a temporary file renamed into place).

    Through :mod:`bioloop.host.output_files`, like every output: a plain
    file's permissions, never a partial file.
    """
    from bioloop.host.output_files import replacing
    path = Path(path)
    with replacing(path, overwrite=True, what="manifest") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


_REQUIRED = ("format", "board", "N", "K", "F", "id", "regmap_version", "fclk_hz",
             "core_sha256", "tools")


def read(path: Path) -> dict:
    """Read and sanity-check a manifest file (``ManifestError`` naming the file otherwise)."""
    path = Path(path)
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ManifestError(f"no overlay manifest at {path}; rebuild the overlay with "
                            "`bioloop build`") from None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"the overlay manifest {path} is unreadable: {exc}") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"the overlay manifest {path} is not a JSON object")
    missing = [k for k in _REQUIRED if k not in manifest]
    if missing:
        raise ManifestError(f"the overlay manifest {path} lacks {', '.join(missing)}")
    if manifest["format"] != MANIFEST_FORMAT:
        raise ManifestError(f"the overlay manifest {path} has format {manifest['format']!r}; "
                            f"this bioloop reads format {MANIFEST_FORMAT}")
    return manifest


def _version(word: int) -> str:
    return f"{word >> 16}.{word & 0xFFFF}"


def check(manifest: dict, identity: dict) -> None:
    """Compare a manifest with the identity registers the loaded core reports.

    ``identity`` holds ``id``, ``version``, ``n_channels``, ``n_lanes``,
    ``fanout`` and ``fclk_hz`` as read over the bus
    (:attr:`bioloop.host.driver.Driver.identity`).

    Raises
    ------
    ManifestError
        Naming every field that differs, in one line.
    """
    pairs = [("id", manifest["id"], identity.get("id"), hex),
             ("register map version", manifest["regmap_version"], identity.get("version"), _version),
             ("N", manifest["N"], identity.get("n_channels"), str),
             ("K", manifest["K"], identity.get("n_lanes"), str),
             ("F", manifest["F"], identity.get("fanout"), str),
             ("fclk_hz", manifest["fclk_hz"], identity.get("fclk_hz"), str)]
    diffs = [f"{name} {fmt(want)} in the manifest, {fmt(got) if got is not None else 'nothing'} "
             "on the core" for name, want, got, fmt in pairs if got != want]
    if diffs:
        raise ManifestError("the loaded core does not match its overlay manifest: " + "; ".join(diffs)
                            + ". Copy the .bit, .hwh and .json of one `bioloop build` together")


def check_files(manifest: dict, folder: Path) -> None:
    """Check the sha256 of the overlay files the manifest lists (``files``) in ``folder``."""
    for name, digest in (manifest.get("files") or {}).items():
        path = Path(folder) / name
        if not path.exists():
            raise ManifestError(f"{path} is missing; the manifest lists it")
        if sha256_file(path) != digest:
            raise ManifestError(f"{path} is not the file the manifest was written for "
                                "(sha256 differs); copy the .bit, .hwh and .json of one build together")
