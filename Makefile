# dxflow.remote: the two commands a new machine needs are `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: all setup images demo demo-down test unit integration slow fuzz lint lint-ansible changelog docs collection format bench sanity clean

all: test

$(VENV)/.bootstrapped: pyproject.toml tools/bootstrap.sh requirements.txt
	bash tools/bootstrap.sh

setup: $(VENV)/.bootstrapped

## images: the local container images the tests use (debootstrap + podman build, no registry; cached). Root only.
images: setup
	bash tools/images/build.sh

## demo: boot a director and three hosts (engine + agent) on 127.0.0.1, approve the agents, then deploy a workflow
## to every host with ansible-playbook playbooks/demo.yml through the director inventory and the engine connection.
demo: setup
	$(PY) tools/demo.py up

demo-down: setup
	$(PY) tools/demo.py down

## test: install everything into .venv and run the three tiers: unit first (fails fast; the container images build
## meanwhile), then integration and slow in one xdist run so the minutes-long molecule/sanity tests overlap the
## integration tests.
test: setup
	@bash tools/images/build.sh >$(VENV)/images.log 2>&1 & images=$$!; \
	  $(PY) -m pytest -q -n 0 tests/unit $(PYTEST_ARGS); rc=$$?; \
	  wait $$images; irc=$$?; cat $(VENV)/images.log; [ $$rc = 0 ] && [ $$irc = 0 ]
	$(PY) -m pytest -q -n 2 --dist loadgroup --durations=20 tests/integration tests/slow $(PYTEST_ARGS)

## unit: no daemons, no subprocesses (seconds; in one process: starting xdist workers costs more than it saves).
unit: setup
	$(PY) -m pytest -q -n 0 tests/unit $(PYTEST_ARGS)

## integration: real daemons on 127.0.0.1.
integration: images
	$(PY) -m pytest -q -n 2 --dist loadgroup --durations=20 tests/integration $(PYTEST_ARGS)

## slow: molecule scenarios, the rollout playbook and ansible-test sanity (minutes).
slow: images
	$(PY) -m pytest -q -n 2 --dist loadgroup --durations=20 tests/slow $(PYTEST_ARGS)

## fuzz: the engine and director fuzzers (part of `make test` with a small budget) with 1,000 generated requests
## per route.
fuzz: setup
	DXFLOW_FUZZ_EXAMPLES=$${DXFLOW_FUZZ_EXAMPLES:-1000} $(PY) -m pytest -q --timeout=0 \
	  tests/integration/security/test_fuzz_engine.py tests/integration/security/test_fuzz_director.py $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests bench tools plugins roles
	$(VENV)/bin/ruff format --check src tests bench tools

format: setup
	$(VENV)/bin/ruff format src tests bench tools
	$(VENV)/bin/ruff check --fix src tests bench tools

## lint-ansible: ansible-lint --profile production (.ansible-lint) from a temp ansible_collections/dxflow/remote link,
## so the playbooks' and molecule scenarios' roles resolve by FQCN.
lint-ansible: setup
	@tmp=$$(mktemp -d) && mkdir -p $$tmp/ansible_collections/dxflow && ln -s $(CURDIR) $$tmp/ansible_collections/dxflow/remote \
	  && cd $$tmp/ansible_collections/dxflow/remote && PATH=$(CURDIR)/$(VENV)/bin:$$PATH ANSIBLE_COLLECTIONS_PATH=$$tmp \
	  $(CURDIR)/$(VENV)/bin/ansible-lint; rc=$$?; rm -rf $$tmp; exit $$rc

## changelog: CHANGELOG.rst from changelogs/fragments with antsibull-changelog, for the version in galaxy.yml.
changelog: setup
	@tmp=$$(mktemp -d) && mkdir -p $$tmp/ansible_collections/dxflow && ln -s $(CURDIR) $$tmp/ansible_collections/dxflow/remote \
	  && PATH=$(CURDIR)/$(VENV)/bin:$$PATH ANSIBLE_COLLECTIONS_PATH=$$tmp $(VENV)/bin/antsibull-changelog release \
	  --version $$(awk '/^version:/ {print $$2}' galaxy.yml); rc=$$?; rm -rf $$tmp; exit $$rc

## docs: the collection docs site with antsibull-docs (plugin pages + the guides in docs/) into build/docs (not in
## `make test`, which runs the fast `tools/docs.py lint` instead).
docs: setup
	$(PY) tools/docs.py build

## collection: the release tarball into dist/ (ansible-galaxy collection build, with the guides as docsite RST).
collection: setup
	$(PY) tools/docs.py collection

## sanity: ansible-test sanity on a temp ansible_collections/dxflow/remote copy (Python 3.11, local, offline pip stand-in).
sanity: setup
	VENV=$(CURDIR)/$(VENV) bash tools/sanity.sh

## bench: speed and memory targets (not run by CI); figures go to docs/performance.md.
bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist src/*.egg-info
