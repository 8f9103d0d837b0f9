"""``gradesync emulator``: serve the local Graph education emulator until Ctrl-C.

The same emulator as ``python -m graph_emulator`` (options built by ``graph_emulator.cli``).
"""

from __future__ import annotations

import click

from graph_emulator.behaviour import (
    BREAKABLE,
    DEFAULT_ACTION_LAG,
    DEFAULT_ENUM_EVOLUTION,
    DEFAULT_PUBLISH_LAG,
    ENUM_MODES,
)
from graph_emulator.cli import BEHAVIOURS, Options, banner, build_emulator, serve

__all__ = [
    "emulator_command",
]


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (keep it local).")
@click.option("--port", default=8765, show_default=True, type=int, help="Port (0 picks a free one).")
@click.option(
    "--tenant", "tenant_path", type=click.Path(exists=True, dir_okay=False), help="Tenant JSON file."
)
@click.option(
    "--generate",
    "generate_spec",
    help="Generate a tenant: classes=N,students=M,assignments=K[,seed=S][,points_outcomes=some].",
)
@click.option(
    "--faults", "faults_spec", help='Fault injection, e.g. "seed=7,429=0.1,503=0.05,drop=0.02,scope=both".'
)
@click.option(
    "--lies",
    "lies_spec",
    help='Answers that lie, e.g. "seed=3,malformed_json=0.1,foreign_nextlink@list_submissions=1" '
    "(kinds: graph_emulator/lies.py).",
)
@click.option(
    "--throttle",
    default="graph",
    show_default=True,
    help='graph, off, or limits such as "per_10s=175,change_after_requests=500,then_per_10s=100".',
)
@click.option(
    "--token", default="dev", show_default=True, help="The bearer token accepted (also TOKEN.<suffix>)."
)
@click.option("--page-size", default=25, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for batch response order.")
@click.option(
    "--token-lifetime", type=click.FloatRange(min=0, min_open=True), help="Seconds each distinct token lives."
)
@click.option(
    "--enum-evolution", type=click.Choice(ENUM_MODES), default=DEFAULT_ENUM_EVOLUTION, show_default=True
)
@click.option(
    "--action-lag",
    type=click.IntRange(min=0),
    default=DEFAULT_ACTION_LAG,
    show_default=True,
    help="Reads that still show a submission's old status after an excuse or a return.",
)
@click.option(
    "--publish-lag",
    type=click.IntRange(min=0),
    default=DEFAULT_PUBLISH_LAG,
    show_default=True,
    help="Reads a published assignment shows no submissions before it is assigned.",
)
@click.option(
    "--graph-behaviour",
    type=click.Choice(BEHAVIOURS),
    default="v1.0",
    show_default=True,
    help="legacy: no assignment states, excuse keeps feedback, points kept as doubles.",
)
@click.option("--break", "broken", default="", help=f"Promises to break on purpose: {', '.join(BREAKABLE)}.")
def emulator_command(host: str, port: int, **options: object) -> None:
    """Serve a local Microsoft Graph education emulator (/v1.0 and /beta)."""
    opts = Options(**options)  # type: ignore[arg-type]  # click gives exactly Options' fields
    try:
        app, source = build_emulator(opts)
    except (ValueError, OSError) as exc:
        raise click.UsageError(str(exc)) from exc
    for line in banner(app, opts, source, host, port):
        click.echo(line)
    serve(app, host, port)
