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
    run.add_argument("--open", action="store_true",
                     help="leave the 'your turn' tasks open, as a learner first sees them (default: the answer key, "
                          "every task solved)")
    run.add_argument("labs", nargs="*", help="lab numbers or notebook names (default: all)")
    srv = sub.add_parser("serve", help="serve the embedded mesh's Kubernetes API (kubectl, the kube backend) on 127.0.0.1")
    srv.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    srv.add_argument("--seed", type=int, default=0, help="embedded mesh seed (default 0)")
    srv.add_argument("--pace", type=float, default=1.0, help="virtual seconds per real second (default 1.0; 0 stops the clock)")
    faults = sub.add_parser("faults", help="Lab 6: which break-fix fault each seed gives (for instructors)")
    faults.add_argument("--seeds", type=int, default=20, help="how many seeds, from 0 (default 20)")
    l5d = sub.add_parser("linkerd", help="the served embedded mesh's stand-in for the linkerd CLI", add_help=False)
    l5d.add_argument("args", nargs=argparse.REMAINDER)
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["linkerd"]:  # pass every flag through untouched (--help, -o json...)
        from labkit.sim.serve.shim import main as linkerd

        return linkerd(list(argv[1:]))
    args = parser.parse_args(argv)
    if args.command == "run":
        from labkit.runner import run_labs

        results = run_labs(out=args.out, seed=args.seed, only=args.labs, solutions=not args.open)
        return 0 if args.open or all(r.ok for r in results) else 1
    if args.command == "faults":
        from labkit.breakfix import fault_for

        for seed in range(args.seeds):
            fault = fault_for(seed)
            print(f"seed {seed:>3}  {fault.name:<15} {fault.report}")
        return 0
    if args.command == "serve":
        from labkit.sim.serve import serve_main

        return serve_main(port=args.port, seed=args.seed, pace=args.pace)
    return 2


if __name__ == "__main__":
    sys.exit(main())
