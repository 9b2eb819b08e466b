"""Reading a file that a project holds or a command line names, bounded before it is read.

Every file aiops reads goes through `read_bounded` (function files, providers.yaml,
aiops.yaml, cassettes, saved plans, `--input @FILE`, imported prompts, mock responses). It
refuses, before reading a byte:

- a file over its bound (from `stat`; then at most bound + 1 bytes are read, so a file that
  grows between the two is still refused, never read whole);
- anything that is not a regular file: a FIFO (opening one for reading blocks until a writer
  comes: `validate` would hang), a device (`/dev/zero` never ends), a directory, a socket.
  Where a command line names the file, the caller may accept a stream (a FIFO, as with
  `<(...)` in a shell, or a character device such as `/dev/stdin`): it is read, still
  within the bound;
- with `within`, a path that resolves outside that directory: a project file that is a
  symlink to `/etc/...` or `/proc/self/environ` would otherwise put that file's content in
  error messages or the database. A link inside the project is followed.

A refusal is a `FileRefused` carrying what is wrong and how to fix it, without the path, so
that each caller puts it where its errors go (a located Diagnostic, a UsageError, ...).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # not on Windows, where FIFOs are not files
_NOCTTY = getattr(os, "O_NOCTTY", 0)
_CHUNK = 1 << 16


class FileRefused(Exception):
    """A file that is not read: `reason` says why (without the path), `fix` what to do."""

    def __init__(self, reason: str, fix: str = "", *, missing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fix = fix
        self.missing = missing  # the path names nothing (callers often word this themselves)


def describe_size(n: int) -> str:
    """`1 MiB`, `64 KiB`, or `1000 bytes`: a bound as the docs state it."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _too_large(size: int | None, limit: int) -> FileRefused:
    said = f"is {size} bytes, over" if size is not None else "is over"
    return FileRefused(f"{said} the {describe_size(limit)} bound",
                       "split it or move large content out of it")


def check_within(path: Path, root: Path) -> None:
    """Refuse `path` when it resolves (through symlinks) outside `root`."""
    base, full = os.fspath(root), os.fspath(path)
    if full.startswith(base + os.sep):  # joined onto `root`: no need to resolve either
        parts = full[len(base) + 1:].split(os.sep)
    else:
        parts = list(Path(os.path.relpath(path, root)).parts)
    if ".." not in parts:  # the common case: no link on the way down from `root`
        here = base
        for part in parts:
            here = os.path.join(here, part)
            if os.path.islink(here):
                break
        else:
            return
    real = Path(os.path.realpath(path))
    real_root = Path(os.path.realpath(root))
    if real != real_root and real_root not in real.parents:
        raise FileRefused(f"is a symlink to {real}, outside the project directory",
                          "copy the file into the project, or link to a file inside it")


def read_bounded(path: Path, limit: int, *, within: Path | None = None,
                 stream_ok: bool = False, cut: bool = False) -> bytes:
    """The bytes of `path`, at most `limit` of them, or FileRefused (see the module).

    `stream_ok`: a FIFO or a character device is read too. `cut`: more than `limit` bytes is
    not refused here; limit + 1 bytes are returned, for the caller to word the refusal."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.lexists(path):
            raise FileRefused(f"is a symlink to {os.readlink(path)}, which does not exist",
                              "fix or remove the link") from None
        raise FileRefused("does not exist", missing=True) from None
    except OSError as exc:
        raise FileRefused(f"cannot be read: {exc.strerror}") from None
    if within is not None:
        check_within(path, within)
    kind = _kind(st.st_mode)
    stream = stream_ok and (stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode))
    if kind is not None and not stream:
        raise FileRefused(f"is {kind}, not a regular file", "replace it with a regular file")
    if not stream and not cut and st.st_size > limit:
        raise _too_large(st.st_size, limit)
    # A stream the caller accepts is opened blocking (its writer is the user's own command);
    # anything else non-blocking, so that a file swapped for a FIFO after the stat cannot
    # hang the open, and it is checked again on the open descriptor.
    flags = os.O_RDONLY | _NOCTTY | getattr(os, "O_BINARY", 0) | (0 if stream else _NONBLOCK)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise FileRefused(f"cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb", buffering=0) as handle:
        if not stream:
            again = os.fstat(fd)
            if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) or _kind(again.st_mode):
                raise FileRefused("changed while it was being read", "read it again")
        data = _read_at_most(handle, limit + 1)
    if len(data) > limit and not cut:
        raise _too_large(None, limit)
    return data


def _read_at_most(handle: BinaryIO, n: int) -> bytes:
    parts: list[bytes] = []
    left = n
    while left > 0:
        chunk = handle.read(min(left, _CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)
