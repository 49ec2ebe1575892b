"""Site names from the VPG listing (``SourceSite``/``TargetSite``, 10.x's
``ProtectedSiteName``/``RecoverySiteName``) for the sites no site listing names, the site
listings' names winning, and names trimmed of surrounding blanks: through real passes
against the simulator on every database, and the normalizing rules on their own."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from etl.names import Listings, normalize_listings
from tests.analyst import run_query
from tests.syncing import make_config, one_pass
from tests.test_names import Clock, rows
from zvm_simulator import Simulator

pytestmark = pytest.mark.sim(
    days=1, tasks_per_hour=30, vpg_rename_after=None, vpg_delete_after=None
)

PEERS = "/v1/peersites"


def sites(warehouse: Engine) -> dict[str, Any]:
    return rows(warehouse, "sites", "site_identifier")


def naming(site: Any) -> tuple[Any, ...]:
    """What the listings decide of a site (first/last_seen_at follow the tasks too)."""
    return (site.name, site.location, site.is_local, site.zvm, site.listed_at, site.unlisted_at)


def passes(sim: Simulator, warehouse: Engine) -> tuple[Clock, Any]:
    """This host's clock, and a function that runs one pass (names read at every pass)."""
    config = make_config(
        sim, warehouse.url.render_as_string(hide_password=False), entity_refresh_interval="0s"
    )
    clock = Clock()

    def run() -> None:
        clock.now += timedelta(minutes=5)
        sim.advance(timedelta(minutes=5))
        assert one_pass(config, warehouse, clock=clock).succeeded

    return clock, run


def test_a_zvm_without_peersites_names_the_recovery_site_from_its_vpgs(
    sim: Simulator, warehouse: Engine
) -> None:
    sim.faults.missing_listings.add(PEERS)
    _, run = passes(sim, warehouse)
    run()
    peer = sites(warehouse)[sim.inventory.peer_site_id]
    assert peer.name == sim.inventory.peer_site_name
    # Only the site listings list a site: one only VPGs name is neither listed nor unlisted.
    assert (peer.listed_at, peer.unlisted_at, peer.zvm, peer.is_local) == (None, None, None, None)
    [zvm] = rows(warehouse, "zvms", "name").values()
    assert f"GET {PEERS}: ZVM sim" in zvm.names_error and "HTTP 404" in zvm.names_error
    names = {sim.site_id: sim.inventory.site_name, peer.site_identifier: peer.name}
    vpgs = rows(warehouse, "vpgs", "vpg_identifier")
    assert {v.recovery_site_identifier for v in vpgs.values()} == set(names)
    for query in ("dr_test_evidence", "failover_tests_this_quarter"):
        found = run_query(warehouse, query)
        assert {r.vpg_identifier for r in found} == set(vpgs) == set(sim.vpg_names())
        for r in found:
            vpg = vpgs[r.vpg_identifier]
            assert r.recovery_site_name == names[vpg.recovery_site_identifier]
            assert r.protected_site_name == names[vpg.protected_site_identifier]
        assert peer.name in {r.recovery_site_name for r in found}
    run()  # still no peersites: the name stays, never unlisted
    assert naming(sites(warehouse)[peer.site_identifier]) == naming(peer)


def test_the_site_listing_name_wins_and_is_never_replaced_by_the_vpg_listing(
    sim: Simulator, warehouse: Engine
) -> None:
    peer_id = sim.inventory.peer_site_id
    sim.rename_site(peer_id, "Zürich DR", in_vpgs="Zurich (VPG listing)")
    sim.rename_site(sim.site_id, "NYC DC", in_vpgs="New York (VPG listing)")
    sim.faults.missing_listings.add(PEERS)
    clock, run = passes(sim, warehouse)
    run()
    known = sites(warehouse)
    assert known[sim.site_id].name == "NYC DC"  # both name it: the site listing wins
    assert known[peer_id].name == "Zurich (VPG listing)"  # only the VPG listing names it
    sim.faults.reset()
    run()
    peer = sites(warehouse)[peer_id]
    assert (peer.name, peer.listed_at, bool(peer.is_local)) == ("Zürich DR", clock.now, False)
    sim.faults.missing_listings.add(PEERS)  # the site listing fails again later
    run()
    assert naming(sites(warehouse)[peer_id]) == naming(peer)  # nor the VPG listing's name


def test_names_are_stored_trimmed(sim: Simulator, warehouse: Engine) -> None:
    peer_id, vpg = sim.inventory.peer_site_id, sim.all_vpg_ids[0]
    sim.rename_site(peer_id, "\tZürich DR  ", in_vpgs="  Zürich DR (VPGs) ")
    sim.rename_site(sim.site_id, "   ", in_vpgs="\u00a0NYC DC  ")  # blank: no name
    sim.rename_vpg(vpg, "  Finance 01  ")
    sim.faults.missing_listings.add(PEERS)
    _, run = passes(sim, warehouse)
    run()
    known = sites(warehouse)
    assert known[peer_id].name == "Zürich DR (VPGs)"
    # The local site is listed without a name: the VPG listing's name is taken.
    assert (known[sim.site_id].name, bool(known[sim.site_id].is_local)) == ("NYC DC", True)
    assert rows(warehouse, "vpgs", "vpg_identifier")[vpg].name == "Finance 01"
    sim.faults.reset()
    run()
    assert sites(warehouse)[peer_id].name == "Zürich DR"


# -- normalizing (pure) --------------------------------------------------------------------


def link(identifier: str) -> dict[str, str]:
    return {"identifier": identifier}


def test_vpg_listing_site_names_fill_only_what_the_site_listings_leave_unnamed() -> None:
    names = normalize_listings(
        Listings(
            local_site={"SiteIdentifier": "L", "SiteName": "Main"},
            peer_sites=[{"SiteIdentifier": "P", "PeerSiteName": "  "}],
            vpgs=[
                {
                    "VpgIdentifier": "v1",
                    "ProtectedSite": link("L"),
                    "SourceSite": "Main (VPGs)",
                    "RecoverySite": link("P"),
                    "TargetSite": "Peer",
                },
                {  # the appliance: camelCase keys, names only in *SiteName
                    "link": link("v2"),
                    "protectedSite": link("X"),
                    "protectedSiteName": " Elsewhere ",
                    "recoverySite": link("P"),
                    "targetSite": "Peer (second VPG)",
                },
                {"VpgIdentifier": "v3", "ProtectedSite": link("Y"), "SourceSite": " "},
                {"VpgIdentifier": "v4", "SourceSite": "no identifier for it"},
            ],
        )
    )
    by_id = {s.site_identifier: s for s in names.sites}
    assert {k: (s.name, s.is_local, s.listed) for k, s in by_id.items()} == {
        "L": ("Main", True, True),  # the site listing's name wins
        "P": ("Peer", False, True),  # listed unnamed: the first VPG naming it
        "X": ("Elsewhere", None, False),  # only a VPG names it
    }
    assert [(v.protected_site_name, v.recovery_site_name) for v in names.vpgs] == [
        ("Main (VPGs)", "Peer"),
        ("Elsewhere", "Peer (second VPG)"),
        (None, None),
        ("no identifier for it", None),
    ]


def test_every_name_is_trimmed_and_a_blank_one_is_no_name() -> None:
    names = normalize_listings(
        Listings(
            local_site={"SiteIdentifier": " L ", "SiteName": " Main\t", "Location": " NYC "},
            peer_sites=[{"Link": link(" P"), "PeerSiteName": "\u00a0Peer ", "Location": "\n"}],
            vpgs=[{"VpgIdentifier": "v1 ", "VpgName": "  Finance 01 ", "Priority": " High "}],
            vras=[
                {"HostIdentifier": " h1", "VraName": " Z-VRA-1 ", "HostDisplayName": " esx1 "},
                {"HostIdentifier": "h2", "VraName": "   ", "HostDisplayName": " esx2 "},
            ],
            virtualization_sites=[{"SiteIdentifier": "L"}],
            hosts={"L": [{"HostIdentifier": "h1 ", "VirtualizationHostName": "\tesx1.corp "}]},
        )
    )
    assert [(s.site_identifier, s.name, s.location) for s in names.sites] == [
        ("L", "Main", "NYC"),
        ("P", "Peer", None),
    ]
    assert [(v.vpg_identifier, v.name, v.priority) for v in names.vpgs] == [("v1", "Finance 01", 2)]
    assert [(h.host_identifier, h.name, h.vra_name) for h in names.hosts] == [
        ("h1", "esx1.corp", "Z-VRA-1"),
        ("h2", "esx2", None),
    ]
    assert not names.problems
