"""The generated tree under ``dashboards/``: every file with its text, and writing it."""

from __future__ import annotations

from pathlib import Path

from etl.dashboards.grafana import grafana_files
from etl.dashboards.superset import superset_files

__all__ = ["GENERATED_DIRS", "generated_files", "write_tree"]

GENERATED_DIRS = ("grafana", "superset/bundle")
"""The subdirectories of ``dashboards/`` that the generator owns entirely."""


def generated_files() -> dict[str, str]:
    """Every generated file, by path relative to ``dashboards/`` (``/`` separated)."""
    files = {f"grafana/{path}": text for path, text in grafana_files().items()}
    return files | {f"superset/bundle/{path}": text for path, text in superset_files().items()}


def existing_files(root: Path) -> dict[str, str]:
    """The files now under the generated subdirectories of ``root``, with their text."""
    return {
        path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
        for directory in GENERATED_DIRS
        for path in sorted((root / directory).rglob("*"))
        if path.is_file()
    }


def write_tree(files: dict[str, str], root: Path) -> list[Path]:
    """Write ``files`` under ``root`` and delete the other files of the generated
    subdirectories (a dashboard removed from the description leaves no stale file).
    Returns the paths written."""
    for stale in set(existing_files(root)) - set(files):
        (root / stale).unlink()
    written = []
    for relative, text in sorted(files.items()):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
