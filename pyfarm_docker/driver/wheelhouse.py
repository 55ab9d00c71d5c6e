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
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Sequence

from .. import defaults
from ..errors import PyfarmError, UsageError
from . import caches
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


def download(requirements: Sequence[str], dest: Path, target: Target) -> list[Path]:
    """Download binary wheels for `requirements` into `dest`; return the wheels in `dest`.

    `requirements` are pip arguments (``["-r", "requirements.txt"]``, ``["numpy>=2"]``).
    Wheels are chosen for the target's CPython on its Linux machine and glibc, never for
    the host. When `dest` holds a stamp for the same arguments,
    requirement file contents and target, pip is not run again.
    """
    version, abi = _parse_python_version(target.python)
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

    key = _cache_key(requirements, version, tags)
    stamp = _read_stamp(dest)
    if stamp is not None and stamp[0] == key and all((dest / w).is_file() for w in stamp[1]):
        return _wheels(dest)

    cmd = [
        sys.executable, "-m", "pip", "download",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        "--only-binary=:all:",
        "--python-version", version,
        "--implementation", "cp",
        "--abi", abi,
    ]  # fmt: skip
    for tag in tags:
        cmd += ["--platform", tag]
    cmd += ["--dest", str(dest), *requirements]
    try:
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise PyfarmError(
            f"cannot run pip with {sys.executable}: {exc}",
            hint="run pyfarm-docker with a Python that has pip installed",
        ) from exc
    if proc.returncode != 0:
        line = _last_error_line(proc.stdout)
        what = target.describe()
        if "No module named pip" in proc.stdout:
            raise PyfarmError(
                f"pip is not available in {sys.executable}",
                hint=f"install pip there (`{sys.executable} -m ensurepip`)",
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
            hint=f"rerun `{' '.join(cmd[:4])} ... {' '.join(requirements)}` to see pip's "
            "full output; a network error means the package index is unreachable "
            "from this host",
        )
    wheels = _wheels(dest)
    _write_stamp(dest, key, wheels)
    return wheels


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
