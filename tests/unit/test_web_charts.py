"""The server-side SVG charts: values land where they should, empty and odd data draw
something sane, and no text reaches the SVG unescaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from aiops.web.charts import (
    Bar,
    Series,
    bar_chart,
    format_value,
    nice_ticks,
    time_chart,
    time_ticks,
)

NS = {"s": "http://www.w3.org/2000/svg"}
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # also proves the SVG is well-formed XML


def path_points(d: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"[ML](-?[\d.]+) (-?[\d.]+)", d)]


def series_paths(root: ET.Element) -> list[str]:
    return [p.get("d", "") for p in root.iterfind(".//s:path[@class='chart-line']", NS)]


def test_values_map_to_coordinates_linearly() -> None:
    # Box: left 68, right 480-12 = 468, top 12, bottom 200-28 = 172; ticks 0..10 -> top 10.
    s = Series(name="calls", points=((T0, 0.0), (T0 + HOUR / 2, 5.0), (T0 + HOUR, 10.0)))
    root = parse(time_chart([s], chart_id="c", title="Calls", since=T0, until=T0 + HOUR))
    [d] = series_paths(root)
    assert path_points(d) == [(68, 172), (268, 92), (468, 12)]


def test_the_value_axis_reaches_a_round_value_above_the_highest_point() -> None:
    s = Series(name="calls", points=((T0, 7.0), (T0 + HOUR, 13.0)))
    root = parse(time_chart([s], chart_id="c", title="Calls", since=T0, until=T0 + HOUR))
    labels = [t.text for t in root.iterfind(".//s:g[@class='chart-axis']/s:text", NS)]
    assert labels[:4] == ["0", "5", "10", "15"]
    [d] = series_paths(root)
    # 13 of 15 between bottom 172 and top 12.
    assert path_points(d)[1] == (468, pytest.approx(172 - 13 / 15 * 160, abs=0.01))


def test_an_empty_chart_says_so_and_draws_no_line() -> None:
    svg = time_chart([Series(name="calls", points=())], chart_id="c", title="Calls",
                     since=T0, until=T0 + HOUR)
    root = parse(svg)
    assert series_paths(root) == []
    assert "no data" in (root.find("s:desc", NS).text or "")  # type: ignore[union-attr]


def test_a_lone_point_is_a_dot_and_a_gap_breaks_the_line() -> None:
    s = Series(name="p95", points=((T0, 1.0), (T0 + HOUR / 4, None), (T0 + HOUR / 2, 2.0),
                                   (T0 + HOUR * 3 / 4, 3.0)))
    root = parse(time_chart([s], chart_id="c", title="p95", since=T0, until=T0 + HOUR,
                            unit="ms"))
    dots = root.findall(".//s:circle", NS)
    assert len(dots) == 1 and dots[0].get("cx") == "68"
    [d] = series_paths(root)
    assert len(path_points(d)) == 2


def test_huge_and_non_finite_values_stay_inside_the_box() -> None:
    s = Series(name="cost", points=((T0, 1e15), (T0 + HOUR / 2, float("inf")),
                                    (T0 + HOUR, float("nan"))))
    root = parse(time_chart([s], chart_id="c", title="Cost", since=T0, until=T0 + HOUR,
                            unit="usd"))
    dots = root.findall(".//s:circle", NS)
    assert [(d.get("cx"), float(d.get("cy") or 0)) for d in dots] == [("68", pytest.approx(12))]
    assert "$1000T" in ET.tostring(root, encoding="unicode")


def test_a_step_that_began_before_the_window_is_drawn_at_its_edge() -> None:
    s = Series(name="calls", points=((T0 - HOUR, 1.0), (T0 + HOUR, 1.0)))
    root = parse(time_chart([s], chart_id="c", title="Calls", since=T0, until=T0 + HOUR))
    assert [x for x, _ in path_points(series_paths(root)[0])] == [68, 468]


def test_an_area_closes_down_to_zero() -> None:
    s = Series(name="calls", points=((T0, 1.0), (T0 + HOUR, 1.0)))
    root = parse(time_chart([s], chart_id="c", title="Calls", since=T0, until=T0 + HOUR,
                            area=True))
    [a] = root.findall(".//s:path[@class='chart-area']", NS)
    assert a.get("d", "").endswith("L468 172 L68 172 Z")


def test_text_is_escaped_everywhere() -> None:
    evil = '<script>alert("x")</script>&'
    svg = time_chart([Series(name=evil, points=((T0, 1.0),)), Series(name="b", points=())],
                     chart_id='c"x', title=evil, since=T0, until=T0 + HOUR)
    bars = bar_chart([Bar(label=evil, value=1.0)], chart_id="b", title=evil)
    for doc in (svg, bars):
        assert "<script" not in doc
        root = parse(doc)
        assert root.find("s:title", NS).text == evil  # type: ignore[union-attr]


def test_the_chart_is_labelled_for_assistive_technology() -> None:
    root = parse(time_chart([Series(name="calls", points=((T0, 3.0),))], chart_id="calls",
                            title="Calls per hour", since=T0, until=T0 + HOUR))
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "calls-title calls-desc"
    assert root.find("s:title", NS).get("id") == "calls-title"  # type: ignore[union-attr]
    assert "highest 3" in (root.find("s:desc", NS).text or "")  # type: ignore[union-attr]


def test_bars_scale_to_the_largest_value() -> None:
    root = parse(bar_chart([Bar(label="1.0.0", value=10.0), Bar(label="1.1.0", value=5.0),
                            Bar(label="0.9.0", value=0.0)], chart_id="b", title="By version"))
    widths = [float(r.get("width") or 0) for r in root.iterfind(".//s:rect", NS)]
    assert widths == [260, 130, 0]  # 480 - 150 label - 70 value columns
    groups = root.findall(".//s:g", NS)
    assert [g.get("data-label") for g in groups] == ["1.0.0", "1.1.0", "0.9.0"]


def test_no_bars_is_still_a_chart() -> None:
    root = parse(bar_chart([], chart_id="b", title="By model"))
    assert "no data" in (root.find("s:desc", NS).text or "")  # type: ignore[union-attr]


def test_an_unknown_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="unit"):
        bar_chart([], chart_id="b", title="x", unit="furlongs")


@pytest.mark.parametrize(("top", "ticks"), [
    (0.0, [0.0, 1.0]), (10.0, [0, 5, 10]), (13.0, [0, 5, 10, 15]), (0.003, [0, 0.001, 0.002, 0.003]),
    (1e15, [0, 5e14, 1e15])])
def test_nice_ticks(top: float, ticks: list[float]) -> None:
    assert nice_ticks(top) == pytest.approx(ticks)


def test_time_ticks_are_round_and_few() -> None:
    ticks = time_ticks(T0 + timedelta(minutes=7), T0 + timedelta(minutes=67))
    assert ticks[0] == T0 + timedelta(minutes=10) and len(ticks) <= 7
    assert all(t.minute % 10 == 0 for t in ticks)
    month = time_ticks(T0 - timedelta(days=30), T0)
    assert 2 <= len(month) <= 7 and all(t.hour == 0 for t in month)


@pytest.mark.parametrize(("value", "unit", "text"), [
    (None, "count", "–"), (1520, "count", "1.5k"), (3, "count", "3"), (2.5e6, "count", "2.5M"),
    (0.0079, "ratio", "0.8%"), (981.2, "ms", "981 ms"), (1649, "ms", "1.65 s"),
    (0.099408, "usd", "$0.0994"), (12.5, "usd", "$12.50"), (25300, "usd", "$25.3k"), (0, "usd", "$0"),
    (0.00005, "usd", "$0.00005"), (0.000137, "usd", "$0.000137"), (0.5, "usd", "$0.5"),
    (1e-12, "usd", "$0")])
def test_format_value(value: float | None, unit: str, text: str) -> None:
    assert format_value(value, unit) == text
