"""Dashboards people import into Grafana and Superset, generated from one description.

:mod:`etl.dashboards.panels` says what each dashboard shows (its panels, their SQL on the
warehouse's views and ready queries, the columns each visualization needs);
:mod:`etl.dashboards.grafana` writes Grafana's provisioning files and dashboard JSON from
it, :mod:`etl.dashboards.superset` Superset's import bundle. ``python -m etl.dashboards``
(``make dashboards``) regenerates ``dashboards/``; a test checks that the committed files
equal the generator's output, and others run every panel's SQL on PostgreSQL and MariaDB.
"""

from __future__ import annotations
