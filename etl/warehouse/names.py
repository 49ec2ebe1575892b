"""Saving the names a ZVM's listings gave (:mod:`etl.names`) into ``sites``, ``vpgs`` and
``hosts``, inside the caller's transaction.

Set-based, whatever the number of entities: one upsert per table, one ``UPDATE`` per table
for what is no longer listed, one for the ZVM's row. The rules (docs/warehouse.md, "Names"):

- a listed entity gets its names (a null in the listing keeps the known value: names are
  never blanked), ``zvm`` = this ZVM, ``listed_at`` = now and ``unlisted_at`` null (so an
  entity that comes back is listed again); an entity new to the warehouse also gets
  ``first_seen_at``/``last_seen_at`` = now (they otherwise follow the tasks);
- after a COMPLETE listing of a kind, an entity this ZVM listed before and not now gets
  ``unlisted_at`` = now, once; its names stay. An incomplete kind (a listing failed) marks
  nothing unlisted;
- a site only the VPG listing names (no site listing included it: ``SiteRecord.listed``
  false) gets that name while no site listing has ever included it (``listed_at`` null) or
  it has no name yet: the site listings' name wins, in this refresh or from an earlier
  one, and a site listing that fails later never lets the VPG listing's name replace it.
  Such a site's ``zvm``, ``is_local``, ``listed_at`` and ``unlisted_at`` are left alone:
  they follow the site listings only (a site only VPGs name is never marked unlisted, and
  keeps its last name when no VPG names it any more); a new row gets
  ``first_seen_at``/``last_seen_at``;
- ``zvms.names_refreshed_at`` = now and ``zvms.names_error`` = the problems (null when
  none); ``zvms.site_identifier`` = the ZVM's own site from ``/v1/localsite``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, or_, select
from sqlalchemy import update as sql_update

from etl.names import Names
from etl.warehouse import schema
from etl.warehouse.upsert import upsert

__all__ = ["names_refreshed_at", "save_names"]

_SITE_NAMES = ("name", "location")
_VPG_NAMES = (
    "name",
    "priority",
    "configured_rpo_seconds",
    "protected_site_identifier",
    "recovery_site_identifier",
)
_HOST_NAMES = ("name", "vra_name")


def names_refreshed_at(conn: Connection, zvm: str) -> datetime | None:
    """When the ZVM's listings were last read (None: never)."""
    table = schema.zvms
    return conn.execute(
        select(table.c.names_refreshed_at).where(table.c.name == zvm)
    ).scalar_one_or_none()


def save_names(conn: Connection, zvm: str, names: Names, *, now: datetime) -> None:
    """Save ``names`` as listed by ``zvm`` at ``now`` (see the module docstring)."""
    _save(
        conn,
        schema.sites,
        "site_identifier",
        [
            {"site_identifier": s.site_identifier, "name": s.name, "location": s.location}
            | {"is_local": s.is_local}
            for s in names.sites
            if s.listed
        ],
        keep=_SITE_NAMES,
        replace=("is_local",),
        complete=names.sites_complete,
        zvm=zvm,
        now=now,
    )
    _save_vpg_site_names(
        conn, {s.site_identifier: s.name for s in names.sites if not s.listed and s.name}, now=now
    )
    _save(
        conn,
        schema.vpgs,
        "vpg_identifier",
        [
            {
                "vpg_identifier": v.vpg_identifier,
                "name": v.name,
                "priority": v.priority,
                "configured_rpo_seconds": v.configured_rpo_seconds,
                "protected_site_identifier": v.protected_site_identifier,
                "recovery_site_identifier": v.recovery_site_identifier,
            }
            for v in names.vpgs
        ],
        keep=_VPG_NAMES,
        complete=names.vpgs_complete,
        zvm=zvm,
        now=now,
    )
    _save(
        conn,
        schema.hosts,
        "host_identifier",
        [
            {"host_identifier": h.host_identifier, "name": h.name, "vra_name": h.vra_name}
            for h in names.hosts
        ],
        keep=_HOST_NAMES,
        complete=names.hosts_complete,
        zvm=zvm,
        now=now,
    )
    values: dict[str, Any] = {
        "names_refreshed_at": now,
        "names_error": "; ".join(names.problems) or None,
    }
    if names.local_site is not None:
        values["site_identifier"] = names.local_site
    table = schema.zvms
    conn.execute(sql_update(table).where(table.c.name == zvm).values(**values))


def _save_vpg_site_names(conn: Connection, names: dict[str, str], *, now: datetime) -> None:
    """Name the sites only the VPG listing names (identifier -> name): a new site gets a row,
    and a site no site listing has ever included (``listed_at`` null), or still without a
    name, takes the name."""
    if not names:
        return
    table = schema.sites
    upsert(
        conn,
        table,
        [
            {"site_identifier": site, "name": name, "first_seen_at": now, "last_seen_at": now}
            for site, name in sorted(names.items())
        ],
        key=["site_identifier"],
    )
    conn.execute(
        sql_update(table)
        .where(
            table.c.site_identifier == bindparam("site"),
            or_(table.c.listed_at.is_(None), table.c.name.is_(None)),
        )
        .values(name=bindparam("site_name")),
        [{"site": site, "site_name": name} for site, name in sorted(names.items())],
    )


def _save(
    conn: Connection,
    table: Table,
    key: str,
    rows: list[dict[str, Any]],
    *,
    keep: tuple[str, ...],
    complete: bool,
    zvm: str,
    now: datetime,
    replace: tuple[str, ...] = (),
) -> None:
    listed = {"zvm": zvm, "listed_at": now, "unlisted_at": None}
    first = {"first_seen_at": now, "last_seen_at": now}
    upsert(
        conn,
        table,
        sorted((row | listed | first for row in rows), key=lambda row: row[key]),
        key=[key],
        update=[*replace, *listed],
        keep=keep,
    )
    if complete:
        # Every entity in the listing now has listed_at = now: the others were not listed.
        conn.execute(
            sql_update(table)
            .where(table.c.zvm == zvm, table.c.listed_at < now, table.c.unlisted_at.is_(None))
            .values(unlisted_at=now)
        )
