"""The edges that read a project's files: from the working tree (`read_tree`) or from a git
revision (`read_revision`), each file bounded by `aiops.files` (size, regular file, inside the
project). What they return, a mapping of relative path -> bytes (or the `FileRefused` of a
file that was not read), is what `aiops.loader.load_sources` turns into specs. The only
module that runs git (`aiops.gitwrite`, which commits, runs it through `git` here).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path as Path

from aiops.errors import UsageError
from aiops.files import FileRefused, describe_size, read_bounded
from aiops.loader import (
    FUNCTION_FILE,
    FUNCTIONS_DIR,
    PROJECT_FILE,
    PROVIDERS_FILE,
    Source,
    in_function_dir,
)
from aiops.yamlsrc import MAX_FILE_BYTES


def read_project_file(root: Path, rel: str) -> Source:
    """One project file, bounded (`aiops.files`): regular, inside `root`, at most
    MAX_FILE_BYTES; or the refusal, which `load_sources` reports as a located error."""
    try:
        return read_bounded(root / rel, MAX_FILE_BYTES, within=root)
    except FileRefused as exc:
        return exc


def read_tree(root: Path) -> dict[str, Source]:
    """The project's spec files from the working tree."""
    files: dict[str, Source] = {}
    for rel in (PROVIDERS_FILE, PROJECT_FILE):
        if os.path.lexists(root / rel):  # a dangling link or a FIFO is reported, not skipped
            files[rel] = read_project_file(root, rel)
    fdir = root / FUNCTIONS_DIR
    if fdir.is_dir():
        for path in sorted(fdir.glob("*/*.y*ml"), key=str):
            rel = path.relative_to(root).as_posix()
            if in_function_dir(rel.split("/")):
                # Only function.yaml is read; a stray YAML file is listed so that a function
                # whose file is misnamed is an error, not a function that disappeared.
                files[rel] = read_project_file(root, rel) if path.name == FUNCTION_FILE else b""
    return files


def read_revision(root: Path, ref: str, *,
                  functions: Iterable[str] | None = None) -> dict[str, Source]:
    """The project's spec files as they were at git revision `ref`; with `functions`, only
    those functions' directories (and providers.yaml and aiops.yaml)."""
    # The pathspecs are the project's (relative to `root`); the names come from the top of
    # the repository, the project's directory first when it sits below the top.
    dirs = [FUNCTIONS_DIR] if functions is None else [f"{FUNCTIONS_DIR}/{n}" for n in functions]
    tree = git(root, "ls-tree", "-r", "--name-only", "--full-name", ref, "--",
                PROVIDERS_FILE, PROJECT_FILE, *dirs).decode()
    prefix = git(root, "rev-parse", "--show-prefix").decode().strip()
    wanted = []
    for line in tree.splitlines():
        rel = line[len(prefix):] if prefix and line.startswith(prefix) else line
        parts = rel.split("/")
        if rel in (PROVIDERS_FILE, PROJECT_FILE) or in_function_dir(parts):
            wanted.append((rel, line))
    blobs = read_git_blobs(root, [f"{ref}:{full}" for _, full in wanted])
    return {rel: blob for (rel, _), blob in zip(wanted, blobs, strict=True)}


_LINK_PROBLEMS = {"symlink": "is a symlink to {}, outside the repository",
                  "dangling": "is a symlink to {}, which does not exist",
                  "loop": "is a symlink loop ({})", "notdir": "is a symlink through a file ({})"}


def read_git_blobs(root: Path, objects: list[str]) -> list[Source]:
    """The blobs named `objects` (`REV:PATH`), each bounded like a project file: sizes are
    asked first, and only blobs within MAX_FILE_BYTES are read. Symlinks are followed inside
    the repository; one that leaves it, or a missing object, is refused."""
    if not objects:
        return []
    check = git(root, "cat-file", "--batch-check", "--follow-symlinks",
                stdin="".join(f"{o}\n" for o in objects).encode()).decode(errors="replace")
    lines = iter(check.splitlines())
    out: list[Source] = []
    fetch: list[tuple[int, str]] = []  # (index in out, object id)
    for header in lines:
        words = header.split()
        if words[0] in _LINK_PROBLEMS:  # a second line names the link's target
            out.append(FileRefused(_LINK_PROBLEMS[words[0]].format(next(lines, "?")),
                                   "commit a regular file, or a link to one inside the "
                                   "repository"))
        elif words[-1] == "missing" or len(words) != 3:
            out.append(FileRefused("is not in that revision", missing=True))
        elif words[1] != "blob":
            out.append(FileRefused(f"is a {words[1]} in that revision, not a file"))
        elif int(words[2]) > MAX_FILE_BYTES:
            out.append(FileRefused(f"is {words[2]} bytes, over the "
                                   f"{describe_size(MAX_FILE_BYTES)} bound",
                                   "split it or move large content out of it"))
        else:
            fetch.append((len(out), words[0]))
            out.append(b"")
    if fetch:
        data = git(root, "cat-file", "--batch",
                   stdin="".join(f"{oid}\n" for _, oid in fetch).encode())
        pos = 0
        for index, _ in fetch:
            header_end = data.index(b"\n", pos)
            size = int(data[pos:header_end].split()[2])
            out[index] = data[header_end + 1: header_end + 1 + size]
            pos = header_end + 1 + size + 1
    return out


def git(root: Path, *args: str, stdin: bytes | None = None,
        env: Mapping[str, str] | None = None) -> bytes:
    """Run git in `root` (with `env` added to the environment); its output, or a UsageError
    with git's own last line."""
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], input=stdin,
                              capture_output=True, check=False, timeout=60,
                              env={**os.environ, **env} if env else None)
    except FileNotFoundError:
        raise UsageError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"git {args[0]} did not finish within 60 s") from None
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise UsageError(f"git {args[0]} failed: {msg[-1] if msg else 'unknown error'}")
    return proc.stdout
