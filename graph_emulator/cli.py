"""The emulator's command line: ``python -m graph_emulator [options]`` (``gradesync emulator`` shares
:func:`build_emulator` and :func:`banner`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn

from graph_emulator.app import Emulator
from graph_emulator.behaviour import (
    BREAKABLE,
    DEFAULT_ACTION_LAG,
    DEFAULT_ENUM_EVOLUTION,
    DEFAULT_PUBLISH_LAG,
    ENUM_MODES,
)
from graph_emulator.faults import FaultConfig
from graph_emulator.generate import generate_tenant, parse_generate_spec
from graph_emulator.lies import LieConfig
from graph_emulator.state import load_tenant
from graph_emulator.throttle import ThrottleConfig

DEFAULT_TENANT = "sample_data/tenant.json"


@dataclass(frozen=True, slots=True)
class Options:
    tenant_path: str | None = None
    generate_spec: str | None = None
    faults_spec: str | None = None
    lies_spec: str | None = None
    throttle: str = "graph"
    token: str = "dev"  # noqa: S105 - the emulator's documented local dev token
    page_size: int = 25
    seed: int = 0
    token_lifetime: float | None = None
    enum_evolution: str = DEFAULT_ENUM_EVOLUTION
    action_lag: int = DEFAULT_ACTION_LAG
    publish_lag: int = DEFAULT_PUBLISH_LAG
    graph_behaviour: str = "v1.0"  # "v1.0", or "legacy": no assignment states, excuse keeps feedback, doubles
    broken: str = ""  # comma-separated names of graph_emulator.behaviour.BREAKABLE


def build_emulator(opts: Options) -> tuple[Emulator, str]:
    """The Emulator the options describe and where its tenant came from; ValueError/OSError when bad."""
    if opts.tenant_path and opts.generate_spec:
        raise ValueError("give either --tenant or --generate, not both")
    if opts.generate_spec:
        tenant = generate_tenant(**parse_generate_spec(opts.generate_spec))
        source = f"generated ({opts.generate_spec})"
    else:
        tenant = load_tenant(opts.tenant_path or DEFAULT_TENANT)
        source = opts.tenant_path or DEFAULT_TENANT
    app = Emulator(
        tenant,
        token=opts.token,
        page_size=opts.page_size,
        throttle=ThrottleConfig.parse(opts.throttle),
        faults=FaultConfig.parse(opts.faults_spec) if opts.faults_spec else None,
        seed=opts.seed,
        lies=LieConfig.parse(opts.lies_spec) if opts.lies_spec else None,
        token_lifetime=opts.token_lifetime,
        enum_evolution=opts.enum_evolution,
        action_lag=opts.action_lag,
        publish_lag=opts.publish_lag,
        broken=opts.broken,
        **legacy_behaviour(opts.graph_behaviour),
    )
    return app, source


BEHAVIOURS = ("v1.0", "legacy")


def legacy_behaviour(name: str) -> dict[str, Any]:
    """``v1.0``: everything as Graph v1.0 does; ``legacy``: the emulator before it modelled
    assignment states, excuse deleting feedback and Single points (for old recordings and demos)."""
    if name not in BEHAVIOURS:
        raise ValueError(f"graph behaviour must be one of {BEHAVIOURS}, not {name!r}")
    on = name == "v1.0"
    return {"assignment_states": on, "excuse_clears": on, "single_points": on}


def banner(app: Emulator, opts: Options, source: str, host: str, port: int) -> list[str]:
    data = app.tenant.data
    n_asg = sum(len(c.get("assignments", [])) for c in data["classes"])
    lifetime = f", tokens live {opts.token_lifetime:g} s" if opts.token_lifetime else ""
    return [
        f"Graph education emulator: {len(data['classes'])} classes, {len(data.get('users', []))} users, "
        f"{n_asg} assignments from {source}",
        f"Serving http://{host}:{port}/v1.0 and /beta (throttle {opts.throttle}, page size {opts.page_size}, "
        f"enum evolution {opts.enum_evolution}, action lag {opts.action_lag}, publish lag "
        f"{opts.publish_lag}, behaviour {opts.graph_behaviour}"
        + (f", broken: {opts.broken}" if opts.broken else "")
        + f"{lifetime})",
        f"Bearer token: {opts.token} (or {opts.token}.<anything>)   (a local test token, not a secret)",
        f"Control: http://{host}:{port}/_emulator/stats  ·  Ctrl-C stops",
    ]


def serve(app: Emulator, host: str, port: int) -> None:
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off", ws="none")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m graph_emulator", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (keep it local)")
    p.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    p.add_argument("--tenant", dest="tenant_path", help=f"tenant JSON file (default {DEFAULT_TENANT})")
    p.add_argument(
        "--generate",
        dest="generate_spec",
        help="classes=N,students=M,assignments=K[,seed=S][,points_outcomes=some]",
    )
    p.add_argument("--faults", dest="faults_spec", help='e.g. "seed=7,429=0.1,503=0.05,drop=0.02,scope=both"')
    p.add_argument(
        "--lies", dest="lies_spec", help='e.g. "seed=3,malformed_json=0.1" (kinds: graph_emulator/lies.py)'
    )
    p.add_argument(
        "--throttle",
        default="graph",
        help='graph, off, or e.g. "per_10s=175,change_after_requests=500,then_per_10s=100"',
    )
    p.add_argument("--token", default="dev", help="the bearer token accepted (also TOKEN.<suffix>)")
    p.add_argument("--page-size", type=int, default=25)
    p.add_argument("--seed", type=int, default=0, help="seed for batch response order")
    p.add_argument("--token-lifetime", type=float, help="seconds each distinct token lives after first use")
    p.add_argument("--enum-evolution", choices=ENUM_MODES, default=DEFAULT_ENUM_EVOLUTION)
    p.add_argument(
        "--action-lag",
        type=int,
        default=DEFAULT_ACTION_LAG,
        help="reads that still show a submission's old status after an excuse or a return",
    )
    p.add_argument(
        "--publish-lag",
        type=int,
        default=DEFAULT_PUBLISH_LAG,
        help="reads a published assignment shows no submissions before it is assigned",
    )
    p.add_argument(
        "--graph-behaviour",
        choices=BEHAVIOURS,
        default="v1.0",
        help="legacy: no assignment states, excuse keeps feedback, points kept as doubles",
    )
    p.add_argument("--break", dest="broken", default="", help=f"promises to break: {', '.join(BREAKABLE)}")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    ns = vars(parser.parse_args(argv))
    host, port = ns.pop("host"), ns.pop("port")
    opts = Options(**ns)
    try:
        app, source = build_emulator(opts)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    for line in banner(app, opts, source, host, port):
        print(line)
    serve(app, host, port)
    return 0
