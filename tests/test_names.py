"""Names for the identifiers: the ZVM's entity listings loaded into vpgs, sites and hosts,
kept after the ZVM forgets them, on every database, with listings that fail."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from etl.names import Listings, normalize_listings
from etl.status import read_status
from etl.warehouse import schema
from tests.syncing import PASSWORD, assert_converged, make_config, one_pass, start_sim
from zvm_simulator import Simulator

pytestmark = pytest.mark.sim(
    days=1, tasks_per_hour=30, vpg_rename_after=None, vpg_delete_after=None
)
"""The ``sim`` fixture (conftest.py) of every test here."""

HOSTS = "/v1/virtualizationsites/{site}/hosts"


def rows(engine: Engine, table: str, key: str) -> dict[str, Any]:
    columns = schema.metadata.tables[table]
    with engine.connect() as conn:
        return {row._mapping[key]: row for row in conn.execute(sa.select(columns))}


def listing_requests(sim: Simulator) -> list[str]:
    """The entity listings asked for (not the tasks, the session or the Recovery Report)."""
    other = ("/v1/tasks", "/v1/session", "/v1/reports/recovery")
    return [r.path for r in sim.requests if not r.path.startswith(other)]


class Clock:
    """This host's clock, as the test sets it (it starts near the simulator's clock: the
    first pass's lower bound comes from it)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(second=0, microsecond=0)

    def __call__(self) -> datetime:
        return self.now


def test_every_listed_entity_gets_its_names(sim: Simulator, warehouse: Engine) -> None:
    config = make_config(sim, str(warehouse.url.render_as_string(hide_password=False)))
    assert one_pass(config, warehouse).succeeded
    assert_converged(warehouse, sim)
    vpgs = rows(warehouse, "vpgs", "vpg_identifier")
    names = sim.vpg_names()
    assert set(vpgs) == set(sim.all_vpg_ids) == set(names)
    for identifier, name in names.items():
        vpg = vpgs[identifier]
        assert (vpg.name, vpg.zvm, vpg.unlisted_at) == (name, "sim", None)
        assert vpg.priority in (0, 1, 2) and vpg.configured_rpo_seconds > 0
        assert vpg.listed_at is not None
        assert {vpg.protected_site_identifier, vpg.recovery_site_identifier} == {
            sim.site_id,
            sim.inventory.peer_site_id,
        }
    with warehouse.connect() as conn:
        touched = set(
            conn.execute(sa.text("SELECT DISTINCT vpg_identifier FROM task_vpgs")).scalars()
        )
    untouched = set(sim.all_vpg_ids) - set(sim.vpg_ids)
    assert untouched and not untouched & touched  # listed, never in a task: still rows
    sites = rows(warehouse, "sites", "site_identifier")
    local, peer = sites[sim.site_id], sites[sim.inventory.peer_site_id]
    assert (local.name, bool(local.is_local), local.location) == (
        sim.inventory.site_name,
        True,
        sim.inventory.location,
    )
    assert (peer.name, bool(peer.is_local)) == (sim.inventory.peer_site_name, False)
    hosts = rows(warehouse, "hosts", "host_identifier")
    expected = sim.inventory.hosts | sim.inventory.peer_hosts
    assert {h: row.name for h, row in hosts.items()} == expected
    assert all(
        hosts[h].vra_name and hosts[h].vra_name.startswith("Z-VRA-") for h in sim.inventory.hosts
    )
    [zvm] = rows(warehouse, "zvms", "name").values()
    assert zvm.site_identifier == sim.site_id and zvm.names_refreshed_at is not None
    assert zvm.names_error is None
    # One request per listing, plus one per virtualization site for its hosts.
    assert sorted(listing_requests(sim)) == sorted(
        [
            "/v1/localsite",
            "/v1/peersites",
            "/v1/vpgs",
            "/v1/vras",
            "/v1/virtualizationsites",
            f"/v1/virtualizationsites/{sim.site_id}/hosts",
            f"/v1/virtualizationsites/{sim.inventory.peer_site_id}/hosts",
        ]
    )
    with warehouse.connect() as conn:
        tested = conn.execute(
            sa.text("SELECT vpg_identifier, vpg_name FROM v_task_vpgs WHERE vpg_name IS NOT NULL")
        ).all()
    assert tested and all(name == names[vpg] for vpg, name in tested)


def test_rename_deletion_and_reappearance(sim: Simulator, warehouse: Engine) -> None:
    url = warehouse.url.render_as_string(hide_password=False)
    config = make_config(sim, url, entity_refresh_interval="0s")
    clock = Clock()
    assert one_pass(config, warehouse, clock=clock).succeeded
    renamed, deleted = sim.all_vpg_ids[0], sim.vpg_ids[-1]
    old_name = sim.vpg_names()[deleted]
    sim.advance(timedelta(minutes=5))
    sim.rename_vpg(renamed, "Zürich Payroll – neu")
    sim.delete_vpg(deleted)
    clock.now += timedelta(minutes=5)
    gone_at = clock.now
    assert one_pass(config, warehouse, clock=clock).succeeded
    vpgs = rows(warehouse, "vpgs", "vpg_identifier")
    assert vpgs[renamed].name == "Zürich Payroll – neu" and vpgs[renamed].unlisted_at is None
    assert vpgs[deleted].name == old_name  # the last known name stays
    assert vpgs[deleted].unlisted_at == gone_at
    clock.now += timedelta(minutes=5)
    assert one_pass(config, warehouse, clock=clock).succeeded
    assert rows(warehouse, "vpgs", "vpg_identifier")[deleted].unlisted_at == gone_at  # once
    sim.restore_vpg(deleted)
    clock.now += timedelta(minutes=5)
    assert one_pass(config, warehouse, clock=clock).succeeded
    back = rows(warehouse, "vpgs", "vpg_identifier")[deleted]
    assert back.unlisted_at is None and back.listed_at == clock.now and back.name == old_name


def test_failing_listings_leave_tasks_loading_and_names_intact(
    sim: Simulator, warehouse: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    url = warehouse.url.render_as_string(hide_password=False)
    config = make_config(sim, url, zvm_keys={"retry_for": "0.3s"}, entity_refresh_interval="0s")
    clock = Clock()
    assert one_pass(config, warehouse, clock=clock).succeeded
    before_vpgs = rows(warehouse, "vpgs", "vpg_identifier")
    before_hosts = rows(warehouse, "hosts", "host_identifier")
    sim.rename_vpg(sim.all_vpg_ids[1], "never seen")
    sim.delete_vpg(sim.all_vpg_ids[2])
    sim.faults.missing_listings.add("/v1/vpgs")
    sim.faults.failing_listings.add(HOSTS)
    sim.advance(timedelta(hours=2))
    clock.now += timedelta(hours=1)
    with caplog.at_level(logging.DEBUG):
        result = one_pass(config, warehouse, clock=clock)
    assert result.succeeded and result.counts.inserted > 0
    assert_converged(warehouse, sim)
    after_vpgs = rows(warehouse, "vpgs", "vpg_identifier")
    assert {k: (v.name, v.unlisted_at, v.listed_at) for k, v in after_vpgs.items()} == {
        k: (v.name, v.unlisted_at, v.listed_at) for k, v in before_vpgs.items()
    }
    after_hosts = rows(warehouse, "hosts", "host_identifier")
    assert {k: (v.name, v.unlisted_at) for k, v in after_hosts.items()} == {
        k: (v.name, v.unlisted_at) for k, v in before_hosts.items()
    }
    [zvm] = rows(warehouse, "zvms", "name").values()
    assert zvm.names_refreshed_at == clock.now
    assert "GET /v1/vpgs: ZVM sim" in zvm.names_error and "HTTP 404" in zvm.names_error
    assert f"GET /v1/virtualizationsites/{sim.site_id}/hosts" in zvm.names_error
    assert "HTTP 500" in zvm.names_error
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("names not refreshed: GET /v1/vpgs" in w for w in warnings)
    [status] = read_status(config, engine=warehouse)
    assert status.names_error == zvm.names_error and status.names_refreshed_at
    everything = caplog.text + zvm.names_error + repr(status.to_dict())
    assert PASSWORD not in everything
    # The listings answer again: names move on, and what was deleted is unlisted.
    sim.faults.reset()
    clock.now += timedelta(hours=1)
    assert one_pass(config, warehouse, clock=clock).succeeded
    vpgs = rows(warehouse, "vpgs", "vpg_identifier")
    assert vpgs[sim.all_vpg_ids[1]].name == "never seen"
    assert vpgs[sim.all_vpg_ids[2]].unlisted_at == clock.now
    assert rows(warehouse, "zvms", "name")["sim"].names_error is None


def test_listings_of_an_unexpected_shape_are_warnings(
    sim: Simulator, warehouse: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    url = warehouse.url.render_as_string(hide_password=False)
    config = make_config(sim, url, entity_refresh_interval="0s")
    clock = Clock()
    assert one_pass(config, warehouse, clock=clock).succeeded
    tables = {"vpgs": "vpg_identifier", "sites": "site_identifier", "hosts": "host_identifier"}

    def names() -> dict[str, dict[str, Any]]:
        return {
            table: {
                k: (v.name, v.listed_at, v.unlisted_at)
                for k, v in rows(warehouse, table, key).items()
            }
            for table, key in tables.items()
        }

    before = names()
    assert all(before.values())
    sim.rename_vpg(sim.all_vpg_ids[0], "never seen either")
    sim.faults.misshapen_listings.update(
        {
            "/v1/localsite": "wrong-type",  # an array where the API gives an object
            "/v1/peersites": "html",
            "/v1/vpgs": "wrong-type",  # an object where the API gives an array
            "/v1/vras": "invalid-json",
            "/v1/virtualizationsites": "html",
        }
    )
    sim.advance(timedelta(hours=2))
    clock.now += timedelta(hours=1)
    with caplog.at_level(logging.WARNING):
        result = one_pass(config, warehouse, clock=clock)
    assert result.succeeded and result.counts.inserted > 0
    assert_converged(warehouse, sim)
    assert names() == before  # nothing blanked, nothing unlisted, no listed_at moved on
    [zvm] = rows(warehouse, "zvms", "name").values()
    error = zvm.names_error
    assert (
        "GET /v1/localsite: ZVM sim" in error
        and "with a JSON list, expected a JSON object" in error
    )
    assert "GET /v1/vpgs: ZVM sim" in error and "with a JSON dict, expected a JSON array" in error
    assert "GET /v1/peersites: ZVM sim" in error and "with an HTML page (HTTP 200)" in error
    assert "GET /v1/vras: ZVM sim" in error and "with invalid JSON" in error
    assert "GET /v1/virtualizationsites: ZVM sim" in error
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("names not refreshed: GET /v1/localsite" in w for w in warnings)
    assert sim.faults.injected.snapshot()["misshapen_listing"] == 5
    sim.faults.reset()
    clock.now += timedelta(hours=1)
    assert one_pass(config, warehouse, clock=clock).succeeded
    assert rows(warehouse, "vpgs", "vpg_identifier")[sim.all_vpg_ids[0]].name == "never seen either"
    assert rows(warehouse, "zvms", "name")["sim"].names_error is None


def test_refresh_interval_is_honoured(sim: Simulator, warehouse: Engine) -> None:
    url = warehouse.url.render_as_string(hide_password=False)
    config = make_config(sim, url, entity_refresh_interval="1h")
    clock = Clock()
    assert one_pass(config, warehouse, clock=clock).succeeded
    assert "/v1/vpgs" in listing_requests(sim)
    first = clock.now
    for minutes in (20, 59):
        sim.clear_requests()
        clock.now = first + timedelta(minutes=minutes)
        assert one_pass(config, warehouse, clock=clock).succeeded
        assert listing_requests(sim) == []
    sim.clear_requests()
    clock.now = first + timedelta(minutes=60)
    assert one_pass(config, warehouse, clock=clock).succeeded
    assert "/v1/vpgs" in listing_requests(sim)


def test_the_appliance_flavour_and_camel_case(warehouse: Engine) -> None:
    sim = start_sim(
        days=0.5,
        auth="keycloak",
        date_style="appliance",
        include_task_identifier=False,
        key_case="camel",
    )
    try:
        url = warehouse.url.render_as_string(hide_password=False)
        assert one_pass(make_config(sim, url), warehouse).succeeded
        vpgs = rows(warehouse, "vpgs", "vpg_identifier")
        assert {k: v.name for k, v in vpgs.items()} == sim.vpg_names()
        hosts = rows(warehouse, "hosts", "host_identifier")
        assert all(hosts[h].name == name for h, name in sim.inventory.hosts.items())
        sites = rows(warehouse, "sites", "site_identifier")
        assert sites[sim.inventory.peer_site_id].name == sim.inventory.peer_site_name
    finally:
        sim.stop()


def test_an_entity_only_seen_in_tasks_keeps_null_names(sim: Simulator, warehouse: Engine) -> None:
    url = warehouse.url.render_as_string(hide_password=False)
    sim.faults.missing_listings.update({"/v1/vpgs", "/v1/vras", "/v1/virtualizationsites"})
    assert one_pass(make_config(sim, url), warehouse).succeeded
    vpgs = rows(warehouse, "vpgs", "vpg_identifier")
    assert vpgs and all(v.name is None and v.listed_at is None for v in vpgs.values())
    assert set(vpgs) <= set(sim.vpg_ids)


# -- normalizing listings (pure) -----------------------------------------------------------


def test_identifiers_from_either_place_and_keys_in_either_case() -> None:
    listings = Listings(
        local_site={"siteIdentifier": "L", "siteName": "Main", "location": "Here"},
        peer_sites=[{"PeerSiteName": "DR", "Link": {"identifier": "P"}}],
        vpgs=[
            {"VpgIdentifier": "v1", "VpgName": "One", "Priority": 2, "ConfiguredRpoSeconds": 300},
            {"vpgName": "Two", "priority": "Medium", "link": {"identifier": "v2"}},
            {"VpgName": "no identifier"},
            "not an object",
        ],
        vras=[{"HostIdentifier": "h1", "VraName": "Z-VRA-1", "HostDisplayName": "esx1"}],
        virtualization_sites=[{"SiteIdentifier": "L"}],
        hosts={"L": [{"HostIdentifier": "h1", "VirtualizationHostName": "esx1.corp"}]},
    )
    names = normalize_listings(listings)
    assert [(v.vpg_identifier, v.name, v.priority) for v in names.vpgs] == [
        ("v1", "One", 2),
        ("v2", "Two", 1),
    ]
    assert names.problems == ["GET /v1/vpgs: 2 item(s) without a usable identifier left out"]
    assert [(s.site_identifier, s.name, s.is_local) for s in names.sites] == [
        ("L", "Main", True),
        ("P", "DR", False),
    ]
    assert [(h.host_identifier, h.name, h.vra_name) for h in names.hosts] == [
        ("h1", "esx1.corp", "Z-VRA-1")  # the virtualization host's name wins over the VRA's
    ]
    assert names.sites_complete and names.vpgs_complete and names.hosts_complete
    assert names.local_site == "L"


def test_a_missing_listing_makes_its_kind_incomplete() -> None:
    names = normalize_listings(
        Listings(local_site={"SiteIdentifier": "L"}, vpgs=[], problems=["GET /v1/peersites: 404"])
    )
    assert not names.sites_complete and names.vpgs_complete and not names.hosts_complete
    assert names.problems == ["GET /v1/peersites: 404"]
