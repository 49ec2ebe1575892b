"""Names for the identifiers tasks carry: the ZVM's entity listings, read and normalized.

Tasks name VPGs, hosts and sites by identifier only; the ZVM's listings give the names
people know them by (see docs/zvm-api.md, "Entity endpoints"):

- ``/v1/localsite`` (one object: ``SiteIdentifier``, ``SiteName``, ``Location``) and
  ``/v1/peersites`` (``PeerSiteName``, ``Location``, the identifier in ``SiteIdentifier`` or
  only in ``Link.identifier``) → sites;
- ``/v1/vpgs`` (``VpgIdentifier`` or only ``Link.identifier``, ``VpgName``, ``Priority``,
  ``ConfiguredRpoSeconds``, ``ProtectedSite``/``RecoverySite`` links) → VPGs, and the names
  of their sites (``SourceSite``/``TargetSite``, or ``ProtectedSiteName``/
  ``RecoverySiteName``) for the sites no site listing names;
- ``/v1/virtualizationsites`` and ``/v1/virtualizationsites/{site}/hosts``
  (``HostIdentifier``, ``VirtualizationHostName``) and ``/v1/vras`` (``HostIdentifier``,
  ``VraName``, on the appliance ``HostDisplayName``) → hosts.

:func:`fetch_listings` reads them (one request each, plus one per virtualization site)
within one time budget for them all (``sync.entity_refresh_budget``): each listing may
retry for an equal share of the time left, and a listing that fails after that, answers
404 (an older version, a role without it) or has an unexpected shape is recorded as a
problem and not asked again before the next refresh, while the others go on; the listings
still unread when the budget is spent are skipped, each recorded as a problem. It never
raises for one listing. :func:`normalize_listings` turns what answered into records (pure);
an item without a usable identifier is left out and counted as a problem. Names are
trimmed of surrounding blanks, and an empty one is no name. Which kinds were listed
COMPLETELY matters downstream: only a complete listing may mark an entity that is missing
from it as unlisted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from etl.config import format_duration
from etl.errors import ZvmError
from etl.normalize import IDENTIFIER_MAX, get_field
from etl.zvm.deadline import Deadline

__all__ = [
    "BUDGET_SETTING",
    "HostRecord",
    "Listings",
    "Names",
    "SiteRecord",
    "VpgRecord",
    "fetch_listings",
    "normalize_listings",
]

log = logging.getLogger(__name__)

_PRIORITIES = {"low": 0, "medium": 1, "high": 2}

BUDGET_SETTING = "sync.entity_refresh_budget"
"""The setting that bounds a names refresh, named in what a spent budget reports."""


@dataclass(frozen=True)
class SiteRecord:
    """A Zerto site as a listing names it. ``listed`` is false for a site that no site
    listing (``/v1/localsite``, ``/v1/peersites``) included and only the VPG listing names:
    it has only a name (``is_local`` None), which names it only while no site listing ever
    has (see :mod:`etl.warehouse.names`)."""

    site_identifier: str
    name: str | None
    location: str | None
    is_local: bool | None
    listed: bool = True


@dataclass(frozen=True)
class VpgRecord:
    """A VPG as ``/v1/vpgs`` names it, with the names it gives its two sites."""

    vpg_identifier: str
    name: str | None
    priority: int | None
    configured_rpo_seconds: int | None
    protected_site_identifier: str | None
    recovery_site_identifier: str | None
    protected_site_name: str | None = None
    recovery_site_name: str | None = None


@dataclass(frozen=True)
class HostRecord:
    """A host (hypervisor) as the host and VRA listings name it."""

    host_identifier: str
    name: str | None
    vra_name: str | None


@dataclass
class Listings:
    """What the listings answered (decoded JSON), None where one could not be read, and
    the problems, each one line naming the listing and what went wrong."""

    local_site: Any = None
    peer_sites: Any = None
    vpgs: Any = None
    vras: Any = None
    virtualization_sites: Any = None
    hosts: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class Names:
    """Normalized listings. ``sites_complete`` (and so on) say whether every listing of that
    kind answered, so that entities missing from it may be marked unlisted."""

    sites: list[SiteRecord] = field(default_factory=list)
    vpgs: list[VpgRecord] = field(default_factory=list)
    hosts: list[HostRecord] = field(default_factory=list)
    sites_complete: bool = False
    vpgs_complete: bool = False
    hosts_complete: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def local_site(self) -> str | None:
        """The listing ZVM's own site identifier, when ``/v1/localsite`` answered."""
        return next((s.site_identifier for s in self.sites if s.is_local), None)


# -- reading -------------------------------------------------------------------------------


def fetch_listings(client: Any, *, budget: timedelta | None = None) -> Listings:
    """Read every entity listing of the ZVM behind ``client`` (a :class:`ZvmClient`).

    One listing's failure (a :class:`~etl.errors.ZvmError`: retries exhausted, 404, HTML,
    invalid JSON, wrong shape) is recorded in ``problems`` and the others are still read;
    anything else (a bug) propagates. With ``budget`` (``sync.entity_refresh_budget``), the
    reading takes at most that long on the client's clock, all listings together: each
    listing retries for at most an equal share of the time left (the virtualization sites'
    hosts count as one listing until the sites are known), a listing answered at once leaves
    its share to the others, and the listings still unread when the budget is spent are
    skipped, each recorded in ``problems``. Without it each listing has the client's
    ``retry_for``.
    """
    listings = Listings()
    deadline: Deadline | None = None
    if budget is not None:
        deadline = client.deadline(budget.total_seconds(), setting=BUDGET_SETTING)
        spent = format_duration(budget)
    # The listings still to read: five, and the hosts counted as one until the sites are known.
    unread = 6

    def read(path: str, expected: type) -> Any:
        nonlocal unread
        parts, unread = unread, unread - 1
        if deadline is None:
            share = None
        elif deadline.expired:
            listings.problems.append(_skipped(path, spent))
            return None
        else:
            share = deadline.share(parts)
        try:
            return client.fetch_listing(path, expected=expected, deadline=share)
        except ZvmError as exc:
            listings.problems.append(f"GET {path}: {exc}")
            return None

    listings.local_site = read("/v1/localsite", dict)
    listings.peer_sites = read("/v1/peersites", list)
    listings.vpgs = read("/v1/vpgs", list)
    listings.vras = read("/v1/vras", list)
    listings.virtualization_sites = read("/v1/virtualizationsites", list)
    if listings.virtualization_sites is not None:
        sites: list[str] = []
        for item in listings.virtualization_sites:
            site = _identifier(item, "SiteIdentifier") if isinstance(item, dict) else None
            if site is None:
                listings.problems.append(
                    "GET /v1/virtualizationsites: an item has no SiteIdentifier; its hosts "
                    "were not read"
                )
            else:
                sites.append(site)
        unread = len(sites)
        listings.hosts = {
            site: read(f"/v1/virtualizationsites/{quote(site, safe='')}/hosts", list)
            for site in sites
        }
    return listings


def _skipped(path: str, spent: str) -> str:
    return (
        f"GET {path}: not read: the names refresh had spent its {spent} "
        f"({BUDGET_SETTING}) on the listings before it; the next refresh reads it again "
        f"(raise {BUDGET_SETTING} if this ZVM's listings are slow)"
    )


# -- normalizing (pure) --------------------------------------------------------------------


def normalize_listings(listings: Listings) -> Names:
    """Records from what the listings answered (no I/O). Problems are carried over, and an
    item that cannot be keyed adds one (the rest of its listing is kept)."""
    names = Names(problems=list(listings.problems))
    sites: list[SiteRecord] = []
    if listings.local_site is not None:
        local = _site(listings.local_site, "SiteName", is_local=True)
        if local is None:
            names.problems.append("GET /v1/localsite: no SiteIdentifier in the answer")
        else:
            sites.append(local)
    if listings.peer_sites is not None:
        sites += _items(
            listings.peer_sites,
            "/v1/peersites",
            lambda item: _site(item, "PeerSiteName", is_local=False),
            names.problems,
        )
    names.sites_complete = listings.local_site is not None and listings.peer_sites is not None
    if listings.vpgs is not None:
        names.vpgs = _items(listings.vpgs, "/v1/vpgs", _vpg, names.problems)
        names.vpgs_complete = True
    names.sites = _with_vpg_site_names(sites, names.vpgs)
    hosts: dict[str, HostRecord] = {}
    for site, answer in (listings.hosts or {}).items():
        if answer is None:
            continue
        for host in _items(answer, f"/v1/virtualizationsites/{site}/hosts", _host, names.problems):
            hosts[host.host_identifier] = host
    if listings.vras is not None:
        for vra in _items(listings.vras, "/v1/vras", _vra, names.problems):
            known = hosts.get(vra.host_identifier)
            hosts[vra.host_identifier] = HostRecord(
                vra.host_identifier,
                known.name if known is not None and known.name else vra.name,
                vra.vra_name,
            )
    names.hosts = list(hosts.values())
    names.hosts_complete = (
        listings.vras is not None
        and listings.hosts is not None
        and all(answer is not None for answer in listings.hosts.values())
    )
    return names


def _with_vpg_site_names(sites: list[SiteRecord], vpgs: list[VpgRecord]) -> list[SiteRecord]:
    """``sites`` (what the site listings gave), a site they list without a name named by the
    VPG listing, then the sites only the VPG listing names (``listed`` false). The site
    listings' names win; of two VPGs naming one site differently, the first listed wins."""
    from_vpgs: dict[str, str] = {}
    for vpg in vpgs:
        for identifier, name in (
            (vpg.protected_site_identifier, vpg.protected_site_name),
            (vpg.recovery_site_identifier, vpg.recovery_site_name),
        ):
            if identifier is not None and name is not None:
                from_vpgs.setdefault(identifier, name)
    named = [
        site if site.name is not None else replace(site, name=from_vpgs.get(site.site_identifier))
        for site in sites
    ]
    listed = {site.site_identifier for site in sites}
    return named + [
        SiteRecord(identifier, name, None, None, listed=False)
        for identifier, name in from_vpgs.items()
        if identifier not in listed
    ]


def _items(
    answer: list[Any],
    path: str,
    build: Callable[[dict[str, Any]], Any],
    problems: list[str],
) -> list[Any]:
    records, skipped = [], 0
    for item in answer:
        record = build(item) if isinstance(item, dict) else None
        if record is None:
            skipped += 1
        else:
            records.append(record)
    if skipped:
        problems.append(f"GET {path}: {skipped} item(s) without a usable identifier left out")
    return records


def _text(obj: dict[str, Any], *names: str) -> str | None:
    """The first of the ``names`` fields holding text, trimmed of surrounding blanks (an
    empty or blank text is no text)."""
    for name in names:
        value = get_field(obj, name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _number(obj: dict[str, Any], name: str) -> int | None:
    value = get_field(obj, name)
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and -(2**31) <= value < 2**31:
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**31:
        return int(value)
    return None


def _identifier(obj: dict[str, Any], name: str) -> str | None:
    """``obj[name]``, else ``Link.identifier`` (10.x lists identifiers only there)."""
    value = get_field(obj, name)
    if not isinstance(value, str) or not value.strip():
        link = get_field(obj, "Link")
        value = get_field(link, "identifier") if isinstance(link, dict) else None
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > IDENTIFIER_MAX:
        return None
    return value.strip()


def _link_identifier(obj: dict[str, Any], name: str) -> str | None:
    link = get_field(obj, name)
    if not isinstance(link, dict):
        return None
    value = get_field(link, "identifier")
    ok = isinstance(value, str) and value.strip() and len(value.strip()) <= IDENTIFIER_MAX
    return value.strip() if ok else None


def _site(obj: Any, name_field: str, *, is_local: bool) -> SiteRecord | None:
    if not isinstance(obj, dict):
        return None
    identifier = _identifier(obj, "SiteIdentifier")
    if identifier is None:
        return None
    return SiteRecord(identifier, _text(obj, name_field), _text(obj, "Location"), is_local)


def _vpg(obj: dict[str, Any]) -> VpgRecord | None:
    identifier = _identifier(obj, "VpgIdentifier")
    if identifier is None:
        return None
    priority = _number(obj, "Priority")
    if priority is None and isinstance(label := get_field(obj, "Priority"), str):
        priority = _PRIORITIES.get(label.strip().lower())
    return VpgRecord(
        identifier,
        _text(obj, "VpgName"),
        priority,
        _number(obj, "ConfiguredRpoSeconds"),
        _link_identifier(obj, "ProtectedSite"),
        _link_identifier(obj, "RecoverySite"),
        # Site NAMES (the links above carry the identifiers); 10.x also has *SiteName.
        _text(obj, "SourceSite", "ProtectedSiteName"),
        _text(obj, "TargetSite", "RecoverySiteName"),
    )


def _host(obj: dict[str, Any]) -> HostRecord | None:
    identifier = _identifier(obj, "HostIdentifier")
    if identifier is None:
        return None
    return HostRecord(identifier, _text(obj, "VirtualizationHostName"), None)


def _vra(obj: dict[str, Any]) -> HostRecord | None:
    value = get_field(obj, "HostIdentifier")
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > IDENTIFIER_MAX:
        return None
    return HostRecord(value.strip(), _text(obj, "HostDisplayName"), _text(obj, "VraName"))
