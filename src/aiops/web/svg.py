"""Small SVG drawn on the server: the functions list's sparklines. Only numbers go into the
markup, so it is safe to embed as it is (`aiops.web.charts` draws the monitoring charts)."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup


def sparkline(values: Sequence[float], *, width: int = 96, height: int = 24,
              label: str = "") -> Markup:
    """A line through `values` (oldest first), scaled to the highest; a flat line at the
    bottom when all are zero. `label` is what a screen reader hears."""
    top = max(values, default=0) or 1
    n = len(values)
    step = width / (n - 1) if n > 1 else 0
    pad = 2
    points = " ".join(f"{i * step:.1f},{height - pad - (v / top) * (height - 2 * pad):.1f}"
                      for i, v in enumerate(values))
    title = Markup("<title>{}</title>").format(label) if label else Markup("")
    return Markup(
        '<svg class="spark" role="img" aria-label="{label}" width="{w}" height="{h}" '
        'viewBox="0 0 {w} {h}">{title}<line class="base" x1="0" y1="{b}" x2="{w}" y2="{b}"/>'
        '<polyline points="{points}"/></svg>').format(
            label=label, w=width, h=height, title=title, b=height - pad, points=points)
