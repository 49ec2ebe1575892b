"""docs/data-dictionary.md is what etl.dictionary generates, and describes every column."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from etl.dictionary import render_dictionary, view_columns
from etl.warehouse.schema import metadata

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_dictionary_is_current() -> None:
    committed = (ROOT / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    assert committed == render_dictionary(), (
        "docs/data-dictionary.md is stale: run `make dictionary` and commit it"
    )


def test_it_names_every_table_view_and_column() -> None:
    text = render_dictionary()
    for table in metadata.tables.values():
        assert f"### `{table.name}`" in text
        assert all(f"| `{c.name}`" in text for c in table.columns)
    for view, columns in view_columns().items():
        assert f"### `{view}`" in text
        assert all(f"| `{c}` |" in text for c in columns)


def test_view_columns_are_those_the_migrations_create(warehouse: Engine) -> None:
    with warehouse.connect() as connection:
        for view, columns in view_columns().items():
            with connection.execute(sa.text(f"SELECT * FROM {view} WHERE 1 = 0")) as result:
                assert list(result.keys()) == columns, view
