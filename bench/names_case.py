"""The ``names`` case: what refreshing a large estate's names adds to a pass.

A simulated ZVM (``zvm_simulator``, in this process, its clock frozen) lists 5,000 VPGs and
1,000 hosts that no task names, besides its task history. After a first pass (not timed),
no-change passes alternate between two configs of the same warehouse: one with
``sync.entity_refresh_interval: 0s`` (every pass reads the six listings, plus one request
per virtualization site, and upserts the names) and one with ``1000h`` (the names are not
due). The difference of the medians of the passes' own ``duration_seconds`` is the
names' cost; the goal is well under a second. Run on every database of ``BENCH_DBS``.
"""

from __future__ import annotations

import statistics

from bench.cases import DB_NAMES, Bench, Result
from zvm_simulator import Simulator

__all__ = ["NAMES_HOSTS", "NAMES_LIMIT", "NAMES_VPGS", "case_names", "names_cost"]

NAMES_VPGS = 5_000
NAMES_HOSTS = 1_000
NAMES_LIMIT = 1.0
"""Seconds the names may add to a pass."""


def case_names(bench: Bench) -> None:
    s = bench.settings
    repeats = max(s.repeats, 5)
    simulator = Simulator(
        seed=s.seed,
        speed=0,
        days=1,
        tasks_per_hour=50,
        untouched_vpgs=NAMES_VPGS,
        extra_hosts=NAMES_HOSTS,
    )
    with simulator as sim:
        vpgs, hosts = len(sim.inventory.vpg_ids), len(sim.inventory.hosts)
        bench.log(f"names: {vpgs:,} VPGs and {hosts:,} hosts listed, {repeats} passes each way")
        for db_kind in s.dbs:
            db = bench.dbs.new(db_kind, "names")
            try:
                configs = {
                    every: bench.write_config(
                        db,
                        [("names", sim.url)],
                        2,
                        f"{db.name}-{label}",
                        sync={"entity_refresh_interval": every},
                    )
                    for every, label in (("0s", "every"), ("1000h", "none"))
                }
                bench.upgrade(configs["0s"])
                bench.sync(configs["0s"])
                named = bench.dbs.scalar(db, "SELECT count(*) FROM vpgs WHERE name IS NOT NULL")
                named_hosts = bench.dbs.scalar(
                    db, "SELECT count(*) FROM hosts WHERE name IS NOT NULL"
                )
                if named < vpgs or named_hosts < hosts:
                    raise RuntimeError(
                        f"names: {named} VPGs and {named_hosts} hosts named, "
                        f"the ZVM lists {vpgs} and {hosts}"
                    )
                name = DB_NAMES[db_kind]
                results = {
                    "0s": Result(
                        f"names/every/{db_kind}",
                        "names",
                        f"no-change pass reading the names → {name}",
                        0,
                    ),
                    "1000h": Result(
                        f"names/none/{db_kind}",
                        "names",
                        f"no-change pass, names not due → {name}",
                        0,
                    ),
                }
                for _ in range(repeats):
                    for every, result in results.items():
                        sample, parsed = bench.sync(configs[every])
                        counts = parsed.passes[0]
                        if counts["tasks_inserted"] or counts["tasks_updated"]:
                            raise RuntimeError(f"a pass with no change changed rows: {counts}")
                        result.samples.append(sample)
                        result.in_process.append(float(counts["duration_seconds"]))
                        result.detail["requests"] = counts["requests"]
                for result in results.values():
                    bench.add(result)
            finally:
                bench.dbs.drop(db)


def names_cost(bench: Bench, db_kind: str) -> tuple[float, int] | None:
    """Seconds the names add to a pass on ``db_kind`` (the medians' difference) and the
    requests they add, or None when the case did not run there."""
    every = bench.results.get(f"names/every/{db_kind}")
    none = bench.results.get(f"names/none/{db_kind}")
    if every is None or none is None or not every.in_process or not none.in_process:
        return None
    cost = statistics.median(every.in_process) - statistics.median(none.in_process)
    return cost, int(every.detail["requests"]) - int(none.detail["requests"])
