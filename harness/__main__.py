"""Command line of the harness's site-side stages: `python -m harness COMMAND ...`.

    python -m harness parse FILE...                  one JSON object per wrk output
    python -m harness export RAW_DIR OUT_DIR [--skip-bad]   results.csv + results.jsonl
    python -m harness quantiles FILE...              one JSON object per Prometheus histogram

A small dispatcher: each command is a function `(args) -> exit code` registered with
its arguments in `_commands()`. A bad input is one line on stderr (path:line: what was
expected) and a non-zero exit once every input has been tried; bugs keep their traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable


def cmd_parse(args: argparse.Namespace) -> int:
    from harness.parse.wrk import RawFormatError, parse_wrk_file

    failed = 0
    for path in args.files:
        try:
            result = parse_wrk_file(path)
        except RawFormatError as e:
            print(e, file=sys.stderr)
        except OSError as e:
            print(f"{path}: cannot read: {e.strerror}", file=sys.stderr)
        else:
            print(json.dumps({"path": path, **result.to_json_dict()}, allow_nan=False))
            continue
        failed += 1
    return 1 if failed else 0


def cmd_export(args: argparse.Namespace) -> int:
    from harness.errors import UserError
    from harness.tables.export import export_raw

    try:
        done = export_raw(args.raw_dir, args.out_dir, skip_bad=args.skip_bad)
    except UserError as e:  # an unreadable raw file, an --out that cannot be written
        print(e, file=sys.stderr)
        return 1
    for error in done.skipped:
        print(f"skipped: {error}", file=sys.stderr)
    for path in done.written:
        print(path)
    return 0


def cmd_quantiles(args: argparse.Namespace) -> int:
    from harness.parse.prometheus import quantiles_main

    return quantiles_main(args.files)


def _commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("parse", help="parse wrk/wrk2 outputs, print one JSON object per file")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(run=cmd_parse)
    p = sub.add_parser("export", help="load a raw/ tree, write results.csv and results.jsonl")
    p.add_argument("raw_dir", metavar="RAW_DIR")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--skip-bad", action="store_true", help="leave unreadable files out, list them")
    p.set_defaults(run=cmd_export)
    p = sub.add_parser(
        "quantiles", help="Prometheus histograms: count, sum, p50/p90/p99 per series"
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(run=cmd_quantiles)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__.split("\n")[0])
    _commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
