"""build's --label and --build-arg reach the Dockerfile checked: a label value is read
back by Docker as given (the same quoting as the tool's own labels), keys and argument
names are plain, and the tool's own are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from pyfarm_docker import cli
from pyfarm_docker.driver.dockerfile import DockerfileOptions, label_value, render
from pyfarm_docker.driver.settings import Settings
from pyfarm_docker.errors import UsageError

HOSTILE = 'x" \\\nLABEL evil=1 $HOME ${PATH} `id`'


def _options(tmp_path: Path, **changes: object) -> DockerfileOptions:
    return DockerfileOptions(Settings(project=tmp_path), **changes)  # type: ignore[arg-type]


def test_labels_and_build_args_are_rendered(tmp_path: Path) -> None:
    value = 'a "quoted" $HOME \\ value'
    text = render(_options(tmp_path, labels=(("org.example.note", value),
                                             ("org.opencontainers.image.title", "mine")),
                           build_args=("PIP_INDEX_URL", "HTTPS_PROXY")))
    parser = DockerfileParser(path=str(tmp_path / "Dockerfile"))
    parser.content = text
    instructions = [i for i in parser.structure if i["instruction"] != "COMMENT"]
    # Declared in the builder stage, right after its FROM, so pip's RUN steps see them.
    starts = [(i["instruction"], i["value"]) for i in instructions][1:4]
    assert starts == [("FROM", "${BASE} AS builder"), ("ARG", "PIP_INDEX_URL"),
                      ("ARG", "HTTPS_PROXY")]
    labels = [i["value"] for i in instructions if i["instruction"] == "LABEL"]
    assert len(labels) == 1
    assert f"org.example.note={label_value(value)}" in labels[0]
    assert 'org.opencontainers.image.title="mine"' in labels[0]  # the user's wins
    assert labels[0].count("org.opencontainers.image.title") == 1


@pytest.mark.parametrize(("labels", "build_args", "message"), [
    ((("io.pyfarm-docker.spec", "x"),), (), "pyfarm-docker's own"),
    ((("bad key", "x"),), (), "not a plain name"),
    ((("k", HOSTILE),), (), "control character"),
    ((), ("BASE",), "use --base"),
    ((), ("SOURCE_DATE_EPOCH",), "SOURCE_DATE_EPOCH variable"),
    ((), ("A-B",), "not a variable name"),
    ((), ("X\nRUN id",), "not a variable name"),
])
def test_unsafe_labels_and_build_args_are_refused(
        tmp_path: Path, labels: tuple[tuple[str, str], ...], build_args: tuple[str, ...],
        message: str) -> None:
    with pytest.raises(UsageError) as refused:
        _options(tmp_path, labels=labels, build_args=build_args)
    assert message in refused.value.message + refused.value.hint


def test_build_flags_must_be_key_value(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "app.py").write_text("print(1)\n")
    app = str(tmp_path / "app.py")
    assert cli.main(["build", app, "-t", "a:1", "--label", "novalue"]) == UsageError.exit_code
    assert "--label 'novalue' is not KEY=VALUE" in capsys.readouterr().err
    monkeypatch.delenv("PYFARM_UNSET", raising=False)
    assert cli.main(["build", app, "-t", "a:1", "--build-arg", "PYFARM_UNSET"]) == 2
    assert "is not KEY=VALUE" in capsys.readouterr().err
    assert cli.main(["build", app, "-t", "a:1", "--syntax", "kaniko"]) == 2
    assert "unknown --syntax 'kaniko'" in capsys.readouterr().err
    assert cli.main(["build", app, "-t", "Bad/Name", "--push"]) == 2
    capsys.readouterr()
