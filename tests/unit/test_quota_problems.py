"""A refused budget or quota answers 429 with its stable code and a Retry-After header
(`aiops.server.api.problems`), through a real ASGI app."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from aiops.errors import AiopsError, BudgetExceeded, LimitExceeded, QuotaExceeded
from aiops.server.api import problems


def answer(exc: AiopsError) -> tuple[int, dict[str, str], dict[str, object]]:
    app = FastAPI()
    problems.install(app)

    @app.get("/run")
    def run() -> None:
        raise exc

    response = TestClient(app).get("/run")
    return response.status_code, dict(response.headers), response.json()


def test_a_spent_daily_quota_is_429_quota_exceeded_until_midnight() -> None:
    status, headers, body = answer(QuotaExceeded(
        "token app: today's call quota is spent (daily_calls 20: 20 made); it resets at "
        "00:00 UTC", limit="daily_calls", retry_after_s=27041.2))
    assert status == 429 and body["code"] == "quota-exceeded"
    assert headers["retry-after"] == "27042"  # whole seconds, rounded up
    assert "daily_calls 20" in str(body["detail"])


def test_an_rpm_window_says_when_it_has_room_and_a_budget_too() -> None:
    status, headers, body = answer(QuotaExceeded("no room", limit="rpm", retry_after_s=0.2))
    assert (status, headers["retry-after"], body["code"]) == (429, "1", "quota-exceeded")
    status, headers, body = answer(BudgetExceeded("spent", limit="daily_calls",
                                                  retry_after_s=61.0))
    assert (status, headers["retry-after"], body["code"]) == (429, "61", "budget-exceeded")


def test_no_retry_after_when_nothing_says_when() -> None:
    for exc in (BudgetExceeded("spent"), LimitExceeded("rate limit reached")):
        status, headers, _ = answer(exc)
        assert status == 429 and "retry-after" not in headers
