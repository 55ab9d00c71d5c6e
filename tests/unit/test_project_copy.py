"""What of the project goes into the image: .dockerignore with Docker's semantics, a deny
list that applies without one, --include, symlinks kept as symlinks and refused when they
leave the project. Real files, real symlinks, a real .dockerignore; build's copy and the
.dockerignore block generate writes agree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from docker.utils.build import exclude_paths

from pyfarm_docker import cli
from pyfarm_docker.driver import projectfiles
from pyfarm_docker.driver.staging import MARKER, copy_project
from pyfarm_docker.errors import UsageError

KEY = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n" \
      b"-----END OPENSSH PRIVATE KEY-----\n"
APP_FILES = ["app.py", "README.md", "pkg/__init__.py", "pkg/core.py", "data/config.json",
             "keep.log", "build/keep.txt", "notes/environment.py"]
# path -> why it stays out (directories count every file below them)
DENIED = {
    ".env": "secret", ".env.production": "secret", "pkg/.env.local": "secret",
    ".ssh/id_rsa": "secret", ".ssh/config": "secret", ".aws/credentials": "secret",
    ".netrc": "secret", ".pypirc": "secret",
    ".git/config": "VCS directory", ".git/HEAD": "VCS directory", ".hg/hgrc": "VCS directory",
    ".svn/entries": "VCS directory",
    "certs/server.pem": "private key", "pkg/deploy_key.txt": "private key",
    "venv/pyvenv.cfg": "virtualenv", "venv/lib/site.py": "virtualenv",
    "__pycache__/app.cpython-311.pyc": "cache", "pkg/__pycache__/core.cpython-311.pyc": "cache",
    "stray.pyc": "cache", ".mypy_cache/x.json": "cache", ".pytest_cache/v": "cache",
    ".ruff_cache/c": "cache", ".tox/log": "cache", ".cache/pip/x": "cache",
    "docs/index.md": ".dockerignore", "debug.log": ".dockerignore",
    "pkg/scratch.tmp": ".dockerignore", "build/out.bin": ".dockerignore",
}
DOCKERIGNORE = "# the user's own rules\ndocs/\n*.log\n!keep.log\n**/*.tmp\nbuild\n!build/keep.txt\n"


def _project(root: Path) -> Path:
    root.mkdir()
    for rel in APP_FILES + list(DENIED):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(KEY if DENIED.get(rel) == "private key" else f"{rel}\n".encode())
    (root / "app.py").write_text("print('hi')\n")
    (root / ".dockerignore").write_text(DOCKERIGNORE)
    os.symlink("app.py", root / "main.py")  # inside: kept as a link
    os.symlink("pkg", root / "pkg_link")  # a directory inside: kept as a link, not followed
    os.symlink("loop", root / "loop")  # a loop: a link like any other
    os.symlink(".env", root / "settings.env.link")  # to a denied file: the link, not .env
    return root


def _tree(root: Path) -> dict[str, str]:
    """Every file and symlink below ``root``: its content, or '-> target' for a link."""
    tree = {}
    for top, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            path = Path(top, name)
            rel = path.relative_to(root).as_posix()
            tree[rel] = f"-> {os.readlink(path)}" if path.is_symlink() else path.read_text()
    return tree


LINKS = {"main.py": "-> app.py", "pkg_link": "-> pkg", "loop": "-> loop",
         "settings.env.link": "-> .env"}


def test_the_copy_leaves_out_secrets_caches_and_ignored_files(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    context = tmp_path / "context"
    selection = copy_project(project, context)
    copied = _tree(context)
    assert set(copied) == set(APP_FILES) | set(LINKS)
    assert {k: v for k, v in copied.items() if v.startswith("->")} == LINKS
    assert copied["app.py"] == "print('hi')\n"
    assert selection.counts() == {
        "secret": 8, "private key": 2, "VCS directory": 4, "virtualenv": 2, "cache": 8,
        ".dockerignore": 4}
    assert {item.path for item in selection.left_out if item.reason == "VCS directory"} == {
        ".git/", ".hg/", ".svn/"}
    summary = selection.summary()
    assert summary.startswith(f"{len(APP_FILES) + len(LINKS)} files of the project go into "
                              "the image, 28 stay out: 8 secret (")
    assert "2 private key (certs/server.pem, pkg/deploy_key.txt)" in summary
    assert summary.endswith("--include PATH brings one back")


def test_include_brings_paths_back(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    os.symlink("/etc/hostname", project / "host_link")
    include = (".env.production", "venv/lib/site.py", ".git", "docs/index.md", "host_link")
    selection = copy_project(project, tmp_path / "context", include)
    copied = _tree(tmp_path / "context")
    assert set(copied) == set(APP_FILES) | set(LINKS) | {
        ".env.production", "venv/lib/site.py", ".git/config", ".git/HEAD", "docs/index.md",
        "host_link"}
    assert copied["host_link"] == "-> /etc/hostname"  # kept as the link it is
    assert "venv/pyvenv.cfg" not in copied
    assert selection.counts()["secret"] == 7


@pytest.mark.parametrize("target", ["/etc/passwd", "../../outside.txt", "../pkg/../../outside.txt"])
def test_a_symlink_out_of_the_project_is_an_error(tmp_path: Path, target: str) -> None:
    project = _project(tmp_path / "project")
    (tmp_path / "outside.txt").write_text("not the app's")
    os.symlink(target, project / "pkg" / "escape")
    with pytest.raises(UsageError) as caught:
        copy_project(project, tmp_path / "context")
    assert caught.value.message == (f"symlink pkg/escape points outside the project "
                                    f"(-> {target})")
    assert "--include pkg/escape" in caught.value.hint
    copy_project(project, tmp_path / "context2", ("pkg/escape",))
    assert os.readlink(tmp_path / "context2" / "pkg" / "escape") == target


def test_an_ignored_or_denied_symlink_out_of_the_project_is_just_left_out(
        tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    os.symlink("/etc/passwd", project / "docs" / "passwd")  # below an ignored directory
    os.symlink("/root/.ssh", project / ".ssh" / "real")  # below a denied one
    copy_project(project, tmp_path / "context")
    assert set(_tree(tmp_path / "context")) == set(APP_FILES) | set(LINKS)


def test_include_of_a_missing_path_is_an_error(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    with pytest.raises(UsageError, match=r"include 'nope\.txt' matches nothing"):
        copy_project(project, tmp_path / "context", ("nope.txt",))


def test_the_build_leaves_out_the_projects_own_helpers(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    for helpers in (".pyfarm", "ci/pyfarm"):  # the default, and one another -o wrote
        (project / helpers / "tool").mkdir(parents=True)
        (project / helpers / MARKER).write_text("")
        (project / helpers / "tool" / "old.whl").write_text("")
    copy_project(project, tmp_path / "context")
    assert set(_tree(tmp_path / "context")) == set(APP_FILES) | set(LINKS)


def _generate(project: Path, *flags: str) -> int:
    return cli.main(["generate", str(project), "--python", "3.11", *flags])


def test_the_dockerignore_block_keeps_out_what_build_leaves_out(tmp_path: Path) -> None:
    """Docker's matcher (the docker SDK's), over the user's .dockerignore plus the block
    generate writes, leaves in exactly what build copies, plus the helpers and the
    .dockerignore itself, which Docker always sends."""
    project = _project(tmp_path / "project")
    selection = projectfiles.select(project, (".env.production",))
    block = projectfiles.dockerignore_block(selection, (".pyfarm", ".env.production"))
    text = projectfiles.with_block(DOCKERIGNORE, block)
    assert text.startswith(DOCKERIGNORE + "\n" + projectfiles.BLOCK_START + "\n**/.env*\n")
    assert text.endswith("/certs/server.pem\n/pkg/deploy_key.txt\n/venv\n!/.pyfarm\n"
                         "!/.env.production\n" + projectfiles.BLOCK_END + "\n")
    assert projectfiles.with_block(text, block) == text  # rewritten in place, once
    (project / ".dockerignore").write_text(text)
    (project / ".pyfarm").mkdir()
    (project / ".pyfarm" / "Dockerfile").write_text("FROM scratch\n")

    patterns = [ln.strip() for ln in text.splitlines() if ln.strip() and ln[0] != "#"]
    sent = {p for p in exclude_paths(str(project), patterns, ".pyfarm/Dockerfile")
            if not (project / p).is_dir() or (project / p).is_symlink()}
    copy_project(project, tmp_path / "context", (".env.production",))
    copied = set(_tree(tmp_path / "context"))
    assert ".env.production" in copied
    assert sent - {".dockerignore", ".pyfarm/Dockerfile"} == copied
    # The block is the tool's: build reads only the user's lines from the file.
    assert projectfiles.read_dockerignore(project) == [
        line for line in DOCKERIGNORE.splitlines() if not line.startswith("#")]


def test_generate_refuses_a_symlink_out_of_the_project_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path / "project")
    os.symlink("/etc/passwd", project / "passwd")
    assert _generate(project) == UsageError.exit_code
    assert "ERROR: symlink passwd points outside the project (-> /etc/passwd)" in (
        capsys.readouterr().err)
    assert not (project / ".pyfarm").exists()
    assert (project / ".dockerignore").read_text() == DOCKERIGNORE


def test_include_adds_up_from_pyproject_and_flags(tmp_path: Path) -> None:
    from pyfarm_docker.driver.settings import Flags, resolve
    project = _project(tmp_path / "project")
    (project / "pyproject.toml").write_text('[tool.pyfarm-docker]\ninclude = [".netrc"]\n')
    settings = resolve(Flags(path=project / "app.py", include=(".pypirc", f"{project}/.env")))
    assert settings.include == (".netrc", ".pypirc", ".env")
    with pytest.raises(UsageError, match="is not a path inside the project"):
        resolve(Flags(path=project / "app.py", include=("../x",)))
    with pytest.raises(UsageError, match="is outside the project"):
        resolve(Flags(path=project / "app.py", include=("/etc/passwd",)))
