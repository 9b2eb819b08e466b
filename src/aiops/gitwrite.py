"""Commits made with git's plumbing: the edge through which a write of the API lands in the
repository (runs git through `aiops.sources.git`).

A commit is built beside the working tree, never in it: the files go into the object store
(`hash-object`), a tree is made from the parent's in a temporary index (`read-tree`,
`update-index`, `write-tree`), and `commit-tree` makes the commit with the caller as author.
Nobody's staged or unstaged edits are taken along, and no hook runs. Then either

- `advance`: the checked-out branch moves to it only if it is still at the parent (a
  compare-and-swap, `update-ref NEW OLD`), and the working tree and index follow for the
  paths that changed (`read-tree -m -u`, a two-way merge that keeps every other local edit);
- `new_branch`: a new branch points at it; HEAD, the index and the working tree stay as
  they are.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiops.errors import ConfigError, ConflictError, UsageError, shown
from aiops.sources import git

ZERO = "0" * 40  # update-ref's "must not exist yet"


@dataclass(frozen=True, kw_only=True)
class Identity:
    """A git author or committer. Without an email (an API token's user may have none) git
    records `Name <>`."""

    name: str
    email: str | None = None

    def __post_init__(self) -> None:
        if not self.name.strip() or re.search(r"[<>\n\r\0]", self.name):
            raise UsageError(f"git identity name {shown(self.name)} is empty or holds `<`, "
                             "`>` or a line break; give a plain name")
        if self.email is not None and not re.fullmatch(r"[^<>\s@]+@[^<>\s@]+", self.email):
            raise UsageError(f"git identity email {shown(self.email)} is not an email address "
                             "(name@host)")

    def __str__(self) -> str:
        """As an actor is written (`aiops apply --actor`): `Name <email>`, or `Name`."""
        return f"{self.name} <{self.email}>" if self.email else self.name


def head(root: Path) -> str:
    """The commit HEAD names; a ConfigError outside a repository or before its first
    commit (writes need one: the server's operator makes it)."""
    try:
        return git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").decode().strip()
    except UsageError:
        try:
            git(root, "rev-parse", "--git-dir")
        except UsageError:
            raise ConfigError(f"writes go through git, and {root} is not in a git repository; "
                              "run `git init` there and commit the project") from None
        raise ConfigError(f"writes go through git, and the repository of {root} has no commit "
                          "yet; commit the project once") from None


def prefix(root: Path) -> str:
    """The project's directory inside its repository (`""` at the top, else `dir/`)."""
    return git(root, "rev-parse", "--show-prefix").decode().strip()


def changed_paths(root: Path, rel: str) -> list[str]:
    """Paths under `rel` (relative to `root`) that differ from HEAD in the index or the
    working tree, untracked files included: edits a write must not overwrite or take along."""
    out = git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", rel)
    return [entry[3:] for entry in out.decode(errors="replace").split("\0") if len(entry) > 3]


def files_under(root: Path, rev: str, rel: str) -> list[str]:
    """The files of `rev` under `rel` (relative to `root`), relative to `root`."""
    out = git(root, "ls-tree", "-r", "-z", "--name-only", rev, "--", rel).decode()
    return [p for p in out.split("\0") if p]


def make_commit(root: Path, *, parent: str, put: Mapping[str, bytes], remove: Sequence[str] = (),
                message: str, author: Identity, committer: Identity) -> str:
    """A commit over `parent` whose tree has `put` (path relative to `root` -> bytes) written
    and the files of `remove` removed; nothing else is touched. Its id."""
    top = prefix(root)
    with tempfile.TemporaryDirectory(prefix="aiops-index-") as tmp:
        index = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        git(root, "read-tree", parent, env=index)
        if remove:
            git(root, "update-index", "--force-remove", "-z", "--stdin", env=index,
                stdin="".join(f"{top}{rel}\0" for rel in remove).encode())
        for rel, data in put.items():
            blob = git(root, "hash-object", "-w", "--stdin", stdin=data).decode().strip()
            git(root, "update-index", "--add", "--cacheinfo", f"100644,{blob},{top}{rel}",
                env=index)
        tree = git(root, "write-tree", env=index).decode().strip()
    who = {"GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email or "",
           "GIT_COMMITTER_NAME": committer.name, "GIT_COMMITTER_EMAIL": committer.email or ""}
    return git(root, "commit-tree", tree, "-p", parent, "-F", "-", env=who,
               stdin=message.encode()).decode().strip()


def advance(root: Path, commit: str, parent: str, *, reason: str) -> str | None:
    """Move the checked-out branch (or a detached HEAD) from `parent` to `commit`, only if it
    is still at `parent`; then bring the index and working tree along for what changed. What
    git said when it could not bring them along (the commit has landed all the same)."""
    try:
        git(root, "update-ref", "-m", reason, "HEAD", commit, parent)
    except UsageError:
        now = head(root)
        if now != parent:
            raise ConflictError(f"the branch moved from {parent[:12]} to {now[:12]} during the "
                                "write (a commit made beside aiops); nothing was written: send "
                                "the write again") from None
        raise
    try:
        git(root, "read-tree", "-m", "-u", parent, commit)
    except UsageError as exc:  # an edit made meanwhile in a changed path, a held index.lock
        return str(exc)
    return None


def new_branch(root: Path, branch: str, commit: str) -> None:
    """Create `branch` at `commit`; a ConflictError when it exists at another commit."""
    ref = f"refs/heads/{branch}"
    try:
        git(root, "update-ref", "-m", "aiops: a write on its own branch", ref, commit, ZERO)
    except UsageError:
        there = git(root, "rev-parse", "--verify", "--quiet", ref).decode().strip()
        if there != commit:
            raise ConflictError(f"branch {branch} exists already; nothing was written: send "
                                "the write again") from None


def config_identity(root: Path, default: Identity) -> Identity:
    """The repository's configured user (user.name, user.email), else `default`."""
    found = []
    for key in ("user.name", "user.email"):
        try:
            found.append(git(root, "config", key).decode().strip())
        except UsageError:  # not set: git exits 1
            found.append("")
    if found[0] and found[1]:
        try:
            return Identity(name=found[0], email=found[1])
        except UsageError:
            return default
    return default
