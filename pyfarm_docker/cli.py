"""Command line: parses arguments into option objects, calls the library, prints."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Sequence

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
                              strict=args.strict, prune=args.prune, force=args.force,
                              layers=args.layers,
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


def _flags(args: argparse.Namespace) -> Any:
    from .config import Flags

    return Flags(path=args.path, module=args.module,
                 args=tuple(args.arg) if args.arg is not None else None,
                 port=args.port, probes=tuple(args.probe), base=args.base, final=args.final,
                 prefix=args.prefix, prune=args.prune, debug=args.debug)


def cmd_generate(args: argparse.Namespace) -> int:
    from . import config, context
    from .dockerfile import render

    project, options = config.resolve(_flags(args))
    options = replace(options, syntax=_syntax(args.syntax))
    if args.dockerfile_only:
        print(render(context.project_options(project, options)), end="")
        return 0
    target = context.Target(args.python, _glibc(args.glibc))
    wheels = sorted(args.wheelhouse.glob("*.whl")) if args.wheelhouse else None
    if args.download:
        wheels = context.download_wheels(project, target)
    dockerfile = context.generate(project, options, args.output or project / ".pyfarm",
                                  target, wheels, args.force)
    docker = "DOCKER_BUILDKIT=1 docker" if args.syntax == "buildkit" else "docker"
    flags = f"-f {dockerfile.relative_to(project)} -t IMAGE {project}"
    _say(f"wrote {dockerfile}; build it with:\n  {docker} build {flags}\n"
         f"  podman build {flags}")
    return 0


def _syntax(text: str) -> str:
    from .dockerfile import SYNTAXES

    if text not in SYNTAXES:
        raise UsageError(f"unknown --syntax {text!r}", f"use one of {', '.join(SYNTAXES)}")
    return text


def _glibc(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise UsageError(f"--glibc {text!r} is not MAJOR.MINOR", "e.g. --glibc 2.36")
    return int(major), int(minor)


def cmd_build(args: argparse.Namespace) -> int:
    from . import config, oci
    from .build import BuildOptions, run_build

    project, options = config.resolve(_flags(args))
    output = oci.Layout.parse(args.output) if args.output else None
    result = run_build(
        BuildOptions(project=project, dockerfile=options, tag=args.tag, network=args.network,
                     wheelhouse=args.wheelhouse, download=not args.no_download,
                     verify=args.verify, no_cache=args.no_cache, source_date_epoch=_epoch(),
                     engine=args.engine, output=output, sbom=args.sbom),
        report=_say, log=_say if args.verbose else None,
    )
    where = f" -> {output}" if output else ""
    _say(f"built {result.tag} ({result.image_id[7:19]}) with {result.engine} in "
         f"{result.seconds:.0f}s: {result.final_bytes / 1e6:.1f} MB{where}")
    builder = f" ({result.builder_tag})" if result.builder_tag else ""
    _say(f"builder stage{builder}: {result.builder_bytes / 1e6:.1f} MB; the image is "
         f"{result.final_bytes / result.builder_bytes:.0%} of it")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from . import engine, verify

    with engine.session(args.engine) as eng, contextlib.ExitStack() as stack:
        image, like = (_local_image(eng, stack, name) for name in (args.image, args.like))
        spec = verify.spec_from_image(eng.client, image)
        verdict = verify.check_or_raise(eng, image, like, spec, _say)
    _say(f"{args.image} behaves like {args.like} "
         f"(run {verdict.final_ms:.0f} ms vs {verdict.builder_ms:.0f} ms)")
    return 0


def _local_image(eng: Any, stack: contextlib.ExitStack, name: str) -> str:
    """An image name the engine knows: OCI layouts are loaded for the stack's lifetime."""
    from . import engine, oci

    if oci.is_layout(name):
        return stack.enter_context(oci.loaded(eng.client, oci.Layout.parse(name)))
    engine.require_image(eng.client, name, "image")
    return name


def cmd_report(args: argparse.Namespace) -> int:
    from . import report

    summary = report.summarize(report.load_manifest(args.target, args.engine))
    if args.html:
        args.html.write_text(report.to_html(summary, args.target))
        _say(f"treemap -> {args.html}")
    print(json.dumps(summary, indent=1) if args.json else report.table(summary))
    return 0


def _add_report(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="show where an image's bytes go",
                       description="Bytes by origin, the largest files, what --prune would "
                       "save and soname conflicts, from the farm's manifest.")
    p.add_argument("target", help="an image built by pyfarm-docker, an OCI layout (oci:DIR, "
                   "tar:FILE) or an assemble output dir")
    _add_engine(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--html", type=Path, metavar="FILE",
                   help="also write a self-contained HTML treemap")
    p.set_defaults(handler=cmd_report)


def _add_app_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, help="the app's script, or its project directory")
    p.add_argument("-m", "--module", help="run the app as python -m MODULE")
    p.add_argument("--arg", action="append", metavar="ARG",
                   help="argument for the app, traced and baked into CMD (repeatable)")
    p.add_argument("--port", type=int, help="the app is a server on 127.0.0.1:PORT")
    p.add_argument("--probe", action="append", default=[], metavar="'METHOD /path [JSON]'",
                   help="request the server must answer while traced and verified")
    p.add_argument("--base", help="builder base image (default python:3.12-slim)")
    p.add_argument("--final", help="final base image (default scratch)")
    p.add_argument("--prefix", help="where the farm lives in the image (default /app)")
    p.add_argument("--wheelhouse", type=Path,
                   help="directory of wheels: the builder installs offline from it")
    p.add_argument("--prune", action="store_true",
                   help="leave out the .py files of used distributions the run never read")
    p.add_argument("--debug", action="store_true",
                   help="also make IMAGE-debug: the image plus a busybox shell in its own layer")


def _add_engine(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default="auto", metavar="{auto,docker,podman}",
                   help="docker, podman, or auto (default): Docker when its daemon answers, "
                   "else podman")


def _add_build(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("build", help="build a minimal image of the app",
                       description="Build the app into a minimal image: install it on the "
                       "base, trace a run, assemble the farm, copy it onto scratch.")
    _add_app_arguments(p)
    p.add_argument("-t", "--tag", required=True, help="name[:tag] of the image")
    _add_engine(p)
    p.add_argument("--output", metavar="oci:DIR|tar:FILE",
                   help="write the image as an OCI layout (a directory, or a tar of one) "
                   "instead of tagging it in the engine")
    p.add_argument("--no-download", action="store_true",
                   help="let pip in the builder use its index instead of a host wheelhouse")
    p.add_argument("--network", help="network for build steps (passed to the engine)")
    p.add_argument("--no-cache", action="store_true", help="do not use the engine's build cache")
    p.add_argument("--sbom", type=Path, metavar="FILE",
                   help="also write the image's SBOM (SPDX 2.3 JSON) to FILE")
    p.add_argument("--verify", action="store_true",
                   help="also build the builder stage and check the image behaves like it")
    p.add_argument("-v", "--verbose", action="store_true", help="show the whole build log")
    p.set_defaults(handler=cmd_build)


def _add_generate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("generate", help="write the Dockerfile (and helpers) to commit",
                       description="Write a Dockerfile and its helpers into the project, "
                       "to build with plain `docker build` or `podman build`.")
    _add_app_arguments(p)
    p.add_argument("-o", "--output", type=Path,
                   help="helpers directory inside the project (default PROJECT/.pyfarm)")
    p.add_argument("--python", default="3.12",
                   help="Python version of the base image, for the wheels (default 3.12)")
    p.add_argument("--glibc", default="2.36",
                   help="glibc version of the base image, for the wheels (default 2.36)")
    p.add_argument("--download", action="store_true",
                   help="download the app's wheels now, so the Dockerfile builds offline")
    p.add_argument("--force", action="store_true", help="replace a non-empty output dir")
    p.add_argument("--dockerfile-only", action="store_true",
                   help="print the Dockerfile to stdout and write nothing")
    p.add_argument("--syntax", default="portable", metavar="{portable,buildkit}",
                   help="portable (default): Docker's legacy builder, BuildKit and podman all "
                   "build it; buildkit: RUN --mount keeps wheels and pip's cache out of the "
                   "layers (BuildKit or podman only)")
    p.set_defaults(handler=cmd_generate)


def _add_verify(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify", help="check an image behaves like its builder",
                       description="Run IMAGE and BUILDER the same way and compare output "
                       "and exit status, or a server's answers to its probes.")
    p.add_argument("image", help="the image: a name, or an OCI layout (oci:DIR, tar:FILE)")
    p.add_argument("--like", required=True, metavar="BUILDER", help="the builder image")
    _add_engine(p)
    p.set_defaults(handler=cmd_verify)


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
    p.add_argument("--prune", action="store_true",
                   help="leave out the .py files of used distributions that the run never read")
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
    for add in (_add_build, _add_generate, _add_trace, _add_assemble, _add_verify, _add_report):
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
