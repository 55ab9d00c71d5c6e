"""From trace.json to the farm: plan it, then write it (or only show the plan)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .. import defaults
from ..documents.interpreter import Interpreter
from ..documents.manifest import Manifest
from ..documents.trace import Trace
from ..errors import AssembleError, UsageError
from ..runtime import Runtime
from . import essentials, farm, ldso, native, patch, plan, sbom


@dataclass(frozen=True)
class AssembleOptions:
    trace: Path
    output: Path
    prefix: PurePosixPath = defaults.PREFIX
    strict: bool = False
    prune: bool = False
    keep_tests: bool = False
    keep_headers: bool = False
    force: bool = False
    layers: bool = False
    epoch: int = 0


def make_plan(trace: Trace, options: AssembleOptions) -> plan.Plan:
    if not options.prefix.is_absolute() or options.prefix == PurePosixPath("/"):
        raise UsageError(f"--prefix must be an absolute directory, not {options.prefix}")
    policy = plan.Policy(options.prune, options.keep_tests, options.keep_headers)
    p = plan.Planner(options.prefix, plan.Usage.of(trace), policy)
    python = plan.add_interpreter(p, trace.interpreter)
    sites = plan.add_site_dirs(p, trace)
    plan.add_app(p, trace)
    _add_site_hook(p, trace.interpreter, sites)
    natives = native.plan_native(p, trace, ldso.Resolver(), python)
    essentials.add_essentials(p, trace, natives.interpreter)
    _add_sbom(p, trace, options.epoch)
    if natives.conflicts and options.strict:
        names = ", ".join(c.soname for c in natives.conflicts)
        raise AssembleError(f"different libraries share a soname: {names}",
                            "only one of each can load in a process; drop --strict to go on")
    bytecode = plan.bytecode_sources(p)
    return plan.Plan(options.prefix, python, tuple(p.entries.values()), tuple(natives.rpaths),
                     tuple(p.warnings), tuple(natives.conflicts), bytecode,
                     plan.sourceless(p, bytecode), frozenset(p.prunable))


def _add_site_hook(p: plan.Planner, interp: Interpreter, sites: list[PurePosixPath]) -> None:
    dest = p.under("python", "lib", interp.version_dir, "sitecustomize.py")
    original = Path(interp.stdlib, "sitecustomize.py")
    p.entries.pop(dest, None)
    p.text(dest, plan.site_hook(sites, original if original.exists() else None),
           "runtime", "essential")


def _add_sbom(p: plan.Planner, trace: Trace, epoch: int) -> None:
    """SPDX document in the farm, dpkg status.d entries where scanners look for them."""
    stdlib_marker = [str(Path(trace.interpreter.stdlib, "os.py"))]
    debian = sbom.debian_packages(sbom.native_sources(p.entries.values()) + stdlib_marker)
    document = sbom.spdx(PurePosixPath(trace.app_dir).name or "app",
                         sbom.python_packages(trace.distributions), debian, epoch)
    dest = PurePosixPath(str(Runtime(p.prefix).sbom).lstrip("/"))
    p.text(dest, json.dumps(document, indent=1) + "\n", "app", "essential")
    for name, stanza in debian.items():
        p.text(PurePosixPath(sbom.STATUS_DIR, name), stanza, "runtime", "essential")


def _prepare_output(options: AssembleOptions) -> Path:
    out = options.output
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not options.force:
        raise UsageError(f"{out} exists and is not empty", "pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)  # it becomes the image's /
    return staging


def assemble(options: AssembleOptions, patcher: patch.ElfPatcher | None = None) -> Manifest:
    """Write the farm at ``options.output`` atomically; returns its manifest."""
    trace = Trace.read(options.trace)
    the_plan = make_plan(trace, options)
    staging = _prepare_output(options)
    try:
        doc = farm.write_farm(
            the_plan,
            farm.FarmOptions(staging, trace.interpreter.executable, options.epoch,
                             options.layers),
            patcher or patch.Patchelf(),
        )
        if options.output.exists():
            shutil.rmtree(options.output)
        os.rename(staging, options.output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return doc
