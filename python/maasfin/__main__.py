"""Command line: `python -m maasfin demo` (or the `maasfin` script)."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="maasfin", description="maasfin command line")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train the credit-scoring model on the bundled data and score applicants")
    demo.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    demo.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from maasfin import demo as demo_module
        demo_module.run(verbose=args.verbose, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
