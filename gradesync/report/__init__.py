"""The report stage: what a run did, for people (report.html), for Excel (plan.csv /
reconciliation.csv) and for machines (summary.json).

::

    summary = RunSummary.from_rows(rows, kind="plan", inputs=plan.inputs, graph_base_url=..., created_at=...)
    paths = write_reports(rows, summary, "reports", roster_gaps=plan.roster_gaps, kind="plan")
    render_table(summary, console)

Modules: ``summary`` (the value object and the CLI table), ``tables`` (CSV: formatting, formula
neutralisation, encoding), ``htmlreport`` (the self-contained, escaped, CSP-locked page; its CSS, JS and
skeleton live in ``assets/``), ``writer`` (write_reports), ``rowsfile`` (``rows.json``: a run's rows typed,
the one file the web app reads a past run's rows from), ``public`` (a run's files without server details).
"""

from gradesync.report.htmlreport import HTML_ROW_LIMIT, render_html
from gradesync.report.rowsfile import ROWS_NAME, RowsFileError, read_rows, write_rows
from gradesync.report.summary import RunSummary, format_number, render_table
from gradesync.report.tables import (
    CSV_ENCODING,
    PLAN_CSV_COLUMNS,
    RECONCILIATION_CSV_COLUMNS,
    neutralise,
)
from gradesync.report.writer import summary_json, write_reports

__all__ = [
    "CSV_ENCODING",
    "HTML_ROW_LIMIT",
    "PLAN_CSV_COLUMNS",
    "RECONCILIATION_CSV_COLUMNS",
    "ROWS_NAME",
    "RowsFileError",
    "RunSummary",
    "format_number",
    "neutralise",
    "read_rows",
    "render_html",
    "render_table",
    "summary_json",
    "write_reports",
    "write_rows",
]
