"""Option types that check a value before anything runs: a file to write, a file to read, a
finite number. A value that cannot work is a usage error (exit 2) naming the option, never an
"internal error" after the work is done (a batch that ran for an hour, then found that its
`--output` directory does not exist)."""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Any

import click


def _where_to_write(path: Path, *, directory: bool, make_parents: bool) -> str | None:
    """Why `path` cannot be written (created, or created as a directory), or None."""
    try:
        st = path.stat()
    except FileNotFoundError:
        pass
    except OSError as exc:  # a name too long, a loop of links, a file used as a directory
        return f"{path}: {exc.strerror}"
    else:
        if directory and not stat.S_ISDIR(st.st_mode):
            return f"{path} exists and is not a directory"
        if not directory and stat.S_ISDIR(st.st_mode):
            return f"{path} is a directory"
        if not os.access(path, os.W_OK):
            return f"{path} is not writable"
        return None
    parent = path.absolute().parent
    if make_parents:  # the nearest directory that exists is where the first one is made
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
    elif not parent.exists():
        return f"directory {parent} does not exist"
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create files in {parent} (permission denied)"
    return None


class OutputFile(click.Path):
    """A file the command writes: its directory exists (or, with `make_parents`, can be
    made), it is not a directory, and it is writable. `-` is stdout where `allow_dash`."""

    def __init__(self, *, allow_dash: bool = False, make_parents: bool = False) -> None:
        super().__init__(dir_okay=False, allow_dash=allow_dash, path_type=Path)
        self.make_parents = make_parents

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if value == "":
            self.fail("an empty path names no file", param, ctx)
        path = Path(os.fsdecode(super().convert(value, param, ctx)))
        if self.allow_dash and str(path) == "-":
            return path
        problem = _where_to_write(path, directory=False, make_parents=self.make_parents)
        if problem:
            self.fail(problem, param, ctx)
        return path


class NewDirectory(click.Path):
    """A directory the command creates (or fills, if it exists)."""

    def __init__(self) -> None:
        super().__init__(file_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        path = Path(os.fsdecode(super().convert(value, param, ctx)))
        problem = _where_to_write(path, directory=True, make_parents=True)
        if problem:
            self.fail(problem, param, ctx)
        return path


class InputFile(click.Path):
    """An existing regular file. A FIFO or a device (`/dev/zero`) is refused: these are read
    twice, or whole, and would hang or exhaust memory."""

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        path = Path(os.fsdecode(super().convert(value, param, ctx)))
        if not path.is_file():
            self.fail(f"{path} is not a regular file", param, ctx)
        return path


class FiniteFloat(click.FloatRange):
    """A FloatRange that also refuses nan and inf (click's range lets nan through)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class Format(click.Choice[str]):
    """`--format`: the formats shown in --help, and `json`, accepted but not shown: `--json`
    is the one documented spelling of JSON output on every command, and `--format json` is
    kept working for the scripts written before it."""

    def __init__(self, *shown: str) -> None:
        super().__init__([*shown, "json"])
        self.shown = shown

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return f"[{'|'.join(self.shown)}]"
