"""Run every benchmark module's ``main(scale)``; each prints its own rich table.

To register a benchmark, add its module name to ``MODULES``.
"""

from __future__ import annotations

import argparse
import importlib

MODULES: list[str] = [
    "benchmarks.plan_bench",
    "benchmarks.plan_e2e",
    "benchmarks.apply_bench",
    "benchmarks.requests_bench",
    "benchmarks.guarantees_bench",
    "benchmarks.web_bench",
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="size multiplier (1.0 = full size)")
    parser.add_argument("names", nargs="*", help="run only these modules (e.g. plan_bench)")
    args = parser.parse_args(argv)
    for name in MODULES:
        if args.names and name.rsplit(".", 1)[-1] not in args.names and name not in args.names:
            continue
        importlib.import_module(name).main(scale=args.scale)


if __name__ == "__main__":
    main()
