"""`GET /api/contributor/ai-functions` reads rows in proportion to the page, one page and one
more row, whatever the caller may view: the database pre-selects by `access.view`. A caller
whose access lists hide most functions gets full pages, in order, with none missed or repeated
across cursors; so it does when the pre-selection lets through rows `may` refuses (the verb
then reads past them, a bounded batch at a time)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures_db import apply_project, write_project
from tests.fixtures_server import SECRET_ACCESS, Api, functions, spec_data

BASE = "/api/contributor/ai-functions"


@pytest.fixture
def crowded(api: Api) -> list[str]:
    """31 functions more, one in five viewable by everyone (the rest: group finance); the
    names everyone may view, in order."""
    extra = [spec_data(f"fn-{i:02d}", **({} if i % 5 == 0 else {"access": SECRET_ACCESS}))
             for i in range(31)]
    write_project(api.root, [*functions(), *extra])
    apply_project(api.root, url=api.db_url, actor="Ann <ann@example.com>")
    return sorted(["greet", *(f["name"] for i, f in enumerate(extra) if i % 5 == 0)])


def reads(api: Api, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The row limit of each catalog query the worker's store makes from now on."""
    store = api.client.app.state.aiops.store()
    limits: list[int] = []
    real = store.function_summaries

    def counted(**kw: Any) -> Any:
        limits.append(kw["limit"])
        return real(**kw)

    monkeypatch.setattr(store, "function_summaries", counted)
    return limits


def walk(api: Api, token: str, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        url = f"{BASE}?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = api.call("GET", url, token=token).json()
        pages.append([f["name"] for f in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


def test_a_caller_who_sees_everything_reads_one_page_and_one_row(
        api: Api, crowded: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    limits = reads(api, monkeypatch)
    page = api.call("GET", f"{BASE}?limit=3", token="admin").json()
    assert [f["name"] for f in page["items"]] == ["fn-00", "fn-01", "fn-02"]
    assert limits == [4]
    assert len(walk(api, "viewer-finance", 10)) == 4  # 33 functions: 10, 10, 10, 3


@pytest.mark.parametrize("limit", [1, 2, 5, 50])
def test_a_caller_who_sees_few_gets_full_pages_of_them_all(
        api: Api, crowded: list[str], limit: int) -> None:
    pages = walk(api, "viewer", limit)
    assert [n for page in pages for n in page] == crowded
    assert all(len(page) == limit for page in pages[:-1]) and 0 < len(pages[-1]) <= limit


def test_a_caller_who_sees_few_reads_one_page_and_one_row(
        api: Api, crowded: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    limits = reads(api, monkeypatch)
    page = api.call("GET", f"{BASE}?limit=4", token="viewer").json()
    assert [f["name"] for f in page["items"]] == crowded[:4]
    assert limits == [5]
    everything = [n for p in walk(api, "viewer-finance", 7) for n in p]
    assert everything == sorted(["greet", "ledger", *(f"fn-{i:02d}" for i in range(31))])


def test_rows_the_database_lets_through_are_read_past_in_bounded_batches(
        api: Api, crowded: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from aiops.commands import catalog

    monkeypatch.setattr(catalog, "_SCAN", 8)
    store = api.client.app.state.aiops.store()
    real = store.function_summaries
    limits: list[int] = []

    def unselected(**kw: Any) -> Any:  # a database that pre-selects nothing
        limits.append(kw["limit"])
        return real(**{**kw, "view_groups": None})

    monkeypatch.setattr(store, "function_summaries", unselected)
    pages = walk(api, "viewer", 4)
    assert [n for page in pages for n in page] == crowded
    assert all(len(page) == 4 for page in pages[:-1])
    assert limits[0] == 5 and max(limits) <= 8, limits
