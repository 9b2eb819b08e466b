"""The stats routes through the ASGI app, on SQLite and PostgreSQL: the numbers of the log rows
written, a time series by `step`, groups by `by`, and functions a token may not view left out
of the cross-function stats and their total."""

from __future__ import annotations

from tests.fixtures_server import Api, add_logs

BASE = "/api/contributor/ai-functions"
WINDOW = "since=2026-01-01T00:00:00Z&until=2026-01-01T01:00:00Z"


def test_one_functions_stats_and_its_time_series(api: Api) -> None:
    add_logs(api.db_url, "greet", 150)  # a second apart from midnight: 3 minutes
    body = api.call("GET", f"{BASE}/greet/stats?{WINDOW}", token="viewer").json()
    (f,) = body["functions"]
    assert f["name"] == "greet" and f["calls"] == 150 and f["errors"] == 50
    assert f["errors_by_kind"] == {"OutputError": 50} and f["error_rate"] == round(50 / 150, 6)
    assert f["input_tokens"] == 1500 and f["output_tokens"] == 750
    assert abs(f["cost_usd"] - 0.15) < 1e-9
    assert 12.5 / 1.1 <= f["p50_ms"] <= 12.5 * 1.1 and f["p99_ms"] == f["p50_ms"]
    assert f["groups"] == [] and body["total"]["calls"] == 150
    series = api.call("GET", f"{BASE}/greet/stats?{WINDOW}&step=60", token="viewer").json()
    groups = series["functions"][0]["groups"]
    assert [g["start"] for g in groups] == ["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z",
                                            "2026-01-01T00:02:00Z"]
    assert [g["calls"] for g in groups] == [60, 60, 30]
    by_model = api.call("GET", f"{BASE}/greet/stats?{WINDOW}&by=model", token="viewer").json()
    assert [(g["key"], g["calls"]) for g in by_model["functions"][0]["groups"]] == [
        ("mock-small", 150)]


def test_cross_function_stats_leave_out_what_the_token_may_not_view(api: Api) -> None:
    add_logs(api.db_url, "greet", 30)
    add_logs(api.db_url, "ledger", 20)
    outsider = api.call("GET", f"/api/contributor/stats?{WINDOW}", token="viewer").json()
    assert [f["name"] for f in outsider["functions"]] == ["greet"]
    assert outsider["total"]["calls"] == 30
    insider = api.call("GET", f"/api/contributor/stats?{WINDOW}",
                       token="viewer-finance").json()
    assert [f["name"] for f in insider["functions"]] == ["greet", "ledger"]
    assert insider["total"]["calls"] == 50
    hidden = api.call("GET", f"{BASE}/ledger/stats", token="viewer", expect=404).json()
    assert hidden["code"] == "not-found"


def test_bad_stats_parameters_are_problems_naming_them(api: Api) -> None:
    body = api.call("GET", f"/api/contributor/stats?{WINDOW}&step=90", expect=400).json()
    assert "step" in body["detail"]
    body = api.call("GET", "/api/contributor/stats?since=2026-01-02T00:00:00Z&"
                    "until=2026-01-01T00:00:00Z", expect=400).json()
    assert "since" in body["detail"]
    api.call("GET", "/api/contributor/stats?by=actor", expect=422)
    api.call("GET", "/api/contributor/stats?step=1", expect=422)
