# Tingshuo — every target works on a fresh machine with Python 3.11 and pip.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# One stamp per set of pinned files installed: the service's own, and the service's plus
# what tests, benchmarks and lint need. A changed file changes its stamp's name.
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-nodeps.txt | cksum | cut -d' ' -f1)
DEV_STAMP := $(VENV)/.installed-dev-$(shell cat requirements.txt requirements-nodeps.txt \
	requirements-dev.txt | cksum | cut -d' ' -f1)
VENDOR_JS := webapp/app/static/vendor/socket.io.min.js
export FLASK_APP := webapp.app:create_app
export PYTHONPATH := $(CURDIR)

.PHONY: install install-dev browser run test worker flower migrate bench lint clean

# What the service needs to run (requirements.txt, requirements-nodeps.txt).
install: $(STAMP) $(VENDOR_JS)

# ... and what its tests, benchmarks and lint need (requirements-dev.txt).
install-dev: install $(DEV_STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-nodeps.txt
	rm -f $(VENV)/.installed-[0-9]*
	touch $@

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(BIN)/python -m pip install -q -r requirements.txt -r requirements-dev.txt
	rm -f $(VENV)/.installed-dev-*
	touch $@

# --- browser console: front-end packages from npm, Chromium and a CJK font for its tests ---
$(VENDOR_JS): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund && mkdir -p $(@D) && \
		cp node_modules/socket.io-client/dist/socket.io.min.js $@; \
	else \
		echo "note: npm not found; the console at / needs $@ (install Node.js, then make install)"; \
	fi

browser:
	@if command -v dpkg >/dev/null 2>&1 && dpkg -s chromium fonts-wqy-microhei >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -q --no-install-recommends chromium fonts-wqy-microhei; \
	else \
		echo "note: the browser tests need Chromium (/usr/bin/chromium) and a CJK font" \
			"(Debian: apt-get install chromium fonts-wqy-microhei)"; \
	fi
# --- end browser console ---

migrate: install
	$(BIN)/flask db upgrade

run: migrate
	$(BIN)/python wsgi.py

# The suite runs in TEST_WORKERS processes, a test file to each at a time (its servers
# start once): most of a test's time is real-time waiting on audio and servers.
TEST_WORKERS ?= 4
test: install-dev browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

worker: migrate
	$(BIN)/celery -A celery_worker:celery_app worker --loglevel=INFO -E

flower: install
	FLOWER_UNAUTHENTICATED_API=$${FLOWER_UNAUTHENTICATED_API:-false} \
		$(BIN)/celery -A celery_worker:celery_app flower --port=$${FLOWER_PORT:-5555}

bench: migrate install-dev
	$(BIN)/python -m bench

lint: install-dev
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) instance/tmp .pytest_cache
