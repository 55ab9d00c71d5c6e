"""Real projects without the index: lock files read into pinned, hashed requirements, the
entry a project implies, console scripts resolved from wheel metadata, the Dockerfile that
installs the project's own wheel, and the free-threaded (``t``) ABI's wheel tags."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from pyfarm_docker.documents.spec import AppSpec
from pyfarm_docker.driver import locks, projectinstall, wheelhouse
from pyfarm_docker.driver.dockerfile import DockerfileOptions, render
from pyfarm_docker.driver.projectentry import default_entry
from pyfarm_docker.driver.settings import Flags, resolve
from pyfarm_docker.driver.target import Target
from pyfarm_docker.errors import UsageError
from tests.support.poetrylock import CLICK, COLORAMA, POETRY_LOCK

POETRY_PYPROJECT = """
[tool.poetry]
name = "poapp"
version = "1.2.0"

[tool.poetry.dependencies]
python = ">=3.9"
click = "^8.1"

[tool.poetry.group.dev.dependencies]
six = "*"
"""

PDM_LOCK = f"""
[metadata]
groups = ["default", "dev"]
lock_version = "4.5.0"

[[package]]
name = "click"
version = "8.1.7"
requires_python = ">=3.7"
groups = ["default"]
dependencies = ["colorama; platform_system == \\"Windows\\""]
files = [
    {{file = "click-8.1.7-py3-none-any.whl", hash = "sha256:{CLICK}"}},
]

[[package]]
name = "colorama"
version = "0.4.6"
groups = ["default"]
marker = "platform_system == \\"Windows\\""
files = [
    {{file = "colorama-0.4.6-py2.py3-none-any.whl", hash = "sha256:{COLORAMA}"}},
]

[[package]]
name = "six"
version = "1.17.0"
groups = ["dev"]
files = []
"""

PYLOCK = f"""
lock-version = "1.0"
created-by = "hand"
requires-python = ">=3.9"

[[packages]]
name = "click"
version = "8.1.7"
[[packages.wheels]]
name = "click-8.1.7-py3-none-any.whl"
url = "https://example.invalid/c.whl"
hashes = {{sha256 = "{CLICK}"}}

[[packages]]
name = "colorama"
version = "0.4.6"
marker = "platform_system == 'Windows'"
[[packages.wheels]]
name = "colorama-0.4.6-py2.py3-none-any.whl"
url = "https://example.invalid/co.whl"
hashes = {{sha256 = "{COLORAMA}"}}

[[packages]]
name = "pytest"
version = "8.0.0"
marker = "'test' in dependency_groups"
[[packages.wheels]]
name = "pytest-8.0.0-py3-none-any.whl"
url = "https://example.invalid/p.whl"
hashes = {{sha256 = "{"2" * 64}"}}
"""


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_poetry_lock_main_group_with_hashes_and_markers(tmp_path: Path) -> None:
    project = _project(tmp_path, {"pyproject.toml": POETRY_PYPROJECT,
                                  "poetry.lock": POETRY_LOCK})
    assert locks.detect(project) == project / "poetry.lock"
    text = locks.read(project / "poetry.lock").text
    assert text.splitlines() == [
        f"click==8.1.7 --hash=sha256:{CLICK}",
        f'colorama==0.4.6 ; (platform_system == "Windows") --hash=sha256:{COLORAMA}',
    ]


def test_poetry_lock_2_0_walks_from_pyproject(tmp_path: Path) -> None:
    """Lock format 2.0 has no groups: the graph from the main dependencies decides."""
    old = POETRY_LOCK.replace('groups = ["main"]\n', "").replace('groups = ["dev"]\n', "")
    text = locks.poetry_requirements(locks.load_toml(_project(
        tmp_path, {"poetry.lock": old}) / "poetry.lock"),
        {"tool": {"poetry": {"dependencies": {"python": ">=3.9", "click": "^8.1"}}}}, "x")
    assert [line.split("==")[0] for line in text.splitlines()] == ["click", "colorama"]


def test_pdm_lock_default_group(tmp_path: Path) -> None:
    project = _project(tmp_path, {"pdm.lock": PDM_LOCK})
    text = locks.read(project / "pdm.lock").text
    assert text.splitlines() == [
        f"click==8.1.7 --hash=sha256:{CLICK}",
        f'colorama==0.4.6 ; platform_system == "Windows" --hash=sha256:{COLORAMA}',
    ]


def test_pylock_leaves_out_dependency_groups(tmp_path: Path) -> None:
    project = _project(tmp_path, {"pylock.toml": PYLOCK})
    assert locks.read(locks.detect(project) or project).names == ["click", "colorama"]


def test_lock_without_version_is_one_line_error(tmp_path: Path) -> None:
    project = _project(tmp_path, {"pylock.toml": '[[packages]]\nname = "x"\n'})
    with pytest.raises(UsageError, match="has no version"):
        locks.read(project / "pylock.toml")


@pytest.mark.skipif(not (Path(sys.executable).parent / "uv").is_file(),
                    reason="uv is installed with the test extras")
def test_uv_lock_exported_offline(tmp_path: Path) -> None:
    """``uv export --frozen`` reads only the lock: no index needed (the unit tier has none)."""
    uv_lock = f"""version = 1
revision = 2
requires-python = ">=3.9"

[[package]]
name = "click"
version = "8.1.7"
source = {{ registry = "https://pypi.org/simple" }}

[[package.wheels]]
url = "https://files.pythonhosted.org/click-8.1.7-py3-none-any.whl"
hash = "sha256:{CLICK}"

[[package]]
name = "uvapp"
version = "0.1.0"
source = {{ editable = "." }}
dependencies = [{{ name = "click" }}]

[package.metadata]
requires-dist = [{{ name = "click", specifier = ">=8" }}]
"""
    project = _project(tmp_path, {
        "pyproject.toml": '[project]\nname = "uvapp"\nversion = "0.1.0"\n'
                          'requires-python = ">=3.9"\ndependencies = ["click>=8"]\n',
        "uv.lock": uv_lock})
    locked = locks.read(project / "uv.lock")
    assert locked.names == ["click"]
    assert f"--hash=sha256:{CLICK}" in locked.text


def _wheel(path: Path, name: str, version: str, files: dict[str, str]) -> Path:
    wheel = path / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        info = f"{name}-{version}.dist-info"
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\n"
                    f"Version: {version}\nRequires-Dist: click>=8\n"
                    "Requires-Dist: pytest; extra == 'test'\n")
        for member, text in files.items():
            zf.writestr(f"{info}/{member}", text)
    return wheel


def test_console_script_resolved_from_wheels(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "greeter", "1.0", {"entry_points.txt": (
        "[console_scripts]\ngreet = greeter.cli:main\nserve = greeter.app:App.run [web]\n"
        "[gui_scripts]\nwin = greeter:gui\n")})
    assert wheelhouse.requires_dist(wheel) == ["click>=8", "pytest; extra == 'test'"]
    spec = AppSpec(entry=("--script", "serve"), args=("a",))
    done = projectinstall.resolve_script(spec, [wheel])
    assert done.entry == ("-c", "import sys; sys.argv[0] = 'serve'; from greeter.app import "
                          "App; sys.exit(App.run())")
    with pytest.raises(UsageError, match=r"console script .win."):
        projectinstall.resolve_script(replace(spec, entry=("--script", "win")), [wheel])
    # Without all the app's wheels at hand: found by importlib.metadata when it starts.
    for wheels in ([], [wheel]):
        lookup = projectinstall.resolve_script(replace(spec, entry=("--script", "own")), wheels,
                                               strict=False)
        assert lookup.entry[0] == "-c" and "console_scripts" in lookup.entry[1]


def test_console_script_code_runs(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("import sys\ndef main():\n    print(sys.argv)\n"
                                     "    return 3\n")
    code = projectinstall.call_entry("tool", "mod:main")
    proc = subprocess.run([sys.executable, *code, "x"], cwd=tmp_path, capture_output=True,
                          text=True, check=False)
    assert (proc.returncode, proc.stdout) == (3, "['tool', 'x']\n")


def test_module_check_accepts_src_layout_and_installed(tmp_path: Path) -> None:
    project = _project(tmp_path / "a", {"src/pkg/__init__.py": "", "src/pkg/__main__.py": ""})
    assert AppSpec(entry=("-m", "pkg")).check_files(project).module == "pkg"
    with pytest.raises(UsageError, match="installs nothing"):
        AppSpec(entry=("-m", "gunicorn")).check_files(project)
    (project / "requirements.txt").write_text("gunicorn\n")
    assert AppSpec(entry=("-m", "gunicorn")).check_files(project).module == "gunicorn"
    with pytest.raises(UsageError, match="unknown option"):
        AppSpec(entry=("-X", "dev"))


def test_default_entry_of_projects(tmp_path: Path) -> None:
    scripts = _project(tmp_path / "s", {"pyproject.toml": '[project]\nname = "s"\n'
                                        '[project.scripts]\ns-run = "s:main"\n'})
    assert default_entry(scripts) == ["--script", "s-run"]
    poetry = _project(tmp_path / "p", {"pyproject.toml": '[tool.poetry.scripts]\np = "p:m"\n'})
    assert default_entry(poetry) == ["--script", "p"]
    src = _project(tmp_path / "m", {"pyproject.toml": '[project]\nname = "m"\n',
                                    "src/mpkg/__init__.py": "", "src/mpkg/__main__.py": ""})
    assert default_entry(src) == ["-m", "mpkg"]
    assert resolve(Flags(path=src)).spec.entry == ("-m", "mpkg")
    assert resolve(Flags(path=scripts, script="other")).spec.script == "other"


def test_dockerfile_installs_pins_then_project_wheel(tmp_path: Path) -> None:
    project = _project(tmp_path / "proj", {"pyproject.toml": '[project]\nname = "x"\n',
                                           "src/x/__init__.py": "", "src/x/__main__.py": ""})
    wheel = _wheel(tmp_path, "x", "1.0", {"entry_points.txt": ""})
    app = wheelhouse.AppInstall([tmp_path / "click-8.1.7-py3-none-any.whl"],
                                "click==8.1.7\n", wheel, "uv.lock")
    options = projectinstall.with_app(DockerfileOptions(resolve(Flags(path=project))), app)
    text = render(options)
    assert "COPY .pyfarm/requirements.txt /pyfarm/requirements.txt" in text
    assert "--find-links /pyfarm/wheelhouse -r /pyfarm/requirements.txt" in text
    assert "/src/.pyfarm/project/x-1.0-py3-none-any.whl" in text
    assert "pip install --no-index --find-links /pyfarm/wheelhouse /src\n" not in text
    assert wheelhouse.pins_for([tmp_path / "Foo_Bar-2.0-cp313-cp313t-linux_x86_64.whl"]) \
        == "Foo_Bar==2.0\n"


def test_free_threaded_target_tags() -> None:
    """Wheel names as PyPI serves them for CPython 3.13t (numpy 2.1.0, real file names)."""
    t = Target("3.13", (2, 36), abiflags="t")
    assert wheelhouse.abi_tag(t) == "cp313t"
    assert wheelhouse.abi_tag(Target("3.13", (2, 36))) == "cp313"
    fits = wheelhouse._wheel_fits
    ft = Path("numpy-2.1.0-cp313-cp313t-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    gil = Path("numpy-2.1.0-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    assert fits(ft, t) and not fits(gil, t)
    assert fits(gil, Target("3.13", (2, 36))) and not fits(ft, Target("3.13", (2, 36)))
    assert fits(Path("six-1.17.0-py2.py3-none-any.whl"), t)
    assert not fits(Path("x-1-cp313-cp313t-manylinux_2_39_x86_64.whl"), t)
    abi3 = Path("cryptography-44.0.0-cp39-abi3-manylinux_2_34_x86_64.whl")
    assert fits(abi3, Target("3.13", (2, 36)))
    assert not fits(abi3, t)
    assert "cp313t-cp313t" in wheelhouse.target_tags(t)


def test_free_threaded_download_asks_for_the_t_abi(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        seen.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "ERROR: No matching distribution found "
                                           "for numpy==1.0\n")

    monkeypatch.setattr(wheelhouse, "_run_pip", fake)
    with pytest.raises(UsageError) as err:
        wheelhouse.download(["numpy==1.0"], tmp_path, Target("3.13", (2, 36), abiflags="t"))
    assert seen[0][seen[0].index("--abi") + 1] == "cp313t"
    assert "numpy==1.0: no wheel for CPython 3.13t" in err.value.message
    assert "\n" not in err.value.message


def test_free_threaded_interpreter_directories() -> None:
    """The description of a free-threaded CPython 3.13 (``--disable-gil``, installed under
    /usr/local, as its sysconfig lays it out): the stdlib lives in python3.13t, and the
    target asks for cp313t wheels."""
    from pyfarm_docker.documents._read import Fields
    from pyfarm_docker.documents.interpreter import Interpreter

    described = {
        "executable": "/usr/local/bin/python3.13t", "executable_as_called": "python3.13t",
        "version": "3.13.0 experimental free-threading build", "version_info": [3, 13, 0],
        "implementation": "cpython", "abiflags": "t", "abi_thread": "t",
        "prefix": "/usr/local", "exec_prefix": "/usr/local", "base_prefix": "/usr/local",
        "base_exec_prefix": "/usr/local", "platlibdir": "lib",
        "stdlib": "/usr/local/lib/python3.13t", "platstdlib": "/usr/local/lib/python3.13t",
        "lib_dynload": "/usr/local/lib/python3.13t/lib-dynload",
        "site_packages": ["/usr/local/lib/python3.13t/site-packages"],
        "in_virtualenv": False, "shared": True, "soabi": "cpython-313t-x86_64-linux-gnu",
    }
    interp = Interpreter.from_json(Fields(described, "python3.13t"))
    assert interp.version_dir == "python3.13t"
    assert interp.stdlib.endswith("/" + interp.version_dir)
    target = Target("3.13", (2, 36), abiflags=interp.abiflags)
    assert target.free_threaded and target.describe().startswith("CPython 3.13t")
    assert wheelhouse.abi_tag(target) == "cp313t"


@pytest.mark.parametrize("syntax", ["portable", "buildkit"])
@pytest.mark.parametrize("pins", ["click==8.1.7\n", ""])
def test_hadolint_accepts_the_project_wheel_variants(tmp_path: Path, syntax: str,
                                                     pins: str) -> None:
    project = _project(tmp_path / "proj", {"pyproject.toml": '[project]\nname = "x"\n',
                                           "src/x/__init__.py": "", "src/x/__main__.py": ""})
    wheel = _wheel(tmp_path, "x", "1.0", {"entry_points.txt": ""})
    app = wheelhouse.AppInstall([], pins, wheel, "uv.lock")
    options = projectinstall.with_app(
        DockerfileOptions(resolve(Flags(path=project)), syntax=syntax), app)
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(render(options))
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run([str(hadolint), "--no-color", str(dockerfile)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ("-r /pyfarm/requirements.txt" in dockerfile.read_text()) == bool(pins)


def test_uv_index_settings_reach_the_host_download_only(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project(tmp_path, {
        "pyproject.toml": '[project]\nname = "u"\n\n[[tool.uv.index]]\nname = "corp"\n'
                          'url = "https://corp.example/simple"\n\n[[tool.uv.index]]\n'
                          'name = "pinned"\nurl = "https://pinned.example/simple"\n'
                          'explicit = true\n',
        "uv.lock": ""})
    monkeypatch.setenv("UV_DEFAULT_INDEX", "https://user:token@main.example/simple")
    monkeypatch.delenv("UV_INDEX", raising=False)
    monkeypatch.delenv("UV_EXTRA_INDEX_URL", raising=False)
    index = wheelhouse._index_from_uv(project, wheelhouse.NO_INDEX)
    assert index.pip_args() == ["--index-url", "https://user:token@main.example/simple",
                                "--extra-index-url", "https://corp.example/simple"]
    given = wheelhouse.IndexOptions("https://flag.example/simple")
    assert wheelhouse._index_from_uv(project, given) is given  # flags win
