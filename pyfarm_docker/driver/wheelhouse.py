"""Download a wheelhouse on the host for a builder image that has no network.

Containers here cannot reach a package index, so the builder installs from a
directory of wheels (`pip install --no-index --find-links DIR`). The wheels are
fetched on the host with `pip download` for the *target* interpreter and glibc:
`--platform` accepts only the tags it is given, so every manylinux tag the
target glibc allows is passed, or e.g. numpy finds no wheel.

    python -m pyfarm_docker.driver.wheelhouse -r requirements.txt -o wheels --python 3.11
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from .. import defaults
from ..errors import PyfarmError, UsageError
from . import caches, locks
from .target import Target

__all__ = ["STAMP_NAME", "download", "main", "platform_tags"]

STAMP_NAME = ".pyfarm-wheelhouse.json"
"""File in the destination dir recording what the last successful download was for."""

_STAMP_VERSION = 1

# Legacy manylinux names (PEP 513, 571, 599) and the glibc they stand for.
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
_LEGACY_ARCHES = {
    "manylinux2014": {"x86_64", "i686", "aarch64", "armv7l", "ppc64", "ppc64le", "s390x"},
    "manylinux2010": {"x86_64", "i686"},
    "manylinux1": {"x86_64", "i686"},
}

_REQ_FILE_OPTIONS = ("-r", "--requirement", "-c", "--constraint")
_USER_ERROR_PATTERNS = (
    "No matching distribution",
    "Could not find a version",
    "Could not open requirements file",
    "Invalid requirement",
    "ResolutionImpossible",
    "conflicting dependencies",
)


def platform_tags(glibc: tuple[int, int] = defaults.GLIBC, machine: str = defaults.MACHINE
                  ) -> list[str]:
    """Every platform tag a Linux with this glibc and machine accepts, most specific first.

    Same order as `packaging.tags`: ``manylinux_2_G_<machine>`` for G from the glibc
    minor down to the oldest manylinux glibc (2.5 on x86_64/i686, 2.17 elsewhere),
    each legacy alias (``manylinux2014``, ``manylinux2010``, ``manylinux1``) right
    after the version it stands for, then ``linux_<machine>``.
    """
    major, minor = glibc
    if major != 2 or minor < 0:
        raise UsageError(
            f"unsupported glibc version {major}.{minor}",
            hint="give the target's glibc as 2.N, e.g. 2.36 for Debian bookworm "
            "(`ldd --version` in the builder image prints it)",
        )
    if not re.fullmatch(r"[A-Za-z0-9_]+", machine):
        raise UsageError(
            f"invalid machine name {machine!r}",
            hint="use the target's `uname -m`, e.g. x86_64 or aarch64",
        )
    oldest = 5 if machine in ("x86_64", "i686") else 17
    tags: list[str] = []
    for g in range(minor, oldest - 1, -1):
        tags.append(f"manylinux_2_{g}_{machine}")
        legacy = _LEGACY_MANYLINUX.get(g)
        if legacy is not None and machine in _LEGACY_ARCHES[legacy]:
            tags.append(f"{legacy}_{machine}")
    tags.append(f"linux_{machine}")
    return tags


def _parse_python_version(python_version: str) -> tuple[str, str]:
    """Return ("X.Y", "cpXY") for a target version "X.Y" (a micro part is dropped)."""
    m = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)?", python_version.strip())
    if m is None:
        raise UsageError(
            f"invalid target Python version {python_version!r}",
            hint="give the builder's interpreter version as X.Y, e.g. 3.11",
        )
    major, minor = m.group(1), m.group(2)
    return f"{major}.{minor}", f"cp{major}{minor}"


def _requirement_files(requirements: Sequence[str]) -> Iterator[str]:
    """Paths named by -r/-c (also "-rFILE", "--requirement=FILE") in pip arguments."""
    args = list(requirements)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _REQ_FILE_OPTIONS:
            if i + 1 >= len(args):
                raise UsageError(
                    f"{arg} needs a file name", hint=f"pass it as `{arg} requirements.txt`"
                )
            yield args[i + 1]
            i += 2
            continue
        for opt in ("--requirement=", "--constraint="):
            if arg.startswith(opt):
                yield arg[len(opt) :]
                break
        else:
            if len(arg) > 2 and arg[:2] in ("-r", "-c") and not arg.startswith("--"):
                yield arg[2:]
        i += 1


def _nested_files(text: str) -> Iterator[str]:
    """-r/-c references inside a requirements file."""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line.startswith(_REQ_FILE_OPTIONS):
            yield from _requirement_files(line.split(None, 1))


def _hash_files(requirements: Sequence[str]) -> list[tuple[str, str]]:
    """(path, sha256) of every requirements/constraints file, nested ones included."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    todo: list[tuple[Path, Path | None]] = [
        (Path(p), None) for p in _requirement_files(requirements)
    ]
    while todo:
        path, parent = todo.pop(0)
        if parent is not None and not path.is_absolute():
            path = parent / path
        key = os.path.abspath(path)
        if key in seen:
            continue
        seen.add(key)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(
                f"cannot read requirements file {str(path)!r}: {exc.strerror or exc}",
                hint="check the path given with -r/-c (relative paths are relative to "
                "the current directory)",
            ) from exc
        out.append((key, hashlib.sha256(data).hexdigest()))
        text = data.decode("utf-8", errors="replace")
        todo.extend((Path(p), path.parent) for p in _nested_files(text))
    return out


def _cache_key(requirements: Sequence[str], python_version: str, tags: Sequence[str]) -> str:
    blob = json.dumps(
        {
            "v": _STAMP_VERSION,
            "args": list(requirements),
            "files": _hash_files(requirements),
            "python": python_version,
            "platforms": list(tags),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _wheels(dest: Path) -> list[Path]:
    return sorted(p for p in dest.glob("*.whl") if p.is_file())


def _read_stamp(dest: Path) -> tuple[str, list[str]] | None:
    try:
        data = json.loads((dest / STAMP_NAME).read_text(encoding="utf-8"))
        key = data["key"]
        wheels = data["wheels"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(key, str) or not isinstance(wheels, list):
        return None
    return key, [str(w) for w in wheels]


def _write_stamp(dest: Path, key: str, wheels: Sequence[Path]) -> None:
    tmp = dest / (STAMP_NAME + ".tmp")
    tmp.write_text(
        json.dumps({"key": key, "wheels": [w.name for w in wheels]}, indent=1) + "\n",
        encoding="utf-8",
    )
    os.replace(tmp, dest / STAMP_NAME)


def _last_error_line(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    if errors:
        return errors[-1]
    return lines[-1] if lines else "(pip printed nothing)"


def abi_tag(target: Target) -> str:
    """The target's CPython ABI tag: ``cp313``, or ``cp313t`` for a free-threaded build."""
    _, abi = _parse_python_version(target.python)
    return abi + ("t" if target.free_threaded else "")


def target_tags(target: Target) -> str:
    """The tags a wheel must have for the target, in one line for an error message."""
    tags = platform_tags(target.glibc, target.machine)
    abi = abi_tag(target)
    abis = f"{abi}|none" if target.free_threaded else f"{abi}|abi3|none"
    return f"{abi}-{abis} on {tags[0]} ... {tags[-2]}, {tags[-1]} (or py3-none-any)"


_MISSING = re.compile(r"No matching distribution found for (\S+)")


def download(requirements: Sequence[str], dest: Path, target: Target,
             built: Path | None = None) -> list[Path]:
    """Download binary wheels for `requirements` into `dest`; return the wheels in `dest`.

    `requirements` are pip arguments (``["-r", "requirements.txt"]``, ``["numpy>=2"]``).
    Wheels are chosen for the target's CPython on its Linux machine and glibc, never for
    the host. When `dest` holds a stamp for the same arguments,
    requirement file contents and target, pip is not run again. With ``built`` (a work
    directory), a requirement that has only an sdist is built into a wheel on this host
    and used when that wheel fits the target (a pure-Python one always does).
    """
    version, _ = _parse_python_version(target.python)
    abi = abi_tag(target)
    glibc, machine = target.glibc, target.machine
    tags = platform_tags(glibc, machine)
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create wheelhouse directory {str(dest)!r}: {exc.strerror or exc}",
            hint="choose a writable output directory",
        ) from exc
    if not requirements:
        return _wheels(dest)

    key = _cache_key(requirements, version + target.abiflags, tags)
    stamp = _read_stamp(dest)
    if stamp is not None and stamp[0] == key and all((dest / w).is_file() for w in stamp[1]):
        return _wheels(dest)

    cmd = [
        sys.executable, "-m", "pip", "download",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        "--only-binary=:all:",
        "--python-version", version,
        "--implementation", "cp",
        "--abi", abi,  # pip adds abi3 (not for a free-threaded build) and none itself
    ]  # fmt: skip
    for tag in tags:
        cmd += ["--platform", tag]
    cmd += ["--dest", str(dest)]
    tried: set[str] = set()
    why_not = ""
    while True:
        extra = ["--find-links", str(built / "wheels")] if built and tried else []
        proc = _run_pip([*cmd, *extra, *requirements])
        missing = _MISSING.search(proc.stdout) if proc.returncode else None
        if built is None or missing is None or missing.group(1) in tried:
            break
        tried.add(missing.group(1))
        why_not = _build_from_sdist(missing.group(1), built, target, requirements)
        if why_not:
            break
    if proc.returncode != 0:
        line = _last_error_line(proc.stdout)
        what = target.describe()
        if "No module named pip" in proc.stdout:
            raise PyfarmError(
                f"pip is not available in {sys.executable}",
                hint=f"install pip there (`{sys.executable} -m ensurepip`)",
            )
        if missing is not None:
            raise UsageError(
                f"{line.removeprefix('ERROR: ')}: no wheel for {what} "
                f"(tags {target_tags(target)})" + (f"; {why_not}" if why_not else ""),
                hint="pick a version that ships a wheel for this Python and glibc, or build "
                "the wheel yourself and pass a directory of wheels with --wheelhouse",
            )
        if any(p in proc.stdout for p in _USER_ERROR_PATTERNS):
            raise UsageError(
                f"pip download for {what} failed: {line}",
                hint="check the requirement's name and version; only binary wheels are "
                "used, so a package or version without a wheel for this Python and "
                "glibc cannot be installed: pick a version that ships one, or build "
                "the wheel yourself and put it in the wheelhouse",
            )
        raise PyfarmError(
            f"pip download for {what} failed (exit {proc.returncode}): {line}",
            hint=f"rerun `{' '.join(cmd[:4])} ...` to see pip's "
            "full output; a network error means the package index is unreachable "
            "from this host",
        )
    if built is not None and (built / "wheels").is_dir():
        for wheel in (built / "wheels").glob("*.whl"):
            if not (dest / wheel.name).exists():
                shutil.copy2(wheel, dest / wheel.name)
    wheels = _wheels(dest)
    _write_stamp(dest, key, wheels)
    return wheels


def _run_pip(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, check=False)
    except OSError as exc:
        raise PyfarmError(
            f"cannot run pip with {sys.executable}: {exc}",
            hint="run pyfarm-docker with a Python that has pip installed",
        ) from exc


def _wheel_fits(wheel: Path, target: Target) -> bool:
    """A wheel's tags (from its file name) fit the target, as pip would decide: its own
    CPython ABI, ``abi3`` from an older or equal CPython (not for a free-threaded build),
    or ``none``; a manylinux tag the glibc allows, or ``any``."""
    parts = wheel.name[:-4].split("-")
    pythons, abis, platforms = (set(p.split(".")) for p in parts[-3:])
    _, cp = _parse_python_version(target.python)
    minor = int(cp[3:])
    if not platforms & {"any", *platform_tags(target.glibc, target.machine)}:
        return False
    if abi_tag(target) in abis and cp in pythons:
        return True
    if "abi3" in abis and not target.free_threaded and any(
            re.fullmatch(r"cp3(\d+)", p) and int(p[3:]) <= minor for p in pythons):
        return True
    return "none" in abis and bool(pythons & {cp, "py3", f"py3{minor}"})


_NATIVE_SOURCES = (".c", ".cc", ".cpp", ".cxx", ".pyx", ".rs", ".f", ".f90", ".go")


def _native_sources(sdist: Path) -> list[str]:
    """Compiled-language sources in an sdist: its wheel would be built for this host."""
    try:
        if sdist.name.endswith(".zip"):
            with zipfile.ZipFile(sdist) as zf:
                names = zf.namelist()
        else:
            with tarfile.open(sdist) as tf:
                names = tf.getnames()
    except (OSError, tarfile.TarError, zipfile.BadZipFile):
        return []
    return [n for n in names if n.endswith(_NATIVE_SOURCES) or n.endswith("/Cargo.toml")]


def _build_from_sdist(requirement: str, built: Path, target: Target,
                      requirements: Sequence[str]) -> str:
    """Fetch ``requirement``'s sdist and build it into ``built/wheels`` on this host, when
    it is pure Python (a native one would build for this host, not the target); a hashed
    requirement line (from a lock) is checked against its sdist hash, and its hashes are
    replaced by the built wheel's in the requirement files, so pip's hash check still
    holds. Returns "" when a fitting wheel was built, else why not."""
    name = re.split(r"[=<>!~;\[ ]", requirement, maxsplit=1)[0]
    sdists, wheels = built / "sdists", built / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    hashed = _hashed_line(name, requirements)
    spec_file = built / f"{locks.normalize(name)}.txt"
    spec_file.write_text((hashed or requirement) + "\n")
    got = _run_pip([sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
                    "--no-input", "--progress-bar", "off", "--no-deps", "--no-binary=:all:",
                    *_index_args(requirements), "--dest", str(sdists), "-r", str(spec_file)])
    if got.returncode != 0:
        return f"no sdist either ({_last_error_line(got.stdout)})"
    norm = locks.normalize(name).replace("-", "_")
    sdist = [p for p in sdists.iterdir()
             if locks.normalize(p.name).replace("-", "_").startswith(norm + "_")]
    if not sdist:
        return "no sdist either"
    native = _native_sources(sdist[0])
    if native:
        return (f"its sdist {sdist[0].name} has native code ({native[0]}), which would be "
                "built for this host, not the target")
    before = set(wheels.glob("*.whl"))
    done = _run_pip([sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check",
                     "--no-input", "--progress-bar", "off", "--no-deps",
                     *_index_args(requirements), "-w", str(wheels), str(sdist[0])])
    new = [w for w in set(wheels.glob("*.whl")) - before]
    if done.returncode != 0 or not new or not all(_wheel_fits(w, target) for w in new):
        for wheel in new:
            wheel.unlink()
        return (f"its sdist {sdist[0].name} does not build into a wheel that fits: "
                f"{_last_error_line(done.stdout) if done.returncode else new[0].name}")
    if hashed and all(Path(f).resolve().is_relative_to(built.parent.resolve())
                      for f in _requirement_files(requirements)):
        digest = hashlib.sha256(new[0].read_bytes()).hexdigest()
        _rehash(name, requirements, f"--hash=sha256:{digest}")
    return ""


def _index_args(requirements: Sequence[str]) -> list[str]:
    """The index options among pip arguments."""
    out: list[str] = []
    args = list(requirements)
    for i, arg in enumerate(args):
        if arg in ("--index-url", "--extra-index-url", "-i") and i + 1 < len(args):
            out += [arg, args[i + 1]]
    return out


def _hashed_line(name: str, requirements: Sequence[str]) -> str | None:
    for path in _requirement_files(requirements):
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
            if (m and locks.normalize(m.group(1)) == locks.normalize(name)
                    and "--hash=" in line):
                return line
    return None


def _rehash(name: str, requirements: Sequence[str], new_hash: str) -> None:
    for path in _requirement_files(requirements):
        file = Path(path)
        lines = file.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
            if m and locks.normalize(m.group(1)) == locks.normalize(name) and "--hash=" in line:
                lines[i] = re.sub(r"(\s--hash=\S+)+", "", line) + " " + new_hash
        file.write_text("".join(f"{line}\n" for line in lines))


def app_wheels(project: Path, target: Target) -> list[Path]:
    """The app's wheels for ``target`` from its requirements.txt, downloaded on this host
    (cached by the file's content)."""
    requirements = project / "requirements.txt"
    if not requirements.is_file():
        return []
    key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    glibc = f"{target.glibc[0]}.{target.glibc[1]}"
    dest = caches.WHEELHOUSES / f"py{target.python}-glibc{glibc}" / key
    return download(["-r", str(requirements)], dest, target)


# -- the app's install: its lock or requirements, its own wheel ----------------------------

PINS_NAME = "requirements.txt"  # in the helpers directory: what the builder installs
PROJECT_DIR = "project"  # in the helpers directory: the project's own wheel


@dataclass(frozen=True)
class IndexOptions:
    """Where the host's pip looks, besides its own configuration (pip.conf, PIP_* variables),
    which it reads itself. These never reach the build context."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()

    def pip_args(self) -> list[str]:
        args = ["--index-url", self.index_url] if self.index_url else []
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        return args


NO_INDEX = IndexOptions()


@dataclass(frozen=True)
class AppInstall:
    """What the builder installs, all from files made on this host: the dependencies'
    wheels (``wheels``, pinned by ``pins``) and the project's own wheel."""

    wheels: list[Path]
    pins: str
    project_wheel: Path | None = None
    source: str = ""  # what the dependencies came from: a lock file, requirements, metadata


def installable(project: Path) -> bool:
    """The project builds into a wheel: pyproject.toml with [build-system] or [project],
    or a setup.py."""
    if (project / "setup.py").is_file():
        return True
    path = project / "pyproject.toml"
    if not path.is_file():
        return False
    data = locks.load_toml(path)
    return "build-system" in data or "project" in data


def _index_from_uv(project: Path, index: IndexOptions) -> IndexOptions:
    """uv's own settings, for a uv project: ``[[tool.uv.index]]`` (the default one and the
    others) and UV_INDEX_URL / UV_DEFAULT_INDEX / UV_EXTRA_INDEX_URL / UV_INDEX."""
    if index.index_url or index.extra_index_urls or not (project / "uv.lock").is_file():
        return index
    primary = os.environ.get("UV_DEFAULT_INDEX") or os.environ.get("UV_INDEX_URL")
    extra = (os.environ.get("UV_INDEX", "") + " " +
             os.environ.get("UV_EXTRA_INDEX_URL", "")).split()
    path = project / "pyproject.toml"
    tool = locks.load_toml(path).get("tool", {}) if path.is_file() else {}
    uv = tool.get("uv", {}) if isinstance(tool, dict) else {}
    for entry in uv.get("index", []) if isinstance(uv, dict) else []:
        if isinstance(entry, dict) and isinstance(entry.get("url"), str):
            if entry.get("default"):
                primary = primary or entry["url"]
            elif not entry.get("explicit"):
                extra.append(entry["url"])
    extra = [e.split("=", 1)[1] if re.match(r"^[\w-]+=", e) else e for e in extra]
    return IndexOptions(primary, tuple(extra))


def build_project_wheel(project: Path, out: Path, include: tuple[str, ...] = (),
                        index: IndexOptions = NO_INDEX) -> Path:
    """The project built into a wheel on this host by its own build backend (``pip wheel
    --no-deps``, with build isolation), from a copy of what goes into the image, so the
    build leaves nothing in the project."""
    from . import projectfiles

    src = out / "src"
    selection = projectfiles.select(project, include, skip={".pyfarm": projectfiles.HELPERS})
    projectfiles.copy(selection, src)
    cmd = [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "--no-input",
           "--progress-bar", "off", "--no-deps", *index.pip_args(), "-w", str(out / "wheel"),
           str(src)]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)
    built = sorted((out / "wheel").glob("*.whl"))
    if proc.returncode != 0 or len(built) != 1:
        raise UsageError(f"building the project {project} into a wheel failed: "
                         f"{_last_error_line(proc.stdout)}",
                         f"`pip wheel --no-deps {project}` shows the build backend's output")
    return built[0]


def wheel_metadata(wheel: Path, member: str = "METADATA") -> str:
    """A file of the wheel's ``*.dist-info`` directory ("" when it has none)."""
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            parts = name.split("/")
            if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == member:
                return zf.read(name).decode("utf-8", errors="replace")
    return ""


def requires_dist(wheel: Path) -> list[str]:
    """The wheel's dependencies (``Requires-Dist``), markers included."""
    return [line.split(":", 1)[1].strip() for line in wheel_metadata(wheel).splitlines()
            if line.startswith("Requires-Dist:")]


def console_scripts(wheels: Sequence[Path]) -> dict[str, str]:
    """``name -> module:function`` of every console script these wheels declare."""
    found: dict[str, str] = {}
    for wheel in wheels:
        section = ""
        for raw in wheel_metadata(wheel, "entry_points.txt").splitlines():
            line = raw.strip()
            if line.startswith("["):
                section = line.strip("[]").strip()
            elif section == "console_scripts" and "=" in line:
                name, value = (part.strip() for part in line.split("=", 1))
                found.setdefault(name, value)
    return found


def pins_for(wheels: Sequence[Path]) -> str:
    """``name==version`` of each wheel: exactly what the host resolved and downloaded."""
    lines = []
    for wheel in wheels:
        name, version = wheel.name.split("-")[:2]
        lines.append(f"{name}=={version}\n")
    return "".join(sorted(set(lines)))


def prepare_app(project: Path, target: Target, requirements: Path | None = None,
                index: IndexOptions = NO_INDEX, include: tuple[str, ...] = ()
                ) -> AppInstall:
    """Everything the builder installs, made on this host for ``target``.

    Dependencies: ``requirements`` when given, else the project's lock file (uv.lock,
    poetry.lock, pdm.lock, pylock.toml; hashes checked by pip here), else its
    requirements.txt together with the project's own dependencies. The project, when it
    declares a build, is built into a wheel and installed after them, non-editable.
    """
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="pyfarm-app-"))
    try:
        return _prepare_app(project, target, requirements, index, include, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _prepare_app(project: Path, target: Target, requirements: Path | None,
                 index: IndexOptions, include: tuple[str, ...], work: Path) -> AppInstall:
    index = _index_from_uv(project, index)
    project_wheel = None
    if installable(project):
        project_wheel = build_project_wheel(project, work / "project", include, index)
    reqs: list[str] = []
    if requirements is not None:
        if not requirements.is_file():
            raise UsageError(f"requirements file {requirements} does not exist")
        reqs, source = ["-r", str(requirements.resolve())], str(requirements)
    elif (lock := locks.detect(project)) is not None:
        locked = locks.read(lock)
        (work / "locked.txt").write_text(locked.text)
        reqs, source = ["-r", str(work / "locked.txt")], lock.name
    else:
        source = "metadata"
        if (project / "requirements.txt").is_file():
            reqs, source = ["-r", str(project / "requirements.txt")], "requirements.txt"
        if project_wheel is not None and (deps := requires_dist(project_wheel)):
            (work / "project-deps.txt").write_text("".join(d + "\n" for d in deps))
            reqs += ["-r", str(work / "project-deps.txt")]
            source = ("requirements.txt and " if reqs[2:] else "") + "the project's metadata"
    wheels = _download_app(reqs, target, index, work) if reqs else []
    if project_wheel is not None:  # kept by content: the work directory goes
        digest = hashlib.sha256(project_wheel.read_bytes()).hexdigest()[:16]
        kept = caches.ROOT / "project-wheels" / digest / project_wheel.name
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(project_wheel, kept)
        project_wheel = kept
    return AppInstall(wheels, pins_for(wheels), project_wheel, source)


def _download_app(reqs: list[str], target: Target, index: IndexOptions, work: Path
                  ) -> list[Path]:
    glibc = f"{target.glibc[0]}.{target.glibc[1]}"
    files = [digest for _, digest in _hash_files(reqs)]  # by content: the paths are temporary
    blob = json.dumps({"v": _STAMP_VERSION, "files": files, "index": index.pip_args(),
                       "target": [target.python, target.abiflags, target.machine, glibc]})
    key = hashlib.sha256(blob.encode()).hexdigest()
    dest = caches.WHEELHOUSES / f"py{target.python}{target.abiflags}-glibc{glibc}" / key[:16]
    return download([*index.pip_args(), *reqs], dest, target, built=work / "built")


def _glibc_arg(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)\.(\d+)", text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"expected MAJOR.MINOR like 2.36, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pyfarm_docker.driver.wheelhouse [REQ...] [-r FILE] -o DIR --python X.Y`."""
    parser = argparse.ArgumentParser(
        prog="python -m pyfarm_docker.driver.wheelhouse",
        description="Download binary wheels for a target CPython and glibc into a directory "
        "(an offline wheelhouse for `pip install --no-index --find-links DIR`).",
    )
    parser.add_argument("specs", nargs="*", metavar="REQ", help="requirement specifier")
    parser.add_argument(
        "-r", "--requirement", action="append", default=[], metavar="FILE",
        help="requirements file (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "-c", "--constraint", action="append", default=[], metavar="FILE",
        help="constraints file (repeatable)",
    )  # fmt: skip
    parser.add_argument("-o", "--dest", required=True, type=Path, metavar="DIR")
    parser.add_argument("--python", required=True, metavar="X.Y", help="target CPython version")
    parser.add_argument(
        "--glibc", type=_glibc_arg, default=defaults.GLIBC, metavar="2.N",
        help="target glibc (default 2.36, Debian bookworm)",
    )  # fmt: skip
    parser.add_argument("--machine", default="x86_64", help="target machine (default x86_64)")
    args = parser.parse_args(argv)

    reqs: list[str] = []
    for f in args.requirement:
        reqs += ["-r", f]
    for f in args.constraint:
        reqs += ["-c", f]
    reqs += args.specs
    try:
        wheels = download(reqs, args.dest, Target(args.python, args.glibc, machine=args.machine))
    except PyfarmError as exc:
        print(f"wheelhouse: error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"wheelhouse: hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    print(f"wheelhouse: {len(wheels)} wheel(s) in {args.dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
