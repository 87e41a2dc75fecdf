"""``python -m satchel inspect FILE``: print a stream's header without running its body."""

import argparse
import sys

from satchel import inspect


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m satchel")
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("inspect", help="print a satchel stream's header")
    show.add_argument("file", help="a file written by satchel.dump (or '-' for stdin)")
    args = parser.parse_args(argv)
    try:
        if args.file == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(args.file, "rb") as f:
                data = f.read()
    except OSError as exc:
        # One line, as argparse reports its own errors: no traceback for a missing file.
        reason = exc.strerror or str(exc)
        print(f"python -m satchel inspect: cannot read {args.file}: {reason}", file=sys.stderr)
        return 2
    try:
        info = inspect(data)
    except Exception as exc:  # noqa: BLE001 - shown to the user as the answer
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 1
    width = max(map(len, info))
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
