"""The names refresh's time budget (``sync.entity_refresh_budget``): failing or slow entity
listings add at most the budget to a pass, all of them together, and the tasks' own calls
keep ``retry_for``.

Time is the ZVM client's injected clock (``monotonic=``), which only its retry waits
(``sleep=``) and, in :class:`SlowListings`, the simulated answer times move: nothing waits
for real and no figure depends on the machine's speed. The ZVM is the simulator, over real
HTTP, with its failing-listing knob.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from etl.config import Config, ZvmConfig
from etl.names import fetch_listings, normalize_listings
from etl.sync import ClientFactory
from etl.zvm.client import ZvmClient
from tests.clocks import ManualTime
from tests.syncing import assert_converged, make_config, one_pass, start_sim
from tests.test_names import HOSTS, listing_requests, rows
from zvm_simulator import Simulator

pytestmark = pytest.mark.sim(
    days=1, tasks_per_hour=30, vpg_rename_after=None, vpg_delete_after=None
)

BUDGET = 10.0
"""sync.entity_refresh_budget in these tests, in seconds."""

PEERS = "/v1/peersites"


def clients(time: ManualTime, transport: httpx.BaseTransport | None = None) -> ClientFactory:
    """ZVM clients whose retry budgets and waits run on ``time``."""

    def make(zvm: ZvmConfig) -> ZvmClient:
        return ZvmClient(zvm, sleep=time.advance, monotonic=time, transport=transport)

    return make


def budget_config(sim: Simulator, warehouse: Engine) -> Config:
    """Names read at every pass within BUDGET; retry_for at its default of two minutes."""
    return make_config(
        sim,
        warehouse.url.render_as_string(hide_password=False),
        zvm_keys={"retry_for": "2m"},
        entity_refresh_interval="0s",
        entity_refresh_budget=f"{BUDGET:g}s",
    )


def asked(sim: Simulator) -> Counter[str]:
    """How often each listing was asked for (the hosts of every site as one path)."""
    hosts = HOSTS.split("{", 1)[0]
    return Counter(HOSTS if p.startswith(hosts) else p for p in listing_requests(sim))


class SlowListings(httpx.BaseTransport):
    """Real HTTP to the simulator, where each entity listing's answer takes ``seconds`` of
    the injected clock; an attempt whose read timeout is shorter times out after its
    timeout, as a real one would. The tasks' (and the Recovery Report's) calls take no
    time. ``asked``: the listings
    asked for, in order, answered or not."""

    def __init__(self, time: ManualTime, seconds: float) -> None:
        self.time = time
        self.seconds = seconds
        self.asked: list[str] = []
        self.http = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.startswith(("/v1/tasks", "/v1/session", "/v1/reports/")):
            self.asked.append(request.url.path)
            timeout = request.extensions["timeout"]["read"]
            if timeout is not None and timeout < self.seconds:
                self.time.advance(timeout)
                raise httpx.ReadTimeout("no answer within the read timeout", request=request)
            self.time.advance(self.seconds)
        return self.http.handle_request(request)

    def close(self) -> None:
        self.http.close()


def test_a_listing_failing_forever_costs_its_share_of_the_budget_at_each_refresh(
    sim: Simulator, warehouse: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    config = budget_config(sim, warehouse)
    sim.faults.failing_listings.add(PEERS)
    time = ManualTime()
    for refresh in (1, 2):
        sim.clear_requests()
        begun = time()
        with caplog.at_level(logging.WARNING):
            result = one_pass(config, warehouse, client_factory=clients(time))
        assert result.succeeded and (refresh == 2 or result.counts.inserted > 0)
        assert_converged(warehouse, sim)
        # Only the client's retry waits move this clock: the pass waited for the failing
        # listing's share of the budget (the local site answered at once, leaving five
        # listings to share it), never for retry_for's two minutes.
        spent = time() - begun
        assert spent <= BUDGET and spent == pytest.approx(BUDGET / 5)
        counts = asked(sim)
        assert 2 <= counts[PEERS] <= 15  # retried within its share (exponential waits)
        assert sim.faults.injected.snapshot()["failing_listing"] > 0
        others = {"/v1/localsite", "/v1/vpgs", "/v1/vras", "/v1/virtualizationsites"}
        assert {path: counts[path] for path in others} == dict.fromkeys(others, 1)
        assert counts[HOSTS] == 2  # the listings after it still ran
        [zvm] = rows(warehouse, "zvms", "name").values()
        assert f"GET {PEERS}: gave up" in zvm.names_error and "HTTP 500" in zvm.names_error
        assert "raise sync.entity_refresh_budget to wait longer" in zvm.names_error
        vpgs = rows(warehouse, "vpgs", "vpg_identifier")
        assert {k: v.name for k, v in vpgs.items()} == sim.vpg_names()
        sim.advance(timedelta(minutes=5))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum(f"names not refreshed: GET {PEERS}" in w for w in warnings) == 2


def test_failing_listings_share_one_budget() -> None:
    """Four listings failing at once (the hosts of both sites too): each retries for an
    equal share of what is left, every listing is asked, and all of it takes the budget."""
    sim = start_sim(days=0.1, tasks_per_hour=10)
    try:
        sim.faults.failing_listings.update({PEERS, "/v1/vpgs", "/v1/vras", HOSTS})
        [zvm] = make_config(sim, "sqlite://", zvm_keys={"retry_for": "2m"}).zvms
        time = ManualTime()
        with clients(time)(zvm) as client:
            begun = time()
            names = normalize_listings(fetch_listings(client, budget=timedelta(seconds=BUDGET)))
            spent = time() - begun
        assert spent == pytest.approx(BUDGET)  # shares of 2 s each, the last ending on time
        counts = asked(sim)
        assert counts["/v1/localsite"] == counts["/v1/virtualizationsites"] == 1
        assert all(counts[path] >= 2 for path in (PEERS, "/v1/vpgs", "/v1/vras"))
        assert counts[HOSTS] >= 4  # two sites, each retried
        failed = [p for p in names.problems if "HTTP 500" in p]
        assert len(failed) == 5 and len(names.problems) == 5
        assert names.sites and not names.sites_complete and not names.vpgs_complete
    finally:
        sim.stop()


def test_listings_left_when_the_budget_is_spent_are_skipped_with_a_warning(
    sim: Simulator, warehouse: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Each listing answers in 3 s of a 10 s budget: three answer, the fourth's timeout is
    cut to the second left, and the last is not asked; the next refresh reads them all."""
    config = budget_config(sim, warehouse)
    time = ManualTime()
    begun = time()
    slow = SlowListings(time, 3)
    with caplog.at_level(logging.WARNING):
        result = one_pass(config, warehouse, client_factory=clients(time, slow))
    assert result.succeeded and result.counts.inserted > 0
    assert_converged(warehouse, sim)
    assert time() - begun == pytest.approx(BUDGET)
    # /v1/vras timed out before the ZVM answered; no virtualization sites, so no hosts.
    assert slow.asked == ["/v1/localsite", PEERS, "/v1/vpgs", "/v1/vras"]
    assert dict(asked(sim)) == {"/v1/localsite": 1, PEERS: 1, "/v1/vpgs": 1}
    [zvm] = rows(warehouse, "zvms", "name").values()
    error: str = zvm.names_error
    assert "GET /v1/vras: gave up" in error and "timed out" in error
    skipped = "GET /v1/virtualizationsites: not read: the names refresh had spent its 10s"
    assert skipped in error and "the next refresh reads it again" in error
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"names not refreshed: {skipped}" in w for w in warnings)
    vpgs = rows(warehouse, "vpgs", "vpg_identifier")
    assert {k: v.name for k, v in vpgs.items()} == sim.vpg_names()  # read in time
    hosts: dict[str, Any] = rows(warehouse, "hosts", "host_identifier")
    assert hosts and all(h.listed_at is None for h in hosts.values())  # never listed yet
    # Quick answers at the next refresh: everything is read.
    sim.clear_requests()
    sim.advance(timedelta(minutes=5))
    assert one_pass(config, warehouse, client_factory=clients(time)).succeeded
    assert asked(sim)[HOSTS] == 2
    assert rows(warehouse, "zvms", "name")["sim"].names_error is None
    hosts = rows(warehouse, "hosts", "host_identifier")
    everywhere = sim.inventory.hosts | sim.inventory.peer_hosts
    assert {h: row.name for h, row in hosts.items()} == everywhere
