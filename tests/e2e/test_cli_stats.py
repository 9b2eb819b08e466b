"""`aiops stats` and `aiops rollups` on SQLite and PostgreSQL, after real runs through the
mock provider: what the runner logged is what stats show, as text and as JSON; the backfill
and compaction leave the numbers as they were."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.test_cli_logs import invoke
from tests.e2e.test_cli_logs import ran as ran  # the fixture: classify ok + failed, triage ok


def stats_json(ran: dict[str, Any], *args: str) -> dict[str, Any]:
    result = invoke(ran, "stats", "--json", *args)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_stats_show_what_the_runner_logged(ran: dict[str, Any]) -> None:
    report = stats_json(ran)
    by_name = {f["name"]: f for f in report["functions"]}
    assert by_name["classify"]["calls"] == 2 and by_name["classify"]["errors"] == 1
    assert by_name["classify"]["errors_by_kind"] == {"ProviderError": 1}
    assert by_name["triage"]["calls"] == 1 and by_name["triage"]["error_rate"] == 0
    assert by_name["classify"]["p50_ms"] is not None and by_name["classify"]["input_tokens"] > 0
    assert report["total"]["calls"] == 3
    one = stats_json(ran, "classify", "--by", "provider")
    (f,) = one["functions"]
    assert sum(g["calls"] for g in f["groups"]) == 2 and all("key" in g for g in f["groups"])
    text = invoke(ran, "stats", "--since", "1h")
    assert text.exit_code == 0, text.output
    assert "classify" in text.stdout and "P95" in text.stdout and "9 %" in text.stdout
    unknown = invoke(ran, "stats", "nothing")
    assert unknown.exit_code == 1 and "no function" in unknown.stderr


def test_backfill_and_compaction_keep_the_numbers(ran: dict[str, Any]) -> None:
    before = stats_json(ran, "--since", "2h")
    done = invoke(ran, "rollups", "backfill")
    assert done.exit_code == 0 and "from 3 executions" in done.stdout, done.output
    compacted = invoke(ran, "rollups", "compact", "--older-than", "1h")
    assert compacted.exit_code == 0, compacted.output
    after = stats_json(ran, "--since", "2h")
    assert [f["calls"] for f in after["functions"]] == [f["calls"] for f in before["functions"]]
    refused = invoke(ran, "rollups", "compact", "--older-than", "5m")
    assert refused.exit_code == 2 and "1h" in refused.stderr
