# YueNong Market: `make run` serves the demo, `make test` passes the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export FLASK_APP := market.app:create_app

.PHONY: run test lint bench translations extract-messages install install-dev clean migrations-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The stamps re-run the install when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

translations: $(VENV)/.installed
	$(BIN)/pybabel compile -d translations

extract-messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o translations/messages.pot --ignore-dirs='.venv tests bench migrations instance' .
	$(BIN)/pybabel update -i translations/messages.pot -d translations --no-fuzzy-matching

# The demo runs in debug mode: the development secret key is accepted only there.
run: install translations
	FLASK_DEBUG=1 $(BIN)/flask db upgrade heads
	FLASK_DEBUG=1 $(BIN)/flask demo load
	FLASK_DEBUG=1 $(BIN)/flask search rebuild
	@echo "Serving YueNong Market on http://127.0.0.1:5000 (Ctrl-C to stop)"
	$(BIN)/flask --debug run --host 127.0.0.1 --port 5000 --no-reload

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# `flask db check` on a scratch database built by the migrations: nothing may be pending.
migrations-check: install
	@rm -f instance/migrations-check.sqlite3
	DATABASE_URL=sqlite:///$(CURDIR)/instance/migrations-check.sqlite3 FLASK_DEBUG=1 \
	  $(BIN)/flask db upgrade heads >/dev/null 2>&1
	DATABASE_URL=sqlite:///$(CURDIR)/instance/migrations-check.sqlite3 FLASK_DEBUG=1 \
	  $(BIN)/flask db check
	@rm -f instance/migrations-check.sqlite3

test: install-dev translations lint migrations-check
	$(BIN)/pytest

bench: install-dev translations
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
