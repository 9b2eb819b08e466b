"""Golden-test reports: a text table for terminals, JSON, markdown for a pull-request comment,
and JUnit XML for CI. Pure: a `GoldenReport` in, a string out.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from aiops.golden import CaseResult, GoldenReport

MARKER = "<!-- aiops-golden-tests -->"
_SYMBOL = {"passed": "ok", "failed": "FAIL", "error": "ERROR", "miss": "MISS",
           "no-cassette": "NO CASSETTE"}
_EMOJI = {"passed": "✅", "failed": "❌", "error": "💥", "miss": "🎞️", "no-cassette": "🎞️"}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.6f}".rstrip("0").rstrip(".") if value else "$0"


def _why(result: CaseResult) -> list[str]:
    """The lines that explain a result that did not pass."""
    lines: list[str] = []
    if result.status == "failed":
        lines.extend(a.message for a in result.failures)  # each says what, where, what came
    elif result.message:
        lines.append(result.message)
    if result.diff:
        lines.extend(result.diff.splitlines())
    if result.fix:
        lines.append(f"fix: {result.fix}")
    return lines


def render_text(report: GoldenReport, *, verbose: bool = False) -> str:
    """A table (one row per case), then the explanation of every case that did not pass."""
    rows = [("TEST", "PROVIDER", "MODEL", "RESULT", "LATENCY", "COST")]
    for r in report.results:
        result = _SYMBOL[r.status]
        if r.status == "failed":
            result += f" ({len(r.failures)}/{len(r.assertions)})"
        if r.recorded:
            result += f" [recorded {r.recorded}]"
        rows.append((f"{r.function}::{r.test}", r.provider, r.model, result, _ms(r.latency_ms),
                     _usd(r.cost_usd)))
    out: list[str] = []
    if report.results:
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                       .rstrip())
    for r in report.results:
        if r.passed and not verbose:
            continue
        out.append("")
        out.append(f"{_SYMBOL[r.status]} {r.id}  ({r.cassette})")
        if r.passed:
            out.extend(f"  ✓ {a.description}" for a in r.assertions)
        out.extend(f"  {line}" for line in _why(r))
    if report.skipped:
        out.append("")
        out.extend(f"skipped: {s}" for s in report.skipped)
    out.append("")
    out.append(report.summary())
    return "\n".join(out) + "\n"


def render_json(report: GoldenReport) -> str:
    return json.dumps(report.as_dict(), indent=2, ensure_ascii=False, default=str) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: GoldenReport) -> str:
    """A summary for a pull-request comment: verdict first, failures in detail, passes folded."""
    out = [MARKER, "### aiops golden tests", ""]
    verdict = "✅" if report.ok else "❌"
    out.append(f"{verdict} **{report.summary()}**")
    out.append("")
    failing = [r for r in report.results if not r.passed]
    if failing:
        out.append("| Test | Provider | Result | Why |")
        out.append("|---|---|---|---|")
        for r in failing:
            why = _why(r)
            first = why[0] if why else ""
            out.append(f"| `{r.function}::{r.test}` | {r.provider} | {_EMOJI[r.status]} "
                       f"{r.status} | {_md_escape(first)} |")
        out.append("")
        for r in failing:
            details = _why(r)
            if len(details) <= 1:
                continue
            out.append(f"<details><summary><code>{r.id}</code></summary>")
            out.append("")
            fence = _fence(details)
            out.append(f"{fence}diff" if r.diff else fence)
            out.extend(details)
            out.append(fence)
            out.append("</details>")
            out.append("")
    passing = [r for r in report.results if r.passed]
    if passing:
        out.append(f"<details><summary>{len(passing)} passed</summary>")
        out.append("")
        out.append("| Test | Provider | Model | Latency | Cost |")
        out.append("|---|---|---|---|---|")
        for r in passing:
            out.append(f"| `{r.function}::{r.test}` | {r.provider} | {r.model} | "
                       f"{_ms(r.latency_ms)} | {_usd(r.cost_usd)} |")
        out.append("")
        out.append("</details>")
    return "\n".join(out).rstrip() + "\n"


def render_junit(report: GoldenReport) -> str:
    """JUnit XML: one testsuite per function and provider, one testcase per test."""
    suites: dict[tuple[str, str], list[CaseResult]] = {}
    for r in report.results:
        suites.setdefault((r.function, r.provider), []).append(r)
    root = ET.Element("testsuites", name="aiops golden tests", tests=str(len(report.results)),
                      failures=str(sum(r.status in ("failed", "miss", "no-cassette")
                                       for r in report.results)),
                      errors=str(sum(r.status == "error" for r in report.results)),
                      time=f"{report.duration_s:.3f}")
    for (function, provider), results in suites.items():
        suite = ET.SubElement(
            root, "testsuite", name=f"{function}[{provider}]", tests=str(len(results)),
            failures=str(sum(r.status in ("failed", "miss", "no-cassette") for r in results)),
            errors=str(sum(r.status == "error" for r in results)), skipped="0",
            time=f"{sum((r.latency_ms or 0) for r in results) / 1000:.3f}")
        for r in results:
            case = ET.SubElement(suite, "testcase", classname=f"aiops.{function}.{provider}",
                                 name=r.test, time=f"{(r.latency_ms or 0) / 1000:.3f}",
                                 file=r.cassette)
            why = _xml_safe("\n".join(_why(r)))
            if r.status == "error":
                err = ET.SubElement(case, "error", message=_first(why), type="error")
                err.text = why
            elif not r.passed:
                fail = ET.SubElement(case, "failure", message=_first(why), type=r.status)
                fail.text = why
            props = ET.SubElement(case, "properties")
            for name, value in (("model", r.model), ("cost_usd", r.cost_usd)):
                if value is not None:
                    ET.SubElement(props, "property", name=name, value=_xml_safe(str(value)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# What XML 1.0 cannot hold (control characters, lone surrogates), as a model's output can.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_safe(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _fence(lines: list[str]) -> str:
    """A code fence longer than any run of backticks in `lines` (a prompt may hold ```)."""
    longest = max((len(run) for line in lines for run in re.findall("`+", line)), default=0)
    return "`" * max(3, longest + 1)


def _first(text: str) -> str:
    return text.splitlines()[0][:500] if text else ""


RENDERERS: dict[str, Any] = {"text": render_text, "json": render_json,
                             "markdown": render_markdown}
