"""The interpreter description: where the traced Python keeps its pieces (written by
``builder/shim/interp_info.py`` inside the app's interpreter, part of trace.json)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._read import Fields


@dataclass(frozen=True)
class Interpreter:
    executable: str  # real path, symlinks resolved
    executable_as_called: str
    version: str
    version_info: tuple[int, ...]
    implementation: str
    abiflags: str
    abi_thread: str  # "t" for a free-threaded build
    prefix: str
    exec_prefix: str
    base_prefix: str
    base_exec_prefix: str
    platlibdir: str
    stdlib: str
    platstdlib: str
    lib_dynload: str
    site_packages: tuple[str, ...]
    in_virtualenv: bool
    shared: bool
    ldlibrary: str
    libdir: str
    soabi: str
    ssl_cafile: str
    ssl_capath: str
    ssl_cafile_resolved: str
    tzpath: tuple[str, ...]
    user_site: bool = True  # site.ENABLE_USER_SITE as the app's interpreter starts

    @property
    def version_dir(self) -> str:
        """``pythonX.Y`` (``pythonX.Yt`` when free-threaded): the stdlib's directory name."""
        major, minor = self.version_info[:2]
        return f"python{major}.{minor}{self.abi_thread}"

    @classmethod
    def from_json(cls, f: Fields) -> Interpreter:
        return cls(
            executable=f.text("executable"), executable_as_called=f.text("executable_as_called"),
            version=f.text("version"), version_info=f.integers("version_info"),
            implementation=f.text("implementation"), abiflags=f.text("abiflags", ""),
            abi_thread=f.text("abi_thread", ""), prefix=f.text("prefix"),
            exec_prefix=f.text("exec_prefix"), base_prefix=f.text("base_prefix"),
            base_exec_prefix=f.text("base_exec_prefix"), platlibdir=f.text("platlibdir"),
            stdlib=f.text("stdlib"), platstdlib=f.text("platstdlib"),
            lib_dynload=f.text("lib_dynload"), site_packages=f.texts("site_packages"),
            in_virtualenv=f.flag("in_virtualenv"), shared=f.flag("shared"),
            ldlibrary=f.text("ldlibrary", ""), libdir=f.text("libdir", ""),
            soabi=f.text("soabi", ""), ssl_cafile=f.text("ssl_cafile", ""),
            ssl_capath=f.text("ssl_capath", ""),
            ssl_cafile_resolved=f.text("ssl_cafile_resolved", ""), tzpath=f.texts("tzpath", ()),
            user_site=f.flag("user_site", True),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.__dict__)
        for key in ("version_info", "site_packages", "tzpath"):
            out[key] = list(out[key])
        return out
