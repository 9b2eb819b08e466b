"""Log rows on real SQLite and PostgreSQL: no row depends on another (issue 9).

Values either database refuses are normalised the same way on both; a row the database still
refuses is stored alone without its values; a retried group adds no duplicate; a locked SQLite
is waited for within the writer's patience, with a real second connection holding the lock.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from aiops.errors import LockBusy, UserError
from aiops.reconcile import apply_project
from aiops.store import DeployedVersion, LogRow, Store, open_store
from aiops.store.engine import db_errors
from aiops.store.logrows import LOG_SOURCE
from tests.fixtures_db import spec_data, write_project

FFFD = "\ufffd"


@pytest.fixture
def deployed(tmp_path: Path, store: Store) -> DeployedVersion:
    root = write_project(tmp_path / "proj", [spec_data("greet")])
    apply_project(root, url=store.url, store=store, actor="ci <ci@example.com>")
    return store.resolve("greet")


def row(dv: DeployedVersion, **values: Any) -> LogRow:
    defaults: dict[str, Any] = {"function_id": dv.function_id, "version_id": dv.version_id,
                                "status": "ok", "input": {"who": "x"}, "output": "hi",
                                "metadata": {"model": "m"}}
    return LogRow(**{**defaults, **values})


def stored(store: Store, *ids: str) -> dict[str, Any]:
    rows = {r.id: r for r in store.recent_logs("greet", 100_000)}
    return {i: rows[i] for i in ids if i in rows}


@pytest.mark.parametrize(("values", "column", "expected"), [
    ({"input": {"who": "a\x00b"}}, "input", {"who": f"a{FFFD}b"}),
    ({"input": {"w\x00": "x"}}, "input", {f"w{FFFD}": "x"}),
    ({"input": {"who": "lone \ud800"}}, "input", {"who": f"lone {FFFD}"}),
    ({"output": ["\udfff", "ok"]}, "output", [FFFD, "ok"]),
    ({"input_tokens": 10**30}, "input_tokens", None),
    ({"output_tokens": 2**31}, "output_tokens", None),
    ({"metadata": {"cost": float("inf"), "n": float("nan")}}, "metadata",
     {"cost": None, "n": None}),
    ({"cost_usd": float("inf")}, "cost_usd", None),
    ({"actor": "a" * 400}, "actor", "a" * 320),
    ({"actor": "who\x00\ud800"}, "actor", f"who{FFFD}{FFFD}"),
    ({"input": {"raw": b"\xff\xfe", "o": object()}}, "input", {"raw": "<bytes>",
                                                               "o": "<object>"}),
])
def test_values_either_database_refuses_are_normalised(store: Store, deployed: DeployedVersion,
                                                       values: dict[str, Any], column: str,
                                                       expected: Any) -> None:
    """Each of these made the insert fail on SQLite or PostgreSQL (and with it, the whole
    group); now each is stored, the same on both, and the row says what was replaced."""
    bad = row(deployed, **values)
    good = row(deployed)
    store.insert_logs([good, bad])
    back = stored(store, bad.id, good.id)
    assert set(back) == {bad.id, good.id}
    value = getattr(back[bad.id], column)
    if column == "metadata":
        value = {k: value[k] for k in expected}
    assert value == expected
    assert back[bad.id].metadata["_normalised"], back[bad.id].metadata
    assert "_normalised" not in back[good.id].metadata


def test_integers_inside_json_are_kept_exactly(store: Store, deployed: DeployedVersion) -> None:
    """Both databases store any integer JSON can carry; only the integer columns are bounded
    (a provider reporting 10^30 tokens: the column is null, the attempts keep the number)."""
    r = row(deployed, input_tokens=10**30,
            metadata={"attempts": [{"input_tokens": 10**30}], "big": -(10**60)})
    store.insert_logs([r])
    (back,) = stored(store, r.id).values()
    assert back.input_tokens is None
    assert back.metadata["attempts"][0]["input_tokens"] == 10**30
    assert back.metadata["big"] == -(10**60)


def test_a_row_the_database_refuses_is_stored_alone(store: Store,
                                                    deployed: DeployedVersion) -> None:
    """One refused row used to fail its whole group (101 rows here): now the group is split
    until that row is alone, and it is stored without its values, saying why."""
    rows = [row(deployed, input={"who": str(i)}) for i in range(101)]
    rows[50] = row(deployed, version_id=str(uuid.uuid4()))  # a version that is not there
    report = store.insert_logs(rows)
    back = stored(store, *(r.id for r in rows))
    assert len(back) == 101
    alone = back[rows[50].id]
    assert alone.version_id is None and "_omitted" in alone.input
    assert "refused" in alone.input["_omitted"]
    assert alone.status == "ok" and alone.metadata["model"] == "m"
    assert [back[r.id].input for r in rows[:3]] == [{"who": "0"}, {"who": "1"}, {"who": "2"}]
    (message,) = report.stored_alone
    assert rows[50].id in message and not report.lost


def test_a_row_that_cannot_be_stored_at_all_is_reported_and_the_others_are_stored(
        store: Store, deployed: DeployedVersion) -> None:
    rows = [row(deployed) for _ in range(10)]
    rows[3] = LogRow(function_id=str(uuid.uuid4()), version_id=None, status="ok")
    report = store.insert_logs(rows)
    assert len(stored(store, *(r.id for r in rows))) == 9
    (lost,) = report.lost
    assert rows[3].id in lost


def test_a_retried_group_adds_no_duplicate(store: Store, deployed: DeployedVersion) -> None:
    """A group whose outcome is unknown (the connection dropped at COMMIT) is sent again, and
    so is a group half of which an earlier try stored: every id is stored once."""
    rows = [row(deployed) for _ in range(20)]
    store.insert_logs(rows[:7])
    store.insert_logs(rows)
    store.insert_logs(rows)
    with store.engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM ai_function_logs")).scalar_one()
    assert count == 20


@pytest.mark.postgres
def test_refused_text_names_the_input_for_a_log_row(pg_schema_url: str) -> None:
    """PostgreSQL's 22P05 on a log row is about an execution's input or output; the message
    used to tell the user to fix "the function file"."""
    st = open_store(pg_schema_url, migrate=True)
    with pytest.raises(UserError) as info, db_errors(st.url, LOG_SOURCE), \
            st.engine.connect() as conn:
        conn.execute(text("SELECT CAST(:v AS jsonb)"), {"v": '"a\\u0000b"'})
    assert "input or output" in str(info.value) and "function file" not in str(info.value)
    with pytest.raises(UserError, match="function file"), db_errors(st.url), \
            st.engine.connect() as conn:
        conn.execute(text("SELECT CAST(:v AS jsonb)"), {"v": '"a\\u0000b"'})


# --- a locked SQLite --------------------------------------------------------------------------


class HoldLock:
    """A second connection that takes SQLite's write lock (BEGIN IMMEDIATE) for `seconds`."""

    def __init__(self, path: Path, seconds: float) -> None:
        self.path, self.seconds = path, seconds
        self.taken = threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        self.taken.set()
        time.sleep(self.seconds)
        conn.execute("ROLLBACK")
        conn.close()

    def __enter__(self) -> HoldLock:
        self.thread.start()
        assert self.taken.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join()


def test_log_writes_wait_for_a_locked_sqlite_past_its_busy_timeout(tmp_path: Path) -> None:
    """Another writer (an apply) holds the lock five times longer than the busy timeout: the
    rows wait and are all written once it lets go (they used to be lost, all 20)."""
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    write_project(tmp_path / "proj", [spec_data("greet")])
    apply_project(tmp_path / "proj", url=url, actor="ci")
    st = open_store(url, lock_timeout_s=0.2)
    dv = st.resolve("greet")
    rows = [row(dv) for _ in range(20)]
    with HoldLock(tmp_path / "locked.db", 1.0):
        started = time.monotonic()
        st.insert_logs(rows)
        waited = time.monotonic() - started
    assert waited >= 0.5
    assert len(stored(st, *(r.id for r in rows))) == 20


def test_log_writes_give_up_on_a_lock_held_past_their_patience(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    write_project(tmp_path / "proj", [spec_data("greet")])
    apply_project(tmp_path / "proj", url=url, actor="ci")
    st = open_store(url, lock_timeout_s=0.1, log_patience_s=0.5)
    dv = st.resolve("greet")
    with HoldLock(tmp_path / "locked.db", 1.5):
        started = time.monotonic()
        with pytest.raises(LockBusy, match=r"stayed locked by another writer .* for 0.5 s"):
            st.insert_logs([row(dv)])
        assert time.monotonic() - started < 1.4  # the bound, not the lock, ended the wait


# --- rows a PostgreSQL trigger refuses ---------------------------------------------------------

_REFUSE_POISON = """
CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.input::text LIKE '%poison%' THEN
    RAISE EXCEPTION 'poisoned input: %', NEW.input::text;
  END IF;
  IF NEW.actor LIKE '%poison%' THEN
    RAISE EXCEPTION 'poisoned actor';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse_poison BEFORE INSERT ON ai_function_logs
  FOR EACH ROW EXECUTE FUNCTION refuse_poison();
"""


@pytest.mark.postgres
def test_rows_a_trigger_refuses_cost_no_other_row(pg_schema_url: str, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A DBA's trigger refuses some rows with an error that is neither an IntegrityError nor a
    DataError: those rows are stored without their values when the trigger lets that pass
    (its message quoted the input), else lost and named; every other row is stored (85 of
    100 were lost). psycopg's warning about the aborted pipeline stays off stderr."""
    st = open_store(pg_schema_url, migrate=True)
    write_project(tmp_path / "proj", [spec_data("greet")])
    apply_project(tmp_path / "proj", url=st.url, store=st, actor="ci")
    dv = st.resolve("greet")
    with st.engine.begin() as conn:
        conn.execute(text(_REFUSE_POISON))
    rows = [row(dv, input={"who": str(i)}) for i in range(100)]
    for i in (7, 50, 51):
        rows[i] = row(dv, input={"who": "poison"})
    for i in (20, 93):
        rows[i] = row(dv, actor="poison pill")
    report = st.insert_logs(rows)
    back = stored(st, *(r.id for r in rows))
    assert set(back) == {r.id for i, r in enumerate(rows) if i not in (20, 93)}
    assert all("_omitted" in back[rows[i].id].input for i in (7, 50, 51))
    assert back[rows[0].id].input == {"who": "0"}
    assert len(report.lost) == 2 and len(report.stored_alone) == 3
    assert all(any(rows[i].id in m for m in report.lost) for i in (20, 93))
    assert all("poisoned actor" in m for m in report.lost)
    assert not [r for r in caplog.records if "error ignored" in r.getMessage()]
