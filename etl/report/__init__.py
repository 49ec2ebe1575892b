"""``zvm-etl report``: one self-contained HTML page of charts and tables over the warehouse.

- :mod:`etl.report.data` reads each section from the views and ready queries;
- :mod:`etl.report.charts` draws the charts with Plotly;
- :mod:`etl.report.page` fills the page template and writes the file.

Plotly and pandas are imported only when a report is made.
"""

from __future__ import annotations

from etl.report.page import render_page, write_report

__all__ = ["render_page", "write_report"]
