"""The commands that run on the user's machine: build, generate, verify, report, push."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
from pathlib import Path
from typing import Any

from ..cli import epoch, say
from ..documents.spec import AppSpec
from ..errors import UsageError
from . import attest, engine, oci, registry, report, settings, ship, verify, wheelhouse
from .dockerfile import SYNTAXES, DockerfileOptions, for_project, render
from .generate import generate as write_generated
from .imagebuild import BuildOptions, build_image
from .projectinstall import finish as finish_install
from .projectinstall import prepare as prepare_app
from .target import Target, parse_glibc


def _settings(args: argparse.Namespace) -> settings.Settings:
    return settings.resolve(settings.Flags(
        path=args.path, module=args.module, script=args.script,
        args=tuple(args.arg) if args.arg is not None else None, port=args.port,
        probes=tuple(args.probe), base=args.base, final=args.final, prefix=args.prefix,
        prune=args.prune, keep_tests=args.keep_tests, keep_headers=args.keep_headers,
        debug=args.debug, include=tuple(args.include)))


def _index(args: argparse.Namespace) -> wheelhouse.IndexOptions:
    return wheelhouse.IndexOptions(args.index_url, tuple(args.extra_index_url))


def generate_command(args: argparse.Namespace) -> int:
    if args.syntax not in SYNTAXES:
        raise UsageError(f"unknown --syntax {args.syntax!r}", f"use one of {', '.join(SYNTAXES)}")
    options = DockerfileOptions(_settings(args), syntax=args.syntax)
    if args.dockerfile_only:
        print(render(finish_install(for_project(options), None, None)), end="")
        return 0
    project = options.settings.project
    target = Target(args.python, parse_glibc(args.glibc))
    wheels = sorted(args.wheelhouse.glob("*.whl")) if args.wheelhouse else None
    app = None
    if args.download:
        app = prepare_app(project, target, say, args.requirements, _index(args),
                          options.settings.include)
        wheels = app.wheels
    inputs = [args.wheelhouse] if args.wheelhouse else []
    done = write_generated(options, args.output or project / ".pyfarm", target, wheels,
                           args.force, inputs, app)
    docker = "DOCKER_BUILDKIT=1 docker" if args.syntax == "buildkit" else "docker"
    flags = f"-f {done.dockerfile.relative_to(project)} -t IMAGE {shlex.quote(str(project))}"
    say(f"wrote {done.dockerfile}; build it with:\n  {docker} build {flags}\n"
        f"  podman build {flags}")
    if done.dockerignore_changed:
        say(f"wrote pyfarm-docker's block into {done.dockerignore}: it keeps secrets, VCS "
            "directories, caches and the virtualenvs and private keys found now out of the "
            "build context (run generate again after adding any)")
    say(done.selection.summary())
    return 0


def build_command(args: argparse.Namespace) -> int:
    output = oci.Layout.parse(args.output) if args.output else None
    if args.syntax not in SYNTAXES:
        raise UsageError(f"unknown --syntax {args.syntax!r}", f"use one of {', '.join(SYNTAXES)}")
    build_args = tuple(_pair("--build-arg", text, from_env=True) for text in args.build_arg)
    labels = tuple(_pair("--label", text) for text in args.label)
    dockerfile = DockerfileOptions(_settings(args), syntax=args.syntax, labels=labels,
                                   build_args=tuple(name for name, _ in build_args))
    result = build_image(
        BuildOptions(dockerfile=dockerfile, tag=args.tag,
                     network=args.network, wheelhouse=args.wheelhouse,
                     download=not args.no_download, verify=args.verify,
                     import_all=args.import_all,
                     no_cache=args.no_cache, source_date_epoch=epoch(), engine=args.engine,
                     output=output, sbom=args.sbom, requirements=args.requirements,
                     index=_index(args), push=args.push, insecure=args.insecure,
                     provenance=args.provenance, build_args=build_args,
                     platform=args.platform),
        report=say, log=say if args.verbose else None,
    )
    if result.pushed is not None:
        print(result.pushed.reference.at(result.pushed.digest), flush=True)
    where = f" -> {output}" if output else ""
    say(f"built {result.tag} ({result.image_id[7:19]}) with {result.engine} in "
        f"{result.seconds:.0f}s: {result.final_bytes / 1e6:.1f} MB{where}")
    builder = f" ({result.builder_tag})" if result.builder_tag else ""
    say(f"builder stage{builder}: {result.builder_bytes / 1e6:.1f} MB; the image is "
        f"{result.final_bytes / result.builder_bytes:.0%} of it")
    return 0


def _pair(flag: str, text: str, from_env: bool = False) -> tuple[str, str]:
    """``KEY=VALUE``; with ``from_env`` a bare ``KEY`` takes its value from the
    environment, as docker build does."""
    key, sep, value = text.partition("=")
    if not sep and from_env and key in os.environ:
        return key, os.environ[key]
    if not sep or not key:
        raise UsageError(f"{flag} {text!r} is not KEY=VALUE",
                         f"e.g. {flag} " + ("PIP_INDEX_URL=https://..." if from_env
                                            else "org.opencontainers.image.version=1.0"))
    return key, value


def push_command(args: argparse.Namespace) -> int:
    dest = registry.Reference.parse(args.dest)
    statement = attest.read_statement(args.provenance) if args.provenance else None

    def provenance(name: str, digest: str) -> dict[str, Any]:
        assert statement is not None
        if attest.subject_digest(statement) != digest:
            raise UsageError(f"{args.provenance} describes "
                             f"{attest.subject_digest(statement) or 'no digest'}, not this "
                             f"image ({digest})", "give the statement build --provenance "
                             "wrote for this image")
        return statement

    given = provenance if statement is not None else None
    if oci.is_layout(args.source):
        layout = oci.Layout.parse(args.source)
        pushed = ship.push_layout(layout, dest, sbom=attest.layout_sbom(layout),
                                  provenance=given, insecure=args.insecure, report=say)
    else:
        with engine.session(args.engine) as eng:
            engine.require_image(eng.client, args.source, "source")
            pushed = ship.push_image(eng.client, args.source, dest, provenance=given,
                                     insecure=args.insecure, report=say)
    say(f"pushed {args.source} to {dest} ({len(pushed.attached)} attachments)")
    print(dest.at(pushed.digest), flush=True)
    return 0


def verify_command(args: argparse.Namespace) -> int:
    with engine.session(args.engine) as eng, contextlib.ExitStack() as stack:
        image, like = (_local_image(eng, stack, name) for name in (args.image, args.like))
        spec: AppSpec = verify.spec_from_image(eng.client, image)
        verdict = verify.check_or_raise(eng, image, like, spec, say, args.import_all)
    say(f"{args.image} behaves like {args.like} "
        f"(run {verdict.final_ms:.0f} ms vs {verdict.builder_ms:.0f} ms)")
    return 0


def _local_image(eng: engine.Engine, stack: contextlib.ExitStack, name: str) -> str:
    """An image name the engine knows: OCI layouts are loaded for the stack's lifetime."""
    if oci.is_layout(name):
        return stack.enter_context(oci.loaded(eng.client, oci.Layout.parse(name)))
    engine.require_image(eng.client, name, "image")
    return name


def report_command(args: argparse.Namespace) -> int:
    summary = report.summarize(report.load_manifest(args.target, args.engine))
    if args.html:
        html: Path = args.html
        html.write_text(report.to_html(summary, args.target))
        say(f"treemap -> {html}")
    print(json.dumps(summary, indent=1) if args.json else report.table(summary))
    return 0
