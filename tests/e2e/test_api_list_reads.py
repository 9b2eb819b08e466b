"""`GET /api/contributor/ai-functions` reads rows in proportion to the page: a caller who may
view everything reads one page and one more row; a caller whose access lists hide most
functions still gets full pages, in order, with none missed or repeated across cursors."""

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


def test_hidden_rows_are_read_past_in_bounded_batches(
        api: Api, crowded: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from aiops.commands import catalog

    monkeypatch.setattr(catalog, "_SCAN", 8)
    limits = reads(api, monkeypatch)
    page = api.call("GET", f"{BASE}?limit=4", token="viewer").json()
    assert [f["name"] for f in page["items"]] == crowded[:4]
    assert limits[0] == 5 and all(n <= 8 for n in limits[1:]), limits
