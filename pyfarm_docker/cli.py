"""Command line: parses arguments into option objects, calls the library, prints."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

from . import __version__
from .errors import PyfarmError, UsageError

Handler = Callable[[argparse.Namespace], int]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "0")
    if not value.isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH={value!r} is not a whole number of seconds")
    return int(value)


def cmd_trace(args: argparse.Namespace) -> int:
    from .probe import Probe
    from .trace import TraceOptions, run_trace

    command = tuple(args.command[1:] if args.command[:1] == ["--"] else args.command)
    options = TraceOptions(
        command=command, output=args.output, cwd=args.cwd, timeout=args.timeout,
        port=args.port, probes=tuple(Probe.parse(p) for p in args.probe),
        ready_timeout=args.ready_timeout, allowed_exit_codes=frozenset({0, *args.allow_exit_code}),
    )
    trace = run_trace(options, stderr=sys.stderr.buffer)
    _say(f"traced {len(trace['processes'])} process(es): {len(trace['imports'])} imports, "
         f"{len(trace['mapped'])} mapped files, {len(trace['distributions'])} distributions "
         f"-> {args.output}")
    return 0


def cmd_assemble(args: argparse.Namespace) -> int:
    from . import patch
    from .assemble import AssembleOptions, assemble, load_trace, make_plan

    options = AssembleOptions(trace=args.trace, output=args.output, prefix=args.prefix,
                              strict=args.strict, force=args.force, layers=args.layers,
                              epoch=_epoch())
    if args.dry_run:
        plan = make_plan(load_trace(args.trace), options)
        kinds = [e.kind for e in plan.entries]
        print(f"{kinds.count('file') + kinds.count('text')} files, {kinds.count('link')} links")
        print("\n".join(patch.describe(plan.rpaths)))
        return 0
    doc = assemble(options)
    for warning in doc["warnings"]:
        _say(f"warning: {warning}")
    for conflict in doc["conflicts"]:
        _say(f"warning: soname conflict {conflict['soname']}: {sorted(conflict['files'])}")
    total = sum(f["size"] for f in doc["files"])
    _say(f"assembled {len(doc['files'])} files, {total / 1e6:.1f} MB -> {args.output}")
    return 0


def _add_trace(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("trace", help="run the app and record what it uses",
                       description="Run a Python command under the tracer and write trace.json.")
    p.add_argument("-o", "--output", type=Path, default=Path("trace.json"))
    p.add_argument("--cwd", type=Path, help="directory to run the command in")
    p.add_argument("--timeout", type=float, default=600, help="seconds a script may run")
    p.add_argument("--port", type=int, help="the app is a server listening on 127.0.0.1:PORT")
    p.add_argument("--probe", action="append", default=[], metavar="'METHOD /path [JSON]'",
                   help="request to send to a server before stopping it (repeatable)")
    p.add_argument("--ready-timeout", type=float, default=60,
                   help="seconds to wait for a server's port")
    p.add_argument("--allow-exit-code", type=int, action="append", default=[], metavar="N",
                   help="exit status that still counts as success (repeatable)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- python app.py ARGS")
    p.set_defaults(handler=cmd_trace)


def _add_assemble(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("assemble", help="build the farm (a root filesystem) from a trace",
                       description="Turn trace.json into a self-contained root filesystem.")
    p.add_argument("trace", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--prefix", type=PurePosixPath, default=PurePosixPath("/app"),
                   help="where the farm lives in the image (default /app)")
    p.add_argument("--strict", action="store_true", help="soname conflicts are errors")
    p.add_argument("--force", action="store_true", help="replace a non-empty output dir")
    p.add_argument("--layers", action="store_true",
                   help="split the output into one directory per image layer")
    p.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    p.set_defaults(handler=cmd_assemble)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="pyfarm-docker",
        description="Turn a Python application into a minimal container image, "
                    "from a traced run of it.",
    )
    top.add_argument("--version", action="version", version=f"pyfarm-docker {__version__}")
    sub = top.add_subparsers(dest="subcommand", metavar="COMMAND")
    for add in (_add_trace, _add_assemble):
        add(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser().print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except PyfarmError as exc:
        _say(f"ERROR: {exc.message}")
        if exc.hint:
            _say(f"  hint: {exc.hint}")
        return exc.exit_code
    except KeyboardInterrupt:
        _say("ERROR: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
