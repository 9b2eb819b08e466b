"""The alerts' verbs: evaluate every rule once (`aiops alerts check`), deliver what the outbox
holds, list rules and their states (`aiops alerts list`), the API's view (rules, states and
history a caller may see), and the server's evaluator loop.

Rules come from the database (the `alerts:` each function was applied with: what runs is what
is watched); receivers come from the project's aiops.yaml (`alerting:`), their URLs and
secrets from the environment. The decisions are `aiops.monitoring.alerts`'; the writes, under
the evaluator's lock, the store's; the sends, `aiops.monitoring.delivery`'s.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from aiops.access import Caller, may
from aiops.catalog import bad_cursor, check_limit, decode_cursor, encode_cursor
from aiops.monitoring.alerts import (
    SEVERITY_DEFAULT,
    DeployedRule,
    Evaluated,
    RuleState,
    evaluate,
    measure_all,
)
from aiops.monitoring.alerts import condition_text as condition_text
from aiops.monitoring.delivery import DeliveryError, Outgoing, Resolver, resolve, send
from aiops.spec import Alert, Alerting, window_seconds
from aiops.store import Store
from aiops.store.alerts import Evaluation, HistoryRow, Notification
from aiops.workspace import Workspace

if TYPE_CHECKING:
    import httpx  # noqa: TID251 (a type only: the client is delivery's)

CLAIM_S = 120  # how long a deliverer holds the notifications it took
FIRST_BACKOFF_S, MAX_BACKOFF_S = 5.0, 300.0
GIVE_UP_AFTER = timedelta(hours=24)  # a notification not delivered by then is marked failed
DELIVERIES_PER_PASS = 100


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- the rules -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Rules:
    rules: tuple[DeployedRule, ...]
    problems: tuple[str, ...] = ()  # rules stored in a shape this release does not read


def deployed_rules(store: Store) -> Rules:
    """Every rule of every function in the database that is not archived."""
    rules: list[DeployedRule] = []
    problems: list[str] = []
    for row in store.alert_rule_rows():
        limits = row.limits or {}
        for i, raw in enumerate(row.alerts or ()):
            try:
                rule = Alert.model_validate(raw)
            except ValidationError as exc:
                problems.append(f"{row.name}: alerts[{i}] is stored in a shape this release "
                                f"does not read ({exc.errors()[0]['msg']}); run `aiops apply`")
                continue
            rules.append(DeployedRule(function_id=row.function_id, function=row.name,
                                      rule=rule, access=row.access or {},
                                      daily_calls=limits.get("daily_calls"),
                                      daily_budget_usd=limits.get("daily_budget_usd")))
    return Rules(rules=tuple(rules), problems=tuple(problems))


# --- one evaluation --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: tuple[str, ...] = ()  # receiver: why, for each attempt that failed


@dataclass(frozen=True, kw_only=True)
class CheckReport:
    """One evaluation of every rule: each rule's outcome, the notifications it queued, what
    was delivered. `evaluated` is False when another evaluator ran within the interval."""

    evaluated: bool
    results: tuple[Evaluated, ...] = ()
    problems: tuple[str, ...] = ()
    delivery: DeliveryReport = field(default_factory=DeliveryReport)

    @property
    def firing(self) -> list[Evaluated]:
        return [r for r in self.results if r.state.state == "firing"]

    @property
    def notifications(self) -> list[Evaluated]:
        return [r for r in self.results if r.event is not None]


def _notification(ev: Evaluated, receivers: Mapping[str, Any]) -> Notification:
    assert ev.event is not None
    r = ev.rule.rule
    return Notification(id=ev.event.id, function_id=ev.rule.function_id, rule=r.rule_name,
                        event=ev.event.kind, severity=r.severity or SEVERITY_DEFAULT,
                        value=ev.event.value, at=ev.event.at, payload=ev.event.payload(),
                        receivers=tuple(n for n in (r.notify or ()) if n in receivers))


def evaluate_rules(store: Store, alerting: Alerting, *, now: datetime | None = None,
                   force: bool = True, holder: str | None = None) -> CheckReport:
    """Measure every rule, then, under the evaluator's lock, step each from its stored state
    and write states, history and outbox in one transaction. Without `force`, nothing is
    done when an evaluation ran less than half an interval ago (another replica's)."""
    now = now or datetime.now(UTC)
    rules = deployed_rules(store)
    measurements = measure_all(rules.rules, now, store.window_stats, store.daily_usage)
    repeat_s = window_seconds(alerting.repeat_interval) if alerting.repeat_interval else None
    half = timedelta(seconds=window_seconds(alerting.interval) / 2)
    results: list[Evaluated] = []

    def decide(states: dict[tuple[str, str], RuleState],
               last_run: datetime | None) -> Evaluation | None:
        if not force and last_run is not None and now - last_run < half:
            return None
        results[:] = evaluate(rules.rules, measurements, states, now,
                              default_repeat_s=repeat_s)
        current = {r.rule.key: r.state for r in results}
        return Evaluation(states=current,
                          notifications=[_notification(r, alerting.receivers)
                                         for r in results if r.event is not None],
                          removed=[k for k in states if k not in current])

    done = store.record_alert_evaluation(decide, holder=holder or _holder(), now=now)
    return CheckReport(evaluated=done is not None, results=tuple(results),
                       problems=rules.problems)


# --- delivery --------------------------------------------------------------------------------


def backoff_s(attempts: int) -> float:
    """The wait after the `attempts`-th failed attempt: 5 s doubling, at most 5 min."""
    return float(min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** max(0, attempts - 1)))


def deliver(store: Store, alerting: Alerting, environ: Mapping[str, str], *,
            now: datetime | None = None, client: httpx.Client | None = None,
            resolver: Resolver = resolve, limit: int = DELIVERIES_PER_PASS) -> DeliveryReport:
    """Send the notifications that are due, once each: sent, or retried later with backoff
    (failed for good after GIVE_UP_AFTER)."""
    now = now or datetime.now(UTC)
    claimed = store.claim_alert_notifications(now=now, until=now + timedelta(seconds=CLAIM_S),
                                              limit=limit)
    sent = retrying = failed = 0
    errors: list[str] = []
    repeat_s = window_seconds(alerting.repeat_interval) if alerting.repeat_interval else None
    hold_s = 2 * repeat_s if repeat_s else 86400
    for item in claimed:
        attempts = item.attempts + 1
        receiver = alerting.receivers.get(item.receiver)
        try:
            if receiver is None:
                raise DeliveryError("is no longer in aiops.yaml `alerting.receivers`")
            send(Outgoing(id=f"msg_{item.id.replace('-', '')}", receiver=item.receiver,
                          event=item.payload), receiver, environ,
                 allow_private=alerting.allow_private_addresses, hold_s=hold_s,
                 client=client, resolver=resolver)
        except DeliveryError as exc:
            why = str(exc)[:500]
            errors.append(f"{item.receiver}: {why}")
            if now - item.created_at >= GIVE_UP_AFTER or receiver is None:
                failed += 1
                store.settle_alert_notification(item.id, status="failed", attempts=attempts,
                                                next_attempt_at=None, error=why, now=now)
            else:
                retrying += 1
                store.settle_alert_notification(
                    item.id, status="pending", attempts=attempts, error=why, now=now,
                    next_attempt_at=now + timedelta(seconds=backoff_s(attempts)))
            continue
        sent += 1
        store.settle_alert_notification(item.id, status="sent", attempts=attempts,
                                        next_attempt_at=None, error=None, now=now)
    return DeliveryReport(sent=sent, retrying=retrying, failed=failed, errors=tuple(errors))


def check_alerts(ws: Workspace, *, store: Store | None = None, now: datetime | None = None,
                 send_notifications: bool = True) -> CheckReport:
    """`aiops alerts check`: evaluate every rule once, then deliver what is due."""
    st = store or ws.open_store()
    alerting = ws.settings.alerting
    report = evaluate_rules(st, alerting, now=now, force=True)
    if not send_notifications:
        return report
    delivery = deliver(st, alerting, ws.environ, now=now)
    return CheckReport(evaluated=report.evaluated, results=report.results,
                       problems=report.problems, delivery=delivery)


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RuleView:
    """A rule with its state, as `aiops alerts list` and the API show it."""

    function: str
    function_id: str
    rule: str
    metric: str
    condition: str
    severity: str
    notify: tuple[str, ...]
    state: str  # ok | pending | firing | unknown (never evaluated)
    since: datetime | None
    value: float | None
    evaluated_at: datetime | None
    definition: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"function": self.function, "function_id": self.function_id, "rule": self.rule,
                "metric": self.metric, "condition": self.condition, "severity": self.severity,
                "notify": list(self.notify), "state": self.state,
                "since": _iso(self.since), "value": self.value,
                "evaluated_at": _iso(self.evaluated_at), "definition": self.definition}


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat(timespec="seconds")


def _views(rules: Sequence[DeployedRule], states: Mapping[tuple[str, str], RuleState]
           ) -> list[RuleView]:
    out = []
    for dr in rules:
        s = states.get(dr.key)
        r = dr.rule
        out.append(RuleView(
            function=dr.function, function_id=dr.function_id, rule=r.rule_name,
            metric=r.metric, condition=condition_text(r), severity=r.severity or SEVERITY_DEFAULT,
            notify=tuple(r.notify or ()), state=s.state if s else "unknown",
            since=s.since if s else None, value=s.value if s else None,
            evaluated_at=s.evaluated_at if s else None,
            definition=r.model_dump(mode="json")))
    return out


def list_alerts(ws: Workspace, *, store: Store | None = None) -> list[RuleView]:
    """`aiops alerts list`: every rule in the database with its state."""
    st = store or ws.open_store()
    return _views(deployed_rules(st).rules, st.alert_states())


@dataclass(frozen=True, kw_only=True)
class AlertsOverview:
    rules: tuple[RuleView, ...]
    history: tuple[HistoryRow, ...]
    next_cursor: str | None


def alerts_overview(store: Store, *, caller: Caller | None, limit: int = 50,
                    cursor: str | None = None) -> AlertsOverview:
    """The rules, states and history of the functions `caller` may view (others do not
    appear at all); history newest first, `limit` a page."""
    check_limit(limit)
    before = None
    if cursor:
        position = decode_cursor("alerts", cursor, ("at", "id"))
        try:
            before = (datetime.fromisoformat(position["at"]), str(uuid.UUID(position["id"])))
        except ValueError:
            raise bad_cursor() from None
    rules = [dr for dr in deployed_rules(store).rules if may(caller, "view", dr.access)]
    visible = None if caller is None or caller.is_admin else sorted(
        _viewable_ids(store, caller))
    rows = store.alert_history(function_ids=visible, limit=limit + 1, before=before)
    more = len(rows) > limit
    rows = rows[:limit]
    return AlertsOverview(
        rules=tuple(_views(rules, store.alert_states())), history=tuple(rows),
        next_cursor=encode_cursor("alerts", {"at": rows[-1].at.isoformat(), "id": rows[-1].id})
        if more else None)


def _viewable_ids(store: Store, caller: Caller) -> set[str]:
    """The functions the caller may view (their history too, rules or none now)."""
    out: set[str] = set()
    after: str | None = None
    while True:
        batch = store.function_summaries(after=after, limit=500)
        out |= {f.id for f in batch if may(caller, "view", f.access)}
        if len(batch) < 500:
            return out
        after = batch[-1].name


# --- the server's evaluator ------------------------------------------------------------------


def run_evaluator(ws: Workspace, stop: threading.Event, *,
                  on_error: Callable[[Exception], None] | None = None) -> None:
    """Evaluate and deliver every `alerting.interval` until `stop` is set (a thread of each
    server worker; the evaluator's lock and its last run make one evaluation per interval
    across workers and replicas)."""
    holder = _holder()
    while not stop.is_set():
        alerting = ws.settings.alerting
        try:
            store = ws.open_store()
            if deployed_rules(store).rules or store.pending_alert_notifications():
                evaluate_rules(store, alerting, force=False, holder=holder)
                deliver(store, alerting, ws.environ)
        except Exception as exc:  # the loop outlives a database that is away for a while
            if on_error is not None:
                on_error(exc)
        stop.wait(window_seconds(alerting.interval))
