# The two commands a newcomer needs: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
RASA := $(BIN)/rasa
# Python 3.10: `python3.10` on PATH, else pyenv's 3.10 (Rasa 3.6 needs Python < 3.11).
PYTHON310 ?= $(shell for p in python3.10 "$$(pyenv prefix 3.10.13 2>/dev/null)/bin/python3.10" "$$(pyenv prefix 3.10 2>/dev/null)/bin/python3.10"; do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1 && { command -v "$$p" || echo "$$p"; } && break; done)
STAMP := $(VENV)/.installed
# Commands that serve or touch the database read .env; the real environment wins over it.
WITH_ENV := HOTLINE_ENV_FILE=.env

.PHONY: help setup install model run test test-fast test-slow test-browser test-production evaluate migrate validate bench bench-load bench-publish clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON310)" ]; then \
		echo "Python 3.10 is needed (Rasa 3.6 does not run on 3.11+)."; \
		echo "Install it, e.g. 'pyenv install 3.10.13' or 'apt-get install python3.10 python3.10-venv', then run make again."; \
		exit 1; fi
	@test -x $(PY) || $(PYTHON310) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip<25"
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP) ## create .venv (Python 3.10) and install the project

.env:
	cp .env.example .env

setup: install .env migrate model ## install, migrate the database, train the model if the data changed

migrate: install ## apply database migrations and seed the content store
	$(WITH_ENV) $(PY) -m bot migrate

model: install ## train the Rasa model unless one for this exact training data exists
	$(PY) -m bot train

validate: install ## rasa data validate, warnings are errors
	$(RASA) data validate --data nlu_data --fail-on-warnings

run: setup ## start the gateway, Rasa and the action server (Ctrl-C stops all three)
	$(WITH_ENV) $(PY) -m bot run-all

test: install ## the whole suite: unit, data validation, model tests, end to end, browser
	$(PY) -m bot train
	$(PY) -m pytest
	$(RASA) data validate --data nlu_data --fail-on-warnings
	$(RASA) test core --stories tests/conversations --model models --fail-on-prediction-errors --out var/results/core
	$(PY) -m bot.nlu_eval --model models --heldout tests/nlu/heldout.yml --min-risk-recall 0.98 --out var/results/NLU.md

test-fast: install ## unit and API tests only (no trained model needed)
	$(PY) -m pytest -m "not slow and not browser"

test-production: install ## PostgreSQL, Redis, replicas, faults, hostile input (needs TEST_DATABASE_URL, TEST_REDIS_URL)
	$(PY) -m pytest tests/production

evaluate: install model ## NLU report on the held-out set -> docs/NLU.md
	$(PY) -m bot.nlu_eval --model models --heldout tests/nlu/heldout.yml --out docs/NLU.md --train-report var/train-report.json

bench: setup ## benchmarks -> docs/BENCHMARKS.md
	$(PY) -m bench

bench-load: install ## sustained load through 1 and 2 gateway replicas on PostgreSQL + Redis -> docs/BENCHMARKS.md
	$(PY) -m bench.load --write

bench-publish: install model ## time a whole publish of one added example (real Rasa) -> docs/BENCHMARKS.md
	$(PY) -m bench.publish_time --write

clean: ## remove the environment, trained models and local data
	rm -rf $(VENV) models var
