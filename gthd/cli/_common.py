"""What every command shares: one-line errors, progress bars, option types, provenance."""

from __future__ import annotations

import contextlib
import sys

import click

from ..fileio import FormatError


@contextlib.contextmanager
def user_errors():
    """Turn the library's errors about bad input into one-line CLI errors."""
    try:
        yield
    except (ValueError, FileExistsError, FileNotFoundError, FormatError, NotADirectoryError) as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:  # the machine said no (a full disk, a permission): its words, one line
        where = f"{e.filename}: " if e.filename else ""
        raise click.ClickException(f"{where}{e.strerror or e}") from None


def progress_bar(label: str):
    """A rich progress bar on stderr; returns (context manager, callback(done, total))."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )
    task = progress.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    return progress, update


def echo_lines(lines, prefix: str = "", err: bool = False) -> None:
    """Print each line, with ``prefix`` (e.g. "Warning: ")."""
    for line in lines:
        click.echo(f"{prefix}{line}", err=err)


class Pair(click.ParamType):
    """Two numbers joined by ``sep`` ("40:300", "640x480"), as a tuple of ``cast``."""

    def __init__(self, name: str, sep: str, cast, example: str):
        self.name, self.sep, self.cast, self.example = name, sep, cast, example  # e.g. "WxH", "x", int, "WIDTHxHEIGHT such as 640x480"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            a, b = (self.cast(v) for v in str(value).lower().split(self.sep))
        except ValueError:
            self.fail(f"expected {self.example}, got {value!r}", param, ctx)
        return (a, b)


def Range() -> Pair:  # noqa: N802 (an option type, named like click's)
    """MIN:MAX as two floats."""
    return Pair("MIN:MAX", ":", float, "MIN:MAX such as 40:300")


def Size() -> Pair:  # noqa: N802
    """WxH as two ints."""
    return Pair("WxH", "x", int, "WIDTHxHEIGHT such as 640x480")


def hand_option(help: str):
    """--hand: which hand the labels are made of (any, left, right), as hand_side."""
    return click.option("--hand", "hand_side", type=click.Choice(["any", "left", "right"]), default="any", show_default=True, help=help)


def hand_type(side: str) -> str | None:
    """--hand's value as the library takes it (None: either hand)."""
    return None if side == "any" else side


def command_line() -> str:
    """The command line as typed, for the files' provenance."""
    from ..calibration.run import command_line

    return command_line()


def truth_of(session) -> dict | None:
    """A simulated session's ground truth (for reports' errors against it), else None."""
    if not session.has_ground_truth:
        return None
    from ..sim.truth import session_truth

    return session_truth(session)
