# Two commands on a fresh machine: `make run` and `make test`.
# Both create .venv when it is missing and install what they need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# HOST and PORT: from the command line or the environment, else from .env, else the defaults.
# (NAME=value, export NAME=value, spaces around =, quotes, a trailing # comment).
dotenv = $(shell sed -n 's/^[[:space:]]*\(export[[:space:]]\{1,\}\)\{0,1\}$(1)[[:space:]]*=[[:space:]]*//p' \
	.env 2>/dev/null | tail -n 1 | sed 's/[[:space:]]\{1,\}\#.*//' | tr -d "\"' ")
HOST ?= $(or $(call dotenv,HOST),127.0.0.1)
PORT ?= $(or $(call dotenv,PORT),5000)
# The server reads HOST and PORT too: the local sandbox calls it back at that address.
export HOST PORT

.PHONY: run test lint format clean bench browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamp files: reinstall only when the requirement files change.
$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(VENV)/.runtime $@

run: $(VENV)/.runtime
	$(BIN)/flask --app app run --host $(HOST) --port $(PORT)

# The browser tests drive Debian's Chromium: install it where root can; elsewhere they skip.
browser:
	@[ -x /usr/bin/chromium ] \
		|| { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
			&& apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
		|| echo "Chromium (/usr/bin/chromium) is not available: the browser tests will skip"

test: $(VENV)/.dev browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# Benchmarks, not part of `make test`: bench/README.md. wrk comes from Debian's packages when
# root can install it; without it a Python load generator runs (the report says which).
bench: $(VENV)/.dev
	@command -v wrk >/dev/null 2>&1 \
		|| { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
			&& { apt-get install -y -q wrk >/dev/null 2>&1 \
				|| { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wrk >/dev/null 2>&1; }; }; } \
		|| echo "wrk is not available: the Python load generator will run"
	$(BIN)/python -m bench
