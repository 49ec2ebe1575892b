"""A simulated Zerto Virtual Manager: the tasks API over real HTTP(S) on loopback.

For the demo, the test suite, and anyone who wants to try dashboards without a ZVM::

    from zvm_simulator import Simulator

    with Simulator(seed=7, speed=0) as sim:          # speed 0: the clock moves only when told
        ...  # point a client at sim.url (user "admin", password "zerto")
        sim.advance(timedelta(hours=1))              # running tasks move on, new ones appear
        sim.faults.error_rate = 0.5                  # half the API calls now answer 503

What it serves (see the modules): ``POST /v1/session/add`` + ``DELETE /v1/session`` (Windows
ZVM) or the Keycloak token endpoint (appliance); ``GET /v1/tasks`` with its six filters,
``GET /v1/tasks/{id}``, ``GET /v1/tasks/types``, the entity listings and the Recovery
Report (``GET /v1/reports/recovery``, made from the tasks: ``recovery.py``). The history is
generated lazily and deterministically from the seed (``scenario.py``, ``lifecycle.py``),
shown as of the simulated clock (``clock.py``), written like a Windows ZVM or an appliance
(``wire.py``), filtered like a ZVM (``filters.py``), with faults on demand (:class:`Faults`).

Modules: ``settings`` (the dataclasses), ``catalog`` (types and states), ``clock``,
``lifecycle``, ``scenario``, ``inventory``, ``recovery``, ``wire``, ``filters``, ``auth``,
``api`` (request → response),
``server`` (HTTP transport), ``tls``, ``simulator`` (this facade and :func:`serve_forever`).
"""

from __future__ import annotations

from zvm_simulator.catalog import DOCUMENTED_TYPES, STATE_NAMES, UNDOCUMENTED_TYPES, State
from zvm_simulator.lifecycle import MAX_DURATION_MS, Phase
from zvm_simulator.settings import Faults, RequestRecord, SimulatorSettings
from zvm_simulator.simulator import Simulator, serve_forever

__all__ = [
    "DOCUMENTED_TYPES",
    "MAX_DURATION_MS",
    "STATE_NAMES",
    "UNDOCUMENTED_TYPES",
    "Faults",
    "Phase",
    "RequestRecord",
    "Simulator",
    "SimulatorSettings",
    "State",
    "serve_forever",
]
