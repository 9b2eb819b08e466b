"""The bounded reader on a real filesystem: what it refuses, and that it never reads more
than the bound plus one byte, from a file or a pipe."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from aiops.files import FileRefused, describe_size, read_bounded


def test_a_regular_file_within_the_bound_is_read(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    assert read_bounded(path, 10) == b"x" * 10
    with pytest.raises(FileRefused, match="is 11 bytes, over the 10 bytes bound"):
        path.write_bytes(b"x" * 11)
        read_bounded(path, 10)


def test_missing_and_link_problems_say_which(tmp_path: Path) -> None:
    with pytest.raises(FileRefused) as info:
        read_bounded(tmp_path / "nope", 10)
    assert info.value.missing and info.value.reason == "does not exist"
    (tmp_path / "dangling").symlink_to(tmp_path / "nope")
    with pytest.raises(FileRefused, match="which does not exist") as info:
        read_bounded(tmp_path / "dangling", 10)
    assert not info.value.missing
    root = tmp_path / "root"
    root.mkdir()
    (root / "in").write_bytes(b"ok")
    (root / "link").symlink_to("in")
    (tmp_path / "out").write_bytes(b"secret")
    (root / "escape").symlink_to("../out")
    assert read_bounded(root / "link", 10, within=root) == b"ok"
    with pytest.raises(FileRefused, match="outside the project directory"):
        read_bounded(root / "escape", 10, within=root)


def test_a_fifo_is_refused_without_opening_it_unless_allowed(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    # Refused from its stat: no writer ever comes, and the call returns.
    with pytest.raises(FileRefused, match="is a FIFO"):
        read_bounded(fifo, 10)

    def write(data: bytes) -> None:
        try:
            with fifo.open("wb") as handle:
                handle.write(data)
        except BrokenPipeError:  # the reader stopped at its bound
            pass

    writer = threading.Thread(target=write, args=(b"hello",))
    writer.start()
    assert read_bounded(fifo, 10, stream_ok=True) == b"hello"
    writer.join(5)
    writer = threading.Thread(target=write, args=(b"y" * (1 << 20),))
    writer.start()
    with pytest.raises(FileRefused, match="is over the 1 KiB bound"):
        read_bounded(fifo, 1024, stream_ok=True)
    writer.join(5)
    assert not writer.is_alive()


def test_devices_and_directories_are_refused_and_a_stream_only_read_within_its_bound(
        tmp_path: Path) -> None:
    with pytest.raises(FileRefused, match="is a device"):
        read_bounded(Path("/dev/zero"), 10)
    with pytest.raises(FileRefused, match="is a directory"):
        read_bounded(tmp_path, 10, stream_ok=True)
    with pytest.raises(FileRefused, match="is over the 10 bytes bound"):
        read_bounded(Path("/dev/zero"), 10, stream_ok=True)
    # `cut`: the caller words the refusal; still never more than the bound and one byte.
    assert read_bounded(Path("/dev/zero"), 10, stream_ok=True, cut=True) == b"\0" * 11


def test_sizes_are_described_as_the_docs_state_them() -> None:
    assert [describe_size(n) for n in (1 << 20, 64 << 10, 40 << 20, 1000, 1 << 30)] == [
        "1 MiB", "64 KiB", "40 MiB", "1000 bytes", "1 GiB"]
