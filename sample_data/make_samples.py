"""Regenerate sample_data/ deterministically: ``python sample_data/make_samples.py``.

Writes tenant.json (the emulator's sample tenant) and the SIS exports built from it.
"""

from __future__ import annotations

from pathlib import Path

from gradesync.emulator.generate import generate_tenant
from gradesync.emulator.state import save_tenant

HERE = Path(__file__).resolve().parent


def make_tenant() -> dict:
    return generate_tenant(classes=4, students=30, assignments=5, seed=2024)


def main() -> None:
    tenant = make_tenant()
    save_tenant(tenant, HERE / "tenant.json")


if __name__ == "__main__":
    main()
