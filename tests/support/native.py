"""Build small real native objects with gcc for the tests: libraries and extensions."""

from __future__ import annotations

import subprocess
import sysconfig
from pathlib import Path

LIB_C = "int dup_value(void) {{ return {value}; }}\n"
EXT_C = """
#include <Python.h>
int dup_value(void);
static PyObject *value(PyObject *self, PyObject *args) {{ return PyLong_FromLong(dup_value()); }}
static PyMethodDef methods[] = {{{{"value", value, METH_NOARGS, ""}}, {{NULL, NULL, 0, NULL}}}};
static struct PyModuleDef module = {{PyModuleDef_HEAD_INIT, "_ext", "", -1, methods}};
PyMODINIT_FUNC PyInit__ext(void) {{ return PyModule_Create(&module); }}
"""


def shared_library(dest: Path, soname: str, value: int) -> Path:
    """A library exporting dup_value() that returns ``value``."""
    source = dest.with_suffix(".c")
    source.write_text(LIB_C.format(value=value))
    subprocess.run(["gcc", "-shared", "-fPIC", f"-Wl,-soname,{soname}", "-o", str(dest),
                    str(source)], check=True)
    source.unlink()
    return dest


def extension(dest: Path, lib_dir: Path, lib_name: str, rpath: str, include: str = "") -> Path:
    """A CPython extension ``_ext`` whose value() calls dup_value() from ``lib_name``."""
    source = dest.parent / "_ext.c"
    source.write_text(EXT_C.format())
    include = include or sysconfig.get_paths()["include"]
    subprocess.run(["gcc", "-shared", "-fPIC", f"-I{include}", "-o", str(dest), str(source),
                    str(lib_dir / lib_name), f"-Wl,-rpath,{rpath}"], check=True)
    source.unlink()
    return dest
