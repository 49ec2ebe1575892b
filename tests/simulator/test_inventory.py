"""The simulated ZVM's entity listings: names for the identifiers tasks carry, in both
ZVM flavours, changing as simulated time passes, with fault knobs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import httpx
import pytest

from tests.simulator.wire_reading import started
from zvm_simulator import Faults, Simulator, SimulatorSettings
from zvm_simulator.api import LISTINGS
from zvm_simulator.cli import _settings as cli_settings
from zvm_simulator.cli import simulate

START = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


class Api:
    """A logged-in client of one simulator (session or Keycloak, as it is set up)."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.http = httpx.Client(base_url=sim.url)
        if sim.settings.auth == "session":
            login = self.http.post("/v1/session/add", auth=("admin", "zerto"))
            self.headers = {"x-zerto-session": login.headers["x-zerto-session"]}
        else:
            form = {"grant_type": "password", "client_id": "zerto-client"}
            form |= {"username": "admin", "password": "zerto"}
            grant = self.http.post("/auth/realms/zerto/protocol/openid-connect/token", data=form)
            self.headers = {"Authorization": f"Bearer {grant.json()['access_token']}"}

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path, headers=self.headers)

    def json(self, path: str) -> Any:
        response = self.get(path)
        assert response.status_code == 200, response.text
        return response.json()


def running(**settings: Any) -> Iterator[Api]:
    options: dict[str, Any] = {"speed": 0, "days": 1, "tasks_per_hour": 30, "start": START}
    with Simulator(**(options | settings)) as sim:
        api = Api(sim)
        yield api
        api.http.close()


@pytest.fixture
def windows() -> Iterator[Api]:
    yield from running()


@pytest.fixture
def appliance() -> Iterator[Api]:
    yield from running(auth="keycloak", date_style="appliance", include_task_identifier=False)


def test_every_listing_names_what_tasks_refer_to(windows: Api) -> None:
    sim = windows.sim
    local = windows.json("/v1/localsite")
    assert local["SiteIdentifier"] == sim.site_id and local["SiteName"] and local["Location"]
    [peer] = windows.json("/v1/peersites")
    assert peer["SiteIdentifier"] == peer["Link"]["identifier"] != sim.site_id
    assert peer["PeerSiteName"] and peer["PeerSiteName"] != local["SiteName"]
    vpgs = {v["VpgIdentifier"]: v for v in windows.json("/v1/vpgs")}
    assert set(vpgs) == set(sim.all_vpg_ids) and set(sim.vpg_ids) < set(vpgs)
    for vpg in vpgs.values():
        assert vpg["VpgName"] and vpg["Priority"] in (0, 1, 2) and vpg["ConfiguredRpoSeconds"] > 0
        assert {vpg["ProtectedSite"]["identifier"], vpg["RecoverySite"]["identifier"]} == {
            sim.site_id,
            peer["SiteIdentifier"],
        }
    referenced = {
        entity["identifier"]
        for task in sim.ground_truth()
        for kind in ("Vpgs", "Hosts")
        for entity in (task["RelatedEntities"] or {}).get(kind, [])
    }
    untouched = set(sim.all_vpg_ids) - set(sim.vpg_ids)
    assert len(untouched) == 3 and not untouched & referenced
    vras = windows.json("/v1/vras")
    assert all("HostDisplayName" not in vra for vra in vras)
    sites = windows.json("/v1/virtualizationsites")
    hosts = {
        host["HostIdentifier"]: host["VirtualizationHostName"]
        for site in sites
        for host in windows.json(f"/v1/virtualizationsites/{site['SiteIdentifier']}/hosts")
    }
    task_hosts = {h for h in referenced if ".host-" in h}
    assert task_hosts <= set(hosts) and {v["HostIdentifier"] for v in vras} <= set(hosts)
    assert all(name.endswith(".corp.local") for name in hosts.values())
    assert windows.get("/v1/virtualizationsites/nope/hosts").status_code == 404


def test_the_appliance_flavour(appliance: Api) -> None:
    vpgs = appliance.json("/v1/vpgs")
    assert all("VpgIdentifier" not in v and v["Link"]["identifier"] for v in vpgs)
    assert all(v["ProtectedSiteName"] and v["RecoverySiteName"] for v in vpgs)
    [peer] = appliance.json("/v1/peersites")
    assert "SiteIdentifier" not in peer and peer["Link"]["identifier"]
    vras = appliance.json("/v1/vras")
    assert all(vra["HostDisplayName"].endswith(".corp.local") for vra in vras)


def test_sites_renamed_in_both_listings_or_differently_in_the_vpg_listing(windows: Api) -> None:
    sim = windows.sim
    peer, local = sim.inventory.peer_site_id, sim.site_id

    def vpg_site_names() -> set[tuple[str, str]]:
        return {
            (vpg[link]["identifier"], vpg[name])
            for vpg in windows.json("/v1/vpgs")
            for link, name in (("ProtectedSite", "SourceSite"), ("RecoverySite", "TargetSite"))
        }

    sim.rename_site(peer, "Lisboa DR")
    assert windows.json("/v1/peersites")[0]["PeerSiteName"] == "Lisboa DR"
    assert (peer, "Lisboa DR") in vpg_site_names()
    sim.rename_site(local, "  Main  ", in_vpgs="Main (old name)")
    assert windows.json("/v1/localsite")["SiteName"] == "  Main  "
    assert vpg_site_names() == {(local, "Main (old name)"), (peer, "Lisboa DR")}
    with pytest.raises(KeyError):
        sim.rename_site("not-a-site", "x")


def test_camel_case_keys() -> None:
    for api in running(key_case="camel"):
        [vpg, *_] = api.json("/v1/vpgs")
        assert "vpgName" in vpg and "VpgName" not in vpg
        assert "siteName" in api.json("/v1/localsite")


def test_names_include_non_ascii_ones() -> None:
    names = set()
    for seed in range(1, 6):
        sim = Simulator(seed=seed, speed=0, days=0, tasks_per_hour=0, start=START)
        names |= set(sim.vpg_names().values()) | {sim.inventory.site_name}
    assert any(not name.isascii() for name in names)


def test_a_large_estate_lists_thousands_of_vpgs_and_hosts_no_task_names() -> None:
    small = Simulator(speed=0, days=0, tasks_per_hour=0, start=START)
    for api in running(untouched_vpgs=2_000, extra_hosts=300):
        vpgs = api.json("/v1/vpgs")
        names = [vpg["VpgName"] for vpg in vpgs]
        assert len(vpgs) == len(small.inventory.vpg_ids) - 3 + 2_000
        assert len(set(names)) == len(names)  # names stay distinct past the list of names
        vras = api.json("/v1/vras")
        hosts = api.json(f"/v1/virtualizationsites/{api.sim.inventory.site_id}/hosts")
        assert len(vras) == len(hosts) == len(small.inventory.hosts) + 300
        assert len({h["HostIdentifier"] for h in hosts}) == len(hosts)
        assert len({vra["IpAddress"] for vra in vras}) == len(vras)
    # The defaults are the estate every other test knows, unchanged by the knobs.
    again = Simulator(speed=0, days=0, tasks_per_hour=0, start=START, untouched_vpgs=3)
    assert again.vpg_names() == small.vpg_names()
    with pytest.raises(ValueError, match="extra_hosts must not be negative"):
        Simulator(extra_hosts=-1)


def test_a_vpg_is_renamed_then_another_deleted_as_time_passes(windows: Api) -> None:
    sim = windows.sim
    first, last = sim.vpg_ids[0], sim.vpg_ids[-1]
    before = sim.vpg_names()
    sim.advance(timedelta(minutes=31))
    after = sim.vpg_names()
    assert after[first] == before[first] + " – Tier 1"
    assert {i: n for i, n in after.items() if i != first} == {
        i: n for i, n in before.items() if i != first
    }
    sim.advance(timedelta(minutes=35))  # past the deletion, 65 minutes after the start
    listed = {v["VpgIdentifier"]: v["VpgName"] for v in windows.json("/v1/vpgs")}
    assert last not in listed and listed[first] == after[first]
    removal = [
        t
        for t in sim.ground_truth()
        if t["Type"] == "RemoveProtectionGroup"
        and [v["identifier"] for v in t["RelatedEntities"]["Vpgs"]] == [last]
    ]
    assert len(removal) == 1 and removal[0]["Status"]["State"] == 6
    sim.advance(timedelta(hours=6))
    deleted_at = START + timedelta(minutes=65)
    for task in sim.ground_truth():
        if started(task) >= deleted_at:
            assert last not in [
                v["identifier"] for v in (task["RelatedEntities"] or {}).get("Vpgs", [])
            ]


def test_tests_rename_delete_and_restore_at_will() -> None:
    for api in running(vpg_rename_after=None, vpg_delete_after=None):
        sim = api.sim
        vpg = sim.all_vpg_ids[-1]
        sim.advance(timedelta(hours=3))
        assert len(sim.vpg_names()) == len(sim.all_vpg_ids)
        sim.rename_vpg(vpg, "Zürich Payroll – neu")
        sim.delete_vpg(sim.all_vpg_ids[0])
        listed = {v["VpgIdentifier"]: v["VpgName"] for v in api.json("/v1/vpgs")}
        assert listed[vpg] == "Zürich Payroll – neu" and sim.all_vpg_ids[0] not in listed
        sim.advance(timedelta(minutes=1))
        sim.restore_vpg(sim.all_vpg_ids[0])
        assert sim.all_vpg_ids[0] in {v["VpgIdentifier"] for v in api.json("/v1/vpgs")}


@pytest.mark.parametrize("listing", LISTINGS)
def test_fault_knobs_make_a_listing_answer_404_or_500(windows: Api, listing: str) -> None:
    path = listing.replace("{site}", windows.sim.site_id)
    windows.sim.faults.missing_listings.add(listing)
    assert windows.get(path).status_code == 404
    windows.sim.faults.missing_listings.clear()
    windows.sim.faults.failing_listings.add(listing)
    failed = windows.get(path)
    assert failed.status_code == 500 and failed.json() == {"Message": "An error has occurred."}
    windows.sim.faults.reset()
    assert windows.get(path).status_code == 200
    assert windows.http.get(path).status_code == 401  # listings need a session like tasks


@pytest.mark.parametrize("listing", LISTINGS)
def test_fault_knob_makes_a_listing_answer_with_the_wrong_shape(windows: Api, listing: str) -> None:
    path = listing.replace("{site}", windows.sim.site_id)
    expected = dict if listing == "/v1/localsite" else list
    assert isinstance(windows.json(path), expected)
    misshapen = windows.sim.faults.misshapen_listings
    misshapen[listing] = "wrong-type"
    wrong = windows.get(path)
    assert wrong.status_code == 200 and not isinstance(wrong.json(), expected)
    misshapen[listing] = "html"
    page = windows.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    misshapen[listing] = "invalid-json"
    cut = windows.get(path)
    assert cut.status_code == 200
    with pytest.raises(ValueError):
        cut.json()
    windows.sim.faults.reset()
    assert isinstance(windows.json(path), expected)


def test_misshapen_listing_settings_are_checked() -> None:
    with pytest.raises(ValueError, match=r"misshapen_listings.*one of wrong-type, html"):
        Simulator(faults=Faults(misshapen_listings={"/v1/vpgs": "xml"}))
    settings = _settings_from_cli(["--misshapen-listing", "/v1/vpgs=html"])
    assert settings.faults.misshapen_listings == {"/v1/vpgs": "html"}
    for bad in ("/v1/vpgs", "/v1/nope=html", "/v1/vpgs=xml"):
        with pytest.raises(click.BadParameter):
            _settings_from_cli(["--misshapen-listing", bad])


def _settings_from_cli(args: list[str]) -> SimulatorSettings:
    """The settings the simulator's command line makes of ``args`` (without serving)."""
    context = simulate.make_context("zvm-simulator", args)
    return cli_settings(context.params)
