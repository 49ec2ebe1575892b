"""Reading the ZVM's Recovery Report, ``GET /v1/reports/recovery``, one window at a time.

The report pages (``pageNumber`` from 1, ``pageSize`` at most 1000) and filters on the
operations' start (``startTime``/``endTime``, inclusive, sent like the tasks' filters: UTC
whole seconds with ``Z``, the lower bound rounded down and the upper one up). A ZVM ignores
a parameter it does not know instead of refusing it (``docs/zvm-api.md``), so the pages are
read defensively: :func:`fetch_recovery_report` stops at the first page that comes back
shorter than ``pageSize``, takes a page longer than ``pageSize`` as the whole answer (the ZVM
ignored ``pageSize``), and stops at a page equal to the one before it (the ZVM ignored
``pageNumber``: every page is the first), saying so in :attr:`ReportAnswer.repeated`. Whether
the time filter did anything is for the caller to check, once the entries' starts are read.

The requests go through the :class:`~etl.zvm.client.ZvmClient` of the pass: the same login,
retries, TLS and secret handling as the tasks; a ``deadline`` bounds them all together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from etl.zvm.client import ZvmClient
from etl.zvm.dates import format_filter_date
from etl.zvm.deadline import Deadline

__all__ = ["MAX_PAGES", "MAX_PAGE_SIZE", "RECOVERY_REPORT", "ReportAnswer", "fetch_recovery_report"]

RECOVERY_REPORT = "/v1/reports/recovery"

MAX_PAGE_SIZE = 1000
"""The largest ``pageSize`` the report documents."""

MAX_PAGES = 1000
"""Pages read at most for one window: a ZVM that never ends a window stops here."""


@dataclass
class ReportAnswer:
    """What the report answered for one window: every entry of every page read, in order
    (decoded, not validated), how many pages, and whether a page repeated the one before
    it (the ZVM ignored ``pageNumber``: entries after the first page may be missing) or the
    window ran to :data:`MAX_PAGES`."""

    entries: list[Any] = field(default_factory=list)
    pages: int = 0
    repeated: bool = False
    truncated: bool = False

    @property
    def complete(self) -> bool:
        """Whether every page of the window was read."""
        return not self.repeated and not self.truncated


def report_params(
    after: datetime | None, before: datetime | None, *, page: int, page_size: int
) -> dict[str, str]:
    """The query of one page: the window's bounds (when given) and the page."""
    params: dict[str, str] = {}
    if after is not None:
        params["startTime"] = format_filter_date(after)
    if before is not None:
        params["endTime"] = format_filter_date(before, round_up=True)
    params["pageNumber"] = str(page)
    params["pageSize"] = str(page_size)
    return params


def fetch_recovery_report(
    client: ZvmClient,
    *,
    after: datetime | None,
    before: datetime | None,
    page_size: int,
    deadline: Deadline | None = None,
) -> ReportAnswer:
    """The report's entries for operations started in ``[after, before]`` (None leaves a
    side open), page by page (see the module docstring).

    Raises :class:`~etl.errors.ZvmError` as the client does: 404 (a ZVM without the report:
    ``status_code`` 404), retries exhausted (or ``deadline`` spent), HTML, invalid JSON, or
    an answer that is not a JSON array.
    """
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 1 to {MAX_PAGE_SIZE}, got {page_size}")
    answer = ReportAnswer()
    previous: list[Any] | None = None
    for number in range(1, MAX_PAGES + 1):
        page: list[Any] = client.fetch_listing(
            RECOVERY_REPORT,
            expected=list,
            deadline=deadline,
            params=report_params(after, before, page=number, page_size=page_size),
        )
        answer.pages = number
        if previous is not None and page and page == previous:
            answer.repeated = True
            return answer
        answer.entries += page
        if len(page) != page_size:  # short: the last page; longer: pageSize was ignored
            return answer
        previous = page
    answer.truncated = True
    return answer
