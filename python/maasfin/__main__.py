"""Command line: `python -m maasfin demo|serve|keys` (or the `maasfin` script)."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="maasfin", description="maasfin command line")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train the credit-scoring model on the bundled data and score applicants")
    demo.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    demo.add_argument("--seed", type=int, default=7)
    from maasfin.serving.cli import add_subcommands as add_serving_subcommands  # serve, keys

    add_serving_subcommands(sub)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from maasfin.demo import run as run_demo

        run_demo(verbose=args.verbose, seed=args.seed)
    elif hasattr(args, "run"):
        return args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
