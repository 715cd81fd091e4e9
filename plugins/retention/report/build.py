"""Queries and charts of the retention report (see :mod:`retention.report`).

Each :class:`Section` names the relations it reads, one aggregate query per chart and a
function drawing the figure. The page is assembled by :func:`build_report`; a section
whose relations are missing (a finance-only warehouse, a sync that never ran) renders a
one-line note instead of a chart, so the report works at every stage of adoption.
"""

from __future__ import annotations

import html
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from retention import warehouse

log = logging.getLogger(__name__)

TIER_COLOURS = {"red": "#d62728", "yellow": "#e6b800", "green": "#2ca02c", "unscored": "#aaaaaa"}
MOVEMENT_COLOURS = {
    "new": "#2ca02c", "expansion": "#98df8a", "reactivation": "#17becf",
    "contraction": "#ff9896", "churned": "#d62728",
}


@dataclass(frozen=True)
class Chart:
    """One chart: its id in the page, a title, a caption and its figure (or why it has none)."""

    chart_id: str
    title: str
    caption: str
    figure: go.Figure | None = None
    missing: str | None = None


@dataclass
class ReportResult:
    path: Path
    charts: list[Chart] = field(default_factory=list)

    @property
    def rendered(self) -> list[str]:
        return [c.chart_id for c in self.charts if c.figure is not None]

    @property
    def missing(self) -> dict[str, str]:
        return {c.chart_id: c.missing for c in self.charts if c.missing}


def _exists(conn, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]


def _frame(conn, sql: str) -> pd.DataFrame:
    cur = conn.execute(sql)
    cols = [d.name for d in cur.description]
    return pd.DataFrame(cur.fetchall(), columns=cols)


def _layout(fig: go.Figure, height: int = 420) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=60, r=20, t=30, b=50), template="plotly_white",
                      legend=dict(orientation="h", y=-0.2))
    return fig


# --- charts -----------------------------------------------------------------------------


def cohort_heatmaps(conn) -> list[Chart]:
    df = _frame(conn, """
        select cohort_month, months_since, cohort_size, logo_retention, revenue_retention
        from marts.cohort_retention order by cohort_month, months_since""")
    charts = []
    for measure, title in (("logo_retention", "Logo retention by signup cohort"),
                           ("revenue_retention", "Revenue retention by signup cohort")):
        if df.empty:
            charts.append(Chart(f"cohort_{measure}", title, "", missing="marts.cohort_retention is empty"))
            continue
        grid = df.pivot(index="cohort_month", columns="months_since", values=measure).astype(float) * 100
        sizes = df.groupby("cohort_month")["cohort_size"].first()
        labels = [f"{m:%Y-%m} (n={sizes[m]})" for m in grid.index]
        fig = go.Figure(go.Heatmap(
            z=grid.values, x=[int(c) for c in grid.columns], y=labels, colorscale="Blues", zmin=0,
            zmax=max(100.0, float(pd.Series(grid.values.ravel()).max(skipna=True) or 0)),
            colorbar=dict(title="%"), hovertemplate="cohort %{y}<br>month %{x}: %{z:.1f}%<extra></extra>",
        ))
        fig.update_yaxes(autorange="reversed", title="signup cohort")
        fig.update_xaxes(title="months since first payment")
        charts.append(Chart(
            f"cohort_{measure}", title,
            "Share of each cohort's paying accounts (logos) or starting MRR (revenue) still there "
            "N months later; revenue above 100% is expansion.",
            _layout(fig, 120 + 22 * len(labels)),
        ))
    return charts


def mrr_waterfall(conn) -> list[Chart]:
    df = _frame(conn, """
        select month, start_mrr, new_mrr, expansion_mrr, reactivation_mrr, contraction_mrr, churned_mrr,
               end_mrr, nrr_t12m, grr_t12m
        from marts.mrr_movements order by month""")
    if df.empty:
        return [Chart("mrr_movements", "MRR movements", "", missing="marts.mrr_movements is empty")]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for name in ("new", "expansion", "reactivation"):
        fig.add_bar(x=df["month"], y=df[f"{name}_mrr"].astype(float), name=name,
                    marker_color=MOVEMENT_COLOURS[name])
    for name, column in (("contraction", "contraction_mrr"), ("churned", "churned_mrr")):
        fig.add_bar(x=df["month"], y=-df[column].astype(float), name=name, marker_color=MOVEMENT_COLOURS[name])
    fig.add_scatter(x=df["month"], y=df["end_mrr"].astype(float), name="ending MRR", mode="lines",
                    line=dict(color="#1f77b4", width=2), secondary_y=True)
    for column, label, dash in (("nrr_t12m", "NRR (trailing 12 m)", "dot"), ("grr_t12m", "GRR (trailing 12 m)", "dash")):
        series = df[column].astype(float) * 100
        if series.notna().any():
            fig.add_scatter(x=df["month"], y=series, name=label, mode="lines", yaxis="y3",
                            line=dict(dash=dash, color="#555555"))
    fig.update_layout(barmode="relative",
                      yaxis3=dict(overlaying="y", side="left", position=0.0, showgrid=False, visible=False))
    fig.update_yaxes(title_text="MRR movement", secondary_y=False)
    fig.update_yaxes(title_text="ending MRR", secondary_y=True)
    nrr = df["nrr_t12m"].dropna()
    caption = "New, expansion and reactivation MRR above zero; contraction and churn below; the line is ending MRR."
    if not nrr.empty:
        caption += f" Latest trailing-12-month NRR {float(nrr.iloc[-1]):.0%}, GRR {float(df['grr_t12m'].dropna().iloc[-1]):.0%}."
    else:
        caption += " NRR/GRR need 12 months of history."
    return [Chart("mrr_movements", "MRR movements by month", caption, _layout(fig))]


def activation(conn) -> list[Chart]:
    df = _frame(conn, """
        select signup_month, accounts, activation_rate, median_days_to_value
        from marts.activation_cohorts order by signup_month""")
    if df.empty:
        return [Chart("activation", "Activation by signup cohort", "", missing="marts.activation_cohorts is empty")]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=df["signup_month"], y=df["activation_rate"].astype(float) * 100, name="activation rate (%)",
                marker_color="#1f77b4")
    fig.add_scatter(x=df["signup_month"], y=df["median_days_to_value"].astype(float), name="median days to value",
                    mode="lines+markers", line=dict(color="#ff7f0e"), secondary_y=True)
    fig.update_yaxes(title_text="activated (%)", secondary_y=False)
    fig.update_yaxes(title_text="days to value", secondary_y=True)
    fig.update_xaxes(title_text="signup month", tickformat="%b %Y", dtick="M1")  # months, also for one cohort
    return [Chart("activation", "Activation rate and time to value by signup cohort",
                  "Share of each signup month that reached every required onboarding milestone, and the median "
                  "days it took.", _layout(fig))]


def churn_drivers(conn) -> list[Chart]:
    charts = []
    moments = _frame(conn, """
        select driver_type || ': ' || driver || ' (' || within_days || ' d)' as driver,
               retention_reached, retention_not_reached
        from marts.churn_moments_of_value
        where retention_reached is not null and retention_not_reached is not null
        order by retention_reached - retention_not_reached""")
    if moments.empty:
        charts.append(Chart("moments_of_value", "Moments of value", "",
                            missing="marts.churn_moments_of_value has no driver with both groups"))
    else:
        fig = go.Figure()
        fig.add_bar(y=moments["driver"], x=moments["retention_reached"].astype(float) * 100, name="reached",
                    orientation="h", marker_color="#2ca02c")
        fig.add_bar(y=moments["driver"], x=moments["retention_not_reached"].astype(float) * 100,
                    name="not reached", orientation="h", marker_color="#d62728")
        fig.update_xaxes(title="still paying at the check day (%)")
        charts.append(Chart("moments_of_value", "Moments of value: retention of accounts that reached each milestone "
                            "or key feature early, against those that did not",
                            "The larger the gap, the more that step predicts staying.",
                            _layout(fig, 160 + 44 * len(moments))))
    causes = _frame(conn, """
        select cause_type || ': ' || cause as cause, churns, share_of_churns
        from marts.churn_cause_counts
        where window_end = (select max(window_end) from marts.churn_cause_counts)
        order by churns""")
    if causes.empty:
        charts.append(Chart("churn_causes", "Churn causes", "", missing="no churn in the latest window"))
    else:
        fig = go.Figure(go.Bar(y=causes["cause"], x=causes["churns"], orientation="h", marker_color="#d62728",
                               text=[f"{float(v):.0%}" for v in causes["share_of_churns"]]))
        fig.update_xaxes(title="churned accounts")
        charts.append(Chart("churn_causes", "Likely causes of the latest churns",
                            "A churned account counts once per cause it shows (milestone never reached, "
                            "cancellation reason, failed payment, recurring support topic).",
                            _layout(fig, 160 + 26 * len(causes))))
    return charts


def health(conn) -> list[Chart]:
    tiers = _frame(conn, """
        select date, tier, count(*) as accounts
        from marts.account_health_daily
        where is_month_end and is_paying
        group by date, tier order by date""")
    charts = []
    if tiers.empty:
        charts.append(Chart("health_tiers", "Health tiers", "", missing="marts.account_health_daily is empty"))
    else:
        fig = go.Figure()
        for tier in ("red", "yellow", "green", "unscored"):
            part = tiers[tiers["tier"] == tier]
            if not part.empty:
                fig.add_scatter(x=part["date"], y=part["accounts"], name=tier, stackgroup="tiers", mode="lines",
                                line=dict(color=TIER_COLOURS[tier]))
        fig.update_yaxes(title="paying accounts")
        charts.append(Chart("health_tiers", "Health tier of paying accounts at each month-end",
                            "Red <= 50, yellow <= 75, green above (METRICS.md).", _layout(fig)))
    backtest = _frame(conn, """
        select tier, sum(accounts) as accounts, sum(churned_90d) as churned_90d, avg(lift_90d) as lift_90d
        from marts.health_backtest group by tier""")
    if backtest.empty:
        charts.append(Chart("health_backtest", "Health backtest", "", missing="marts.health_backtest is empty"))
    else:
        auc = _frame(conn, "select avg(auc_90d) as auc from marts.health_backtest where tier = 'all'")["auc"].iloc[0]
        rows = backtest[backtest["tier"] != "all"].set_index("tier").reindex(["red", "yellow", "green"]).dropna(how="all")
        fig = go.Figure(go.Bar(
            x=list(rows.index), y=rows["lift_90d"].astype(float), marker_color=[TIER_COLOURS[t] for t in rows.index],
            text=[f"{int(a)} scored, {int(c)} churned" for a, c in zip(rows["accounts"], rows["churned_90d"])],
            hovertemplate="%{x}: lift %{y:.2f}<br>%{text}<extra></extra>",
        ))
        fig.add_hline(y=1.0, line_dash="dot", line_color="#555555")
        fig.update_yaxes(title="90-day churn lift vs base rate")
        caption = "How much more (or less) often each tier churned within 90 days than all paying accounts."
        if auc is not None and not pd.isna(auc):
            caption += f" Mean monthly AUC of the score against 90-day churn: {float(auc):.2f}."
        charts.append(Chart("health_backtest", "Does the health tier predict churn?", caption, _layout(fig, 360)))
    return charts


def segments(conn) -> list[Chart]:
    df = pd.DataFrame()
    if _exists(conn, "marts.segment_membership_history"):
        # members on each as-of date a run saw: entered on or before it, not exited by it
        df = _frame(conn, """
            with runs as (
                select entered_on as d from marts.segment_membership_history
                union select last_seen_on from marts.segment_membership_history
                union select exited_on from marts.segment_membership_history where exited_on is not null
            )
            select r.d as date, h.segment_key, count(*) as members
            from runs as r
            inner join marts.segment_membership_history as h
                on h.entered_on <= r.d and (h.exited_on is null or h.exited_on > r.d)
            group by 1, 2 order by 1""")
    if df.empty or df["date"].nunique() < 2:
        df = _frame(conn, """
            select as_of_date as date, segment_key, count(*) as members
            from marts.segment_members group by 1, 2""")
    if df.empty:
        return [Chart("segments", "Segment sizes", "", missing="marts.segment_members is empty")]
    fig = go.Figure()
    if df["date"].nunique() > 1:
        for key, part in df.groupby("segment_key"):
            fig.add_scatter(x=part["date"], y=part["members"], name=key, mode="lines+markers")
        caption = "Members of each segment on each day the pipeline ran."
        height = 460
    else:
        df = df.sort_values("members")
        fig.add_bar(y=df["segment_key"], x=df["members"], orientation="h", marker_color="#1f77b4")
        fig.update_xaxes(title="members")
        caption = f"Members of each segment as of {df['date'].iloc[0]} (one run so far: sizes over time need more)."
        height = 160 + 26 * df["segment_key"].nunique()
    return [Chart("segments", "Segment sizes", caption, _layout(fig, height))]


def last_syncs(conn) -> list[Chart]:
    if not _exists(conn, "activation.sync_runs"):
        return [Chart("sync_runs", "Last sync per destination", "", missing="no sync has run yet (activation.sync_runs)")]
    df = _frame(conn, "select * from activation.sync_runs")
    if df.empty:
        return [Chart("sync_runs", "Last sync per destination", "", missing="no sync has run yet (activation.sync_runs)")]
    order = "started_at" if "started_at" in df.columns else df.columns[0]
    last = df.sort_values(order).groupby("sync_name" if "sync_name" in df.columns else "sync").tail(1)
    shown = [c for c in ("sync_name", "sync", "as_of", "as_of_date", "started_at", "added", "updated", "removed",
                         "unchanged", "failed", "invalid", "halted", "halt_reason") if c in last.columns]
    fig = go.Figure(go.Table(
        header=dict(values=shown, fill_color="#e8eef7", align="left"),
        cells=dict(values=[last[c].astype(str).tolist() for c in shown], align="left"),
    ))
    return [Chart("sync_runs", "Last sync per destination", "Counts of the newest run of each sync.",
                  _layout(fig, 120 + 30 * len(last)))]


SECTIONS: tuple[tuple[str, tuple[str, ...], Callable], ...] = (
    ("Cohort retention", ("marts.cohort_retention",), cohort_heatmaps),
    ("MRR movements", ("marts.mrr_movements",), mrr_waterfall),
    ("Activation", ("marts.activation_cohorts",), activation),
    ("Churn drivers", ("marts.churn_moments_of_value", "marts.churn_cause_counts"), churn_drivers),
    ("Account health", ("marts.account_health_daily", "marts.health_backtest"), health),
    ("Segments", ("marts.segment_members",), segments),
    ("Sync", (), last_syncs),
)


# --- page -------------------------------------------------------------------------------

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Retention report</title>
<style>
 body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px;
        padding: 1rem 2rem; color: #222; }}
 h1 {{ margin-bottom: .2rem; }} .meta {{ color: #666; margin-top: 0; }}
 section {{ margin: 2rem 0; }} .chart {{ margin: 1rem 0 2rem; }} .caption {{ color: #555; font-size: .9rem; }}
 .missing {{ color: #8a6d3b; background: #fcf8e3; padding: .5rem 1rem; border-radius: 4px; }}
</style>
<script>
 window.__reportErrors = [];
 window.addEventListener("error", function (e) {{ window.__reportErrors.push(String(e.message)); }});
 (function (original) {{
   console.error = function () {{ window.__reportErrors.push(Array.from(arguments).join(" ")); original.apply(console, arguments); }};
 }})(console.error);
</script>
<script>{plotlyjs}</script>
</head><body>
<h1>Retention report</h1>
<p class="meta">Built {built} from the marts in {where}. {n_charts} charts.</p>
{body}
<script>
 (function () {{
   var want = {n_charts};
   function check() {{
     var drawn = document.querySelectorAll(".js-plotly-plot .main-svg").length > 0
       ? document.querySelectorAll(".js-plotly-plot").length : 0;
     document.body.setAttribute("data-charts-rendered", drawn);
     document.body.setAttribute("data-errors", window.__reportErrors.length);
     if (drawn < want) {{ setTimeout(check, 50); }}
   }}
   check();
 }})();
</script>
</body></html>
"""


def _render_chart(chart: Chart) -> str:
    head = f'<div class="chart" id="{chart.chart_id}"><h3>{html.escape(chart.title)}</h3>'
    if chart.figure is None:
        return head + f'<p class="missing">Not available: {html.escape(chart.missing or "no data")}.</p></div>'
    fig_html = chart.figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig_{chart.chart_id}",
                                    config={"displaylogo": False, "responsive": True})
    return head + fig_html + f'<p class="caption">{html.escape(chart.caption)}</p></div>'


def default_path() -> Path:
    """Where the demo, the sync_segments DAG and ``retention report`` write the report
    (``RETENTION_REPORTS_DIR``, default ``reports/``; the Airflow UI plugin serves it)."""
    from retention.config import settings

    return settings().report_path


def build_report(url: str, out: Path) -> ReportResult:
    """Write the report to ``out`` (atomically) and say which charts it drew."""
    out = Path(out)
    charts: list[Chart] = []
    body: list[str] = []
    with warehouse.connect(url, autocommit=True) as conn:
        for title, needs, draw in SECTIONS:
            absent = [r for r in needs if not _exists(conn, r)]
            if absent:
                drawn = [Chart(draw.__name__, title, "", missing=f"{', '.join(absent)} not built yet")]
            else:
                drawn = draw(conn)
            charts.extend(drawn)
            body.append(f"<section><h2>{html.escape(title)}</h2>{''.join(_render_chart(c) for c in drawn)}</section>")
    rendered = [c for c in charts if c.figure is not None]
    page = PAGE.format(
        plotlyjs=get_plotlyjs(),
        built=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        where=html.escape(warehouse.redact(url)),
        n_charts=len(rendered),
        body="\n".join(body),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(page)
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    log.info("report: %d charts drawn, %d not available, written to %s", len(rendered), len(charts) - len(rendered), out)
    return ReportResult(out, charts)
