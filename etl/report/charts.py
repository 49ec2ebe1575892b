"""The report's charts, drawn with Plotly (plotly.py builds the figure, plotly.js draws it).

Each ``render_*`` function takes a frame from :mod:`etl.report.data` and returns the HTML of
one chart (a ``<div>`` and the ``<script>`` that draws it, without plotly.js itself, which
the page inlines once), or None when there is nothing to draw: the page then says so in
words instead of showing an empty chart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

__all__ = [
    "STATE_COLORS",
    "display_names",
    "render_dr_coverage",
    "render_durations",
    "render_initiators",
    "render_tasks_per_day",
    "render_weekly_failures",
]

STATE_COLORS = {
    "Completed": "#2e9e5b",
    "Failed": "#d64545",
    "Stopped": "#8c8c8c",
    "InProgress": "#3b7dd8",
    "WaitingForUserInput": "#e0a030",
    "Paused": "#9b59b6",
    "Cancelling": "#c0792f",
    "FirstUnusedValue": "#bbbbbb",
}
PALETTE = [
    "#3b7dd8",
    "#e0a030",
    "#2e9e5b",
    "#d64545",
    "#9b59b6",
    "#17a2b8",
    "#c0792f",
    "#6c757d",
    "#e83e8c",
    "#20c997",
]
_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d"]}
_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


def display_names(names: pd.Series, identifiers: pd.Series) -> pd.Series:
    """A VPG's name, or its identifier when the warehouse has no name for it."""
    return names.where(names.notna() & (names.astype("string") != ""), identifiers)


def render_tasks_per_day(daily: pd.DataFrame) -> str | None:
    """Stacked bars: tasks started each UTC day, by state."""
    import plotly.graph_objects as go

    if daily.empty:
        return None
    counts = daily.groupby(["day", "state_name"], as_index=False)["tasks"].sum()
    figure = go.Figure()
    for state in _ordered(counts["state_name"].unique(), list(STATE_COLORS)):
        rows = counts[counts["state_name"] == state]
        figure.add_bar(
            x=rows["day"],
            y=rows["tasks"],
            name=state,
            marker_color=STATE_COLORS.get(state, "#999999"),
            hovertemplate="%{x}<br>" + state + ": %{y}<extra></extra>",
        )
    _layout(figure, barmode="stack", yaxis_title="tasks started", xaxis_type="date")
    return _html(figure, "chart-tasks-per-day")


def render_weekly_failures(weekly: pd.DataFrame) -> str | None:
    """Stacked bars: failed tasks per ISO week, by task type; the hover names the commonest
    failure reason."""
    import plotly.graph_objects as go

    failed = weekly[weekly["failed_tasks"] > 0] if not weekly.empty else weekly
    if failed.empty:
        return None
    per_type = failed.groupby("type")["failed_tasks"].sum().sort_values(ascending=False)
    top = list(per_type.index[: len(PALETTE) - 1])
    figure = go.Figure()
    for index, task_type in enumerate([*top, "other types"]):
        if task_type == "other types":
            rows = failed[~failed["type"].isin(top)]
            if rows.empty:
                continue
        else:
            rows = failed[failed["type"] == task_type]
        grouped = rows.groupby(["week_start", "iso_week"], as_index=False).agg(
            failed_tasks=("failed_tasks", "sum"),
            finished_tasks=("finished_tasks", "sum"),
            reason=("reason_1", "first"),
        )
        figure.add_bar(
            x=grouped["week_start"],
            y=grouped["failed_tasks"],
            name=task_type,
            marker_color=PALETTE[index % len(PALETTE)],
            customdata=grouped[["iso_week", "finished_tasks", "reason"]].astype(str).to_numpy(),
            hovertemplate=(
                f"<b>{task_type}</b> · %{{customdata[0]}}<br>%{{y}} failed of "
                "%{customdata[1]} finished<br>commonest reason: %{customdata[2]}<extra></extra>"
            ),
        )
    _layout(
        figure, barmode="stack", yaxis_title="failed tasks", xaxis_title="week starting (Monday)"
    )
    figure.update_xaxes(type="date", tickformat="%d %b")
    return _html(figure, "chart-weekly-failures")


def render_durations(durations: pd.DataFrame) -> str | None:
    """Horizontal boxes per task type, from the percentiles: the box spans p25 to p75 with
    the median inside, the whiskers reach the fastest and the slowest; log scale."""
    import plotly.graph_objects as go

    if durations.empty:
        return None
    shown = durations.sort_values("median_seconds").tail(20)
    figure = go.Figure()
    figure.add_trace(
        go.Box(
            y=shown["type"],
            q1=shown["p25_seconds"],
            median=shown["median_seconds"],
            q3=shown["p75_seconds"],
            lowerfence=shown["min_seconds"],
            upperfence=shown["max_seconds"],
            orientation="h",
            marker_color="#3b7dd8",
            name="duration",
            showlegend=False,
        )
    )
    figure.add_scatter(
        y=shown["type"],
        x=shown["p95_seconds"],
        mode="markers",
        name="p95",
        marker={"symbol": "diamond", "size": 8, "color": "#d64545"},
        hovertemplate="%{y}<br>p95: %{x:.1f} s<extra></extra>",
    )
    _layout(figure, xaxis_title="seconds (log scale)", height=max(320, 26 * len(shown) + 120))
    figure.update_xaxes(type="log")
    return _html(figure, "chart-durations")


def render_dr_coverage(dr_tests: pd.DataFrame, *, days: int) -> str | None:
    """Horizontal bars: days since each VPG's last successful failover test, red beyond
    ``days``; VPGs never tested are listed in the table, not drawn."""
    import plotly.graph_objects as go

    tested = (
        dr_tests[dr_tests["last_success_started_at"].notna()] if not dr_tests.empty else dr_tests
    )
    if tested.empty:
        return None
    names = display_names(tested["vpg_name"], tested["vpg_identifier"])
    ages = tested["days_since_last_success"].astype(float)
    order = ages.sort_values(ascending=True).index
    colors = ["#d64545" if ages[i] > days else "#2e9e5b" for i in order]
    figure = go.Figure()
    figure.add_bar(
        y=names[order],
        x=ages[order],
        orientation="h",
        marker_color=colors,
        customdata=tested.loc[order, ["last_success_initiated_by"]].astype(str).to_numpy(),
        hovertemplate="%{y}<br>%{x:.1f} days ago, by %{customdata[0]}<extra></extra>",
        showlegend=False,
    )
    figure.add_vline(x=days, line_dash="dash", line_color="#d64545")
    figure.add_annotation(
        x=days, y=1, yref="paper", text=f"{days} days", showarrow=False, yanchor="bottom"
    )
    _layout(
        figure,
        xaxis_title="days since the last successful test",
        height=max(300, 22 * len(order) + 120),
    )
    return _html(figure, "chart-dr-coverage")


def render_initiators(initiators: pd.DataFrame, *, top: int = 10) -> str | None:
    """Horizontal stacked bars: the busiest initiators, their tasks by type."""
    import plotly.graph_objects as go

    if initiators.empty:
        return None
    frame = initiators.assign(initiated_by=initiators["initiated_by"].fillna("(none)"))
    totals = frame.groupby("initiated_by")["tasks"].sum().sort_values(ascending=False)
    people = list(totals.index[:top])
    frame = frame[frame["initiated_by"].isin(people)]
    types = frame.groupby("type")["tasks"].sum().sort_values(ascending=False)
    top_types = list(types.index[: len(PALETTE) - 1])
    frame = frame.assign(type=frame["type"].where(frame["type"].isin(top_types), "other types"))
    grouped = frame.groupby(["initiated_by", "type"], as_index=False)["tasks"].sum()
    figure = go.Figure()
    for index, task_type in enumerate([*top_types, "other types"]):
        rows = grouped[grouped["type"] == task_type]
        if rows.empty:
            continue
        figure.add_bar(
            y=rows["initiated_by"],
            x=rows["tasks"],
            name=task_type,
            orientation="h",
            marker_color=PALETTE[index % len(PALETTE)],
            hovertemplate="%{y}<br>" + task_type + ": %{x}<extra></extra>",
        )
    _layout(figure, barmode="stack", xaxis_title="tasks", height=max(320, 34 * len(people) + 140))
    figure.update_yaxes(categoryorder="array", categoryarray=list(reversed(people)))
    return _html(figure, "chart-initiators")


def _ordered(values: Any, preferred: list[str]) -> list[str]:
    present = [str(v) for v in values]
    return [v for v in preferred if v in present] + sorted(set(present) - set(preferred))


def _layout(figure: go.Figure, *, height: int = 360, **axes: Any) -> None:
    figure.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        font={"family": _FONT, "size": 12},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        **axes,
    )
    figure.update_yaxes(automargin=True)
    figure.update_xaxes(automargin=True)


def _html(figure: go.Figure, div_id: str) -> str:
    html: str = figure.to_html(
        full_html=False, include_plotlyjs=False, div_id=div_id, config=_CONFIG
    )
    return html
