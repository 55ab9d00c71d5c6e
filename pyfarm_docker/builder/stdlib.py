"""Which parts of the standard library a farm ships.

By default every stdlib module ships, so anything the app may import untraced still
imports in the image, except the modules below: GUI and IDE code that cannot run in a
container, the test suite and its C helpers, pip's bootstrap wheels and the 2to3 tool.
``nis`` too: a dead battery (PEP 594, gone in 3.13) whose native closure is Kerberos.
A module on this list still ships when the traced run imported it.

Not on it, though Debian's build links it to Berkeley DB (1.9 MB): ``_dbm``. It is no dead
battery (Debian's 3.13 and 3.14 still build it), and without it ``dbm`` changes silently
where the run did not use it: before 3.13 a new database is ``dbm.dumb`` files instead of
Berkeley DB, and opening an existing Berkeley DB one fails with "db file doesn't exist".
"""

from __future__ import annotations

from pathlib import PurePosixPath

EXCLUDED = ("tkinter", "_tkinter", "turtle", "turtledemo", "idlelib", "ensurepip", "test",
            "lib2to3", "nis")
# C extensions CPython builds only to test itself.
_TEST_PREFIXES = ("_test", "_ctypes_test", "_xxtestfuzz", "xxlimited", "xxsubtype")
# Never shipped: site directories, caches, and the test suites inside stdlib packages
# (ctypes/test, unittest/test, idlelib/idle_test, ...).
SKIPPED_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__", "test", "tests",
                          "idle_test"})


def top_level(relative: PurePosixPath) -> str:
    """The importable top-level name a stdlib path belongs to (``json/x.py`` -> json,
    ``_ssl.cpython-311-x86_64-linux-gnu.so`` -> _ssl)."""
    return relative.parts[0].split(".")[0]


def excluded(name: str, imported: frozenset[str]) -> bool:
    """Left out of the farm, unless the run imported it."""
    if name in imported:
        return False
    return name in EXCLUDED or name.startswith(_TEST_PREFIXES)
