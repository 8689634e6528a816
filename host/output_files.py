"""Output files and run folders: checked first, written aside, renamed into place on success.

Every writer of the package (``bioloop demo``, ``bioloop codec``, receipts)
goes through here, so that

- a destination is checked (its folder exists and is writable, it is not an
  input of the same command, it does not exist unless replacing was asked
  for) before any expensive work starts;
- a file is written to a temporary name in the destination's own folder and
  renamed into place only when it is complete (``os.replace`` is atomic
  within one file system), so a failure never leaves a plausible-looking
  partial file, and never destroys the file it would have replaced;
- a run folder is staged the same way as a whole: it is either new, or
  replaced as a whole, never a mix of old and new files;
- every output gets the same permissions: what ``open()`` would give a new
  file (0o666, or 0o777 for a folder, minus the umask), not the 0o600 of a
  temporary file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["OutputError", "check_destination", "check_run_folder", "replacing", "run_folder", "file_mode",
           "RUN_FOLDER_MARK"]

#: The file that marks a folder as a bioloop run folder (and so safe to replace as a whole).
RUN_FOLDER_MARK = "receipt.json"


class OutputError(ValueError):
    """A destination that cannot or must not be written (missing folder, no permission, exists, is an input)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode(folder: bool = False) -> int:
    """Permissions of a new output: what ``open()``/``mkdir()`` would give, i.e. 0o666/0o777 minus the umask."""
    return (0o777 if folder else 0o666) & ~_umask()


def _check_folder(folder: Path, what: str) -> None:
    if not folder.exists():
        raise OutputError(f"{what}: folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(f"{what}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{what}: folder {folder} is not writable")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_destination(path, *, overwrite: bool = False, inputs=(), what: str = "output") -> Path:
    """Check that ``path`` may be written, before any work starts.

    Parameters
    ----------
    path : str or os.PathLike
        The file to be written.
    overwrite : bool
        Whether an existing file may be replaced.
    inputs : iterable of paths
        Files the command reads; ``path`` must be none of them, also not
        through a hard or symbolic link (replacing an input destroys it).
    what : str
        How error messages name the destination (for example ``"OUTPUT"``).

    Raises
    ------
    OutputError
        With one line naming the path and the reason.
    """
    path = Path(path)
    for i in inputs:
        if i is not None and _same_file(path, Path(i)):
            raise OutputError(f"{what} {path} is the input {i}; choose another output file")
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise OutputError(f"{what} {path} exists; pass --force to replace it")
    _check_folder(path.parent, f"{what} {path}")
    return path


@contextmanager
def replacing(path, *, overwrite: bool = False, inputs=(), what: str = "output"):
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``.

    On any exception the temporary file is removed and ``path`` is left as it
    was. The destination is checked (see :func:`check_destination`) first.
    Without ``overwrite`` the final rename refuses a file that appeared
    meanwhile (hard link, then unlink), so nothing is ever clobbered.
    """
    path = check_destination(path, overwrite=overwrite, inputs=inputs, what=what)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise OutputError(f"{what} {path} appeared while it was written; not replaced") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _is_empty_folder(p: Path) -> bool:
    return p.is_dir() and not any(p.iterdir())


def check_run_folder(path, *, overwrite: bool = False, mark: str = RUN_FOLDER_MARK) -> Path:
    """Check that the run folder ``path`` may be created (or replaced as a whole with ``overwrite``).

    A run folder is either new (absent, or an empty folder), or an earlier
    run folder (it holds :data:`RUN_FOLDER_MARK`) replaced as a whole when
    ``overwrite`` is true. Any other existing folder is refused even with
    ``overwrite``: replacing it would delete files bioloop did not write.
    ``mark`` is the file (relative to the folder) that identifies the kind of
    folder (``bioloop build`` folders hold ``overlay/bioloop.json``).

    Raises
    ------
    OutputError
        With one line naming the path and the reason.
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise OutputError(f"--out {path} exists and is not a folder")
        if not _is_empty_folder(path):
            if not (path / mark).is_file():
                raise OutputError(f"--out {path} is a non-empty folder that is not a bioloop "
                                  f"{'run' if mark == RUN_FOLDER_MARK else 'build'} folder "
                                  f"(no {mark}); choose another --out")
            if not overwrite:
                raise OutputError(f"--out {path} exists and holds an earlier "
                                  f"{'run' if mark == RUN_FOLDER_MARK else 'build'}; pass --force to replace "
                                  "it as a whole or choose another --out")
    _check_folder(path.parent if path.parent != Path("") else Path("."), f"--out {path}")
    return path


@contextmanager
def run_folder(path, *, overwrite: bool = False, mark: str = RUN_FOLDER_MARK):
    """Yield a staging folder beside ``path``; on success it replaces ``path`` as a whole.

    The folder is checked first (see :func:`check_run_folder`). On any
    exception the staging folder is deleted and ``path`` is untouched.
    """
    path = check_run_folder(path, overwrite=overwrite, mark=mark)
    parent = path.parent if path.parent != Path("") else Path(".")
    stage = Path(tempfile.mkdtemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp"))
    old = None
    try:
        yield stage
        for f in stage.iterdir():
            os.chmod(f, file_mode(folder=f.is_dir()))
        os.chmod(stage, file_mode(folder=True))
        if path.exists():
            # Checked again here: the folder may have changed during the run.
            check_run_folder(path, overwrite=overwrite, mark=mark)
            old = Path(tempfile.mkdtemp(dir=parent, prefix=f".{path.name}.", suffix=".old"))
            os.replace(path, old / "run")
            try:
                os.replace(stage, path)
            except OSError:
                os.replace(old / "run", path)        # put the earlier run back
                raise
        else:
            os.replace(stage, path)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
