# pyfarm-docker: `make demo` and `make test` work on a fresh Debian machine as root.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
BASE   ?= local/python:3.11-bookworm
BASES  := local/python:3.11-bookworm local/python:3.12-slim local/python:3.13-trixie
CORPUS ?= ../shared/corpus

.PHONY: venv docker demo test lint unit host docker-tests corpus bench example clean

venv: $(BIN)/.installed
$(BIN)/.installed: pyproject.toml hatch_build.py csrc/fstrace.c
	scripts/build-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# Docker daemon (installed and started when missing), the local base images, podman
# with the same images in its storage, and two local registries (open :5000, auth :5001).
docker:
	scripts/docker-up
	scripts/registry-up
	scripts/make-base-image $(BASES)
	scripts/podman-up $(BASES)

demo: venv docker
	$(BIN)/pyfarm-docker build examples/hello/app.py -t pyfarm-demo --base $(BASE) --verify
	@docker image ls --format 'table {{.Repository}}:{{.Tag}}\t{{.Size}}' pyfarm-demo
	docker run --rm --network none pyfarm-demo

lint: venv
	$(BIN)/ruff check pyfarm_docker tests bench scripts/check-corpus hatch_build.py
	$(BIN)/mypy
	$(BIN)/mypy scripts/check-corpus

# The unit tier runs with no network, Docker, pyenv Python or compiler (see the script).
unit: venv
	tests/run-unit-isolated

host: venv
	$(BIN)/pytest tests/host

docker-tests: venv docker
	$(BIN)/pytest -m docker tests/docker

corpus: venv docker
	$(BIN)/python scripts/check-corpus $(CORPUS)/*

test: venv docker lint
	scripts/test-deps
	tests/run-unit-isolated -q
	$(BIN)/pytest tests/host tests/docker
	$(BIN)/python scripts/check-corpus $(CORPUS)/*

bench: venv docker
	$(BIN)/python bench/run.py

# Dockerfile.example is generated from examples/hello; a test fails when it is stale.
example: venv
	$(BIN)/pyfarm-docker generate examples/hello/app.py --dockerfile-only > Dockerfile.example

clean:
	rm -rf $(VENV) .cache
