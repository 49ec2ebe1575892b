"""No SQL is built from strings with values in it: an AST scan of ``etl/`` and
``zvm_simulator/`` (and the Alembic migrations).

Every call that hands SQL text to a database (``text(...)``, ``.exec_driver_sql(...)``,
``.execute(...)``, ``.executemany(...)``, ``.executescript(...)``, ``cursor.copy(...)``)
must get either a SQLAlchemy construct or a string made of constants. A string built
with an f-string, ``%``, ``.format()``, ``+`` or ``.join()`` around anything that is not a
constant is a finding, also when it reaches the call through a local variable. Module
constants with literal values (``SQLITE_CACHE_KIB``) count as constants.

The exceptions are listed in :data:`ALLOWED`, one per function with the number of such
calls in it and why they are safe: they interpolate identifiers from the project's own
schema (never a value from a ZVM, a user or the configuration), and
:func:`test_interpolated_identifiers_are_plain_names` checks that every such identifier is
a plain lower-case name, so the double quotes around them are enough. The scanner is
tested on planted violations, so a scan that finds nothing means something.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from etl.warehouse import schema

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("etl", "zvm_simulator", "migrations")

SQL_METHODS = frozenset(
    {"exec_driver_sql", "execute", "executemany", "executescript", "copy", "read_sql"}
    | {"read_sql_query"}
)
"""Methods whose first argument is SQL text (``copy``: psycopg's ``cursor.copy``;
``read_sql``: pandas)."""
SQL_FUNCTIONS = frozenset({"text", "literal_column", "DDL"})
"""Functions (``text``, ``sa.text``, ``sqlalchemy.literal_column``...) whose first argument
is SQL."""
SQL_KEYWORDS = ("statement", "sql", "operation", "query", "text")


@dataclass(frozen=True)
class Finding:
    path: str
    function: str
    line: int
    call: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} in {self.function}: {self.call}(...) gets {self.why}"


# ---- the scanner ---------------------------------------------------------------------------


def _module_constants(tree: ast.Module) -> set[str]:
    """Names assigned once at module level, to a literal (``SQLITE_CACHE_KIB = 64_000``)."""
    counts: dict[str, int] = {}
    literal: set[str] = set()
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            if isinstance(target, ast.Name):
                counts[target.id] = counts.get(target.id, 0) + 1
                if isinstance(value, ast.Constant) and isinstance(value.value, int | str | float):
                    literal.add(target.id)
    return {name for name in literal if counts[name] == 1}


class _Scope:
    """The assignments of one function (or the module), to follow a variable back."""

    def __init__(self, node: ast.AST) -> None:
        self.assigned: dict[str, list[ast.expr]] = {}
        for child in _walk_own(node):
            if isinstance(child, ast.Assign):
                for target in child.targets:
                    if isinstance(target, ast.Name):
                        self.assigned.setdefault(target.id, []).append(child.value)
            elif (
                isinstance(child, ast.AnnAssign | ast.AugAssign)
                and child.value is not None
                and isinstance(child.target, ast.Name)
            ):
                value = child.value
                if isinstance(child, ast.AugAssign):  # x += y is x = x + y
                    value = ast.BinOp(left=child.target, op=child.op, right=child.value)
                self.assigned.setdefault(child.target.id, []).append(value)


def _walk_own(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes of ``node`` without those of nested functions and classes."""
    for child in ast.iter_child_nodes(node):
        yield child
        if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield from _walk_own(child)


class Scanner(ast.NodeVisitor):
    """Finds SQL calls whose SQL text is built from non-constant values."""

    def __init__(self, path: str, tree: ast.Module) -> None:
        self.path = path
        self.constants = _module_constants(tree)
        self.findings: list[Finding] = []
        self._stack: list[tuple[str, _Scope]] = [("<module>", _Scope(tree))]

    def _enter(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        outer = self._stack[-1][0]
        name = node.name if outer == "<module>" else f"{outer}.{node.name}"
        self._stack.append((name, _Scope(node)))
        self.generic_visit(node)
        self._stack.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _enter

    def visit_Call(self, node: ast.Call) -> None:
        callee = _callee(node.func)
        if callee is not None:
            argument = _sql_argument(node)
            if argument is not None:
                why = self.dynamic(argument, depth=0)
                if why is not None:
                    function = self._stack[-1][0]
                    self.findings.append(Finding(self.path, function, node.lineno, callee, why))
        self.generic_visit(node)

    def _assignments(self, name: str) -> list[ast.expr]:
        for _, scope in reversed(self._stack):
            if name in scope.assigned:
                return scope.assigned[name]
        return []

    def dynamic(self, node: ast.expr, depth: int) -> str | None:
        """Why ``node`` is SQL text built from a non-constant value; None if it is not."""
        if depth > 5:
            return None
        if isinstance(node, ast.JoinedStr):
            for part in node.values:
                if isinstance(part, ast.FormattedValue) and not self.constant(part.value):
                    return f"an f-string interpolating {ast.unparse(part.value)}"
            return None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            if self._stringish(node.left) and not self.constant(node.right):
                return f"a %-format of {ast.unparse(node.right)}"
            return None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            for side in (node.left, node.right):
                inner = self.dynamic(side, depth + 1)
                if inner is not None:
                    return inner
            if (self._stringish(node.left) or self._stringish(node.right)) and not (
                self.constant(node.left) and self.constant(node.right)
            ):
                return f"a concatenation {ast.unparse(node)}"
            return None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "format" and not all(
                self.constant(arg) for arg in [*node.args, *(k.value for k in node.keywords)]
            ):
                return f"a .format() of {ast.unparse(node)}"
            if node.func.attr == "join" and not all(self.constant(arg) for arg in node.args):
                return f"a .join() of {ast.unparse(node)}"
            return None
        if isinstance(node, ast.IfExp):
            return self.dynamic(node.body, depth + 1) or self.dynamic(node.orelse, depth + 1)
        if isinstance(node, ast.Name):
            for value in self._assignments(node.id):
                inner = self.dynamic(value, depth + 1)
                if inner is not None:
                    return f"{node.id} = {inner}"
        return None

    def constant(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.Name):
            return node.id in self.constants
        if isinstance(node, ast.Tuple | ast.List):
            return all(self.constant(item) for item in node.elts)
        if isinstance(node, ast.JoinedStr):
            return all(
                not isinstance(part, ast.FormattedValue) or self.constant(part.value)
                for part in node.values
            )
        if isinstance(node, ast.BinOp):
            return self.constant(node.left) and self.constant(node.right)
        if isinstance(node, ast.UnaryOp):
            return self.constant(node.operand)
        if isinstance(node, ast.IfExp):  # 'ON' if on else 'OFF'
            return self.constant(node.body) and self.constant(node.orelse)
        return False

    def _stringish(self, node: ast.expr, seen: frozenset[str] = frozenset()) -> bool:
        """Whether ``node`` is text (a literal, an f-string, or a variable assigned one)."""
        if isinstance(node, ast.Constant):
            return isinstance(node.value, str | bytes)
        if isinstance(node, ast.JoinedStr):
            return True
        if isinstance(node, ast.BinOp):
            return self._stringish(node.left, seen) or self._stringish(node.right, seen)
        if isinstance(node, ast.Name) and node.id not in seen:
            return any(
                self._stringish(value, seen | {node.id}) for value in self._assignments(node.id)
            )
        return False


def _callee(func: ast.expr) -> str | None:
    """The SQL sink a call's function is, if it is one."""
    if isinstance(func, ast.Name) and func.id in SQL_FUNCTIONS:
        return func.id
    if isinstance(func, ast.Attribute):
        if func.attr in SQL_METHODS:
            return f".{func.attr}"
        if (
            func.attr in SQL_FUNCTIONS
            and isinstance(func.value, ast.Name)
            and func.value.id in ("sa", "sqlalchemy", "sql", "expression", "schema")
        ):
            return f"{func.value.id}.{func.attr}"
    return None


def _sql_argument(call: ast.Call) -> ast.expr | None:
    if call.args and not isinstance(call.args[0], ast.Starred):
        return call.args[0]
    for keyword in call.keywords:
        if keyword.arg in SQL_KEYWORDS:
            return keyword.value
    return None


def scan_source(source: str, path: str = "<snippet>") -> list[Finding]:
    tree = ast.parse(source)
    scanner = Scanner(path, tree)
    scanner.visit(tree)
    return scanner.findings


def scan_project() -> list[Finding]:
    findings: list[Finding] = []
    for folder in SCANNED:
        for file in sorted((ROOT / folder).rglob("*.py")):
            path = file.relative_to(ROOT).as_posix()
            findings += scan_source(file.read_text(encoding="utf-8"), path)
    return findings


# ---- the exceptions --------------------------------------------------------------------------

SCHEMA_NAMES = (
    "identifiers of the project's schema (etl.warehouse.schema): the table's name, a staging "
    "table named after it, and column names (the keys of the rows etl/warehouse/load.py "
    "builds, each looked up in table.c by _processed), all plain lower-case names "
    "(test_interpolated_identifiers_are_plain_names) in double quotes; every value is a "
    "bound parameter or goes through COPY"
)
ALLOWED: dict[tuple[str, str], tuple[int, str]] = {
    ("etl/warehouse/upsert.py", "_sqlite_upsert"): (1, SCHEMA_NAMES),
    ("etl/warehouse/upsert.py", "_copy_upsert"): (3, SCHEMA_NAMES),
    ("etl/warehouse/upsert.py", "_copy"): (1, SCHEMA_NAMES),
    ("etl/export.py", "_view_source"): (
        1,
        "the name of a view of sql/views/ (its only caller checks name in view_names(), and "
        "an unknown name is UnknownExportName before any SQL), a plain name",
    ),
    ("etl/dictionary.py", "view_columns"): (
        1,
        "the names of the views in sql/views/ (view_versions()), plain names, against a "
        "throw-away in-memory SQLite database",
    ),
    ("etl/warehouse/engine.py", "_configure_sqlite._on_begin"): (
        1,
        "BEGIN IMMEDIATE or BEGIN DEFERRED: begin is make_engine's sqlite_begin, a "
        "Literal['IMMEDIATE', 'DEFERRED']",
    ),
    ("migrations/versions/0002_entity_names.py", "_one_text_format_on_sqlite"): (
        1,
        "table and column names from the migration's own TIMESTAMPS constant",
    ),
}
"""``(file, function): (how many calls, why they are safe)``."""


# ---- the tests ---------------------------------------------------------------------------------


def test_no_sql_is_built_from_values() -> None:
    found: dict[tuple[str, str], list[Finding]] = {}
    for finding in scan_project():
        found.setdefault((finding.path, finding.function), []).append(finding)
    unexpected = [
        str(finding)
        for place, findings in found.items()
        if place not in ALLOWED
        for finding in findings
    ]
    assert not unexpected, "SQL built from values (use bound parameters):\n" + "\n".join(unexpected)
    for place, (count, reason) in ALLOWED.items():
        assert reason.strip(), place
        assert len(found.get(place, [])) == count, (
            f"{place} is allowed {count} string-built SQL call(s) and has "
            f"{len(found.get(place, []))}: update ALLOWED (and its reason) with the code"
        )


def test_interpolated_identifiers_are_plain_names() -> None:
    """What ALLOWED interpolates needs no quoting beyond double quotes: every table, column
    and view name is a plain lower-case identifier, never a reserved-word trap or a quote."""
    from etl.warehouse.sqlfiles import view_names

    plain = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
    names = [table.name for table in schema.metadata.sorted_tables]
    names += [f"stage_{table.name}" for table in schema.metadata.sorted_tables]
    names += [column.name for table in schema.metadata.sorted_tables for column in table.c]
    names += list(view_names())
    assert names and all(plain.match(name) for name in names), [
        name for name in names if not plain.match(name)
    ]


# ---- the scanner catches what it must ----------------------------------------------------------

PLANTED = {
    "f-string": """
        def f(conn, zvm):
            conn.execute(text(f"SELECT * FROM tasks WHERE zvm = '{zvm}'"))
    """,
    "percent": """
        def f(cursor, zvm):
            cursor.execute("DELETE FROM tasks WHERE zvm = '%s'" % zvm)
    """,
    "format": """
        def f(conn, table):
            conn.exec_driver_sql("DROP TABLE {}".format(table))
    """,
    "concatenation": """
        def f(conn, column):
            conn.exec_driver_sql("SELECT " + column + " FROM tasks")
    """,
    "join": """
        def f(conn, statements):
            conn.exec_driver_sql("; ".join(statements))
    """,
    "through a variable": """
        def f(conn, zvm):
            sql = "SELECT 1 FROM tasks WHERE zvm = " + zvm
            conn.execute(sa.text(sql))
    """,
    "through two variables": """
        def f(conn, zvm):
            where = f"zvm = '{zvm}'"
            sql = "SELECT 1 FROM tasks WHERE " + where
            conn.exec_driver_sql(sql)
    """,
    "augmented assignment": """
        def f(conn, zvm):
            sql = "SELECT 1 FROM tasks WHERE zvm = "
            sql += zvm
            conn.execute(text(sql))
    """,
    "augmented after a call": """
        def f(conn, zvm):
            sql = build()
            sql += f" WHERE zvm = '{zvm}'"
            conn.execute(text(sql))
    """,
    "keyword argument": """
        def f(cursor, zvm):
            cursor.execute(operation=f"SELECT '{zvm}'")
    """,
    "conditional": """
        def f(conn, zvm, filtered):
            conn.execute(text(f"SELECT '{zvm}'" if filtered else "SELECT 1"))
    """,
    "literal_column": """
        def f(zvm):
            return sa.literal_column(f"'{zvm}'")
    """,
    "pandas": """
        def f(pd, conn, zvm):
            return pd.read_sql(f"SELECT '{zvm}'", conn)
    """,
    "method of a class": """
        class Loader:
            def load(self, conn, table):
                conn.exec_driver_sql(f"TRUNCATE {table}")
    """,
}


@pytest.mark.parametrize("name", list(PLANTED))
def test_the_scanner_finds_a_planted_violation(name: str) -> None:
    [finding] = scan_source(textwrap.dedent(PLANTED[name]))
    assert finding.line >= 3 and finding.why


def test_the_scanner_names_the_place() -> None:
    [finding] = scan_source(textwrap.dedent(PLANTED["method of a class"]), "etl/x.py")
    assert (finding.path, finding.function, finding.line) == ("etl/x.py", "Loader.load", 4)
    assert str(finding) == (
        "etl/x.py:4 in Loader.load: .exec_driver_sql(...) gets an f-string interpolating table"
    )


SAFE = {
    "constant": """
        def f(conn):
            conn.execute(text("SELECT 1"))
    """,
    "bound parameter": """
        def f(conn, zvm):
            conn.execute(text("SELECT 1 FROM tasks WHERE zvm = :zvm"), {"zvm": zvm})
    """,
    "construct": """
        def f(conn, tasks, zvm):
            conn.execute(sa.select(tasks).where(tasks.c.zvm == zvm))
    """,
    "module constant": """
        CACHE_KIB = 64000
        def f(cursor):
            cursor.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    """,
    "constant branches": """
        def f(driver, on):
            driver.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")
    """,
    "constant pieces": """
        def f(conn):
            conn.exec_driver_sql("SELECT 1 " + "FROM tasks")
    """,
    "driver parameters": """
        def f(cursor, zvm):
            cursor.execute("SELECT 1 FROM tasks WHERE zvm = %s", (zvm,))
    """,
    "not SQL": """
        def f(log, zvm):
            log.info(f"{zvm}")
            print("a" + zvm)
    """,
}


@pytest.mark.parametrize("name", list(SAFE))
def test_the_scanner_leaves_safe_sql_alone(name: str) -> None:
    assert scan_source(textwrap.dedent(SAFE[name])) == []


def test_a_new_string_built_call_in_an_allowed_function_is_still_caught() -> None:
    """ALLOWED counts the calls of each function: one more is a failure too."""
    path = "etl/warehouse/upsert.py"
    source = (ROOT / path).read_text(encoding="utf-8")
    planted = source.replace(
        "    conn.exec_driver_sql(f'TRUNCATE \"{stage}\"')\n",
        "    conn.exec_driver_sql(f'TRUNCATE \"{stage}\"')\n"
        "    conn.exec_driver_sql(f\"DELETE FROM tasks WHERE zvm = '{rows[0]}'\")\n",
    )
    assert planted != source
    before = [f for f in scan_source(source, path) if f.function == "_copy_upsert"]
    after = [f for f in scan_source(planted, path) if f.function == "_copy_upsert"]
    assert len(before) == ALLOWED[(path, "_copy_upsert")][0]
    assert len(after) == len(before) + 1
