"""What a simulated ZVM lists besides tasks: its site, the peer site, the VPGs, the VRAs and
the hosts, with the names people know them by, changing as simulated time passes.

The identifiers are the scenario's (the ones tasks refer to), plus a few VPGs no task ever
touches (an auditor's "never tested" VPGs) and the peer site's hosts. Names are drawn from
the seed, non-ASCII ones included. The VPG list changes over time: by default one VPG is
renamed ``vpg_rename_after`` and another deleted ``vpg_delete_after`` after the simulator's
start (a ``RemoveProtectionGroup`` task runs just before, and no later task names it);
tests rename, delete and restore VPGs at will (:meth:`Inventory.rename_vpg`...), and rename
sites (:meth:`Inventory.rename_site`), the VPG listing's names of them included.

Answers are built per request as of the simulated now, in the documented shapes (field
names from Zerto's help and the 10.x OpenAPI file): ``/v1/localsite`` (one object),
``/v1/peersites``, ``/v1/vpgs``, ``/v1/vras``, ``/v1/virtualizationsites`` and
``/v1/virtualizationsites/{site}/hosts`` (lists). A ZVM in the 10.x style (no
``TaskIdentifier``) also leaves ``VpgIdentifier`` and the peers' ``SiteIdentifier`` out (the
identifiers are then only in ``Link.identifier``) and adds ``ProtectedSiteName`` /
``RecoverySiteName``; the appliance (Keycloak) adds ``HostDisplayName`` to its VRAs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from random import Random
from typing import Any

__all__ = ["Inventory", "VpgEvent"]

_SITES = (
    ("NYC DC", "New York, NY", "nyc"),
    ("Zürich DR", "Zürich, Switzerland", "zrh"),
    ("São Paulo", "São Paulo, Brazil", "gru"),
    ("東京 DC", "Tokyo, Japan", "tyo"),
    ("Frankfurt", "Frankfurt am Main, Germany", "fra"),
    ("Dublin DR", "Dublin, Ireland", "dub"),
)
_VPG_NAMES = (
    "Finance 01",
    "Finance 02",
    "NYC DC 2",
    "SQL Prod",
    "Exchange",
    "SAP ERP",
    "Zürich Payroll",
    "Café Orders",
    "東京 Web",
    "São Paulo CRM",
    "HR Portal",
    "Citrix VDI",
    "Oracle RAC",
    "File Servers",
    "Münster Archive",
    "Kraków Dev",
    "Web Tier",
    "Billing",
    "Data Lake",
    "Łódź Logistics",
    "Reykjavík Mail",
    "SharePoint",
    "Domain Controllers",
    "Jira & Confluence",
    "Print Services",
    "Ticketing",
)
_RPOS = (60, 300, 300, 600, 900, 3600)


@dataclass(frozen=True)
class VpgEvent:
    """A change of one VPG at ``at_ms``: ``rename`` (to ``name``), ``delete`` or ``restore``."""

    at_ms: int
    kind: str
    name: str | None = None


@dataclass
class _Vpg:
    identifier: str
    name: str
    priority: int
    rpo_seconds: int
    vms: int
    reversed: bool  # protected at the peer site, recovered here
    events: list[VpgEvent] = field(default_factory=list)

    def state_at(self, now_ms: int) -> tuple[bool, str]:
        """(listed, name) as of ``now_ms``."""
        listed, name = True, self.name
        for event in self.events:
            if event.at_ms > now_ms:
                break
            if event.kind == "rename" and event.name is not None:
                name = event.name
            listed = event.kind != "delete" if event.kind in ("delete", "restore") else listed
        return listed, name


class Inventory:
    """The entities of one simulated ZVM (see the module docstring)."""

    def __init__(
        self,
        *,
        seed: int,
        site_id: str,
        peer_site_id: str,
        vcenter_id: str,
        task_vpg_ids: tuple[str, ...],
        host_ids: tuple[str, ...],
        untouched_vpgs: int = 3,
        extra_hosts: int = 0,
    ) -> None:
        rng = Random(f"zvm-sim:{seed}:inventory")
        local, peer = rng.sample(_SITES, 2)
        self.site_id, self.peer_site_id = site_id, peer_site_id
        self.site_name, self.location, city = local
        self.peer_site_name, self.peer_location, peer_city = peer
        self._vpg_site_names: dict[str, str] = {}
        self.vcenter_name = f"vcsa01.{city}.corp.local"
        self.peer_vcenter_name = f"vcsa01.{peer_city}.corp.local"
        extra = tuple(_uuid(rng) for _ in range(untouched_vpgs))
        self.untouched_vpg_ids = extra
        names = _vpg_names(rng, len(task_vpg_ids) + len(extra))
        self._lock = threading.Lock()
        self._vpgs: dict[str, _Vpg] = {}
        for identifier, name in zip((*task_vpg_ids, *extra), names, strict=True):
            self._vpgs[identifier] = _Vpg(
                identifier=identifier,
                name=name,
                priority=rng.randrange(3),
                rpo_seconds=rng.choice(_RPOS),
                vms=rng.randint(1, 40),
                reversed=rng.random() < 0.2,
            )
        self.hosts = {h: f"esx{h.rsplit('-', 1)[-1][-2:]}.{city}.corp.local" for h in host_ids}
        peer_vcenter = _uuid(rng)
        self.peer_hosts = {
            f"{peer_vcenter}.host-{n}": f"esx{n % 100:02d}.{peer_city}.corp.local"
            for n in sorted(rng.sample(range(10, 999), 3))
        }
        self._vra_ids = {host: 4_000_000 + rng.randrange(1_000_000) for host in host_ids}
        self._vra_ips = {
            host: f"10.{rng.randrange(256)}.{rng.randrange(256)}.{i + 10}"
            for i, host in enumerate(host_ids)
        }
        # Hosts no task runs on (a large estate), numbered past the task pool's hosts.
        for n in range(extra_hosts):
            host = f"{vcenter_id}.host-{100_000 + n}"
            self.hosts[host] = f"esx{n:04d}.{city}.corp.local"
            self._vra_ids[host] = 5_000_000 + n
            self._vra_ips[host] = f"10.{100 + n // 65_536}.{n // 256 % 256}.{n % 256}"

    # ---- changes over time -------------------------------------------------------------------

    @property
    def vpg_ids(self) -> tuple[str, ...]:
        """Every VPG this ZVM has ever listed (the task pool first, then the untouched ones)."""
        return tuple(self._vpgs)

    def change(self, identifier: str, event: VpgEvent) -> None:
        """Record a rename, deletion or restoration; KeyError for an unknown VPG."""
        with self._lock:
            vpg = self._vpgs[identifier]
            vpg.events.append(event)
            vpg.events.sort(key=lambda e: e.at_ms)

    def rename_vpg(self, identifier: str, name: str, *, at_ms: int) -> None:
        """From ``at_ms`` on, the VPG is listed under ``name``."""
        self.change(identifier, VpgEvent(at_ms, "rename", name))

    def delete_vpg(self, identifier: str, *, at_ms: int) -> None:
        """From ``at_ms`` on, the VPG is no longer listed."""
        self.change(identifier, VpgEvent(at_ms, "delete"))

    def restore_vpg(self, identifier: str, *, at_ms: int) -> None:
        """From ``at_ms`` on, a deleted VPG is listed again."""
        self.change(identifier, VpgEvent(at_ms, "restore"))

    def rename_site(self, identifier: str, name: str, *, in_vpgs: str | None = None) -> None:
        """From now on the site (this ZVM's or its peer; KeyError for another) is listed as
        ``name`` by ``/v1/localsite`` or ``/v1/peersites``, and named ``in_vpgs`` (default
        ``name``) by the VPG listing's ``SourceSite``/``TargetSite`` (and 10.x's
        ``ProtectedSiteName``/``RecoverySiteName``): a ZVM whose two listings disagree, or
        that pads names with blanks."""
        with self._lock:
            if identifier == self.site_id:
                self.site_name = name
            elif identifier == self.peer_site_id:
                self.peer_site_name = name
            else:
                raise KeyError(identifier)
            self._vpg_site_names[identifier] = name if in_vpgs is None else in_vpgs

    def vpg_at(self, identifier: str, at_ms: int) -> tuple[str, str, str] | None:
        """(name as of ``at_ms``, protected site name, recovery site name) of a VPG, the
        site names as the VPG listing gives them now; None for a VPG this ZVM never had."""
        with self._lock:
            vpg = self._vpgs.get(identifier)
            if vpg is None:
                return None
            named = self._vpg_site_names
            local = named.get(self.site_id, self.site_name)
            peer = named.get(self.peer_site_id, self.peer_site_name)
            _listed, name = vpg.state_at(at_ms)
        protected, recovery = (peer, local) if vpg.reversed else (local, peer)
        return name, protected, recovery

    def vpg_names(self, now_ms: int) -> dict[str, str]:
        """The VPGs listed as of ``now_ms``, by identifier, with their names."""
        with self._lock:
            states = {i: v.state_at(now_ms) for i, v in self._vpgs.items()}
        return {identifier: name for identifier, (listed, name) in states.items() if listed}

    # ---- answers (PascalCase dicts; the caller applies the key case) ------------------------

    def local_site(self, base_url: str, *, utc_offset_minutes: int) -> dict[str, Any]:
        return {
            "SiteIdentifier": self.site_id,
            "SiteName": self.site_name,
            "Location": self.location,
            "Version": "10.0.60",
            "UtcOffsetInMinutes": utc_offset_minutes,
            "ContactName": "DR Operations",
            "ContactEmail": "dr-ops@corp.example",
            "Link": _link(f"{base_url}/v1/localsite", self.site_id, "LocalSiteApi"),
        }

    def peer_sites(self, base_url: str, *, with_identifiers: bool) -> list[dict[str, Any]]:
        peer: dict[str, Any] = {
            "PeerSiteName": self.peer_site_name,
            "Location": self.peer_location,
            "HostName": self.peer_vcenter_name.replace("vcsa01", "zvm01"),
            "Port": 9081,
            "PairingStatus": 0,
        }
        if with_identifiers:
            peer["SiteIdentifier"] = self.peer_site_id
        href = f"{base_url}/v1/peersites/{self.peer_site_id}"
        peer["Link"] = _link(href, self.peer_site_id, "PeerSiteApi")
        return [peer]

    def vpgs(self, base_url: str, now_ms: int, *, ten_x: bool) -> list[dict[str, Any]]:
        with self._lock:
            vpgs = [(v, *v.state_at(now_ms)) for v in self._vpgs.values()]
            named = self._vpg_site_names
            local = (self.site_id, named.get(self.site_id, self.site_name))
            peer = (self.peer_site_id, named.get(self.peer_site_id, self.peer_site_name))
        answers = []
        for vpg, listed, name in vpgs:
            if not listed:
                continue
            protected, recovery = (peer, local) if vpg.reversed else (local, peer)
            item: dict[str, Any] = {}
            if not ten_x:
                item["VpgIdentifier"] = vpg.identifier
            item |= {
                "VpgName": name,
                "Priority": vpg.priority,
                "Status": 1,
                "SubStatus": 0,
                "ActualRPO": min(vpg.rpo_seconds, 12),
                "ConfiguredRpoSeconds": vpg.rpo_seconds,
                "SourceSite": protected[1],
                "TargetSite": recovery[1],
                "ProtectedSite": _site_link(base_url, *protected, self.site_id),
                "RecoverySite": _site_link(base_url, *recovery, self.site_id),
                "VmsCount": vpg.vms,
                "OrganizationName": None,
                "UsedStorageInMB": vpg.vms * 61_440,
                "Link": _link(f"{base_url}/v1/vpgs/{vpg.identifier}", vpg.identifier, "VpgApi"),
            }
            if ten_x:
                item["ProtectedSiteName"] = protected[1]
                item["RecoverySiteName"] = recovery[1]
            answers.append(item)
        return answers

    def vras(self, base_url: str, *, appliance: bool) -> list[dict[str, Any]]:
        answers = []
        for host, host_name in self.hosts.items():
            vra_id = self._vra_ids[host]
            item: dict[str, Any] = {
                "VraName": f"Z-VRA-{host_name.split('.')[0]}",
                "VraIdentifier": vra_id,
                "VraIdentifierStr": str(vra_id),
                "HostIdentifier": host,
                "HostVersion": "8.0.2",
                "VraVersion": "10.0.60",
                "IpAddress": self._vra_ips[host],
                "DatastoreName": "vsanDatastore",
                "NetworkName": "VM Network",
                "Status": 0,
                "Link": _link(f"{base_url}/v1/vras/{vra_id}", str(vra_id), "VraApi"),
            }
            if appliance:
                item["HostDisplayName"] = host_name
            answers.append(item)
        return answers

    def virtualization_sites(self) -> list[dict[str, Any]]:
        return [
            {"SiteIdentifier": self.site_id, "VirtualizationSiteName": self.vcenter_name},
            {"SiteIdentifier": self.peer_site_id, "VirtualizationSiteName": self.peer_vcenter_name},
        ]

    def hosts_of(self, site: str) -> list[dict[str, Any]] | None:
        """The hosts of one virtualization site; None for a site this ZVM does not know."""
        key = site.strip().lower()
        hosts = (
            self.hosts
            if key == self.site_id
            else self.peer_hosts
            if key == self.peer_site_id
            else None
        )
        if hosts is None:
            return None
        return [{"HostIdentifier": h, "VirtualizationHostName": n} for h, n in hosts.items()]


def _vpg_names(rng: Random, count: int) -> list[str]:
    """``count`` distinct VPG names: a sample of the list, then numbered copies of it."""
    if count <= len(_VPG_NAMES):
        return rng.sample(_VPG_NAMES, count)
    names = rng.sample(_VPG_NAMES, len(_VPG_NAMES))
    more = count - len(names)
    names += [
        f"{_VPG_NAMES[i % len(_VPG_NAMES)]} {i // len(_VPG_NAMES) + 2:03d}" for i in range(more)
    ]
    return names


def _uuid(rng: Random) -> str:
    value = (rng.getrandbits(128) & ~((0xF << 76) | (0x3 << 62))) | (0x4 << 76) | (0x2 << 62)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _link(href: str, identifier: str, kind: str) -> dict[str, Any]:
    return {"href": href, "identifier": identifier, "rel": None, "type": kind}


def _site_link(base_url: str, identifier: str, _name: str, local_id: str) -> dict[str, Any]:
    if identifier == local_id:
        return _link(f"{base_url}/v1/localsite", identifier, "LocalSiteApi")
    return _link(f"{base_url}/v1/peersites/{identifier}", identifier, "PeerSiteApi")
