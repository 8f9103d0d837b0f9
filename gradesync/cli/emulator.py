"""``gradesync emulator``: serve the local Graph education emulator until Ctrl-C."""

from __future__ import annotations

import click
import uvicorn

from graph_emulator.app import Emulator
from graph_emulator.faults import FaultConfig
from graph_emulator.generate import generate_tenant, parse_generate_spec
from graph_emulator.lies import LieConfig
from graph_emulator.state import load_tenant
from graph_emulator.throttle import ThrottleConfig


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (keep it local).")
@click.option("--port", default=8765, show_default=True, type=int, help="Port (0 picks a free one).")
@click.option(
    "--tenant", "tenant_path", type=click.Path(exists=True, dir_okay=False), help="Tenant JSON file."
)
@click.option(
    "--generate", "generate_spec", help="Generate a tenant: classes=N,students=M,assignments=K[,seed=S]."
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
@click.option("--throttle", type=click.Choice(["graph", "off"]), default="graph", show_default=True)
@click.option("--token", default="dev", show_default=True, help="The bearer token the emulator accepts.")
@click.option("--page-size", default=25, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for batch response order.")
def emulator_command(
    host: str,
    port: int,
    tenant_path: str | None,
    generate_spec: str | None,
    faults_spec: str | None,
    lies_spec: str | None,
    throttle: str,
    token: str,
    page_size: int,
    seed: int,
) -> None:
    """Serve a local Microsoft Graph education emulator (/v1.0 and /beta)."""
    if tenant_path and generate_spec:
        raise click.UsageError("give either --tenant or --generate, not both")
    try:
        if generate_spec:
            tenant = generate_tenant(**parse_generate_spec(generate_spec))
            source = f"generated ({generate_spec})"
        else:
            tenant = load_tenant(tenant_path or "sample_data/tenant.json")
            source = tenant_path or "sample_data/tenant.json"
        faults = FaultConfig.parse(faults_spec) if faults_spec else None
        lies = LieConfig.parse(lies_spec) if lies_spec else None
    except (ValueError, OSError) as exc:
        raise click.UsageError(str(exc)) from exc
    app = Emulator(
        tenant,
        token=token,
        page_size=page_size,
        throttle=ThrottleConfig.from_value(throttle),
        faults=faults,
        seed=seed,
        lies=lies,
    )
    n_asg = sum(len(c.get("assignments", [])) for c in tenant["classes"])
    click.echo(
        f"Graph education emulator: {len(tenant['classes'])} classes, {len(tenant.get('users', []))} users, "
        f"{n_asg} assignments from {source}"
    )
    click.echo(f"Serving http://{host}:{port}/v1.0 and /beta (throttle {throttle}, page size {page_size})")
    click.echo(f"Bearer token: {token}   (this is a local test token, not a secret)")
    click.echo(f"Control: http://{host}:{port}/_emulator/stats  ·  Ctrl-C stops")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off", ws="none")
