"""Log rows on real SQLite and PostgreSQL: no row depends on another (issue 9).

Values either database refuses are normalised the same way on both; a row the database still
refuses is stored alone without its values; a retried group adds no duplicate; a locked SQLite
or PostgreSQL is waited for within the store's patience, with a real second connection holding
the lock, and rows still not written are spooled for the next command.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from aiops.errors import LockBusy, UserError
from aiops.store import DeployedVersion, LogRow, Store, open_store
from aiops.store.engine import db_errors
from aiops.store.logrows import LOG_SOURCE, Spool, spool_folder
from aiops.workspace import open_workspace
from tests.fixtures_db import apply_project, held_lock, spec_data, write_project

FFFD = "\ufffd"


@pytest.fixture
def deployed(tmp_path: Path, store: Store) -> DeployedVersion:
    root = write_project(tmp_path / "proj", [spec_data("greet")])
    apply_project(root, url=store.url, store=store, actor="ci <ci@example.com>")
    return store.resolve("greet")


def row(dv: DeployedVersion, **values: Any) -> LogRow:
    defaults: dict[str, Any] = {"function_id": dv.function_id, "version": dv.version,
                                "version_id": dv.version_id,
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
    rows[3] = LogRow(function_id=str(uuid.uuid4()), version="1.0.0", version_id=None,
                     status="ok")
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


# --- a locked database ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [20, 1])  # one row: one statement, without a transaction
def test_log_writes_wait_for_a_lock_held_past_the_busy_timeout(
        db_url: str, deployed: DeployedVersion, n: int) -> None:
    """Another writer holds the lock five times longer than one try may wait (SQLite's busy
    timeout, PostgreSQL's lock_timeout): the rows wait and are all written once it lets go
    (they used to be lost, all 20)."""
    st = open_store(db_url, lock_timeout_s=0.2)
    rows = [row(deployed) for _ in range(n)]
    with held_lock(db_url, "ai_function_logs", most_s=1.0):
        started = time.monotonic()
        st.insert_logs(rows)
        waited = time.monotonic() - started
    assert waited >= 0.5
    assert len(stored(st, *(r.id for r in rows))) == n


def test_one_row_waits_for_a_lock_at_most_the_lock_timeout_each_try(
        db_url: str, deployed: DeployedVersion, tmp_path: Path) -> None:
    """A server's run writes one row, on PostgreSQL in one statement without a transaction of
    its own: the connection's lock timeout bounds each try as SET LOCAL bounds a
    transaction's, so the patience still ends the wait (a try without a bound would wait for
    the lock's holder, 4 s)."""
    st = open_store(db_url, lock_timeout_s=0.2, patience_s=0.6,
                    pending_logs=tmp_path / "pending")
    one = row(deployed)
    with held_lock(db_url, "ai_function_logs", most_s=4.0):
        started = time.monotonic()
        with pytest.raises(LockBusy):
            st.insert_logs([one])
        waited = time.monotonic() - started
    assert 0.5 <= waited < 1.5, waited
    assert not stored(st, one.id)


@pytest.mark.postgres
def test_one_row_is_committed_by_its_statement_on_postgresql(pg_schema_url: str,
                                                            tmp_path: Path) -> None:
    """One row and its rollups are one statement, which PostgreSQL commits as it answers (no
    BEGIN, no COMMIT: the connection is idle after it); one row whose wait must be shorter
    than the connection's lock timeout (the patience running out) is a transaction that sets
    its own (tests/integration/test_rollups.py counts the statements of groups)."""
    from sqlalchemy import event

    st = open_store(pg_schema_url, migrate=True)
    root = write_project(tmp_path / "proj", [spec_data("greet")])
    apply_project(root, url=st.url, store=st, actor="ci <ci@example.com>")
    dv = st.resolve("greet")
    st.insert_logs([row(dv)])  # the actor's user row is found once per process
    sent: list[tuple[str, str]] = []

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        status = conn.connection.dbapi_connection.info.transaction_status
        sent.append((statement.split()[0], status.name))

    event.listen(st.engine, "after_cursor_execute", after)
    try:
        one = row(dv)
        st.insert_logs([one])
        assert sent == [("WITH", "IDLE")]
        sent.clear()
        st._patience.lock_timeout_s = 0.1
        short = row(dv)
        st.insert_logs([short])
        assert sent == [("BEGIN;", "INTRANS"), ("WITH", "INTRANS")]
    finally:
        event.remove(st.engine, "after_cursor_execute", after)
    assert len(stored(st, one.id, short.id)) == 2
    around = (one.created_at - timedelta(hours=1), one.created_at + timedelta(hours=1))
    assert st.window_stats(["greet"], *around)["greet"].calls == 3  # each counted once


def test_a_lock_held_past_the_patience_costs_the_patience_and_no_row(
        db_url: str, deployed: DeployedVersion, tmp_path: Path) -> None:
    """QA held an exclusive lock for 200 s: all rows were lost after 182 s (the patience was
    counted after a first 30 s busy wait, and its last try overran it; PostgreSQL waited
    without a bound). Now the wait ends with the patience, whatever the busy timeout, and the
    rows are kept in the project's pending-logs until the next command writes them, once."""
    pending = tmp_path / "proj" / ".aiops" / "pending-logs"
    st = open_store(db_url, patience_s=0.5, pending_logs=pending)  # busy timeout: 30 s
    rows = [row(deployed, input={"who": str(i)}) for i in range(20)]
    with held_lock(db_url, "ai_function_logs", most_s=4.0):
        started = time.monotonic()
        with pytest.raises(LockBusy) as info:
            st.insert_logs(rows)
        waited = time.monotonic() - started
    assert 0.4 <= waited < 1.5, waited
    message = str(info.value)
    assert "stayed locked by another writer" in message and "for 0.5 s" in message
    assert f"saved to {pending}" in message and "the next `aiops run`" in message
    (spooled,) = pending.glob("*/*.jsonl")
    assert len(spooled.read_text(encoding="utf-8").splitlines()) == 20
    assert spooled.stat().st_mode & 0o077 == 0
    assert not stored(st, *(r.id for r in rows))
    # The next command's first write takes them (and its own row); a second one adds nothing.
    later = row(deployed)
    open_store(db_url, pending_logs=pending).insert_logs([later])
    assert not list(pending.glob("*/*.jsonl"))
    open_store(db_url, pending_logs=pending).write_pending_logs()
    back = stored(st, later.id, *(r.id for r in rows))
    assert len(back) == 21 and back[rows[3].id].input == {"who": "3"}
    with st.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ai_function_logs")).scalar_one() == 21


def test_pending_rows_go_back_only_to_their_database(tmp_path: Path, db_url: str,
                                                     deployed: DeployedVersion) -> None:
    """The spool is kept per database: a command on another database leaves it alone."""
    pending = tmp_path / "pending-logs"
    other = f"sqlite:///{tmp_path / 'other.db'}"
    Spool(spool_folder(pending, db_url)).save([row(deployed)])
    open_store(other, pending_logs=pending).write_pending_logs()
    assert len(list(pending.glob("*/*.jsonl"))) == 1
    open_store(db_url, pending_logs=pending).write_pending_logs()
    assert not list(pending.glob("*/*.jsonl"))


def test_apply_writes_the_pending_rows_too(tmp_path: Path, db_url: str,
                                          deployed: DeployedVersion) -> None:
    rows = [row(deployed) for _ in range(3)]
    Spool(spool_folder(open_workspace(tmp_path / "proj").pending_logs, db_url)).save(rows)
    result = apply_project(tmp_path / "proj", url=db_url, actor="ci")
    assert not result.wrote and not result.log_warnings
    assert len(stored(open_store(db_url), *(r.id for r in rows))) == 3


def test_a_pending_file_that_holds_no_rows_is_reported_once(tmp_path: Path, db_url: str,
                                                            deployed: DeployedVersion) -> None:
    folder = spool_folder(tmp_path, db_url)
    good = Spool(folder).save([row(deployed)])
    (folder / "edited.jsonl").write_text("not json\n", encoding="utf-8")
    report = open_store(db_url, pending_logs=tmp_path).write_pending_logs()
    (message,) = report.lost
    assert "edited.jsonl does not hold log rows" in message and "edited.unreadable" in message
    assert not good.exists() and (folder / "edited.unreadable").exists()
    assert not open_store(db_url, pending_logs=tmp_path).write_pending_logs().lost


@pytest.mark.timeout(20)
def test_a_pending_file_that_is_a_fifo_a_link_or_too_large_is_refused_not_read(
        tmp_path: Path, db_url: str, deployed: DeployedVersion,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A FIFO named like a spool file hung every later command (opening it blocks for a
    writer); a link out of the spool, or a file past its bound, was read whole. Each is
    reported once, renamed `.unreadable`, and the good file beside it is written."""
    from aiops.store import logrows

    folder = spool_folder(tmp_path, db_url)
    good = Spool(folder).save([row(deployed)])
    os.mkfifo(folder / "fifo.jsonl")
    secret = tmp_path / "elsewhere.txt"
    secret.write_text("not for the database\n", encoding="utf-8")
    (folder / "link.jsonl").symlink_to(secret)
    big = Spool(folder).save([row(deployed) for _ in range(3)])
    monkeypatch.setattr(logrows, "SPOOL_FILE_BYTES", big.stat().st_size - 1)

    report = open_store(db_url, pending_logs=tmp_path).write_pending_logs()
    assert len(report.lost) == 3  # the file over the (lowered) bound, the FIFO, the link
    text_ = "\n".join(report.lost)
    assert "fifo.jsonl does not hold log rows (is a FIFO" in text_
    assert "link.jsonl does not hold log rows" in text_ and "not for the database" not in text_
    assert f"{big.name} does not hold log rows (is " in text_ and big.with_suffix(".unreadable").exists()
    assert not good.exists() and not (folder / "fifo.jsonl").exists()
    assert (folder / "fifo.unreadable").exists() and (folder / "link.unreadable").is_symlink()
    assert secret.read_text(encoding="utf-8") == "not for the database\n"


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
