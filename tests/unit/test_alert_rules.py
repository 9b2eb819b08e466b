"""Alert rules as values (aiops.monitoring.alerts): what a rule measures, when it holds, and
how its state moves: one notification per transition, `for`, repeats, the relative form,
min_calls, quota_usage. Also the rule keys' format and its hash compatibility."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from aiops.fingerprint import metadata_content
from aiops.latency import BUCKETS, bucket_of
from aiops.loader import load_sources
from aiops.monitoring.alerts import (
    DeployedRule,
    Measurement,
    RuleState,
    Usage,
    holds,
    measure,
    measure_all,
    step,
    windows,
)
from aiops.spec import Alert, FunctionSpec
from aiops.stats import NANO, WindowStats
from tests.factories import dump, make_files, make_function

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def rule(**keys: Any) -> DeployedRule:
    data = {"metric": "error_rate", "over": "15m", "above": 0.1, **keys}
    limits = data.pop("limits", {})
    return DeployedRule(function_id="f1", function="greet", rule=Alert.model_validate(data),
                        daily_calls=limits.get("daily_calls"),
                        daily_budget_usd=limits.get("daily_budget_usd"))


def stats(calls: int, errors: int = 0, cost_usd: float = 0.0,
          histogram: tuple[int, ...] | None = None) -> WindowStats:
    return WindowStats(calls=calls, errors_by_kind={"error": errors} if errors else {},
                       cost_nusd=round(cost_usd * NANO),
                       histogram=histogram or (0,) * BUCKETS)


def latencies(*ms: float) -> tuple[int, ...]:
    counts = [0] * BUCKETS
    for v in ms:
        counts[bucket_of(v / 1000)] += 1
    return tuple(counts)


def run(dr: DeployedRule, values: list[float | None], *, every_s: int = 30,
        repeat_s: int | None = None) -> list[tuple[str, str | None]]:
    """The state and the notification after each measurement, `every_s` apart."""
    state: RuleState | None = None
    out = []
    for i, value in enumerate(values):
        s = step(dr, state, Measurement(value=value), T0 + timedelta(seconds=i * every_s),
                 repeat_s=repeat_s)
        state = s.state
        out.append((s.state.state, None if s.event is None else
                    s.event.kind + (" repeat" if s.event.repeat else "")))
    return out


def test_one_notification_when_it_starts_and_one_when_it_stops() -> None:
    assert run(rule(), [0.0, 0.5, 0.6, 0.7, 0.05, 0.0, 0.5]) == [
        ("ok", None), ("firing", "firing"), ("firing", None), ("firing", None),
        ("ok", "resolved"), ("ok", None), ("firing", "firing")]


def test_for_must_hold_that_long_before_it_fires() -> None:
    assert run(rule(**{"for": "1m"}), [0.5, 0.5, 0.0, 0.5, 0.5, 0.5, 0.5]) == [
        ("pending", None), ("pending", None), ("ok", None), ("pending", None),
        ("pending", None), ("firing", "firing"), ("firing", None)]


def test_a_repeat_while_it_fires_and_none_without_one() -> None:
    assert run(rule(), [0.5] * 5, every_s=60, repeat_s=120) == [
        ("firing", "firing"), ("firing", None), ("firing", "firing repeat"), ("firing", None),
        ("firing", "firing repeat")]
    assert run(rule(repeat="1m"), [0.5] * 3, every_s=60, repeat_s=None)[2] == (
        "firing", "firing repeat")
    assert [e for _, e in run(rule(), [0.5] * 5, every_s=3600)] == ["firing"] + [None] * 4


def test_a_missing_value_does_not_hold_and_resolves_a_firing_rule() -> None:
    assert run(rule(), [0.5, None]) == [("firing", "firing"), ("ok", "resolved")]


def test_below_and_above() -> None:
    r = rule(metric="calls", above=None, below=10)
    assert holds(r.rule, Measurement(value=3)) and not holds(r.rule, Measurement(value=10))


def test_min_calls_and_the_metrics_read_from_window_stats() -> None:
    four = stats(4, errors=1, cost_usd=0.25, histogram=latencies(100, 100, 100, 3000))
    assert measure(rule(), four, None, None).value == 0.25
    assert measure(rule(min_calls=5), four, None, None).value is None
    assert measure(rule(metric="cost_usd"), four, None, None).value == 0.25
    assert measure(rule(metric="calls"), WindowStats(), None, None).value == 0.0
    assert measure(rule(metric="error_rate"), WindowStats(), None, None).value is None
    p50 = measure(rule(metric="p50_latency_ms", above=1), four, None, None).value
    p99 = measure(rule(metric="p99_latency_ms", above=1), four, None, None).value
    assert p50 is not None and 100 / 1.1 < p50 < 100 * 1.1
    assert p99 is not None and 3000 / 1.1 < p99 < 3000 * 1.1


def test_the_relative_form_compares_with_the_baseline_window_before() -> None:
    dr = rule(metric="p95_latency_ms", above=None, over="1h", baseline="7d", ratio_above=1.5)
    main, base = windows(dr.rule, T0)
    assert main == (T0 - timedelta(hours=1), T0)
    assert base == (T0 - timedelta(hours=1, days=7), T0 - timedelta(hours=1))
    slow = stats(10, histogram=latencies(*[800] * 10))
    usual = stats(100, histogram=latencies(*[400] * 100))
    m = measure(dr, slow, usual, None)
    assert m.value is not None and m.baseline is not None and holds(dr.rule, m)
    assert not holds(dr.rule, measure(dr, usual, usual, None))
    assert not holds(dr.rule, measure(dr, slow, None, None))  # no baseline traffic: no verdict


def test_quota_usage_is_the_largest_share_of_todays_limits() -> None:
    dr = rule(metric="quota_usage", over=None, above=0.8,
              limits={"daily_calls": 100, "daily_budget_usd": 2.0})
    assert measure(dr, None, None, Usage(calls=50, usd=1.8)).value == pytest.approx(0.9)
    assert measure(rule(metric="quota_usage", over=None, above=0.8), None, None,
                   Usage(calls=50)).value is None


def test_measure_all_reads_each_window_once() -> None:
    reads: list[tuple[tuple[str, ...], datetime, datetime]] = []

    def source(ids: Any, since: datetime, until: datetime) -> dict[str, WindowStats]:
        reads.append((tuple(ids), since, until))
        return {"greet": stats(10, errors=5)}

    rules = [rule(name=f"r{i}", above=i / 10) for i in range(5)] + [
        rule(name="slow", metric="calls", over="1h")]
    got = measure_all(rules, T0, source, lambda ids, day: {})
    assert len(reads) == 2
    assert got[("f1", "r0")].value == 0.5 and got[("f1", "slow")].value == 10


def test_a_rule_written_before_the_new_keys_keeps_its_hash() -> None:
    old = [{"metric": "error_rate", "over": "15m", "above": 0.05}]
    content = metadata_content(FunctionSpec.model_validate(make_function(alerts=old)))
    assert content["alerts"] == old
    full = {"name": "slow", "metric": "p95_latency_ms", "over": "1h", "baseline": "7d",
            "ratio_above": 1.5, "min_calls": 20, "for": "5m", "severity": "critical",
            "notify": ["ops"], "repeat": "1h"}
    spec = FunctionSpec.model_validate(make_function(alerts=[full]))
    assert metadata_content(spec)["alerts"] == [full]
    assert Alert.model_validate(full).model_dump(mode="json") == full


@pytest.mark.parametrize(("keys", "message"), [
    ({"metric": "calls", "over": "1h"}, "exactly one of `above`, `below` or `ratio_above`"),
    ({"metric": "calls", "over": "1h", "above": 1, "below": 0}, "found above, below"),
    ({"metric": "calls", "over": "1h", "ratio_above": 2}, "`baseline` and `ratio_above` go"),
    ({"metric": "error_rate", "above": 0.1}, "`over` (the window) is required"),
    ({"metric": "quota_usage", "baseline": "7d", "ratio_above": 2}, "quota_usage has no"),
])
def test_a_rule_that_does_not_say_one_thing_is_refused(keys: dict[str, Any],
                                                       message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Alert.model_validate(keys)


def _validate(alerts: list[dict[str, Any]], receivers: dict[str, Any] | None = None,
              **spec: Any) -> list[Any]:
    from aiops.checks import check_project

    files = make_files(make_function(alerts=alerts, **spec))
    files["aiops.yaml"] = dump({"alerting": {"receivers": receivers or {}}})
    project = load_sources(files)
    return [d for d in [*project.diagnostics, *check_project(project)]
            if d.code.startswith("alert") or "alerts" in d.path]


def test_validate_checks_receivers_and_warns_about_rules_that_notify_nobody() -> None:
    ops = {"ops": {"type": "webhook", "url_env": "AIOPS_ALERT_URL",
                   "secret_env": "AIOPS_ALERT_SECRET"}}
    base = {"metric": "error_rate", "over": "15m", "above": 0.05}
    assert _validate([{**base, "notify": ["ops"]}], ops) == []
    [d] = _validate([{**base, "notify": ["opps"]}], ops)
    assert d.is_error and d.path == "alerts[0].notify[0]" and "did you mean `ops`" in d.fix
    [d] = _validate([base], ops)
    assert not d.is_error and d.code == "alert-silent" and "aiops alerts check" in d.message
    [d] = _validate([{**base, "metric": "quota_usage", "notify": ["ops"]}], ops,
                    limits={"daily_calls": 100})
    assert d.code == "alert-window-ignored"
    codes = [d.code for d in _validate([{"metric": "quota_usage", "above": 0.9,
                                         "notify": ["ops"]}], ops)]
    assert codes == ["alert-no-quota"]


def test_the_docs_alerting_examples_load() -> None:
    import re
    from pathlib import Path

    import yaml

    from aiops.spec import ProjectSettings

    found = 0
    for doc in ("format.md", "monitoring.md"):
        text = (Path(__file__).parents[2] / "docs" / doc).read_text()
        for m in re.finditer(r"```ya?ml\n(.*?)```", text, re.S):
            data = yaml.safe_load(m.group(1))
            if isinstance(data, dict) and "alerting" in data:
                settings = ProjectSettings.model_validate(data)
                assert set(settings.alerting.receivers) == {"ops", "chat", "am"}
                found += 1
    assert found == 2
