"""The end of `aiops run` as pure decisions: the exit code when several things went wrong,
and the one place every message goes out through."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aiops.cli import terminal_safe
from aiops.cli.ending import exit_code
from aiops.errors import BudgetSettleError, LogWriteError

CLI = Path(__file__).resolve().parents[2] / "src" / "aiops" / "cli"
LOGS = [LogWriteError("rows"), BudgetSettleError("spend")]


@pytest.mark.parametrize(("received", "output", "failed", "records", "code"), [
    (None, None, 0, [], 0),
    (None, None, 0, LOGS, 8),  # delivered, not recorded
    (None, None, 4, LOGS, 4),  # a failed line is more serious than its missing row
    (None, OSError("full"), 4, LOGS, 1),  # results missing from the output
    (None, BrokenPipeError(), 4, LOGS, 141),  # stdout closed by its reader
    (15, OSError("full"), 4, LOGS, 143),  # interrupted: 128 + the signal
    (2, None, 0, [], 130),
])
def test_the_most_serious_outcome_gives_the_exit_code(
        received: int | None, output: Exception | None, failed: int, records: list[Exception],
        code: int) -> None:
    assert exit_code(received=received, output=output, failed=failed, records=records) == code


def test_control_characters_are_escaped_and_tabs_and_newlines_kept() -> None:
    text = "a\x00b\x1b[31mc\td\ne\r\x9b\x7f\u00e9"
    assert terminal_safe(text) == "a\\x00b\\x1b[31mc\td\ne\\r\\x9b\\x7f\u00e9"
    assert terminal_safe("one\ntwo", one_line=True) == "one\\ntwo"


def test_every_message_goes_out_through_one_place() -> None:
    """`aiops.cli.say` (escaped) and `emit` (data) are the only writers: a bare click.echo
    or print elsewhere in the CLI would let a provider's words reach the terminal raw."""
    offenders = [f"{path.name}:{n}" for path in sorted(CLI.glob("*.py"))
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if re.search(r"\bclick\.echo\(|(?<![.\w])print\(", line)
                 and path.name != "__init__.py"]
    assert offenders == []
