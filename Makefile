# The two commands of the README, from a fresh clone:
#   make run    the server for development: a virtualenv (.venv) if missing, the requirements,
#               the migrations, then runserver on SQLite with emails printed to the console;
#   make test   the test suite: the same virtualenv and requirements, tests/node's packages
#               (npm ci), then pytest (PYTEST_ARGS='-m "not slow"' for the quick part).
# .ci/run makes fresh virtualenvs of its own and runs the same command, pytest.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ADDRESS ?= 127.0.0.1:8000
PYTEST_ARGS ?=

.PHONY: run test install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Installed again whenever requirements.txt changes.
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

# openid-client, axe-core, standardwebhooks: the versions of tests/node/package-lock.json. Without
# npm, the tests that drive them are skipped (with the reason).
tests/node/node_modules/.package-lock.json: tests/node/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/node --no-audit --no-fund --loglevel=error; \
	else \
		echo "npm is not installed: the tests that need tests/node's packages will be skipped"; \
	fi

run: install
	$(BIN)/python manage.py migrate
	$(BIN)/python manage.py runserver $(ADDRESS)

test: install tests/node/node_modules/.package-lock.json
	PATH="$(abspath $(BIN)):$$PATH" pytest $(PYTEST_ARGS)
