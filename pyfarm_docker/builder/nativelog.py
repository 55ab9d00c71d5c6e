"""Run a command under the native file tracer (csrc/fstrace.c) and read its log."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Iterable

from ..documents.trace import NativeAccess
from .tracelog import unescape

FSTRACE = Path(__file__).resolve().parent / "libexec" / "pyfarm-fstrace"
_PACKAGE = str(Path(__file__).resolve().parents[1])
_PSEUDO = ("/proc/", "/sys/", "/dev/")
_ABSENT = (errno.ENOENT, errno.ENOTDIR)
_LIST_OF = {"read": "read", "dir": "listed", "write": "written", "exec": "executed",
            "probe": "probed"}
NOT_INSTALLED = "the native file tracer is not installed (a pure-Python install of the tool)"


def wrap(command: tuple[str, ...], log: Path) -> tuple[str, ...]:
    """The command line that runs ``command`` under the native tracer, logging to ``log``."""
    return (str(FSTRACE), "-o", str(log), "--", *command)


def available() -> bool:
    return os.access(FSTRACE, os.X_OK)


def _records(text: str) -> Iterable[tuple[str, int, str, str]]:
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) == 4 and fields[1].lstrip("-").isdigit():
            yield fields[0], int(fields[1]), unescape(fields[2]), unescape(fields[3])


def _keep(path: str, ignored: tuple[str, ...]) -> bool:
    return not path.startswith(_PSEUDO) and not path.startswith(ignored)


def read_log(log: Path, pythons: set[str], ignored: tuple[str, ...] = ()) -> NativeAccess:
    """Fold the log into what the run's Python processes (``pythons``: real paths of their
    executables) touched. Other programs are listed, not their files: the image cannot run
    them. Paths under ``ignored`` (the trace's own files) and the tool are left out."""
    try:
        text = log.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return NativeAccess(False, "the native file tracer did not start")
    lists: dict[str, set[str]] = {name: set() for name in NativeAccess.list_names()}
    traced, note = False, "the native file tracer wrote nothing"
    skip = (*ignored, _PACKAGE)
    for kind, err, exe, path in _records(text):
        if kind in ("traced", "untraced"):
            traced, note = kind == "traced", path
            continue
        if exe not in pythons:
            continue
        path = os.path.normpath(path)
        if not _keep(path, skip) or kind not in _LIST_OF:
            continue
        if err in _ABSENT:
            lists["absent"].add(path)
        else:
            lists[_LIST_OF[kind] if err == 0 else "probed"].add(path)
            if kind == "exec" and err == 0 and os.path.realpath(path) not in pythons:
                lists["programs"].add(path)
    return NativeAccess(traced, "" if traced else note,
                        *(tuple(sorted(lists[name])) for name in NativeAccess.list_names()))
