"""What is known about a builder base image: the wheels and the farm must fit it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import defaults
from ..errors import UsageError


@dataclass(frozen=True)
class Target:
    """A base image's CPython version (X.Y), ABI flags, glibc and machine."""

    python: str = defaults.PYTHON
    glibc: tuple[int, int] = defaults.GLIBC
    abiflags: str = ""
    machine: str = defaults.MACHINE

    @property
    def free_threaded(self) -> bool:
        return "t" in self.abiflags

    def describe(self) -> str:
        return (f"CPython {self.python}{'t' if self.free_threaded else ''} on {self.machine}, "
                f"glibc {self.glibc[0]}.{self.glibc[1]}")


def parse_glibc(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)\.(\d+)", text.strip())
    if match is None:
        raise UsageError(f"glibc {text!r} is not MAJOR.MINOR", "e.g. --glibc 2.36")
    return int(match.group(1)), int(match.group(2))
