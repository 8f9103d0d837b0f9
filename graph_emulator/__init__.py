"""A local Microsoft Graph education emulator: the demo's and the tests' Graph.

It serves ``/v1.0`` and ``/beta`` as ``docs/GRAPH.md`` describes (classes, members,
users, assignments, submissions with ``$expand=outcomes``, outcomes GET/POST/PATCH, ``return``,
``excuse``, paging, ``$batch``), with Graph's throttling, seeded fault injection and exact stats.

    from graph_emulator import EmulatorServer, FaultConfig, ThrottleConfig, generate_tenant, load_tenant
    with EmulatorServer(load_tenant("sample_data/tenant.json"), token="dev") as srv:
        httpx.get(srv.base_url + "/education/classes", headers={"Authorization": "Bearer dev"})

Modules, top to bottom (a module imports only modules below it):

- ``cli`` / ``__main__`` — ``python -m graph_emulator`` (and the options ``gradesync emulator`` shares)
- ``server`` — runs the app under uvicorn in a background thread (tests, benchmarks, the demo)
- ``app`` — the ``Emulator`` ASGI app: the request pipeline (auth → throttle → faults → route → handler)
- ``control`` (stats and ``/_emulator`` endpoints), ``batch`` (``$batch``), ``teacher_edits``,
  ``tokens`` (accepted tokens, lifetimes), ``asgi`` (plumbing)
- ``handlers`` (the Graph resources: enum evolution, lagging actions, assignment states, what
  excuse and return do) → ``paging`` (collections) → ``routing`` (routes, the per-operation
  ``Call``, which limit a request counts against) → ``answers`` (answers, error bodies)
- ``behaviour`` — the knobs: Graph v1.0's behaviour by default, each with an opt-out, and
  promises broken on purpose
- ``throttle``, ``faults``, ``lies`` — what can go wrong, each on its own
- ``state`` (tenant document: lookups, rendering as Graph JSON) → ``generate`` (tenant generator)
  → ``odata`` (query options) and ``common`` (format tag, Graph type names, ids, timestamps)
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
