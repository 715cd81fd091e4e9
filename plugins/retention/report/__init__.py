"""The retention report: one static, offline HTML page drawn from the marts.

``build_report(url, out)`` reads small aggregates from the warehouse (never row-level
data), draws them with plotly and writes a single HTML file with plotly.js inlined, so it
opens without a network. It is what ``retention report`` and the ``transform_dbt`` DAG's
report task run. Sections whose mart does not exist yet say so instead of failing.
"""

from retention.report.build import ReportResult, build_report, default_path

__all__ = ["ReportResult", "build_report", "default_path"]
