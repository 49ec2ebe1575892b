"""Where the Alembic migrations and the SQL files are, wherever the package runs from.

Two layouts exist and both must work:

- a source checkout (also an editable install): ``migrations/`` and ``sql/`` sit at the
  repository root, next to the ``etl`` package and ``pyproject.toml``;
- an installed wheel: ``pyproject.toml`` force-includes them as ``etl/_resources/migrations``
  and ``etl/_resources/sql`` inside the package.

The checkout wins when both exist, so a developer's edits are what runs. The checkout is only
trusted when ``pyproject.toml`` sits next to the package: in a wheel install the package's
parent is ``site-packages``, where some other distribution could have dropped a top-level
``migrations`` directory of its own.
"""

from __future__ import annotations

from pathlib import Path

import etl
from etl.errors import InstallationError

__all__ = ["migrations_dir", "sql_dir"]

_PACKAGE_DIR = Path(etl.__file__).resolve().parent


def migrations_dir(*, package_dir: Path | None = None) -> Path:
    """The Alembic script directory (the one holding ``env.py`` and ``versions/``).

    ``package_dir`` is the ``etl`` package directory to start from (tests pass a fake one);
    InstallationError names both places looked at when neither has the files.
    """
    return _find("migrations", marker="env.py", package_dir=package_dir or _PACKAGE_DIR)


def sql_dir(*, package_dir: Path | None = None) -> Path:
    """The directory of the warehouse's SQL files (``views/``, ``queries/``, ``README.md``)."""
    return _find("sql", marker="views", package_dir=package_dir or _PACKAGE_DIR)


def _find(name: str, *, marker: str, package_dir: Path) -> Path:
    checkout = package_dir.parent / name
    if (package_dir.parent / "pyproject.toml").is_file() and (checkout / marker).exists():
        return checkout
    installed = package_dir / "_resources" / name
    if (installed / marker).exists():
        return installed
    raise InstallationError(
        f"cannot find the {name}/ directory of zvm-task-etl: neither {checkout} (source "
        f"checkout) nor {installed} (installed wheel) has {marker}; reinstall the package"
    )
