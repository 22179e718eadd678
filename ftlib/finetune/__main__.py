"""``python -m ftlib.finetune my.yaml [--check] [--resume] [--profile P]`` and ``--schema``."""
from __future__ import annotations

import argparse
import json
import sys


def check_only(path: str, profile: str | None) -> None:
    """Check the config and every data row, train nothing."""
    from ftlib.finetune.run import check
    report = check(path, profile=profile).report
    print(f"{path}: the config is valid; data: {json.dumps(report.split)}, {len(report.problems)} bad rows"
          + (f" to drop: {report.dropped}" if report.problems else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ftlib.finetune", description=__doc__.split("\n")[0])
    parser.add_argument("config", nargs="?", help="the YAML file")
    parser.add_argument("--schema", action="store_true", help="print the config's JSON Schema and exit")
    parser.add_argument("--check", action="store_true", help="check the config and the data only")
    parser.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")
    parser.add_argument("--profile", default=None, help="smoke | cpu | gpu: the defaults (else the config's, "
                        "$FTLIB_PROFILE or cpu)")
    args = parser.parse_args(argv)
    if args.schema:
        from ftlib.finetune.config import schema
        print(json.dumps(schema(), indent=2))
        return 0
    if not args.config:
        parser.error("give a config file (or --schema)")
    import ftlib  # noqa: F401  (quiets library notices)
    from ftlib.finetune import ConfigError, DataError, finetune
    from ftlib.finetune.train import Interrupted
    try:
        if args.check:
            check_only(args.config, args.profile)
        else:
            finetune(args.config, profile=args.profile, resume=args.resume)
    except (ConfigError, DataError, FileNotFoundError) as err:
        print(err, file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Interrupted):
        print("interrupted: rerun with --resume to continue from the last checkpoint (one is saved every "
              "train.save_every steps; before the first, start again)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
