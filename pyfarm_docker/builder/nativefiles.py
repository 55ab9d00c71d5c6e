"""Files the run's native code read (C extensions, glibc, OpenSSL, ncurses: recorded by
the native file tracer), shipped at the paths it opened them by.

- a file of a compiled locale (``<dir>/de_DE.utf8/LC_TIME``): the locale's whole directory,
  since glibc reads its categories as the program asks for them;
- a gconv module or configuration: that gconv directory's configuration and the modules
  used (glibc loads them by absolute path);
- any other regular file outside the farm: itself (terminfo entries, ``openssl.cnf``, data
  files), under the same rules as files Python opened (never secrets, /tmp or /proc).

Shared libraries are not data: the native plan ships those the run mapped. Paths only
probed (stat, access) are not shipped: that they exist is recorded in the trace.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..documents.trace import Trace
from . import elf
from .essentials import add_data_file, root_path
from .plan import Planner

REASON = "native"  # the run's native code read it
_LOCALE_CATEGORY = "LC_"


def add_native_files(p: Planner, trace: Trace) -> None:
    """Add what native code read, and warn about programs the image will not have."""
    # pyvenv.cfg configures the builder's venv; the farm's interpreter is not one.
    venv_config = os.path.join(trace.interpreter.prefix, "pyvenv.cfg")
    reads = [path for path in trace.native.read
             if os.path.isfile(path) and path != venv_config]
    _add_gconv(p, [*trace.mapped, *reads])
    for path in reads:
        if "/gconv/" in path or elf.is_elf(Path(path)):
            continue
        locale = locale_dir(path)
        if locale is not None:
            p.tree(Path(locale), root_path(locale), "runtime", "data", REASON)
            continue
        add_data_file(p, path, trace, REASON)
    _warn_programs(p, trace)


def locale_dir(path: str) -> str | None:
    """The compiled locale a file belongs to (``.../de_DE.utf8/LC_MESSAGES/SYS_LC_MESSAGES``
    -> ``.../de_DE.utf8``), or None: such a directory holds an LC_CTYPE."""
    directory = os.path.dirname(path)
    if os.path.basename(directory) == "LC_MESSAGES":
        directory = os.path.dirname(directory)
    name = os.path.basename(path)
    category = name.startswith(_LOCALE_CATEGORY) or name == "SYS_LC_MESSAGES"
    return directory if category and os.path.isfile(os.path.join(directory, "LC_CTYPE")) else None


def _add_gconv(p: Planner, paths: list[str]) -> None:
    """iconv modules that C code loaded, with their directory's configuration."""
    used = sorted({m for m in paths if "/gconv/" in m and os.path.isfile(m)})
    for directory in sorted({os.path.dirname(m) for m in used}):
        for module in used:
            if os.path.dirname(module) == directory:
                p.file(root_path(module), os.path.realpath(module), "runtime", "essential",
                       "essential")
        for conf in sorted(Path(directory).glob("gconv-modules*")):
            if conf.is_file():
                p.file(root_path(str(conf)), str(conf.resolve()), "runtime", "essential",
                       "essential")
            elif conf.is_dir():
                p.tree(conf, root_path(str(conf)), "runtime", "essential", "essential")


def _warn_programs(p: Planner, trace: Trace) -> None:
    for program in trace.native.programs:
        if root_path(program) not in p.entries:
            p.warnings.append(f"{program}: the run executed it; the image does not contain "
                              "it (only Python and its libraries ship)")
