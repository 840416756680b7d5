"""``python -m labkit``: command-line entry points (headless run of the labs, serve)."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labkit", description="Linkerd labs toolkit")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute every lab headlessly into executed notebooks + HTML handouts")
    run.add_argument("--out", default="build/labs", help="output folder (default: build/labs)")
    run.add_argument("--seed", type=int, default=0, help="embedded mesh seed (default 0)")
    run.add_argument("labs", nargs="*", help="lab numbers or notebook names (default: all)")
    args = parser.parse_args(argv)
    if args.command == "run":
        from labkit.runner import run_labs

        results = run_labs(out=args.out, seed=args.seed, only=args.labs)
        return 0 if all(r.ok for r in results) else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
