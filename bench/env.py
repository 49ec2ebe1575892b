"""The benchmark's surroundings: settings, paths, fresh databases, the fake ZVM process.

- :class:`Settings`: sizes, repeats, cases and databases, from ``BENCH_*`` environment
  variables (``python -m bench --help`` lists them) or options;
- :class:`Databases`: a fresh PostgreSQL database (``CREATE DATABASE bench_...``) or SQLite
  file per run, dropped after it, and the row counts the checks read;
- :class:`FakeZvmProcess`: ``bench.fakezvm`` in its own process, with its bench controls.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BENCH_DIR", "ROOT", "Databases", "Db", "FakeZvmProcess", "Settings"]

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PRODUCT_BIN = ROOT / ".venv" / "bin"
DLT_BIN = BENCH_DIR / ".venv-dlt" / "bin"
ALL_CASES = (
    "first",
    "scale",
    "export",
    "incremental",
    "many",
    "names",
    "startup",
    "profile",
    "analyst",
)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value.replace("_", "")) if value else default


def _env_list(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = os.environ.get(name, "").strip()
    return tuple(item.strip() for item in value.split(",") if item.strip()) if value else default


@dataclass
class Settings:
    """What to run. Every field has a ``BENCH_*`` environment variable (see ``from_env``)."""

    tasks: int = 100_000
    repeats: int = 3
    large: int = 1_000_000
    large_repeats: int = 1
    analyst: int = 1_000_000
    analyst_huge: int = 10_000_000
    zvms: int = 50
    zvm_tasks: int = 2_000
    zvm_rate: float = 5.0
    new_tasks: int = 1_000
    extra: int = 5_000
    rate: float = 1_200.0
    seed: int = 1
    window: str = "1d"
    dbs: tuple[str, ...] = ("postgres", "sqlite")
    cases: tuple[str, ...] = ALL_CASES
    pg: str = "postgresql://postgres@127.0.0.1:5432"
    output: Path = field(default_factory=lambda: BENCH_DIR / "results.md")
    quick: bool = False
    timeout: float = 3_600.0

    @classmethod
    def from_env(cls, *, quick: bool = False) -> Settings:
        base = cls.quick_defaults() if quick else cls()
        return cls(
            tasks=_env_int("BENCH_TASKS", base.tasks),
            repeats=_env_int("BENCH_REPEATS", base.repeats),
            large=_env_int("BENCH_LARGE", base.large),
            large_repeats=_env_int("BENCH_LARGE_REPEATS", base.large_repeats),
            analyst=_env_int("BENCH_ANALYST", base.analyst),
            analyst_huge=_env_int("BENCH_ANALYST_HUGE", base.analyst_huge),
            zvms=_env_int("BENCH_ZVMS", base.zvms),
            zvm_tasks=_env_int("BENCH_ZVM_TASKS", base.zvm_tasks),
            zvm_rate=base.zvm_rate,
            new_tasks=_env_int("BENCH_NEW_TASKS", base.new_tasks),
            extra=base.extra,
            rate=base.rate,
            seed=_env_int("BENCH_SEED", base.seed),
            window=os.environ.get("BENCH_WINDOW", base.window),
            dbs=_env_list("BENCH_DBS", base.dbs),
            cases=_env_list("BENCH_CASES", base.cases),
            pg=os.environ.get("BENCH_PG", base.pg).rstrip("/"),
            output=Path(os.environ.get("BENCH_OUTPUT", str(base.output))),
            quick=quick,
        )

    @classmethod
    def quick_defaults(cls) -> Settings:
        return cls(
            tasks=10_000,
            repeats=1,
            large=0,
            analyst=0,
            analyst_huge=0,
            cases=("first",),
            output=BENCH_DIR / "results-quick.md",
        )

    def variables(self) -> dict[str, str]:
        """The environment variables that reproduce these settings."""
        return {
            "BENCH_TASKS": str(self.tasks),
            "BENCH_REPEATS": str(self.repeats),
            "BENCH_LARGE": str(self.large),
            "BENCH_LARGE_REPEATS": str(self.large_repeats),
            "BENCH_ANALYST": str(self.analyst),
            "BENCH_ANALYST_HUGE": str(self.analyst_huge),
            "BENCH_ZVMS": str(self.zvms),
            "BENCH_ZVM_TASKS": str(self.zvm_tasks),
            "BENCH_NEW_TASKS": str(self.new_tasks),
            "BENCH_SEED": str(self.seed),
            "BENCH_WINDOW": self.window,
            "BENCH_DBS": ",".join(self.dbs),
            "BENCH_CASES": ",".join(self.cases),
            "BENCH_PG": self.pg,
        }


@dataclass
class Db:
    """One fresh warehouse: ``url`` for SQLAlchemy/zvm-etl, ``dsn`` for psycopg/dlt."""

    kind: str
    name: str
    url: str
    dsn: str
    path: Path | None = None


class Databases:
    """Fresh databases for runs, dropped after; row counts for the checks."""

    def __init__(self, pg: str, workdir: Path) -> None:
        self.pg = pg
        self.workdir = workdir
        self._numbers = itertools.count(1)
        self._tag = f"{os.getpid()}"

    def _admin(self) -> Any:
        import psycopg

        return psycopg.connect(f"{self.pg}/postgres", autocommit=True)

    def new(self, kind: str, label: str) -> Db:
        number = next(self._numbers)
        name = f"bench_{label}_{self._tag}_{number}".lower().replace("-", "_")
        if kind == "postgres":
            with self._admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                conn.execute(f'CREATE DATABASE "{name}"')
            host = self.pg.split("://", 1)[1]
            return Db(kind, name, f"postgresql+psycopg://{host}/{name}", f"{self.pg}/{name}")
        if kind == "sqlite":
            path = self.workdir / f"{name}.db"
            self._remove_sqlite(path)
            return Db(kind, name, f"sqlite:///{path}", f"sqlite:///{path}", path)
        raise ValueError(f"unknown database kind {kind!r}")

    def _remove_sqlite(self, path: Path) -> None:
        for found in path.parent.glob(path.name + "*"):
            found.unlink()
        for found in path.parent.glob(path.stem + "__*"):  # dlt's attached dataset files
            found.unlink()

    def drop(self, db: Db) -> None:
        if db.kind == "postgres":
            with self._admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
        elif db.path is not None:
            self._remove_sqlite(db.path)

    def scalar(self, db: Db, sql: str, *, attach: dict[str, Path] | None = None) -> Any:
        """One value from ``sql`` in ``db`` (SQLite files in ``attach`` are attached first)."""
        if db.kind == "postgres":
            import psycopg

            with psycopg.connect(db.dsn) as conn:
                row = conn.execute(sql).fetchone()
        else:
            assert db.path is not None
            lite = sqlite3.connect(db.path)
            try:
                for alias, file in (attach or {}).items():
                    lite.execute(f"ATTACH DATABASE '{file}' AS {alias}")
                row = lite.execute(sql).fetchone()
            finally:
                lite.close()
        return None if row is None else row[0]

    def rows(self, db: Db, sql: str) -> list[tuple[Any, ...]]:
        if db.kind == "postgres":
            import psycopg

            with psycopg.connect(db.dsn) as conn:
                return [tuple(row) for row in conn.execute(sql).fetchall()]
        assert db.path is not None
        lite = sqlite3.connect(db.path)
        try:
            return [tuple(row) for row in lite.execute(sql).fetchall()]
        finally:
            lite.close()


class FakeZvmProcess:
    """``bench.fakezvm`` serving ``datasets`` (prefix → folder) in a process of its own."""

    def __init__(self, datasets: dict[str, Path]) -> None:
        command = [sys.executable, "-m", "bench.fakezvm"]
        for prefix, folder in datasets.items():
            command += ["--dataset", f"{prefix}={folder}"]
        self._proc = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the fake ZVM did not start")
        self.base = json.loads(line)["url"]

    def url(self, prefix: str = "") -> str:
        return f"{self.base}/{prefix}" if prefix else self.base

    def _call(self, method: str, prefix: str, path: str) -> dict[str, Any]:
        request = urllib.request.Request(self.url(prefix) + path, method=method)
        with urllib.request.urlopen(request, timeout=30) as answer:
            result: dict[str, Any] = json.loads(answer.read())
            return result

    def set_visible(self, tasks: int, prefix: str = "") -> None:
        self._call("POST", prefix, f"/_bench/visible?tasks={tasks}")

    def stats(self, prefix: str = "") -> dict[str, Any]:
        return self._call("GET", prefix, "/_bench/stats")

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> FakeZvmProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tool_versions() -> dict[str, str]:
    """Versions of what the product venv runs (this interpreter) and of dlt."""
    from importlib import metadata

    versions = {"Python": sys.version.split()[0], "SQLite": sqlite3.sqlite_version}
    for package in ("zvm-task-etl", "psycopg", "orjson", "SQLAlchemy", "httpx"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    python = DLT_BIN / "python"
    if python.exists():
        out = subprocess.run(
            [
                str(python),
                "-c",
                "import dlt, sqlalchemy; print(dlt.__version__, sqlalchemy.__version__)",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        parts = out.stdout.split()
        versions["dlt"] = parts[0] if parts else "unavailable"
        if len(parts) > 1:
            versions["SQLAlchemy (dlt venv)"] = parts[1]
    spy = DLT_BIN / "py-spy"
    if spy.exists():
        out = subprocess.run([str(spy), "--version"], capture_output=True, text=True, check=False)
        versions["py-spy"] = out.stdout.strip().removeprefix("py-spy ")
    return versions


def clean_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
