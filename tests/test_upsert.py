"""Per-dialect bulk upserts, small batches and large ones (COPY on PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from etl.warehouse import schema
from etl.warehouse.upsert import COPY_THRESHOLD, upsert

T0 = datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


def rows(count: int, *, href: str, at: datetime) -> list[dict[str, object]]:
    return [
        {
            "vpg_identifier": f"vpg-{i}",
            "href": f"{href}/{i}",
            "first_seen_at": at,
            "last_seen_at": at,
        }
        for i in range(count)
    ]


@pytest.mark.parametrize("count", [5, COPY_THRESHOLD + 50])
def test_upsert_inserts_updates_and_keeps(warehouse: Engine, count: int) -> None:
    later = T0 + timedelta(hours=1)
    with warehouse.begin() as conn:
        upsert(conn, schema.vpgs, rows(count, href="a", at=T0), key=["vpg_identifier"])
        # Do nothing on conflict: the first version stays.
        upsert(conn, schema.vpgs, rows(count, href="b", at=later), key=["vpg_identifier"])
    with warehouse.connect() as conn:
        stored = conn.execute(sa.select(schema.vpgs).order_by(schema.vpgs.c.vpg_identifier)).all()
    assert len(stored) == count
    assert all(r.href.startswith("a/") and r.last_seen_at == T0 for r in stored)
    with warehouse.begin() as conn:
        upsert(
            conn,
            schema.vpgs,
            rows(count + 3, href="c", at=later),
            key=["vpg_identifier"],
            update=["href", "last_seen_at"],
        )
    with warehouse.connect() as conn:
        stored = conn.execute(sa.select(schema.vpgs)).all()
    assert len(stored) == count + 3
    assert all(r.href.startswith("c/") and r.last_seen_at == later for r in stored)
    assert {r.first_seen_at for r in stored} == {T0, later}


def test_a_failed_batch_rolls_back_with_its_transaction(warehouse: Engine) -> None:
    bad = rows(COPY_THRESHOLD + 10, href="x", at=T0)
    bad[-1]["first_seen_at"] = None  # the column is NOT NULL
    with pytest.raises(sa.exc.DBAPIError), warehouse.begin() as conn:
        upsert(conn, schema.vpgs, bad, key=["vpg_identifier"])
    with warehouse.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.vpgs)).scalar_one() == 0
