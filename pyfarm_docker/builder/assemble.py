"""From trace.json to the farm: plan it, then write it (or only show the plan)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from .. import defaults
from ..documents.basefiles import BaseFiles
from ..documents.interpreter import Interpreter
from ..documents.manifest import Manifest
from ..documents.trace import Trace
from ..errors import AssembleError, UsageError
from ..runtime import Runtime
from . import basefiles, essentials, farm, ldso, native, nativefiles, patch, plan, sbom


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
    provided: Path | None = None  # what the final base holds (BaseFiles JSON): not copied


MARKER = ".pyfarm-output"  # in every directory assemble wrote: --force replaces only those


def check_prefix(prefix: PurePosixPath) -> None:
    """An absolute path of plain segments below /: the farm cannot land elsewhere."""
    if not prefix.is_absolute() or prefix == PurePosixPath("/") or ".." in prefix.parts:
        raise UsageError(f"--prefix must be an absolute directory below / without '..', "
                         f"not {prefix}")


def make_plan(trace: Trace, options: AssembleOptions) -> plan.Plan:
    check_prefix(options.prefix)
    policy = plan.Policy(options.prune, options.keep_tests, options.keep_headers)
    p = plan.Planner(options.prefix, plan.Usage.of(trace), policy)
    zips = [e.path for e in trace.sys_path if e.kind == "stdlib-zip"]
    zip_name = os.path.basename(zips[0]) if zips else None
    python = plan.add_interpreter(p, trace.interpreter, zip_name)
    sites = plan.add_site_dirs(p, trace)
    plan.add_app(p, trace)
    untraced = plan.UntracedStdlib.of(p, zip_name) if zip_name and p.zipped else None
    site_hook = _add_site_hook(p, trace.interpreter, sites, untraced)
    natives = native.plan_native(p, trace, ldso.Resolver(), python)
    essentials.add_essentials(p, trace, natives.interpreter)
    nativefiles.add_native_files(p, trace)
    _add_sbom(p, trace, options.epoch)
    base = (basefiles.use_base(p, natives, BaseFiles.read(options.provided))
            if options.provided is not None else None)
    if natives.conflicts and options.strict:
        names = ", ".join(c.soname for c in natives.conflicts)
        raise AssembleError(f"different libraries share a soname: {names}",
                            "only one of each can load in a process; drop --strict to go on")
    # Every start imports the site hook: compiled, it is not compiled again at each one.
    bytecode = plan.bytecode_sources(p) | {site_hook}
    return plan.Plan(options.prefix, python, tuple(p.entries.values()), tuple(natives.rpaths),
                     tuple(p.warnings), tuple(natives.conflicts), bytecode,
                     plan.sourceless(p, bytecode), zipped=tuple(p.zipped), base=base)


def _add_site_hook(p: plan.Planner, interp: Interpreter, sites: list[PurePosixPath],
                   untraced: plan.UntracedStdlib | None) -> PurePosixPath:
    dest = p.under("python", "lib", interp.version_dir, "sitecustomize.py")
    original = Path(interp.stdlib, "sitecustomize.py")
    p.entries.pop(dest, None)
    p.text(dest, plan.site_hook(sites, original if original.exists() else None, untraced,
                                interp.user_site), "runtime", "essential")
    return dest


def _add_sbom(p: plan.Planner, trace: Trace, epoch: int) -> None:
    """SPDX document in the farm, dpkg status.d entries where scanners look for them."""
    found = sbom.build(trace, list(p.entries.values()), p.prefix, epoch)
    dest = PurePosixPath(str(Runtime(p.prefix).sbom).lstrip("/"))
    p.text(dest, json.dumps(found.document, indent=1) + "\n", "app", "essential")
    for name, stanza in found.debian.items():
        p.text(PurePosixPath(sbom.STATUS_DIR, name), stanza, "runtime", "essential")


def _check_replaceable(out: Path, inputs: list[Path]) -> None:
    """--force replaces only an earlier output of assemble, never a directory that holds
    anything else: /, a home, the current directory, or an input (or its ancestors)."""
    real = out.resolve()
    guarded = {Path("/"), Path.home().resolve(), Path.cwd().resolve()}
    if real in guarded or any(real == i or real in i.parents for i in inputs):
        raise UsageError(f"will not replace {out}: it is / , a home or the current "
                         "directory, or holds an input", "choose a new output directory")
    if not (out / MARKER).is_file():
        raise UsageError(f"{out} exists and was not written by assemble",
                         "choose a new output directory, or remove it yourself")


def _prepare_output(options: AssembleOptions, inputs: list[Path]) -> Path:
    out = options.output
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file, not a directory", "choose a directory for -o")
    if out.exists() and any(out.iterdir()):
        if not options.force:
            raise UsageError(f"{out} exists and is not empty", "pass --force to replace it")
        _check_replaceable(out, inputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)  # it becomes the image's /
    return staging


def _swap_in(staging: Path, out: Path) -> None:
    """The new output takes the old one's place; an interruption leaves one of them whole."""
    (staging / MARKER).write_text("written by pyfarm-docker assemble; --force may replace it\n")
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        os.rename(out, old / out.name)
    os.rename(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def assemble(options: AssembleOptions, patcher: patch.ElfPatcher | None = None) -> Manifest:
    """Write the farm at ``options.output``; returns its manifest. Files and directories get
    fixed modes (0644/0755), whatever the caller's umask."""
    trace = Trace.read(options.trace)
    the_plan = make_plan(trace, options)
    if not options.prune:  # the manifest names what --prune would leave out, for report
        the_plan = plan.with_prunable(the_plan, make_plan(trace, replace(options, prune=True)))
    inputs = [options.trace.resolve(), Path(trace.app_dir).resolve()]
    staging = _prepare_output(options, inputs)
    umask = os.umask(0o022)
    try:
        doc = farm.write_farm(
            the_plan,
            farm.FarmOptions(staging, trace.interpreter.executable, options.epoch,
                             options.layers),
            patcher or patch.Patchelf(),
        )
        _swap_in(staging, options.output)
    except OSError as exc:  # a full disk, a read-only or vanished output
        raise AssembleError(f"cannot write the farm to {options.output}: {exc.strerror}",
                            "free some space, or choose another -o") from None
    finally:
        os.umask(umask)
        shutil.rmtree(staging, ignore_errors=True)
    return doc
