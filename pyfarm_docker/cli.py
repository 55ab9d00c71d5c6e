"""Command line: parses arguments into option objects, calls the library, prints."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import signal
import sys
import threading
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

from . import __version__, defaults
from .errors import PyfarmError, UsageError

# Each command's handler, imported when the command runs: the builder stage installs
# only the builder half's requirements, so the driver's (docker, jinja2) may be missing.
HANDLERS = {
    "trace": ("pyfarm_docker.builder.commands", "trace_command"),
    "assemble": ("pyfarm_docker.builder.commands", "assemble_command"),
    "build": ("pyfarm_docker.driver.commands", "build_command"),
    "generate": ("pyfarm_docker.driver.commands", "generate_command"),
    "verify": ("pyfarm_docker.driver.commands", "verify_command"),
    "report": ("pyfarm_docker.driver.commands", "report_command"),
    "push": ("pyfarm_docker.driver.commands", "push_command"),
}
PROBE_METAVAR = "'METHOD /path [STATUS] [JSON]'"


def say(message: str) -> None:
    """Progress and diagnostics go to stderr; stdout is for what a command produces."""
    print(message, file=sys.stderr, flush=True)


def epoch() -> int:
    """SOURCE_DATE_EPOCH, the mtime of every file in the farm."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "0")
    if not re.fullmatch(r"[0-9]{1,10}", value) or int(value) >= 2**32:
        raise UsageError(f"SOURCE_DATE_EPOCH={value!r} is not a whole number of seconds "
                         "before 2106")
    return int(value)


def _handler(name: str) -> Callable[[argparse.Namespace], int]:
    module_name, function = HANDLERS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"'{name}' needs {exc.name}, which is not installed",
                         "this install has only the builder stage's requirements; "
                         "pip install pyfarm-docker for the whole tool") from None
    handler: Callable[[argparse.Namespace], int] = getattr(module, function)
    return handler


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
    p.set_defaults(command_name="report")


def _add_app_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, help="the app's script, or its project directory")
    p.add_argument("-m", "--module", help="run the app as python -m MODULE (the project's, "
                   "or any installed distribution's, e.g. gunicorn)")
    p.add_argument("--script", metavar="NAME",
                   help="run the app as the console script NAME of an installed distribution")
    p.add_argument("--requirements", type=Path, metavar="FILE",
                   help="install the dependencies from this requirements file (pinned, "
                   "hashes checked) instead of the project's lock file or requirements.txt")
    p.add_argument("--index-url", metavar="URL",
                   help="package index for the host's download (pip.conf and PIP_* apply too); "
                   "never written into the image or the Dockerfile")
    p.add_argument("--extra-index-url", action="append", default=[], metavar="URL",
                   help="another package index for the host's download (repeatable)")
    p.add_argument("--arg", action="append", metavar="ARG",
                   help="argument for the app, traced and baked into CMD (repeatable)")
    p.add_argument("--port", type=int, help="the app is a server on 127.0.0.1:PORT")
    p.add_argument("--probe", action="append", default=[], metavar=PROBE_METAVAR,
                   help="request the server must answer while traced and verified")
    p.add_argument("--base", help=f"builder base image (default {defaults.BASE})")
    p.add_argument("--final", help=f"final base image (default {defaults.FINAL})")
    p.add_argument("--prefix",
                   help=f"where the farm lives in the image (default {defaults.PREFIX})")
    p.add_argument("--wheelhouse", type=Path,
                   help="directory of wheels: the builder installs offline from it")
    p.add_argument("--prune", action="store_true",
                   help="ship only what the traced run used (and its native closure), as .pyc")
    p.add_argument("--keep-tests", action="store_true",
                   help="keep distributions' test directories the run did not import")
    p.add_argument("--keep-headers", action="store_true",
                   help="keep stubs, headers and Cython sources (.pyi .pxd .h .a ...)")
    p.add_argument("--debug", action="store_true",
                   help="also make IMAGE-debug: the image plus a busybox shell in its own layer")
    p.add_argument("--include", action="append", default=[], metavar="PATH",
                   help="copy this project path (file, directory or symlink) although "
                   ".dockerignore or the built-in deny list leaves it out (repeatable)")


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
    p.add_argument("--import-all", action="store_true",
                   help="with --verify: also import every top-level module the image ships, "
                   "there and in the builder; each that imports in the builder must import "
                   "in the image")
    p.add_argument("--push", action="store_true",
                   help="then push the image to the registry its tag names (e.g. "
                   "-t 127.0.0.1:5000/app:1), with its SBOM and provenance attached; only "
                   "once the build (and --verify) passed; prints the pushed digest")
    _add_registry(p)
    p.add_argument("--provenance", type=Path, metavar="FILE",
                   help="also write the build's provenance (in-toto statement, SLSA v1) to "
                   "FILE, for the image's digest in a registry")
    p.add_argument("--syntax", default="portable", metavar="{portable,buildkit}",
                   help="buildkit: build through BuildKit (RUN --mount: pip's cache in a "
                   "cache mount, the wheels bind-mounted); portable (default): the legacy "
                   "builder")
    p.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE",
                   help="build argument for the builder stage, e.g. PIP_INDEX_URL or "
                   "HTTPS_PROXY (repeatable; not for secrets: the builder's history keeps it)")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                   help="label of the image (repeatable)")
    p.add_argument("--platform", metavar="OS/ARCH",
                   help="the image's platform: linux/amd64 (the only one supported so far)")
    p.add_argument("-v", "--verbose", action="store_true", help="show the whole build log")
    p.set_defaults(command_name="build")


def _add_registry(p: argparse.ArgumentParser) -> None:
    p.add_argument("--insecure", action="store_true", default=None,
                   help="allow plain HTTP and unverified TLS to the registry (loopback "
                   "registries, localhost and 127.0.0.0/8, are allowed it without this flag)")


def _add_push(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("push", help="push an image to a registry, with its SBOM attached",
                       description="Upload an image through the OCI distribution API (skopeo, "
                       "no daemon needed for the upload) with its SBOM, and a provenance "
                       "statement when given, attached as OCI artifacts referring to it. "
                       "Credentials come from REGISTRY_AUTH_FILE or Docker's config.json "
                       "(and its credential helpers), never from flags. Prints the digest.")
    p.add_argument("source", help="an image in the engine, oci:DIR or tar:FILE")
    p.add_argument("dest", metavar="REF", help="where to: registry/repository[:tag], "
                   "e.g. 127.0.0.1:5000/app:1")
    _add_registry(p)
    p.add_argument("--provenance", type=Path, metavar="FILE",
                   help="also attach this provenance statement (written by build "
                   "--provenance for the same image)")
    _add_engine(p)
    p.set_defaults(command_name="push")


def _add_generate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("generate", help="write the Dockerfile (and helpers) to commit",
                       description="Write a Dockerfile and its helpers into the project, "
                       "to build with plain `docker build` or `podman build`.")
    _add_app_arguments(p)
    p.add_argument("-o", "--output", type=Path,
                   help="helpers directory inside the project (default PROJECT/.pyfarm)")
    p.add_argument("--python", default=defaults.PYTHON,
                   help=f"Python version of the base image, for the wheels "
                   f"(default {defaults.PYTHON})")
    p.add_argument("--glibc", default=defaults.GLIBC_TEXT,
                   help=f"glibc version of the base image, for the wheels "
                   f"(default {defaults.GLIBC_TEXT})")
    p.add_argument("--download", action="store_true",
                   help="download the app's wheels now, so the Dockerfile builds offline")
    p.add_argument("--force", action="store_true",
                   help="replace a non-empty helpers directory that generate wrote")
    p.add_argument("--dockerfile-only", action="store_true",
                   help="print the Dockerfile to stdout and write nothing")
    p.add_argument("--syntax", default="portable", metavar="{portable,buildkit}",
                   help="portable (default): Docker's legacy builder, BuildKit and podman all "
                   "build it; buildkit: RUN --mount keeps wheels and pip's cache out of the "
                   "layers (BuildKit or podman only)")
    p.set_defaults(command_name="generate")


def _add_verify(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify", help="check an image behaves like its builder",
                       description="Run IMAGE and BUILDER the same way and compare output "
                       "and exit status, or a server's answers to its probes.")
    p.add_argument("image", help="the image: a name, or an OCI layout (oci:DIR, tar:FILE)")
    p.add_argument("--like", required=True, metavar="BUILDER", help="the builder image")
    p.add_argument("--import-all", action="store_true",
                   help="also import every top-level module the image ships (stdlib, "
                   "site-packages, built-ins; not the app's own), there and in BUILDER; each "
                   "that imports in BUILDER must import in the image")
    _add_engine(p)
    p.set_defaults(command_name="verify")


def _add_trace(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("trace", help="run the app and record what it uses",
                       description="Run a Python command under the tracer and write trace.json.")
    p.add_argument("-o", "--output", type=Path, default=Path("trace.json"),
                   help="where to write the trace (default trace.json)")
    p.add_argument("--spec", type=Path, metavar="FILE",
                   help="the app spec (JSON: entry, args, port, probes); the command after "
                   "-- is then only the interpreter")
    p.add_argument("--cwd", type=Path, help="directory to run the command in")
    p.add_argument("--timeout", type=float, default=600, help="seconds a script may run")
    p.add_argument("--port", type=int, help="the app is a server listening on 127.0.0.1:PORT")
    p.add_argument("--probe", action="append", default=[], metavar=PROBE_METAVAR,
                   help="request to send to a server before stopping it (repeatable)")
    p.add_argument("--ready-timeout", type=float, default=defaults.READY_TIMEOUT,
                   help="seconds to wait for a server's port")
    p.add_argument("--allow-exit-code", type=int, action="append", default=[], metavar="N",
                   help="exit status that still counts as success (repeatable)")
    p.add_argument("--no-native", dest="native", action="store_false",
                   help="record only what Python opens, not what native code opens (the "
                   "native tracer uses ptrace; it adds start-up time to every traced call "
                   "of open, exec and stat)")
    p.add_argument("command", nargs=argparse.REMAINDER,
                   help="-- python app.py ARGS (with --spec: -- python)")
    p.set_defaults(command_name="trace")


def _add_assemble(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("assemble", help="build the farm (a root filesystem) from a trace",
                       description="Turn trace.json into a self-contained root filesystem.")
    p.add_argument("trace", type=Path, help="trace.json written by 'pyfarm-docker trace'")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="directory to write the farm into (a root filesystem)")
    p.add_argument("--prefix", type=PurePosixPath, default=defaults.PREFIX,
                   help=f"where the farm lives in the image (default {defaults.PREFIX})")
    p.add_argument("--strict", action="store_true", help="soname conflicts are errors")
    p.add_argument("--prune", action="store_true",
                   help="ship only what the run used (and its native closure), as .pyc")
    p.add_argument("--keep-tests", action="store_true",
                   help="keep distributions' test directories the run did not import")
    p.add_argument("--keep-headers", action="store_true",
                   help="keep stubs, headers and Cython sources (.pyi .pxd .h .a ...)")
    p.add_argument("--force", action="store_true", help="replace a non-empty output dir")
    p.add_argument("--layers", action="store_true",
                   help="split the output into one directory per image layer")
    p.add_argument("--provided", type=Path, metavar="FILE",
                   help="the final base's files (build writes it from --final): what the "
                        "base holds byte-identical is not copied again")
    p.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    p.set_defaults(command_name="assemble")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="pyfarm-docker",
        description="Turn a Python application into a minimal container image, "
                    "from a traced run of it.",
    )
    top.add_argument("--version", action="version", version=f"pyfarm-docker {__version__}")
    sub = top.add_subparsers(dest="subcommand", metavar="COMMAND")
    for add in (_add_build, _add_generate, _add_trace, _add_assemble, _add_verify, _add_report,
                _add_push):
        add(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    name: str | None = getattr(args, "command_name", None)
    if name is None:
        parser().print_help(sys.stderr)
        return 2
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        return _handler(name)(args)
    except PyfarmError as exc:
        say(f"ERROR: {exc.message}")
        if exc.hint:
            say(f"  hint: {exc.hint}")
        return exc.exit_code
    except KeyboardInterrupt:
        say("ERROR: interrupted")
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (docker stop, CI timeouts) cleans up exactly like Ctrl-C."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
