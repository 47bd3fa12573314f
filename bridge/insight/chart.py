"""The chart of an alert: its series over the last hour, the threshold and when it started, as a PNG."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, tzinfo

from bridge.insight.prometheus import Series

__all__ = ["MAX_LINES", "render_chart", "series_label"]

MAX_LINES = 5  # more lines than this is a tangle, not a picture
_THRESHOLD_COLOUR = "#D32F2F"
_START_COLOUR = "#616161"


def series_label(series: Series, others: Sequence[Series]) -> str:
    """What tells this line from the others: the labels whose values differ between them."""
    keys = sorted({k for s in others for k in s.labels if k != "__name__"})
    differing = [k for k in keys if len({s.labels.get(k) for s in others}) > 1] or keys[:2]
    return ", ".join(f"{k}={series.labels.get(k, '')}" for k in differing)[:60] or "value"


def render_chart(
    series: Sequence[Series],
    threshold: float | None,
    started: datetime | None,
    title: str,
    zone: tzinfo | None = None,
) -> bytes:
    """A PNG of up to MAX_LINES series; CPU-bound, so callers run it in a worker thread."""
    # Imported here: matplotlib costs a noticeable start-up time, and only charts need it. The Agg canvas
    # draws without a display, and a Figure of its own (no pyplot state) is safe to draw outside the main thread.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import DateFormatter
    from matplotlib.figure import Figure

    lines = sorted(series, key=lambda s: max((v for _, v in s.points), default=0.0), reverse=True)[:MAX_LINES]
    fig = Figure(figsize=(8, 3), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for s in lines:
        times = [datetime.fromtimestamp(t, zone) for t, _ in s.points]
        ax.plot(times, [v for _, v in s.points], linewidth=1.6, label=series_label(s, lines))
    if threshold is not None:
        # Not antialiased: a crisp line in exactly the threshold colour (and easy to find in a test).
        ax.axhline(
            threshold,
            color=_THRESHOLD_COLOUR,
            linestyle="--",
            linewidth=1.5,
            antialiased=False,
            label=f"threshold {threshold:g}",
        )
    first = min((t for s in lines for t, _ in s.points), default=None)
    if started is not None and first is not None and started.timestamp() >= first:  # else it is off the chart
        ax.axvline(started.astimezone(zone), color=_START_COLOUR, linestyle=":", linewidth=1.2, label="started")
    ax.set_title(title[:80], fontsize=10, loc="left")
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M", tz=zone))
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7, loc="upper left", framealpha=0.8)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()
