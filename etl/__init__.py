"""zvm-task-etl: keep the task history of Zerto Virtual Managers in a SQL warehouse."""

from __future__ import annotations

__version__ = "0.1.0"
