"""The farm's site hook finds the untraced stdlib modules in a zip that is not on sys.path,
on every CPython 3.8-3.13 that pyenv has here (zipimport finds specs only from 3.10)."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from pyfarm_docker.builder.plan import UntracedStdlib, site_hook
from tests.support.paths import PYENV_PYTHONS as PYTHONS

pytestmark = pytest.mark.host

MODULES = {"untraced_pkg/__init__.py": "VALUE = 'package'\n",
           "untraced_pkg/sub.py": "def fail():\n    raise ValueError('from the zip')\n",
           "untraced_mod.py": "VALUE = 'module'\n"}
CODE = """import pkgutil, sys, zipimport
print(sorted(zipimport._zip_directory_cache))
import untraced_pkg.sub, untraced_mod
print(untraced_pkg.VALUE, untraced_mod.VALUE, untraced_pkg.sub.__file__)
print(sorted(name for _, name, _ in pkgutil.iter_modules() if name.startswith("untraced")))
untraced_pkg.sub.fail()
"""


@pytest.mark.parametrize("python", PYTHONS, ids=[Path(p).name for p in PYTHONS])
def test_untraced_modules_import_from_the_zip_only_when_imported(python: str,
                                                               tmp_path: Path) -> None:
    archive, entry, hook = tmp_path / "untraced.zip", tmp_path / "python3X.zip", tmp_path / "hook"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, text in MODULES.items():
            zipped.writestr(name, text)
    hook.mkdir()
    names = {"untraced_pkg": True, "untraced_mod": False}
    (hook / "sitecustomize.py").write_text(
        site_hook([], None, UntracedStdlib(str(archive), str(entry), names)))
    # The entry is on sys.path, as CPython's stdlib zip is, and does not exist.
    env = dict(os.environ, PYTHONPATH=f"{hook}:{entry}")
    done = subprocess.run([python, "-c", CODE], capture_output=True, text=True, env=env)
    lines = done.stdout.splitlines()
    assert lines[0] == "[]", done.stderr  # no zip read at start-up
    assert lines[1] == f"package module {archive}/untraced_pkg/sub.py"
    assert lines[2] == "['untraced_mod', 'untraced_pkg']"
    assert done.returncode == 1
    assert "raise ValueError('from the zip')" in done.stderr  # the source line, from the zip


def test_the_hook_names_the_image_paths() -> None:
    hook = site_hook([PurePosixPath("app/site-packages/p1")], None,
                     UntracedStdlib("/app/python/lib/python311-untraced.zip",
                                    "/app/python/lib/python311.zip", {"wave": False}))
    compile(hook, "sitecustomize.py", "exec")
    assert "zipimporter('/app/python/lib/python311-untraced.zip')" in hook
    assert "sys.path_importer_cache['/app/python/lib/python311.zip']" in hook
    # The finder is in place before the site dirs' .pth files run.
    assert hook.index("sys.path_hooks.insert") < hook.index("site.addsitedir('/app/site")


def test_the_hook_drops_the_user_site_only_when_the_builder_had_none() -> None:
    assert "site.ENABLE_USER_SITE = False" in site_hook([], None, None, user_site=False)
    assert "ENABLE_USER_SITE" not in site_hook([], None, None, user_site=True)
