# Tingshuo — every target works on a fresh machine with Python 3.11 and pip.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
export FLASK_APP := webapp.app:create_app
export PYTHONPATH := $(CURDIR)

.PHONY: install run test worker flower migrate bench lint clean

install: $(STAMP)

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

migrate: install
	$(BIN)/flask db upgrade

run: migrate
	$(BIN)/python wsgi.py

test: install
	$(BIN)/python -m pytest

worker: migrate
	$(BIN)/celery -A celery_worker:celery_app worker --loglevel=INFO -E

flower: install
	FLOWER_UNAUTHENTICATED_API=$${FLOWER_UNAUTHENTICATED_API:-false} \
		$(BIN)/celery -A celery_worker:celery_app flower --port=$${FLOWER_PORT:-5555}

bench: migrate
	$(BIN)/python -m bench

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) instance/tmp .pytest_cache
