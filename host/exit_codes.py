"""Exit codes of every ``bioloop`` command: 0 success, 1 runtime failure, 2 usage error.

Both failures print one line, ``Error: <what and why>``, on stderr and no
traceback. A usage error is anything the user can fix by changing the
command line (a bad option value, an output that exists or is an input, a
missing or unwritable output folder); a runtime failure is anything that
went wrong while doing the work (an input file that is corrupt or not what
the command reads, a failed simulation).
Click's own parser errors (unknown option, wrong type) also exit 2.
"""

from __future__ import annotations

import click

__all__ = ["USAGE", "RUNTIME", "UsageFailure", "RuntimeFailure"]

RUNTIME = 1
USAGE = 2


class UsageFailure(click.ClickException):
    """The command line asks for something that cannot be done: exit 2, one line."""

    exit_code = USAGE


class RuntimeFailure(click.ClickException):
    """The work failed: exit 1, one line."""

    exit_code = RUNTIME
