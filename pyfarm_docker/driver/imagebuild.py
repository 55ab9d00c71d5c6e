"""``build``: lay out a context, build the image, verify it if asked, then tag it (or
write it as an OCI layout) only once everything passed."""

from __future__ import annotations

import functools
import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from .. import runtime
from ..errors import UsageError
from . import attest, engine, oci, projectfiles, registry, ship, staging, verify, wheelhouse
from .dockerfile import DockerfileOptions, for_project
from .finalbase import check_final_base, provide_final_base, write_final_base
from .projectinstall import finish as finish_install
from .projectinstall import prepare as prepare_app
from .projectinstall import write_app
from .target import Target
from .wheelhouse import NO_INDEX, IndexOptions

Report = Callable[[str], None]


@dataclass(frozen=True)
class BuildOptions:
    dockerfile: DockerfileOptions
    tag: str
    network: str | None = None
    wheelhouse: Path | None = None
    download: bool = True
    verify: bool = False
    import_all: bool = False  # with verify: also import every shipped top-level module
    no_cache: bool = False
    source_date_epoch: int = 0
    engine: str = "auto"
    output: oci.Layout | None = None  # write here instead of tagging in the engine
    sbom: Path | None = None
    requirements: Path | None = None  # instead of the project's lock or requirements.txt
    index: IndexOptions = NO_INDEX  # for the host's pip, never the image
    push: bool = False  # push the image (tag's registry), with its SBOM and provenance
    insecure: bool | None = None  # plain HTTP allowed; None: for loopback registries only
    provenance: Path | None = None  # also write the provenance statement here
    build_args: tuple[tuple[str, str], ...] = ()  # the user's, for the builder stage
    platform: str | None = None  # linux/amd64, the only one so far

    @property
    def project(self) -> Path:
        return self.dockerfile.settings.project


@dataclass(frozen=True)
class BuildResult:
    image_id: str
    tag: str
    engine: str
    final_bytes: int
    builder_tag: str | None
    builder_bytes: int
    seconds: float
    verdict: verify.Verdict | None = None  # with --verify
    project_files: projectfiles.Selection | None = None  # what of the project was copied
    pushed: registry.Pushed | None = None  # with push


def sibling_reference(tag: str, variant: str) -> str:
    """``repo:tag`` -> ``repo:tag-VARIANT`` (the builder and debug images)."""
    repo, name = engine.check_reference(tag)
    return f"{repo}:{name}-{variant}"


PLATFORMS = ("linux/amd64",)


def check_platform(platform: str | None) -> None:
    """Only linux/amd64 builds so far: the app is traced by running it, so another
    platform needs its base image, wheels and the tool's patchelf for that machine, and a
    machine (or QEMU binfmt emulation) to run them on."""
    if platform is None or platform in PLATFORMS:
        return
    raise UsageError(f"--platform {platform} is not supported: only linux/amd64 builds so "
                     "far", "linux/arm64 would need an arm64 base image and wheels, the "
                     "tool's patchelf for aarch64, and an arm64 machine or QEMU binfmt "
                     "emulation to trace the app on")


def app_wheels(options: BuildOptions, target: Target, report: Report) -> list[Path] | None:
    """The app's wheelhouse: given, downloaded on the host, or None (pip uses its index)."""
    if options.wheelhouse is not None:
        if not options.wheelhouse.is_dir():
            raise UsageError(f"wheelhouse {options.wheelhouse} is not a directory")
        return sorted(options.wheelhouse.glob("*.whl"))
    if not options.download:
        return None
    report(f"wheels for {target.describe()}")
    return wheelhouse.app_wheels(options.project, target)


def build_image(options: BuildOptions, report: Report, log: Report | None = None
                ) -> BuildResult:
    """Build ``options.tag``; progress goes to ``report``, the full log to ``log``."""
    engine.check_reference(options.tag)
    if options.push:
        registry.Reference.parse(options.tag)  # a wrong name fails before a long build
    check_platform(options.platform)
    if options.import_all and not options.verify:
        raise UsageError("--import-all needs --verify", "add --verify")
    if options.output is not None:
        options.output.check_writable()
    with engine.session(options.engine) as eng:
        report(f"engine: {eng.name}")
        return _build(eng, options, report, log)


def _build(eng: engine.Engine, options: BuildOptions, report: Report,
           log: Report | None) -> BuildResult:
    started = time.monotonic()
    client = eng.client
    settings = options.dockerfile.settings
    target = engine.probe_base(client, settings.base)
    final_base = check_final_base(client, settings, target, report)  # refused here, or None
    app = (prepare_app(options.project, target, report, options.requirements, options.index,
                       settings.include)
           if options.download and options.wheelhouse is None else None)
    wheels = app.wheels if app is not None else app_wheels(options, target, report)
    dockerfile = finish_install(
        for_project(replace(options.dockerfile, wheelhouse=wheels is not None)), app, wheels)
    dockerfile = provide_final_base(dockerfile, final_base)
    options = replace(options, dockerfile=dockerfile)  # verify runs the resolved entry
    with tempfile.TemporaryDirectory(prefix="pyfarm-context-") as tmp:
        ctx = Path(tmp)
        selection = staging.copy_project(options.project, ctx, settings.include,
                                         dockerfile.helpers)
        report(selection.summary())
        path = staging.write_helpers(ctx, dockerfile, target, wheels)
        write_final_base(path.parent, final_base)
        if app is not None:
            write_app(path.parent, app)
        inputs = attest.context_digests(ctx) if options.push or options.provenance else {}
        image_id, builder_id, verdict = _build_stages(
            eng, ctx, str(path.relative_to(ctx)), options, report, log)
    _publish(client, image_id, options, report)
    builder = sibling_reference(options.tag, "builder") if options.verify else None
    if builder:
        engine.tag(client, builder_id, builder)
    pushed = None
    if options.push or options.provenance:
        pushed = _ship(eng, image_id, builder_id, options, inputs, started, report)
    return BuildResult(
        image_id, options.tag, eng.name, engine.image_size(client, image_id), builder,
        engine.image_size(client, builder_id), time.monotonic() - started, verdict,
        selection, pushed,
    )


def _parameters(options: BuildOptions) -> dict[str, Any]:
    """What the user decided, for the provenance's externalParameters."""
    settings = options.dockerfile.settings
    return {"tag": options.tag, "title": settings.title, "spec": settings.spec.to_json(),
            "base": settings.base, "final": settings.final, "prefix": str(settings.prefix),
            "prune": settings.prune, "debug": settings.debug,
            "syntax": options.dockerfile.syntax, "download": options.download,
            "wheelhouse": options.wheelhouse is not None, "network": options.network,
            "sourceDateEpoch": options.source_date_epoch}


def _ship(eng: engine.Engine, image_id: str, builder_id: str, options: BuildOptions,
          inputs: dict[str, str], started: float, report: Report) -> registry.Pushed | None:
    """Write the provenance statement, push the image with its attestations: only ever
    after the build (and verify, when asked) passed."""
    client = eng.client
    predicate = attest.provenance(
        parameters=_parameters(options),
        base=attest.base_dependency(client, options.dockerfile.settings.base),
        inputs=inputs, trace=engine.read_file(client, builder_id, str(runtime.BUILDER_TRACE)),
        builder_image=builder_id, engine_name=eng.name,
        engine_version=str(client.version().get("Version", "")),
        started=time.time() - (time.monotonic() - started), finished=time.time())

    def statement(name: str, digest: str) -> dict[str, Any]:
        return attest.statement(name, digest, predicate)

    if options.provenance is not None:
        digest = ship.layout_digest(client, image_id, options.output)
        name = ship.subject_name(registry.Reference.parse(options.tag))
        options.provenance.write_text(json.dumps(statement(name, digest), indent=1) + "\n")
        report(f"provenance (in-toto, SLSA v1) -> {options.provenance}")
    if not options.push:
        return None
    dest = registry.Reference.parse(options.tag)
    created = attest.created(options.source_date_epoch)
    if options.output is not None:
        sbom = attest.layout_sbom(options.output)
        return ship.push_layout(options.output, dest, sbom=sbom, provenance=statement,
                                insecure=options.insecure, report=report, created=created)
    return ship.push_image(client, image_id, dest, provenance=statement,
                           insecure=options.insecure, report=report, created=created)


def _publish(client: Any, image_id: str, options: BuildOptions, report: Report) -> None:
    """Tag the image, or write it as an OCI layout; and its SBOM if asked."""
    if options.sbom is not None:
        sbom = runtime.Runtime(options.dockerfile.settings.prefix).sbom
        options.sbom.write_bytes(engine.read_file(client, image_id, str(sbom)))
        report(f"SBOM (SPDX 2.3) -> {options.sbom}")
    if options.output is None:
        engine.tag(client, image_id, options.tag)
        return
    report(f"writing {options.tag} to {options.output}")
    oci.write(client, image_id, options.tag, options.output)


def _build_stages(eng: engine.Engine, ctx: Path, dockerfile: str, options: BuildOptions,
                  report: Report, log: Report | None
                  ) -> tuple[str, str, verify.Verdict | None]:
    """Build the image and its builder stage (all cached by then), verify if asked.
    Nothing is tagged here: the caller tags once everything passed."""
    args = {**dict(options.build_args), "SOURCE_DATE_EPOCH": str(options.source_date_epoch)}
    client = eng.client
    # BuildKit through the docker client; podman's own API builds RUN --mount as it is.
    kit = options.dockerfile.syntax == "buildkit" and eng.name == "docker"
    build = functools.partial(engine.buildkit_stage if kit else engine.build_stage,
                              platform=options.platform)
    tracker = engine.StepTracker(report, log)
    image_id = build(client, ctx, dockerfile, tracker, target="final",
                     network=options.network, no_cache=options.no_cache, buildargs=args)
    builder_id = build(client, ctx, dockerfile, engine.StepTracker(lambda _: None, log),
                       target="builder", network=options.network, buildargs=args)
    debug_id = None
    if options.dockerfile.settings.debug:
        debug_id = build(client, ctx, dockerfile, engine.StepTracker(report, log),
                         target="debug", network=options.network, buildargs=args)
    verdict = None
    if options.verify:
        report("verifying the image against its builder")
        verdict = verify.check_or_raise(eng, image_id, builder_id, options.dockerfile.spec,
                                        report, options.import_all)
    if debug_id is not None:
        engine.tag(client, debug_id, sibling_reference(options.tag, "debug"))
    return image_id, builder_id, verdict
