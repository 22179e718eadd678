"""Command line: `python -m ftlib.data build [--out DIR] [--seed 0]` and `python -m ftlib.data check`."""
import argparse
import sys

from . import DATA_DIR
from .build import GENERATED, differing_files, write_files


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ftlib.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="generate every data file into --out")
    build.add_argument("--out", default=str(DATA_DIR), help="output folder (default: the committed data/)")
    build.add_argument("--seed", type=int, default=0, help="seed of every generator (the committed files use 0)")
    check = sub.add_parser("check", help="rebuild in a temporary folder and compare bytes with --data")
    check.add_argument("--data", default=str(DATA_DIR), help="folder holding the committed files")
    check.add_argument("--seed", type=int, default=0, help="seed the committed files were built with")
    args = parser.parse_args(argv)

    if args.command == "build":
        manifest = write_files(args.out, args.seed)
        for name, info in manifest["files"].items():
            print(f"{name:26s} {info['rows']:6d} rows {info['bytes'] / 1e6:6.2f} MB")
        print("corpus labels:", ", ".join(f"{k}={v}" for k, v in manifest["corpus_labels"].items()))
        print("corpus languages:", ", ".join(f"{k}={v}" for k, v in manifest["corpus_langs"].items()))
        print(f"task families: {len(manifest['task_families'])}; written to {args.out}")
        return 0
    bad = differing_files(args.data, args.seed)
    if bad:
        print(f"{args.data} differs from a fresh build (seed {args.seed}): {', '.join(bad)}")
        return 1
    print(f"OK: {len(GENERATED)} files in {args.data} are byte-identical to a fresh build")
    return 0


if __name__ == "__main__":
    sys.exit(main())
