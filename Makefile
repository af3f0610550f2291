# FirecREST testbuild. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TESTBUILD := $(BIN)/testbuild
PYTEST := $(BIN)/pytest
# Every shell script of the project (images' entrypoints, scripts/, CI).
SHELL_SCRIPTS = $(shell grep -rlE '^\#!.*\b(ba)?sh\b' images scripts .ci)
# The login node's command wrapper (Go) and the host's Go that checks it.
GO_WRAPPER := images/cluster/command-wrapper
GO ?= $(shell command -v go || echo /usr/local/go/bin/go)

# Tools the targets need, installed as root on Debian/Ubuntu when missing
# (scripts/ensure-tool: command, packages, why, how to install it elsewhere).
ENSURE_GO = scripts/ensure-tool go golang-go \
	"the login node's command wrapper is Go: its tests and lint need it" \
	"install Go 1.19 or newer (Debian/Ubuntu: 'sudo apt-get install golang-go', or https://go.dev/doc/install)" \
	/usr/local/go/bin/go
ENSURE_SHELLCHECK = scripts/ensure-tool shellcheck shellcheck "make lint checks the shell scripts" \
	"install it (Debian/Ubuntu: 'sudo apt-get install shellcheck', macOS: 'brew install shellcheck')"
ENSURE_CHROMIUM = scripts/ensure-tool chromium "chromium fonts-dejavu-core" \
	"the report page's tests render it headless" \
	"install it (Debian: 'sudo apt-get install chromium', Ubuntu: 'sudo snap install chromium', macOS: 'brew install --cask chromium'), so that 'chromium' is on the PATH"

.DEFAULT_GOAL := help
.PHONY: help venv engine browser up down status test unit integration conformance lint format images bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(BIN)/.installed ## create the virtual environment (.venv) with the harness and test tools

engine: ## make sure a Docker engine answers (as root on Debian/Ubuntu: install and start docker.io)
	@scripts/ensure-engine

up: venv engine ## build what is missing and bring the environment up (testbuild.yaml)
	$(TESTBUILD) up

down: venv engine ## remove every container, network and volume `up` made
	$(TESTBUILD) down

status: venv engine ## show the environment's containers
	$(TESTBUILD) status

test: venv engine browser ## the whole test suite in one pytest session on WORKERS workers: unit and integration tests
	@$(ENSURE_GO)
	$(TESTBUILD) images
	$(PYTEST_WORKERS) -m 'integration or not integration'

unit: venv ## fast tests, no Docker (what a bare `pytest` runs; the command wrapper's need Go)
	@$(ENSURE_GO)
	$(PYTEST)

browser: ## make sure chromium is installed (as root on Debian/Ubuntu: install it) for the report page's tests
	@$(ENSURE_CHROMIUM)

# Integration tests share the machine between this many pytest-xdist workers
# (each environment's tests stay on one worker: tests/conftest.py); 1 runs
# them one after the other. The suite keeps two cores 80-95 % busy: 2 and 3
# took the same time (5 min 04 s and 5 min 01 s, about 505 busy CPU-s, in
# one hour). `make test` runs the unit tests in the same session: they come
# last and fill the time one worker waits for the other to finish.
WORKERS ?= 2
PYTEST_WORKERS = $(PYTEST) -n $(WORKERS) --durations=15

integration: venv engine browser ## tests that bring environments up and down (Docker), and look at the report page (chromium); WORKERS=2
	$(TESTBUILD) images
	$(PYTEST_WORKERS) -m integration

conformance: up ## run the conformance suites against the local stack; report in out/
	$(TESTBUILD) conformance --report out

lint: venv ## ruff (lint, format), mypy, shellcheck, gofmt and go vet
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p firecrest_testbuild
	@$(ENSURE_SHELLCHECK)
	shellcheck $(SHELL_SCRIPTS)
	@$(ENSURE_GO)
	@unformatted=$$("$$(dirname "$(GO)")/gofmt" -l $(GO_WRAPPER)); test -z "$$unformatted" || { echo "gofmt -l: $$unformatted" >&2; exit 1; }
	cd $(GO_WRAPPER) && GOTOOLCHAIN=local GOPROXY=off "$(GO)" vet .

format: venv ## apply ruff's formatting and fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

images: venv engine ## build (or find) every image without starting anything
	$(TESTBUILD) images

bench: venv engine ## measure up/down/cold build/memory and the stack (docs/benchmarks.md)
	$(BIN)/python -m firecrest_testbuild.harness.bench

# The user cache (~/.cache/testbuild: downloads, the compiled MinIO binary, the
# debootstrapped root file systems) stays, so that the next build takes seconds
# where the first took minutes; `rm -rf ~/.cache/testbuild` drops it.
clean: ## down, then remove the images and the virtual environment (keeps the build cache ~/.cache/testbuild)
	-[ -x $(TESTBUILD) ] && scripts/ensure-engine && $(TESTBUILD) down
	-docker images --format '{{.Repository}}:{{.Tag}}' | grep '^testbuild/' | xargs -r docker rmi
	-docker images --quiet --filter label=org.testbuild.inputs | xargs -r docker rmi
	-docker images --quiet --filter label=org.testbuild.stage | xargs -r docker rmi
	rm -rf $(VENV)
