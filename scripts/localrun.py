"""``make run``: the scheduler, with ``./config.yaml`` or else against the bundled simulator.

With a ``./config.yaml`` it is exactly ``zvm-etl --config config.yaml schedule`` (this
process becomes that command; create the schema first with ``zvm-etl db upgrade``).

Without one it says so, starts the bundled ZVM simulator on a free loopback port (a
simulated hour passes every real minute, so tasks keep arriving and finishing), creates or
migrates ``./warehouse.db`` and runs the scheduler in this process: a pass every 30 seconds,
with the Prometheus metrics on ``http://127.0.0.1:9108/metrics`` (``METRICS_PORT`` changes
the port; 0 picks a free one). Ctrl-C stops it as SIGTERM would stop a service.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from etl.config import parse_config
from etl.logs import configure_logging
from etl.scheduler import EXIT_UNFINISHED, run_schedule
from etl.warehouse import db
from zvm_simulator import Simulator, SimulatorSettings

CONFIG = Path("config.yaml")
WAREHOUSE = Path("warehouse.db")
PASSWORD = "local-run-password"


def main() -> None:
    """Run the scheduler (see the module docstring)."""
    if CONFIG.is_file():
        print(f"make run: ./{CONFIG} found: zvm-etl --config {CONFIG} schedule", flush=True)
        command = [sys.executable, "-m", "etl", "--config", str(CONFIG), "schedule"]
        os.execv(sys.executable, command)
    configure_logging()
    port = int(os.environ.get("METRICS_PORT", "9108"))
    settings = SimulatorSettings(
        seed=2026, days=3, tasks_per_hour=30, speed=60, password=PASSWORD, port=0
    )
    with Simulator(settings) as sim:
        url = f"sqlite:///{WAREHOUSE}"
        print(
            f"make run: no ./{CONFIG}, so this schedules the bundled ZVM simulator ({sim.url}, "
            f"an hour of ZVM life per real minute) into ./{WAREHOUSE} every 30s. "
            "Copy config.example.yaml to config.yaml to use your own ZVMs. Ctrl-C stops it.",
            flush=True,
        )
        db.upgrade(url)
        config = parse_config(
            {
                "warehouse": {"url": url},
                "zvms": [
                    {
                        "name": "simulated-zvm",
                        "url": sim.url,
                        "username": settings.username,
                        "password": PASSWORD,
                    }
                ],
                "sync": {"interval": "30s", "jitter": "2s", "shutdown_grace": "10s"},
            },
            source="make run",
            env={},
        )
        report = run_schedule(config, metrics_port=port, metrics_address="127.0.0.1")
    if not report.clean:
        os._exit(EXIT_UNFINISHED)


if __name__ == "__main__":
    main()
