"""A local Microsoft Graph education emulator: the demo's and the tests' Graph.

It serves ``/v1.0`` and ``/beta`` as ``/work/shared/graph/CONTRACT.md`` describes (classes, members,
users, assignments, submissions with ``$expand=outcomes``, outcomes GET/POST/PATCH, ``return``,
``excuse``, paging, ``$batch``), with Graph's throttling, seeded fault injection and exact stats.

    from graph_emulator import EmulatorServer, FaultConfig, ThrottleConfig, generate_tenant, load_tenant
    with EmulatorServer(load_tenant("sample_data/tenant.json"), token="dev") as srv:
        httpx.get(srv.base_url + "/education/classes", headers={"Authorization": "Bearer dev"})

Modules: ``state`` (tenant format and rendering), ``app`` (the ASGI app and all behaviour),
``odata`` (query options), ``throttle``, ``faults``, ``generate``, ``server`` (thread runner), ``cli``.
"""

from graph_emulator.app import Emulator
from graph_emulator.faults import FaultConfig
from graph_emulator.generate import generate_tenant, materialize_tenant
from graph_emulator.lies import LieConfig
from graph_emulator.server import EmulatorServer
from graph_emulator.state import (
    find_submission,
    iter_submissions,
    load_tenant,
    points_outcome,
    save_tenant,
)
from graph_emulator.throttle import ThrottleConfig

__all__ = [
    "Emulator",
    "EmulatorServer",
    "FaultConfig",
    "LieConfig",
    "ThrottleConfig",
    "find_submission",
    "generate_tenant",
    "iter_submissions",
    "load_tenant",
    "materialize_tenant",
    "points_outcome",
    "save_tenant",
]
